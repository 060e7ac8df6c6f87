"""The Plan is immutable, JSON-serialisable, and survives a round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import SAMPLES

from nb2prod.frontend.planner import build_plan, package_name
from nb2prod.plan import Plan


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(SAMPLES / "wine_kale_pipeline.ipynb")


def test_json_round_trip(plan: Plan) -> None:
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert json.loads(again.to_json()) == json.loads(plan.to_json())


def test_plan_is_immutable(plan: Plan) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.package_name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.contract["statuses"]["IMPLEMENTED"] = {}  # type: ignore[index]
    assert isinstance(plan.steps, tuple) and isinstance(plan.steps[0].blocks, tuple)


def test_every_block_names_its_cell(plan: Plan) -> None:
    cells = {cell.cell: cell for cell in plan.cells}
    for step in plan.steps:
        for block in step.blocks:
            assert cells[block.cell].kept
            assert block.source.strip()
            compile(block.source, f"cell {block.cell}", "exec")


def test_contract_is_carried_in_the_plan(plan: Plan) -> None:
    assert set(plan.contract["statuses"]) == {"IMPLEMENTED", "HEURISTIC", "PLANNED"}
    assert plan.honesty.threshold == plan.contract["statuses"]["IMPLEMENTED"]["min_metric"]


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("Churn Model (final) v2", "churn_model_final_v2"),
        ("2024-report", "nb_2024_report"),
        ("class", "class_model"),
        ("'; import os; os.system('x') #", "import_os_os_system_x"),
        ("ünïcode", "n_code"),
    ],
)
def test_package_names_are_safe_identifiers(stem: str, expected: str) -> None:
    from pathlib import Path

    name = package_name(Path(f"{stem}.ipynb"))
    assert name == expected
    assert name.isidentifier()


@pytest.mark.parametrize(
    ("splits", "measured_on", "method"),
    [
        (  # train 70%, then the rest halved into validation and test: the test is 15%
            "X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.3)\n"
            "X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5)",
            "X_test, y_test",
            "holdout 15%",
        ),
        (  # test 20% first, then validation out of the training part: the test stays 20%
            "X_full, X_test, y_full, y_test = train_test_split(X, y, test_size=0.2)\n"
            "X_train, X_val, y_train, y_val = train_test_split(X_full, y_full, test_size=0.25)",
            "X_test, y_test",
            "holdout 20%",
        ),
        (  # ...and measured on that validation part: 25% of 80%
            "X_full, X_test, y_full, y_test = train_test_split(X, y, test_size=0.2)\n"
            "X_train, X_val, y_train, y_val = train_test_split(X_full, y_full, test_size=0.25)",
            "X_val, y_val",
            "holdout 20%",
        ),
        (
            "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3)\n"
            "X_test_scaled = X_test * 1.0",
            "X_test_scaled, y_test",
            "holdout 30%",
        ),
    ],
)
def test_a_holdout_says_its_share_of_the_whole_data_through_splits_of_splits(
    write_notebook, splits: str, measured_on: str, method: str
) -> None:
    """The validation method names the share of the rows the metric was measured on: a split
    of a split's part holds part of that part, not the second split's `test_size`."""
    x_name, y_name = measured_on.split(", ")
    cells = [
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_iris(return_X_y=True)",
        splits,
        "model = LogisticRegression(max_iter=300).fit(X_train, y_train)\n"
        f"accuracy = accuracy_score({y_name}, model.predict({x_name}))",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.honesty.validation_method == method


@pytest.mark.parametrize(
    ("returned", "is_metric"),
    [
        ("accuracy_score(y, model.predict(X))", True),
        ("{'accuracy': accuracy_score(y, model.predict(X)), 'rows': len(y)}", False),
        ("accuracy_score(y, model.predict(X)), len(y)", False),
        ("f'{accuracy_score(y, model.predict(X)):.3f}'", False),
    ],
)
def test_a_notebook_function_named_for_a_score_is_a_metric_only_if_it_can_return_a_number(
    write_notebook, returned: str, is_metric: bool
) -> None:
    """`score_...` or `..._metrics` says what a function is about, not what it returns: a dict
    of figures, a tuple or a text is never claimed as a metric."""
    cells = [
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_iris(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "model = LogisticRegression(max_iter=300).fit(X_train, y_train)",
        f"def score_model(model, X, y):\n    return {returned}",
        "result = score_model(model, X_test, y_test)",
    ]
    plan = build_plan(write_notebook(cells))
    assert ("result" in [m.name for m in plan.metrics]) == is_metric
