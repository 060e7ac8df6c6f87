"""NBH103: a model logged as IMPLEMENTED while its validation_method says nothing was validated."""

from __future__ import annotations

import itertools

import libcst as cst

from nb2prod.lint.rule import LintRule, RuleContext
from nb2prod.lint.syntax import plain_status, string_value

_STATUS = "implementation_status"
_METHOD = "validation_method"


class ImplementedWithoutValidation(LintRule):
    """## What it does
    Finds a function (or module-level code, or a class body) that gives `implementation_status`
    a validated status while giving `validation_method` a value that starts with the
    contract's no-validation prefix (`NONE` by default). The validated statuses are those the
    contract lets ship without an opt-in: `IMPLEMENTED` (or `✅ IMPLEMENTED`) by default.
    A value counts wherever it is given: as the value after the key in a call
    (`log_param`, `set_tag`, `MlflowClient().set_tag(run_id, ...)`,
    `set_model_version_tag(...)`), in a dict literal, as a keyword argument, or assigned to a
    variable of the field's name.

    A hand-typed `accuracy_claim` is a separate rule (NBH104): it has a different fix.

    ## Why is this bad?
    `IMPLEMENTED` promises validated machine learning. A model whose validation method is
    "NONE" has no measurement behind that promise; the gate, the dashboards and the API
    clients would all trust a claim nobody checked.

    ## Example
    ```python
    mlflow.log_params({
        "implementation_status": "IMPLEMENTED",
        "validation_method": "NONE - pattern-based heuristic",
    })
    ```

    ## Use instead
    ```python
    mlflow.log_params({
        "implementation_status": "HEURISTIC",
        "validation_method": "NONE - pattern-based heuristic",
    })
    ```
    or measure the model on held-out data and log how (`"holdout 20%"`).
    """

    CODE = "NBH103"
    MODULE_WIDE = False
    NAME = "implemented-without-validation"
    MESSAGE = "IMPLEMENTED status while validation_method says nothing was validated"
    TRIGGERS = (_METHOD,)
    VALID = (
        """
import mlflow
mlflow.log_params({
    "implementation_status": "IMPLEMENTED",
    "validation_method": "5-fold cross-validation",
})
""",
        """
import mlflow as mf
def log_heuristic():
    mf.log_param("implementation_status", "HEURISTIC")
    mf.log_param("validation_method", "NONE - pattern-based heuristic")
""",
        """
from mlflow import log_param
def implemented():
    log_param("implementation_status", "IMPLEMENTED")
    log_param("validation_method", "holdout 20%")
def heuristic():
    log_param("implementation_status", "HEURISTIC")
    log_param("validation_method", "NONE")
""",
        """
import mlflow
mlflow.log_params({"implementation_status": "IMPLEMENTED", "validation_method": "NONEXISTENT"})
""",
    )
    INVALID = (
        """
import mlflow
mlflow.log_params({
    "implementation_status": "IMPLEMENTED",
    "validation_method": "NONE - pattern-based heuristic",
})
""",
        """
import mlflow as mf
def train():
    mf.set_tag("implementation_status", "✅ IMPLEMENTED")
    mf.log_param("validation_method", "none")
""",
        """
from mlflow import log_param
implementation_status = "IMPLEMENTED"
log_param("validation_method", "NONE - not validated")
""",
        """
from mlflow import MlflowClient
def tag(client: MlflowClient, name: str, version: str) -> None:
    client.set_model_version_tag(name, version, "implementation_status", "IMPLEMENTED")
    client.set_model_version_tag(name, version, "validation_method", "NONE")
""",
    )

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        contract = context.contract
        self._validated = {
            s.name for s in contract.statuses if s.promotable and not s.requires_opt_in
        }
        honest = [
            s.name for s in contract.statuses if s.trainable and s.name not in self._validated
        ]
        self._instead = " or ".join(honest) or "another status"
        self._none = contract.no_validation_prefix.upper()
        self._scopes: list[_Scope] = [_Scope()]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_Scope())

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._close(self._scopes.pop())

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._scopes.append(_Scope())

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._close(self._scopes.pop())

    def leave_Module(self, original_node: cst.Module) -> None:
        self._close(self._scopes.pop())

    def visit_Call(self, node: cst.Call) -> None:
        args = node.args
        for arg, following in itertools.pairwise(args):
            if arg.keyword is None and following.keyword is None:
                self._given(string_value(arg.value), following.value)
        for arg in args:
            if arg.keyword is not None:
                self._given(arg.keyword.value, arg.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        self._given(string_value(node.key), node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                self._given(target.target.value, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if isinstance(node.target, cst.Name) and node.value is not None:
            self._given(node.target.value, node.value)

    def _given(self, key: str | None, value: cst.BaseExpression) -> None:
        text = string_value(value)
        if text is None:
            return
        scope = self._scopes[-1]
        if key == _STATUS and plain_status(text) in self._validated:
            scope.validated.append((value, text))
        elif key == _METHOD and self._says_none(text):
            scope.methods.append(text)

    def _says_none(self, text: str) -> bool:
        """'NONE', 'NONE - heuristic', 'none: not measured'; not 'NONEXISTENT' or 'nonlinear'."""
        word = text.strip().upper()
        rest = word.removeprefix(self._none)
        return rest != word and not (rest[:1].isalnum() or rest[:1] == "_")

    def _close(self, scope: _Scope) -> None:
        if not scope.methods:
            return
        for value, text in scope.validated:
            self.report(
                value,
                f"implementation_status {text!r} claims validated ML, but validation_method "
                f"{scope.methods[0]!r} says nothing was validated; measure the model on "
                f"held-out data and log how, or log {self._instead}",
            )


class _Scope:
    def __init__(self) -> None:
        self.validated: list[tuple[cst.BaseExpression, str]] = []
        self.methods: list[str] = []
