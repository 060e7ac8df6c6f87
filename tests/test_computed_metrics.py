"""Metrics a notebook computes by hand (issue 22): deep-learning notebooks measure accuracy as
`(predicted == labels).sum() / total` far more often than with a metric function. The name
and the expression must agree before a value is taken for a metric."""

from __future__ import annotations

import ast

import pytest

from nb2prod.frontend.computed_metrics import bound_values, hand_metric

PREDICTED = "preds = model.predict(X_test)\ny_pred = preds\ny_hat = preds\npred = preds\n"


def _quantities(source: str) -> dict[str, str | None]:
    statements = ast.parse(PREDICTED + source).body
    parts = bound_values(statements)
    return {
        node.targets[0].id: hand_metric(node.targets[0].id, node.value, parts, ["model"])
        for statement in statements
        for node in ast.walk(statement)
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


@pytest.mark.parametrize(
    ("source", "name", "quantity"),
    [
        ("acc = (preds == y_test).float().mean().item()", "acc", "accuracy"),
        (
            "test_accuracy = np.mean(y_pred == np.argmax(y_test, axis=1))",
            "test_accuracy",
            "accuracy",
        ),
        (
            "correct = 0\n"
            "for xb, yb in test_loader:\n"
            "    _, predicted = torch.max(model(xb), 1)\n"
            "    correct += (predicted == yb).sum().item()\n"
            "accuracy = 100 * correct / total",
            "accuracy",
            "accuracy",
        ),
        ("rmse = np.sqrt(((y_hat - y_test) ** 2).mean())", "rmse", "rmse"),
        ("mse = np.mean((pred - y) ** 2)\nrmse = np.sqrt(mse)", "rmse", "rmse"),
        ("val_mae = (pred - target).abs().mean()", "val_mae", "mae"),
    ],
)
def test_a_value_named_for_a_metric_and_made_of_it_is_one(
    source: str, name: str, quantity: str
) -> None:
    assert _quantities(source)[name] == quantity


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ('acc = history.history["accuracy"][-1]', "acc"),  # what the fit printed
        ("acc = max(acc_a, acc_b)", "acc"),
        ("mae = abs(a - b)", "mae"),  # one difference, not reduced to one number
        ("same = (preds == y_test).mean()", "same"),  # the name says nothing of a metric
        ("accuracy = accuracy_score(y_test, preds)", "accuracy"),  # a metric function's
        # two of the model's own outputs: an approximation against the exact value
        ("exact = model(X)\nmae = ((exact - preds).abs() / exact.abs()).mean()", "mae"),
        ("acc = (labels == y_test).mean()", "acc"),  # nothing the model made
    ],
)
def test_a_value_is_not_a_metric_on_its_name_or_its_expression_alone(
    source: str, name: str
) -> None:
    assert _quantities(source)[name] is None
