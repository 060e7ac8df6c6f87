"""NBH104: an accuracy_claim typed by hand where the measured value was at hand."""

from __future__ import annotations

import re

import libcst as cst

from nb2prod.lint.rule import LintRule, RuleContext
from nb2prod.lint.syntax import callee_name, string_value, values_given

_CLAIM = "accuracy_claim"
_LOG_METRIC = ("mlflow.log_metric", "mlflow.log_metrics")
_MEASURING_MODULES = ("sklearn.metrics.", "sklearn.model_selection.cross_val")
# Words of a variable that holds a measurement (`accuracy`, `val_auc`, `measured`). Not
# `score`: a heuristic's score is its prediction; a measured score comes from a call.
_METRIC_WORDS = frozenset(
    {"accuracy", "acc", "auc", "roc", "f1", "precision", "recall", "rmse", "mse", "mae", "r2"}
    | {"loss", "measured"}
)
# ... unless it names what a metric is compared with or called, not its value.
_NOT_MEASURED_WORDS = frozenset({"claim", "threshold", "min", "max", "name", "names"})


class HandTypedAccuracyClaim(LintRule):
    """## What it does
    Finds an `accuracy_claim` given as a bare string literal (`"0.95"`, `"high"`) in a
    function, or in module-level code, where a measured value is available: the scope (or an
    enclosing one) logs a metric (`mlflow.log_metric(s)`, `client.log_metric`), calls a
    measuring function (`sklearn.metrics.*`, `cross_val_score`, `cross_validate`, anything
    named `*_score`, `*_error`, `score` or `evaluate`), or has a variable or parameter named
    after a metric (`accuracy`, `val_auc`, `rmse`, `measured`...; not `score`, which in a
    heuristic is the prediction, not a measurement of it). A claim counts wherever it is
    given: after its key in a call (`log_param`, `set_tag`), in a dict literal, as a keyword
    argument, or assigned to a variable named `accuracy_claim`. A claim built by an f-string,
    a `%`/`.format` expression or a call is derived, and accepted.

    ## Why is this bad?
    A typed claim is true on the day it is typed. The next retraining, on new data or with new
    parameters, changes the metric and not the text, and the model then claims an accuracy it
    no longer has: on the registry, on every API response, in front of every user.

    ## Example
    ```python
    accuracy = accuracy_score(y_test, model.predict(X_test))
    mlflow.log_param("accuracy_claim", "0.95")
    ```

    ## Use instead
    ```python
    accuracy = accuracy_score(y_test, model.predict(X_test))
    mlflow.log_param("accuracy_claim", f"{accuracy:.3f} (holdout 20%)")
    ```
    """

    CODE = "NBH104"
    MODULE_WIDE = False
    NAME = "hand-typed-accuracy-claim"
    MESSAGE = "accuracy_claim is typed by hand while a measured value is available"
    TRIGGERS = (_CLAIM,)
    VALID = (
        """
import mlflow
from sklearn.metrics import accuracy_score
accuracy = accuracy_score(y_test, model.predict(X_test))
mlflow.log_param("accuracy_claim", f"{accuracy:.3f} (holdout 20%)")
""",
        """
import mlflow as mf
def log_heuristic():
    mf.log_param("accuracy_claim", "not measured (pattern-based heuristic)")
""",
        """
from mlflow import log_param, log_metric
def train(model, X, y):
    score = model.score(X, y)
    log_metric("accuracy", score)
    log_param("accuracy_claim", claim_from(score, method="holdout 20%"))
""",
        """
def record(accuracy: float) -> dict[str, str]:
    return {"accuracy_claim": "%.3f (5-fold CV)" % accuracy}
""",
        """
def predict(row):
    score = 0.3 * row.chlorine + row.ph
    return {"prediction": score, "accuracy_claim": "not measured (heuristic)"}
""",
    )
    INVALID = (
        """
import mlflow
from sklearn.metrics import accuracy_score
accuracy = accuracy_score(y_test, model.predict(X_test))
mlflow.log_param("accuracy_claim", "0.95")
""",
        """
import mlflow as mf
def train(model, X, y):
    mf.log_metric("r2", model.score(X, y))
    mf.set_tags({"implementation_status": "IMPLEMENTED", "accuracy_claim": "0.91 r2"})
""",
        """
from mlflow import log_param
from sklearn.model_selection import cross_val_score as cv
def train(model, X, y):
    results = cv(model, X, y, cv=5)
    log_param("accuracy_claim", "0.88 ±0.02 (5-fold CV)")
""",
        """
def respond(prediction, measured: float):
    return Response(prediction=prediction, accuracy_claim="94% accurate")
""",
    )

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        self._scopes: list[_Scope] = [_Scope(None)]
        self._all: list[_Scope] = [self._scopes[0]]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = _Scope(self._scopes[-1])
        self._scopes.append(scope)
        self._all.append(scope)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def visit_Param(self, node: cst.Param) -> None:
        self._name(node.name.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            for name in _target_names(target.target):
                self._name(name)
                if name == _CLAIM:
                    self._claim(node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        for name in _target_names(node.target):
            self._name(name)
            if name == _CLAIM and node.value is not None:
                self._claim(node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if string_value(node.key) == _CLAIM:
            self._claim(node.value)

    def visit_Call(self, node: cst.Call) -> None:
        for value in values_given(node, _CLAIM):
            self._claim(value)
        if self._measures(node):
            self._scopes[-1].evidence.append(f"{callee_name(node) or 'a measuring call'}(...)")

    def leave_Module(self, original_node: cst.Module) -> None:
        for scope in self._all:
            evidence = scope.visible_evidence()
            if not evidence:
                continue
            for value, text in scope.claims:
                self.report(
                    value,
                    f"accuracy_claim {text!r} is typed by hand, but a measured value is at "
                    f'hand ({evidence}); derive the claim from it, e.g. f"{{value:.3f}} '
                    '(holdout 20%)"',
                )

    def _measures(self, node: cst.Call) -> bool:
        names = self.qualified_names(node.func)
        if names & set(_LOG_METRIC) or any(n.startswith(_MEASURING_MODULES) for n in names):
            return True
        callee = callee_name(node) or ""
        return callee in ("score", "evaluate", "log_metric", "log_metrics") or callee.endswith(
            ("_score", "_error")
        )

    def _name(self, name: str) -> None:
        """A variable named after a metric is a measured value (constants name metrics)."""
        words = set(re.split(r"_+", name.lower()))
        if not name.isupper() and words & _METRIC_WORDS and not words & _NOT_MEASURED_WORDS:
            self._scopes[-1].evidence.append(f"`{name}`")

    def _claim(self, value: cst.BaseExpression) -> None:
        text = _literal(value)
        if text is not None:
            self._scopes[-1].claims.append((value, text))


class _Scope:
    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.claims: list[tuple[cst.BaseExpression, str]] = []
        self.evidence: list[str] = []

    def visible_evidence(self) -> str | None:
        """The first measurement in this scope or an enclosing one (closures see them)."""
        scope: _Scope | None = self
        while scope is not None:
            if scope.evidence:
                return scope.evidence[0]
            scope = scope.parent
        return None


def _literal(node: cst.BaseExpression) -> str | None:
    """The text of a plain string literal (implicit concatenation included), else None."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None or right is None else left + right
    return None


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, cst.Tuple | cst.List):
        return [name for element in target.elements for name in _target_names(element.value)]
    return []
