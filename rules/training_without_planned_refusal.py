"""NBH107: training code that would train a model whose status says it cannot be trained."""

from __future__ import annotations

import libcst as cst

from nb2prod.lint.rule import LintRule, RuleContext
from nb2prod.lint.syntax import callee_name, plain_status, string_value, values_given

_STATUS = "implementation_status"
_REFUSERS = ("require_trainable", "refuse_planned")


class TrainingWithoutPlannedRefusal(LintRule):
    """## What it does
    Finds a module that trains (starts an MLflow run with `mlflow.start_run`, or calls a
    `.fit(...)` method) and handles an `implementation_status`, but never refuses the
    statuses the contract marks as not trainable (`PLANNED` by default). A module refuses
    when it compares with such a status (`status == "PLANNED"`,
    `status in ("PLANNED",)`, `case "PLANNED":`), or calls a function whose name contains
    `require_trainable` or `refuse_planned` (the generated packages call
    `honesty.require_trainable(status)`).

    A module whose status is fixed needs no check, because it cannot be `PLANNED`: when every
    value it gives `implementation_status` is a literal other than `PLANNED` (directly, or
    through a variable bound only to such literals), and it reads the status from nowhere
    else (no `record["implementation_status"]`, `.implementation_status` or parameter). A
    literal outside the contract (`"DONE"`) is NBH102's finding, not this rule's.

    ## Why is this bad?
    A `PLANNED` model is a design, not a model. Training it anyway produces a run, an artefact
    and a registry entry that look like a model and are not; the contract says the pipeline
    must stop at once, with a message that says why.

    ## Example
    ```python
    status = config["implementation_status"]
    with mlflow.start_run():
        model.fit(X, y)
        mlflow.log_param("implementation_status", status)
    ```

    ## Use instead
    ```python
    status = config["implementation_status"]
    if status == "PLANNED":
        raise SystemExit("implementation_status is PLANNED: nothing can be trained yet")
    with mlflow.start_run():
        model.fit(X, y)
        mlflow.log_param("implementation_status", status)
    ```
    """

    CODE = "NBH107"
    NAME = "training-without-planned-refusal"
    MESSAGE = "training code does not refuse a PLANNED implementation_status"
    TRIGGERS = (_STATUS,)
    VALID = (
        """
import mlflow
from pkg import honesty
def main():
    status = honesty.MODEL["implementation_status"]
    honesty.require_trainable(status)
    with mlflow.start_run():
        mlflow.log_params(honesty.run_record(status, None, None))
""",
        """
import mlflow as mf
implementation_status = "HEURISTIC"
with mf.start_run():
    mf.log_param("implementation_status", implementation_status)
""",
        """
from mlflow import start_run, log_param
def train(model, X, y, implementation_status: str):
    if implementation_status in ("PLANNED", "❌ PLANNED"):
        raise ValueError("a PLANNED model cannot be trained")
    model.fit(X, y)
    with start_run():
        log_param("implementation_status", implementation_status)
""",
        """
def describe(record):
    return record["implementation_status"]
""",
    )
    INVALID = (
        """
import mlflow
def main(config):
    with mlflow.start_run():
        mlflow.log_param("implementation_status", config["implementation_status"])
""",
        """
import mlflow as mf
def train(model, X, y, implementation_status):
    model.fit(X, y)
    mf.set_tag("implementation_status", implementation_status)
""",
        """
from mlflow import start_run, log_params
status = "PLANNED"
with start_run():
    log_params({"implementation_status": status})
""",
        """
from mlflow import start_run as run
def train(record):
    with run():
        log(implementation_status=record.implementation_status)
""",
    )

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        statuses = context.contract.statuses
        self._untrainable = {s.name for s in statuses if not s.trainable}
        self._training: cst.CSTNode | None = None
        self._refuses = False
        self._dynamic = False  # the status is read from somewhere at run time
        self._given: list[cst.BaseExpression] = []
        self._bindings: dict[str, list[cst.BaseExpression]] = {}
        self._written: set[cst.CSTNode] = set()  # assignment targets, not reads

    def visit_Call(self, node: cst.Call) -> None:
        name = callee_name(node) or ""
        if self._training is None and (self.calls(node, "mlflow.start_run") or name == "fit"):
            self._training = node
        if any(refuser in name for refuser in _REFUSERS):
            self._refuses = True
        self._given.extend(values_given(node, _STATUS))

    def visit_Comparison(self, node: cst.Comparison) -> None:
        operands = [node.left, *(target.comparator for target in node.comparisons)]
        if any(self._names_untrainable(operand) for operand in operands):
            self._refuses = True

    def visit_MatchValue(self, node: cst.MatchValue) -> None:
        if self._names_untrainable(node.value):
            self._refuses = True

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if string_value(node.key) == _STATUS:
            self._given.append(node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._assign(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._assign(node.target, node.value)

    def visit_Param(self, node: cst.Param) -> None:
        if node.name.value == _STATUS:
            self._dynamic = True

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if node not in self._written and any(
            isinstance(e.slice, cst.Index) and string_value(e.slice.value) == _STATUS
            for e in node.slice
        ):
            self._dynamic = True

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node not in self._written and node.attr.value == _STATUS:
            self._dynamic = True

    def leave_Module(self, original_node: cst.Module) -> None:
        handles_status = self._given or self._dynamic
        if self._training is None or not handles_status or self._refuses:
            return
        if not self._dynamic and all(self._fixed(value, set()) for value in self._given):
            return
        if not self._untrainable:
            return  # a contract where every status is trainable has nothing to refuse
        names = sorted(self._untrainable)
        test = f'== "{names[0]}"' if len(names) == 1 else f"in {tuple(names)!r}"
        self.report(
            self._training,
            f"this module trains but never refuses an implementation_status of "
            f"{' or '.join(names)}; stop first, e.g. honesty.require_trainable(status), or "
            f"if status {test}: raise SystemExit(...)",
        )

    def _assign(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self._bindings.setdefault(target.value, []).append(value)
            if target.value == _STATUS:
                self._given.append(value)
        elif isinstance(target, cst.Subscript | cst.Attribute):
            self._written.add(target)
            key = target.attr.value if isinstance(target, cst.Attribute) else None
            if isinstance(target, cst.Subscript) and isinstance(target.slice[0].slice, cst.Index):
                key = string_value(target.slice[0].slice.value)
            if key == _STATUS:
                self._given.append(value)

    def _fixed(self, value: cst.BaseExpression, seen: set[str]) -> bool:
        """Whether a value is a literal that is not PLANNED, or a name bound only to such."""
        text = string_value(value)
        if text is not None:
            return plain_status(text) not in self._untrainable
        if isinstance(value, cst.Name) and value.value not in seen:
            bound = self._bindings.get(value.value)
            return bool(bound) and all(self._fixed(v, seen | {value.value}) for v in bound)
        return False

    def _names_untrainable(self, node: cst.BaseExpression) -> bool:
        text = string_value(node)
        if text is not None:
            return plain_status(text) in self._untrainable
        if isinstance(node, cst.Tuple | cst.List | cst.Set):
            return any(self._names_untrainable(element.value) for element in node.elements)
        return False
