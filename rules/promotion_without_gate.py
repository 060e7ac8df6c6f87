"""NBH106: a model promoted to production with no honesty gate before it in the function."""

from __future__ import annotations

import re

import libcst as cst

from nb2prod.lint.rule import LintRule, RuleContext

_STATUS = "implementation_status"
# The MlflowClient method, and where its target (alias, stage, destination) is given.
_PROMOTIONS = {
    "set_registered_model_alias": (1, "alias"),
    "transition_model_version_stage": (2, "stage"),
    "copy_model_version": (1, "dst_name"),
}
_CREATE = "create_model_version"
_GATE_WORDS = frozenset(("gate", "gates", "gated", "honesty"))
_PRODUCTION_WORDS = frozenset(("prod", "production", "champion", "live", "serving"))


class PromotionWithoutHonestyGate(LintRule):
    """## What it does
    Finds a model promotion that is not preceded, in the same function, by an honesty gate.
    A promotion is an `MlflowClient` call that moves a model towards production:
    `set_registered_model_alias`, `transition_model_version_stage` (registry stages are
    deprecated since MLflow 2.9, and still recognised) and `copy_model_version`, when their
    alias, stage or destination is production-like or not a literal (a variable may well
    hold `"champion"`); and `create_model_version` when one of its literal arguments is
    production-like. A literal is production-like when a word of it is `prod`,
    `production`, `champion`, `live` or `serving` (`"Production"`, `"prod.ml.churn"`);
    `"Staging"`, `"challenger"` or `"Archived"` are not.

    The convention for a gate: a call whose own name (not its module's: `honesty.label()` is
    no gate) has a word `refusal(s)`, `gate` or `honesty`, such as
    `honesty.promotion_refusals(...)`, `refusals(...)`, `honesty_gate(...)` or
    `HonestyGate(...)` (words, so `aggregate()` is no gate); or an `if` (or `elif`) whose
    condition reads `implementation_status`. An `assert` is not a gate: `python -O` removes
    it. Method calls on a client are recognised by the method's name, since an instance's
    type is not known without running the code. A function named like the promotion it
    calls (a client's `set_registered_model_alias` forwarding to its store) is that
    promotion, not a use of it: its callers are the ones checked.

    ## Why is this bad?
    Promotion is the moment a model starts answering real requests. Without a gate, a
    `PLANNED` or unvalidated model, or one whose metric fell below its claim, reaches
    production as easily as a validated one, and nothing records why it was let through.

    ## Example
    ```python
    def promote(client, name, version):
        client.set_registered_model_alias(name, "champion", version)
    ```

    ## Use instead
    ```python
    def promote(client, name, version):
        tags = client.get_model_version(name, version).tags
        refusals = honesty.promotion_refusals(tags, measured, allow_heuristic=False)
        if refusals:
            raise SystemExit("refused: " + "; ".join(refusals))
        client.set_registered_model_alias(name, "champion", version)
    ```
    """

    CODE = "NBH106"
    MODULE_WIDE = False
    NAME = "promotion-without-honesty-gate"
    MESSAGE = "model promotion without an honesty gate"
    TRIGGERS = (*_PROMOTIONS, _CREATE)
    VALID = (
        """
from mlflow import MlflowClient
from pkg import honesty
def promote(name, version, alias):
    client = MlflowClient()
    tags = client.get_model_version(name, version).tags
    reasons = honesty.promotion_refusals(tags, None, allow_heuristic=False)
    if reasons:
        raise SystemExit("; ".join(reasons))
    client.set_registered_model_alias(name, alias, version)
""",
        """
import mlflow as mf
def promote(name, version):
    client = mf.MlflowClient()
    tags = client.get_model_version(name, version).tags
    if tags.get("implementation_status") != "IMPLEMENTED":
        return
    client.transition_model_version_stage(name, version, stage="Production")
""",
        """
from mlflow import MlflowClient
def stage(client: MlflowClient, name, version):
    client.transition_model_version_stage(name, version, "Staging")
    client.set_registered_model_alias(name, "challenger", version)
    client.create_model_version(name, source, run_id)
""",
        """
class Registry:
    def set_registered_model_alias(self, name, alias, version):
        self._client.set_registered_model_alias(name, alias, version)
""",
    )
    INVALID = (
        """
from mlflow import MlflowClient
def promote(name, version):
    MlflowClient().set_registered_model_alias(name, "champion", version)
""",
        """
import mlflow as mf
client = mf.MlflowClient()
client.transition_model_version_stage("churn", 3, stage="Production")
""",
        """
from mlflow.tracking import MlflowClient as C
from pkg import honesty
def promote(name, version, alias):
    C().set_registered_model_alias(name, alias, version)
    honesty.promotion_refusals({}, None, allow_heuristic=False)
""",
        """
from mlflow import MlflowClient
def ship(client: MlflowClient, uri):
    client.copy_model_version(uri, "prod.ml.churn")
    client.create_model_version("prod.ml.churn", uri, None)
""",
    )

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        self._gated: list[bool] = [False]
        self._functions: list[str] = [""]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._gated.append(False)
        self._functions.append(node.name.value)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._gated.pop()
        self._functions.pop()

    def visit_If(self, node: cst.If) -> None:
        if _reads_status(node.test):
            self._gated[-1] = True

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else None
        if isinstance(func, cst.Name):
            name = func.value
        if name is None:
            return
        if _is_gate(name):
            self._gated[-1] = True
        elif name != self._functions[-1] and self._promotes(name, node) and not self._gated[-1]:
            self.report(
                node,
                f"{name}() promotes a model with no honesty gate before it in this function; "
                "refuse first when the contract does (e.g. honesty.promotion_refusals(...)) "
                "or check implementation_status in an if",
            )

    def _promotes(self, name: str, node: cst.Call) -> bool:
        if name == _CREATE:
            return any(_production(text) for text in _literals(node))
        if name not in _PROMOTIONS:
            return False
        index, keyword = _PROMOTIONS[name]
        target = _argument(node, index, keyword)
        if target is None:
            return False
        if isinstance(target, cst.SimpleString) and isinstance(target.evaluated_value, str):
            return _production(target.evaluated_value)
        return True  # a variable may hold "champion"


def _is_gate(name: str) -> bool:
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)]
    return any(w in _GATE_WORDS or w.startswith("refusal") for w in words)


def _argument(call: cst.Call, index: int, keyword: str) -> cst.BaseExpression | None:
    positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    return positional[index] if index < len(positional) else None


def _production(text: str) -> bool:
    words = [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]
    return any(w in _PRODUCTION_WORDS for w in words)


def _literals(node: cst.CSTNode) -> list[str]:
    """Every string literal inside a node (arguments, dict values of tags=...)."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return [value] if isinstance(value, str) else []
    return [text for child in node.children for text in _literals(child)]


def _reads_status(node: cst.CSTNode) -> bool:
    """`tags["implementation_status"]`, `mv.implementation_status`, `implementation_status`."""
    if isinstance(node, cst.Name):
        return node.value == _STATUS
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value == _STATUS
    if isinstance(node, cst.Attribute) and node.attr.value == _STATUS:
        return True
    return any(_reads_status(child) for child in node.children)
