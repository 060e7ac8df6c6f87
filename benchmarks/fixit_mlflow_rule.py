"""A Fixit 2 lint rule equivalent to nb2prod's NBH101, written only for `lint_bench.py`.

It flags an MLflow run (`with mlflow.start_run()`, a bare `mlflow.start_run()` call, or
`MlflowClient().create_run(...)`) whose function or module does not log every honesty param:
`implementation_status`, `accuracy_claim`, `validation_method` and `honesty_warning`. A param
counts as logged when it is the key of `log_param`/`set_tag`, or a key of a dict literal given
to `log_params`/`set_tags` (directly or through a name bound to one), or of a record built by a
call named `run_record`. Names are resolved with libcst's QualifiedNameProvider, as NBH101
does, so `import mlflow as mf` and `from mlflow import log_param` are understood.

Fixit loads it as a local rule through `benchmarks/fixit.toml`; test it with

    cd benchmarks && fixit test .fixit_mlflow_rule

This module imports Fixit, which nb2prod does not depend on: it is not part of the package.
"""

from __future__ import annotations

from typing import ClassVar

import libcst as cst
from fixit import Invalid, LintRule, Valid
from libcst.metadata import QualifiedNameProvider

from nb2prod.lint.syntax import callee_name, dict_keys

HONESTY_PARAMS = (
    "implementation_status",
    "accuracy_claim",
    "validation_method",
    "honesty_warning",
)
_START = frozenset({"mlflow.start_run"})
_CLIENT = frozenset(
    {"mlflow.MlflowClient", "mlflow.tracking.MlflowClient", "mlflow.client.MlflowClient"}
)
_PARAM = frozenset({"mlflow.log_param", "mlflow.set_tag"})
_PARAMS = frozenset({"mlflow.log_params", "mlflow.set_tags"})


class _Scope:
    """What one function (or the module) starts and logs."""

    def __init__(self) -> None:
        self.runs: list[cst.Call] = []
        self.logged: set[str] = set()
        self.dicts: dict[str, set[str]] = {}
        self.clients: set[str] = set()


class MlflowRunWithoutHonestyRule(LintRule):
    """An MLflow run must log every honesty param in the same function (or module)."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    VALID: ClassVar[list[str | Valid]] = [
        Valid(
            """
            import mlflow
            with mlflow.start_run():
                mlflow.log_params({
                    "implementation_status": "IMPLEMENTED",
                    "accuracy_claim": "0.91 (holdout 20%)",
                    "validation_method": "holdout 20%",
                    "honesty_warning": "VALIDATED",
                })
            """
        ),
        Valid(
            """
            import mlflow as mf
            from mlflow import log_param
            def train():
                honesty = {"implementation_status": "HEURISTIC", "accuracy_claim": "n/a"}
                with mf.start_run():
                    mf.set_tags(honesty)
                    log_param("validation_method", "NONE - pattern-based heuristic")
                    log_param("honesty_warning", "UNVALIDATED")
            """
        ),
        Valid(
            """
            import mlflow
            from pkg import honesty
            def main():
                with mlflow.start_run():
                    record = honesty.run_record(status, measured, spread)
                    mlflow.log_params(record)
            """
        ),
        Valid(
            """
            from other import start_run
            with start_run():
                pass
            """
        ),
    ]
    INVALID: ClassVar[list[str | Invalid]] = [
        Invalid(
            """
            import mlflow
            with mlflow.start_run():
                mlflow.log_metric("accuracy", 0.9)
            """
        ),
        Invalid(
            """
            import mlflow as mf
            def train():
                mf.start_run()
                mf.log_param("implementation_status", "IMPLEMENTED")
                mf.end_run()
            """
        ),
        Invalid(
            """
            from mlflow import start_run, log_params
            def train():
                with start_run():
                    log_params({"implementation_status": "IMPLEMENTED"})
            """
        ),
        Invalid(
            """
            from mlflow import MlflowClient
            client = MlflowClient()
            run = client.create_run("0")
            """
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._scopes: list[_Scope] = [_Scope()]

    def visit_Module(self, node: cst.Module) -> None:
        self._scopes = [_Scope()]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_Scope())

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._close(self._scopes.pop())

    def leave_Module(self, original_node: cst.Module) -> None:
        self._close(self._scopes.pop())

    def visit_Assign(self, node: cst.Assign) -> None:
        scope = self._scopes[-1]
        value = node.value
        if isinstance(value, cst.Call) and self._names(value.func) & _CLIENT:
            scope.clients.update(_target_names(node))
        keys = dict_keys(value)
        if isinstance(value, cst.Call) and callee_name(value) == "run_record":
            keys = set(HONESTY_PARAMS)
        if keys is not None:
            for name in _target_names(node):
                scope.dicts[name] = keys

    def visit_Call(self, node: cst.Call) -> None:
        scope = self._scopes[-1]
        names = self._names(node.func)
        if names & _START or self._creates_run(node):
            scope.runs.append(node)
        elif names & _PARAM and node.args:
            key = node.args[0].value
            if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str):
                scope.logged.add(key.evaluated_value)
        elif names & _PARAMS and node.args:
            value = node.args[0].value
            keys = dict_keys(value)
            if keys is None and isinstance(value, cst.Name):
                keys = self._bound_dict(value.value)
            if keys is None and isinstance(value, cst.Call) and callee_name(value) == "run_record":
                keys = set(HONESTY_PARAMS)
            scope.logged.update(keys or ())

    def _names(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def _creates_run(self, node: cst.Call) -> bool:
        """`client.create_run(...)` or `MlflowClient().create_run(...)`."""
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "create_run":
            return False
        owner = func.value
        if isinstance(owner, cst.Call):
            return bool(self._names(owner.func) & _CLIENT)
        if isinstance(owner, cst.Name):
            return any(owner.value in scope.clients for scope in self._scopes)
        return False

    def _bound_dict(self, name: str) -> set[str] | None:
        for scope in reversed(self._scopes):
            if name in scope.dicts:
                return scope.dicts[name]
        return None

    def _close(self, scope: _Scope) -> None:
        missing = [name for name in HONESTY_PARAMS if name not in scope.logged]
        if not missing:
            return
        message = (
            f"MLflow run does not log {', '.join(missing)}; log them with mlflow.log_params(...)"
        )
        for run in scope.runs:
            self.report(run, message)


def _target_names(node: cst.Assign) -> list[str]:
    return [t.target.value for t in node.targets if isinstance(t.target, cst.Name)]
