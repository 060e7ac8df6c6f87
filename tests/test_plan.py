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
