"""Predictions the notebook turns back from a transformed target, which the service does not.

A regression fitted on `np.log1p(price)` predicts log-prices; the notebook measures and shows
`np.expm1(model.predict(X))`. The package serves the model as it is, so its answers are on the
log scale: the plan says so where the notebook turns them back, and how to serve the original
scale (a `TransformedTargetRegressor` carries both directions in the model itself).
"""

from __future__ import annotations

import ast

from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import root_name
from nb2prod.plan import Finding

# the inverse a notebook applies -> the transform the target went through
_INVERSES = {
    "numpy.expm1": "numpy.log1p",
    "numpy.exp": "numpy.log",
    "math.exp": "numpy.log",
    "numpy.square": "numpy.sqrt",
}


def back_transform_findings(facts: NotebookFacts, kept: set[int], model: str) -> list[Finding]:
    """The first place the kept code applies an inverse transform to `model`'s predictions."""
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        predictions = _prediction_names(cell.kept_statements, model)
        for call in cell.calls:
            if call.qualified not in _INVERSES or not call.node.args:
                continue
            given = call.node.args[0]
            predicted = _predicts(given, model) or (
                isinstance(given, ast.Name) and given.id in predictions
            )
            if not predicted:
                continue
            short = ast.unparse(call.node.func)  # as the notebook spells it: np.expm1
            forward = _INVERSES[call.qualified].replace("numpy.", "np.")
            return [
                Finding(
                    "target-transform-not-served",
                    "warning",
                    f"the notebook turns {model}'s predictions back with {short}(...); the "
                    f"service answers what {model}.predict returns, before it",
                    cell.number,
                    call.line,
                    f"apply {short} to the service's predictions, or fit "
                    f"sklearn.compose.TransformedTargetRegressor(regressor=..., func={forward}, "
                    f"inverse_func={short}) so the model answers on the original scale",
                )
            ]
    return []


def _predicts(node: ast.expr, model: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "predict"
        and root_name(node.func.value) == model
    )


def _prediction_names(statements: list[ast.stmt], model: str) -> set[str]:
    """Names a cell binds to the model's predictions (`preds = model.predict(X_test)`)."""
    return {
        node.targets[0].id
        for statement in statements
        for node in ast.walk(statement)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and _predicts(node.value, model)
    }
