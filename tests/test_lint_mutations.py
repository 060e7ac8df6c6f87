"""Mutation tests of the linter against the packages `nb2prod convert` generates.

Every generated package lints clean; then each honesty element of a package is deleted, one
at a time, and the rule that guards it must fire, and no other: a rule that misses the
deletion lets the contract rot, and one that fires elsewhere is noise teams switch off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SAMPLES, run_cli

from nb2prod.backend.render import convert
from nb2prod.contract import load_contract
from nb2prod.lint.engine import lint_file
from nb2prod.lint.registry import all_rules

NOTEBOOKS = sorted(SAMPLES.glob("*.ipynb"))
MUTATED_SAMPLE = "tumor_classifier"  # its package has every element, features included


@dataclass(frozen=True)
class Mutation:
    """Delete (or replace) one honesty element of a generated module."""

    element: str
    module: str  # file in the package's Python package
    pattern: str  # regular expression (multiline, dot matches newline); must match once
    replacement: str
    code: str  # the rule that must fire

    def apply(self, source: str) -> str:
        mutated, count = re.subn(self.pattern, self.replacement, source, flags=re.M | re.S)
        assert count == 1, f"{self.element}: the template changed, {self.pattern!r} matched {count}"
        return mutated


MUTATIONS = [
    Mutation(
        "response model field",
        "serve.py",
        r"^    implementation_status: str \| None\n",
        "",
        "NBH105",
    ),
    Mutation(
        "route response model",
        "serve.py",
        r'(        "/predict",\n)        response_model=PredictResponse,\n',
        r"\1",
        "NBH105",
    ),
    Mutation(
        "compliant responses counter",
        "serve.py",
        r"^        self\.compliant = Counter\(.*?^        \)\n",
        "",
        "NBH108",
    ),
    Mutation(
        "missing labels counter",
        "serve.py",
        r"^        self\.missing = Counter\(.*?^        \)\n",
        "",
        "NBH108",
    ),
    Mutation(
        "run honesty params and tags",
        "train.py",
        r"^            mlflow\.log_params\(record\)\n            mlflow\.set_tags\(record\)\n",
        "",
        "NBH101",
    ),
    Mutation(
        "PLANNED refusal",
        "train.py",
        r"^    try:\n        honesty\.require_trainable\(status\)\n.*?from None\n",
        "",
        "NBH107",
    ),
    Mutation(
        "promotion gate",
        "promote.py",
        r"honesty\.promotion_refusals\(mv\.tags, measured, allow_heuristic=args\.allow_heuristic\)",
        "[]",
        "NBH106",
    ),
    Mutation(
        "feature status tag",
        "features.py",
        # build_features' own (features_from_raw, above it, has its tags too)
        r'^    implementation_status="[A-Z]+",\n(?=[^\n]*\n[^\n]*\n\)\ndef build_features)',
        "",
        "NBH109",
    ),
    Mutation(
        "derived accuracy claim",
        "honesty.py",
        r'"accuracy_claim": accuracy_claim\(measured, spread, method, metric\)',
        '"accuracy_claim": "0.95"',
        "NBH104",
    ),
]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each sample notebook converted once for the whole module."""
    root = tmp_path_factory.mktemp("generated")
    return {nb.stem: convert(nb, root / nb.stem).target for nb in NOTEBOOKS}


def test_generated_packages_lint_clean(packages: dict[str, Path]) -> None:
    """One run over every package, as CI would lint a monorepo (and in parallel, faster)."""
    root = next(iter(packages.values())).parent
    done = run_cli("lint", *packages.values(), cwd=root)
    assert done.code == 0, done.stdout + done.stderr


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.code}-{m.element}")
def test_deleting_an_honesty_element_fires_its_rule(
    packages: dict[str, Path], mutation: Mutation, tmp_path: Path
) -> None:
    original = packages[MUTATED_SAMPLE] / MUTATED_SAMPLE / mutation.module
    mutated = tmp_path / mutation.module
    mutated.write_text(mutation.apply(original.read_text(encoding="utf-8")), encoding="utf-8")
    result = lint_file(mutated, all_rules(), load_contract())
    assert result.error is None, result.error
    assert {v.code for v in result.violations} == {mutation.code}, result.violations
