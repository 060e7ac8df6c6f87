"""Every lint rule against its own examples, and the promises every rule makes to its users.

A rule's VALID examples must not make it fire and its INVALID examples must: the examples in
the documentation are the rule's tests, so the two cannot drift apart (as in Fixit).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from conftest import run_cli

from nb2prod.contract import load_contract
from nb2prod.lint.engine import lint_source
from nb2prod.lint.registry import all_rules
from nb2prod.lint.rule import LintRule

RULES = all_rules()
SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead")


def _examples(kind: str) -> list[pytest.param]:
    return [
        pytest.param(rule, textwrap.dedent(example), id=f"{rule.CODE}-{rule.NAME}-{index}")
        for rule in RULES
        for index, example in enumerate(getattr(rule, kind), start=1)
    ]


def _codes(rule: type[LintRule], source: str) -> list[str]:
    return [v.code for v in lint_source(source, "example.py", [rule], load_contract())]


@pytest.mark.parametrize(("rule", "source"), _examples("VALID"))
def test_valid_example_is_clean(rule: type[LintRule], source: str) -> None:
    assert rule.CODE not in _codes(rule, source)


@pytest.mark.parametrize(("rule", "source"), _examples("INVALID"))
def test_invalid_example_fires(rule: type[LintRule], source: str) -> None:
    assert rule.CODE in _codes(rule, source)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.CODE)
def test_rule_is_documented_and_has_examples(rule: type[LintRule]) -> None:
    docs = rule.documentation()
    positions = [docs.find(section) for section in SECTIONS]
    assert -1 not in positions, f"{rule.CODE} docs lack a section of {SECTIONS}"
    assert positions == sorted(positions), f"{rule.CODE} docs sections are out of order"
    assert re.fullmatch(r"NBH\d{3}", rule.CODE)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)+", rule.NAME)
    assert rule.MESSAGE and rule.TRIGGERS
    assert len(rule.VALID) >= 3 and len(rule.INVALID) >= 3


@pytest.mark.parametrize(("rule", "source"), _examples("INVALID"))
def test_invalid_example_contains_a_trigger(rule: type[LintRule], source: str) -> None:
    """Otherwise the engine's prefilter would skip exactly the code the rule is for."""
    assert any(trigger in source for trigger in rule.TRIGGERS)


def test_codes_and_names_are_unique() -> None:
    codes = [rule.CODE for rule in RULES]
    names = [rule.NAME for rule in RULES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)


# -- NBH109 on decorator-style Feast views, through the real CLI ---------------------------

ODFV_UNTAGGED = """\
import pandas as pd
from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view as odfv
from feast.types import Float64

from sources import transactions


@odfv(
    schema=[Field(name="total_spend", dtype=Float64)],
    sources=[transactions],
    tags={"team": "risk"},
)
def total_spend(inputs: pd.DataFrame) -> pd.DataFrame:
    return inputs
"""

ODFV_TAGGED = ODFV_UNTAGGED.replace(
    'tags={"team": "risk"}',
    'tags={"implementation_status": "HEURISTIC", "validation": "NONE - not validated"}',
)


def test_a_decorator_view_without_quality_tags_is_reported_by_name(tmp_path: Path) -> None:
    (tmp_path / "views.py").write_text(ODFV_UNTAGGED)
    result = run_cli("lint", "views.py", cwd=tmp_path)
    assert result.code == 1, result.stdout + result.stderr
    views = [line for line in result.stdout.splitlines() if line.startswith("views.py:9:")]
    assert len(views) == 1, result.stdout  # the decorator, once
    assert "NBH109 feature view total_spend() is defined without" in views[0]


def test_a_tagged_decorator_view_and_its_fields_pass(tmp_path: Path) -> None:
    (tmp_path / "views.py").write_text(ODFV_TAGGED)
    result = run_cli("lint", "views.py", cwd=tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert "NBH109" not in result.stdout
