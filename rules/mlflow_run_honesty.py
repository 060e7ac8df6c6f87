"""NBH101: an MLflow run that does not log every honesty field the contract requires."""

from __future__ import annotations

import libcst as cst

from nb2prod.lint.rule import LintRule, RuleContext
from nb2prod.lint.syntax import callee_name, dict_keys

_START = ("mlflow.start_run",)
_CLIENT = ("mlflow.MlflowClient", "mlflow.tracking.MlflowClient", "mlflow.client.MlflowClient")
_PARAM = ("mlflow.log_param", "mlflow.set_tag")
_PARAMS = ("mlflow.log_params", "mlflow.set_tags")


class MlflowRunWithoutHonesty(LintRule):
    """## What it does
    Finds MLflow runs (`with mlflow.start_run()`, a bare `mlflow.start_run()` call, or
    `MlflowClient().create_run(...)`) whose function or module does not log every field the
    honesty contract marks as a run parameter: `implementation_status`, `accuracy_claim`,
    `validation_method` and `honesty_warning` by default. A field counts as logged when it is
    the key of `log_param`/`set_tag`, or a key of a dict literal given to `log_params`/`set_tags`
    (directly or through a name bound to one), or of a `record` built by a call named
    `run_record`, the generated packages' helper.

    ## Why is this bad?
    A run without its honesty fields is a model nobody can judge: the registry cannot gate it,
    reviewers cannot tell a validated model from a heuristic, and the claim of accuracy is
    lost with the notebook.

    ## Example
    ```python
    with mlflow.start_run():
        mlflow.log_metric("accuracy", accuracy)
    ```

    ## Use instead
    ```python
    with mlflow.start_run():
        mlflow.log_metric("accuracy", accuracy)
        mlflow.log_params({
            "implementation_status": "IMPLEMENTED",
            "accuracy_claim": f"{accuracy:.3f} (holdout 20%)",
            "validation_method": "holdout 20%",
            "honesty_warning": "VALIDATED",
        })
    ```
    """

    CODE = "NBH101"
    MODULE_WIDE = False
    NAME = "mlflow-run-without-honesty"
    MESSAGE = "MLflow run does not log the honesty fields"
    TRIGGERS = ("start_run", "create_run")
    VALID = (
        """
import mlflow
with mlflow.start_run():
    mlflow.log_params({
        "implementation_status": "IMPLEMENTED",
        "accuracy_claim": "0.91 (holdout 20%)",
        "validation_method": "holdout 20%",
        "honesty_warning": "VALIDATED",
    })
""",
        """
import mlflow as mf
from mlflow import log_param
def train():
    honesty = {"implementation_status": "HEURISTIC", "accuracy_claim": "not measured"}
    with mf.start_run():
        mf.set_tags(honesty)
        log_param("validation_method", "NONE - pattern-based heuristic")
        log_param("honesty_warning", "UNVALIDATED")
""",
        """
import mlflow
from pkg import honesty
def main():
    with mlflow.start_run():
        record = honesty.run_record(status, measured, spread)
        mlflow.log_params(record)
""",
    )
    INVALID = (
        """
import mlflow
with mlflow.start_run():
    mlflow.log_metric("accuracy", 0.9)
""",
        """
import mlflow as mf
def train():
    mf.start_run()
    mf.log_param("implementation_status", "IMPLEMENTED")
    mf.end_run()
""",
        """
from mlflow import MlflowClient
client = MlflowClient()
run = client.create_run("0")
""",
    )

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        self._scopes: list[_Scope] = [_Scope(None)]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_Scope(node))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._close(self._scopes.pop())

    def leave_Module(self, original_node: cst.Module) -> None:
        self._close(self._scopes.pop())

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and self.calls(node.value, *_CLIENT):
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    self._scopes[-1].clients.add(target.target.value)
        keys = dict_keys(node.value)
        if isinstance(node.value, cst.Call) and callee_name(node.value) == "run_record":
            keys = set(self.context.contract.fields_where("run_param"))
        if keys is not None:
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    self._scopes[-1].dicts[target.target.value] = keys

    def visit_Call(self, node: cst.Call) -> None:
        scope = self._scopes[-1]
        names = self.qualified_names(node.func)
        if names & set(_START) or self._creates_run(node):
            scope.runs.append(node)
        elif names & set(_PARAM) and node.args:
            key = node.args[0].value
            if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str):
                scope.logged.add(key.evaluated_value)
        elif names & set(_PARAMS) and node.args:
            value = node.args[0].value
            keys = dict_keys(value)
            if keys is None and isinstance(value, cst.Name):
                keys = self._bound_dict(value.value)
            if keys is None and isinstance(value, cst.Call) and callee_name(value) == "run_record":
                keys = set(self.context.contract.fields_where("run_param"))
            scope.logged.update(keys or ())

    def _creates_run(self, node: cst.Call) -> bool:
        """`client.create_run(...)` or `MlflowClient().create_run(...)`."""
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "create_run":
            return False
        owner = func.value
        if isinstance(owner, cst.Call):
            return self.calls(owner, *_CLIENT)
        if isinstance(owner, cst.Name):
            return any(owner.value in scope.clients for scope in self._scopes)
        return False

    def _bound_dict(self, name: str) -> set[str] | None:
        for scope in reversed(self._scopes):
            if name in scope.dicts:
                return scope.dicts[name]
        return None

    def _close(self, scope: _Scope) -> None:
        required = self.context.contract.fields_where("run_param")
        missing = [name for name in required if name not in scope.logged]
        if missing:
            message = (
                f"MLflow run does not log {', '.join(missing)}; "
                "log them with mlflow.log_params(...)"
            )
            for run in scope.runs:
                self.report(run, message)


class _Scope:
    def __init__(self, node: cst.CSTNode | None) -> None:
        self.node = node
        self.runs: list[cst.Call] = []
        self.logged: set[str] = set()
        self.dicts: dict[str, set[str]] = {}
        self.clients: set[str] = set()
