"""`nb2prod plan` on every bundled sample: the concrete roles, model, metrics, parameters, pins."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import SAMPLES, run_cli

from nb2prod.frontend.planner import build_plan
from nb2prod.plan import Plan

SKLEARN = f"=={version('scikit-learn')}"


def plan_of(name: str) -> Plan:
    return build_plan(SAMPLES / f"{name}.ipynb")


def roles(plan: Plan) -> dict[int, tuple[str, bool]]:
    return {cell.cell: (cell.role, cell.kept) for cell in plan.cells}


def findings(plan: Plan, code: str) -> list[tuple[int | None, str]]:
    return [(f.cell, f.message) for f in plan.findings if f.code == code]


def test_tumor_classifier() -> None:
    plan = plan_of("tumor_classifier")
    assert roles(plan) == {
        1: ("imports", True),
        2: ("explore", False),  # !pip install: nothing left but a requirement
        3: ("parameters", True),
        4: ("load", True),
        5: ("explore", False),  # df.head()
        6: ("explore", False),  # histogram
        7: ("functions", True),
        8: ("features", True),
        9: ("train", True),
        10: ("evaluate", True),
        11: ("explore", False),  # confusion matrix plot
        12: ("explore", False),  # predicts a few rows only to show them
    }
    assert plan.cells[11].reason == (
        "computes new_cases, which nothing the model, its metrics or its input reads"
    )
    assert plan.cells[2].reason == "tagged 'parameters' (papermill)"
    assert plan.model.name == "model"
    assert plan.model.estimator == "sklearn.ensemble.RandomForestClassifier"
    assert (plan.model.kind, plan.model.task, plan.model.library) == (
        "fitted",
        "classification",
        "scikit-learn",
    )
    assert plan.model.fit_inputs == ("X_train", "y_train")
    assert [(m.name, m.function, m.validation) for m in plan.metrics] == [
        ("accuracy", "accuracy_score", "holdout"),
        ("f1", "f1_score", "holdout"),
    ]
    assert [(p.name, p.type, p.default) for p in plan.parameters] == [
        ("test_size", "float", 0.2),
        ("n_estimators", "int", 100),
        ("max_depth", "int", 6),
        ("random_state", "int", 42),
    ]
    assert [(r.name, r.specifier) for r in plan.requirements] == [("scikit-learn", SKLEARN)]
    assert plan.honesty.implementation_status == "IMPLEMENTED"
    assert plan.honesty.validation_method == "holdout 20%"
    assert plan.honesty.primary_metric == "accuracy"
    assert [cell for cell, _ in findings(plan, "hidden-state")] == [7, 8]
    # plots and their imports are gone from the code
    imports = plan.steps[0].blocks[0].source
    assert "matplotlib" not in imports and "%matplotlib" not in imports
    assert "RandomForestClassifier" in imports


def test_diabetes_regressor_heuristic_roles_secret_and_cv() -> None:
    plan = plan_of("diabetes_regressor")
    assert roles(plan) == {
        1: ("imports", True),
        2: ("explore", False),
        3: ("parameters", True),
        4: ("explore", False),  # settings for the notebook's own session: nothing reads them
        5: ("load", True),
        6: ("explore", False),
        7: ("explore", False),
        8: ("features", True),
        9: ("train", True),  # %%time unwrapped
        10: ("explore", False),  # %timeit only times code
        11: ("functions", True),
        12: ("evaluate", True),
        13: ("evaluate", True),
        14: ("explore", False),  # residuals feed only a plot
    }
    assert plan.model.estimator == "sklearn.pipeline.make_pipeline(StandardScaler, Ridge)"
    assert plan.model.task == "regression"
    metrics = {m.name: (m.function, m.validation, m.folds) for m in plan.metrics}
    assert metrics == {
        "r2": ("r2_score", "holdout", None),
        "mae": ("mean_absolute_error", "holdout", None),
        "test_rmse": ("rmse", "holdout", None),  # a helper defined in the notebook
        "cv_scores": ("cross_val_score", "cross-validation", 5),  # cv=CV_FOLDS resolved
    }
    assert plan.honesty.validation_method == "5-fold cross-validation"
    parameters = {p.name: p.default for p in plan.parameters}
    assert parameters["ALPHA"] == 1.0 and parameters["CV_FOLDS"] == 5
    assert "MLFLOW_TRACKING_TOKEN" not in parameters  # a secret is never a default
    assert [r.name for r in plan.requirements] == ["numpy", "pandas", "scikit-learn"]
    assert (
        next(r for r in plan.requirements if r.name == "pandas").source == "!pip install (cell 2)"
    )
    (secret,) = findings(plan, "secret")
    assert secret[0] == 4 and "mlf_********" in secret[1]
    assert [cell for cell, _ in findings(plan, "absolute-path")] == []  # in unused code
    assert [e.name for e in plan.environment] == []  # the unused secret is not carried at all


def test_secret_never_reaches_any_output() -> None:
    token = "mlf_tok_4f9a8c2e7b1d6a3f0e5c9b8a"
    path = SAMPLES / "diabetes_regressor.ipynb"
    assert token in path.read_text()
    as_json = run_cli("plan", path, "--json")
    summary = run_cli("plan", path)
    assert as_json.code == summary.code == 0
    for text in (as_json.stdout, summary.stdout, as_json.stderr, summary.stderr):
        assert token not in text and token[4:] not in text
    blocks = [b.source for s in plan_of("diabetes_regressor").steps for b in s.blocks]
    assert not any("MLFLOW_TRACKING_TOKEN" in block for block in blocks)


def test_wine_kale_tags() -> None:
    plan = plan_of("wine_kale_pipeline")
    assert roles(plan) == {
        1: ("imports", True),
        2: ("explore", False),
        3: ("explore", False),  # %load_ext / %autoreload
        4: ("explore", False),  # !ls
        5: ("parameters", True),
        6: ("functions", True),
        7: ("load", True),
        8: ("explore", False),
        9: ("explore", False),
        10: ("skip", False),
        11: ("features", True),
        12: ("train", True),
        13: ("evaluate", True),
        14: ("evaluate", False),  # pipeline-metrics: print() only, names the metrics
    }
    steps = [(s.name, s.role, s.after) for s in plan.steps]
    assert steps[-4:] == [
        ("load_data", "load", ()),
        ("preprocess", "features", ("load_data",)),
        ("train", "train", ("preprocess",)),
        ("evaluate", "evaluate", ("train",)),
    ]
    assert plan.model.name == "clf"
    assert plan.model.fit_inputs == ("X_train_std", "y_train")
    assert {m.name: m.validation for m in plan.metrics} == {
        "accuracy": "holdout",
        "macro_f1": "holdout",
    }
    assert [p.name for p in plan.parameters] == ["C", "MAX_ITER", "TEST_SIZE", "RANDOM_STATE"]
    assert plan.honesty.validation_method == "holdout 30%"
    assert [(c, m) for c, m in findings(plan, "shell-escape")] == [
        (4, "!ls dropped: shell command")
    ]
    train = next(s for s in plan.steps if s.name == "train")
    assert train.inputs == ("C", "LogisticRegression", "MAX_ITER", "X_train_std", "y_train")
    assert train.outputs == ("clf",)


def test_pool_heuristic_is_rule_based() -> None:
    plan = plan_of("pool_heuristic")
    assert plan.model.name == "model"
    assert plan.model.kind == "rule-based"
    assert plan.model.estimator == "PoolChlorineHeuristic"
    assert plan.metrics == ()
    assert roles(plan)[4] == ("load", True)  # builds the data from nothing earlier
    assert roles(plan)[9] == ("train", True)
    assert roles(plan)[10] == ("inference", True)
    assert plan.honesty.implementation_status == "HEURISTIC"
    assert plan.honesty.validation_method == "NONE - pattern-based heuristic"
    assert plan.honesty.validation_status == "UNVALIDATED"
    assert plan.honesty.uncertainty
    assert [r.name for r in plan.requirements] == ["numpy", "pandas"]
    assert len(plan.parameters) == 8


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_sample_plans_from_the_cli(path: Path) -> None:
    result = run_cli("plan", path, "--json")
    assert result.code == 0, result.stderr
    plan = Plan.from_json(result.stdout)
    assert plan.package_name == path.stem
    assert plan.notebook.code_cells == len(plan.cells)
    assert json.loads(result.stdout)["honesty"]["implementation_status"] in (
        "IMPLEMENTED",
        "HEURISTIC",
    )
    summary = run_cli("plan", path)
    assert summary.code == 0 and "Cells" in summary.stdout and "Findings" in summary.stdout
