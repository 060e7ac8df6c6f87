"""NBH102: an honesty value outside the contract."""

from __future__ import annotations

import libcst as cst

from nb2prod.lint.rule import LintRule
from nb2prod.lint.syntax import string_value

_LOGGING = ("mlflow.log_param", "mlflow.set_tag")
_STATUS = "implementation_status"


class HonestyValueOutsideContract(LintRule):
    """## What it does
    Checks every literal value given to `implementation_status` (in `log_param`, `set_tag`,
    a dict literal, a keyword argument or an assignment) against the statuses the honesty
    contract defines (`rules/contract.toml`); the marked forms (`✅ IMPLEMENTED`) are accepted.

    ## Why is this bad?
    Tools that read the status (the promotion gate, dashboards, the PR bot) only understand the
    contract's words. A status such as `"DONE"` or `"validated"` says nothing they can check,
    and a model carrying it slips past every gate.

    ## Example
    ```python
    mlflow.log_param("implementation_status", "DONE")
    ```

    ## Use instead
    ```python
    mlflow.log_param("implementation_status", "IMPLEMENTED")
    ```
    """

    CODE = "NBH102"
    MODULE_WIDE = False
    NAME = "honesty-value-outside-contract"
    MESSAGE = "implementation_status is not a contract value"
    TRIGGERS = (_STATUS,)
    VALID = (
        'import mlflow\nmlflow.log_param("implementation_status", "HEURISTIC")',
        'record = {"implementation_status": "✅ IMPLEMENTED"}',
        "status = compute_status()\nimplementation_status = status",
        'respond(implementation_status="PLANNED")',
    )
    INVALID = (
        'import mlflow as mf\nmf.log_param("implementation_status", "DONE")',
        'from mlflow import set_tag\nset_tag("implementation_status", "validated")',
        'record = {"implementation_status": "WIP"}',
        'respond(implementation_status="done")',
        'implementation_status = "ready"',
    )

    def visit_Call(self, node: cst.Call) -> None:
        if self.calls(node, *_LOGGING) and len(node.args) >= 2:
            key, value = node.args[0].value, node.args[1].value
            if string_value(key) == _STATUS:
                self._check(value)
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value == _STATUS:
                self._check(arg.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if string_value(node.key) == _STATUS:
            self._check(node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Name) and target.target.value == _STATUS:
                self._check(node.value)

    def _check(self, value: cst.BaseExpression) -> None:
        text = string_value(value)
        if text is None:
            return
        plain = text.split()[-1] if text.strip() else text
        if plain not in self.context.contract.status_names:
            known = ", ".join(self.context.contract.status_names)
            self.report(
                value, f"implementation_status {text!r} is not a contract value; use one of {known}"
            )
