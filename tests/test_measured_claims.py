"""The claim a package ships is what its own training measured, and the gate holds it to that.

Each notebook is converted, trained into a real MLflow store and, where it matters, promoted,
as a user would: the package cross-validates the model on the data it was fitted on, the claim
and `validation_method` say what it did, and a notebook number the folds do not reach stays
off the registry's champion alias.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import pytest
from conftest import run_cli, run_module, store_in

from nb2prod.frontend.planner import build_plan

NOISY_LABELS = (
    "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "rng = np.random.default_rng(0)\n"
    "X = rng.normal(size=(400, 2))\n"
    "y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)"
)
LUCKY_HOLDOUT = [
    NOISY_LABELS,
    "easy = np.abs(X[:, 0]) > 1.5  # the rows far from the boundary, kept aside to test on\n"
    "X_train, y_train = X[~easy], y[~easy]\nX_test, y_test = X[easy], y[easy]",
    "model = LogisticRegression().fit(X_train, y_train)\n"
    "accuracy = accuracy_score(y_test, model.predict(X_test))",
]
NEVER_EVALUATED = [
    "from sklearn.datasets import load_iris\nfrom sklearn.tree import DecisionTreeClassifier",
    "X, y = load_iris(return_X_y=True, as_frame=True)",
    "model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)",
]
ON_PROBABILITIES = [
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import roc_auc_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler",
    "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)",
    "model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)\n"
    "probabilities = model.predict_proba(X_test)[:, 1]\n"
    "auc = roc_auc_score(y_test, probabilities)",
]


def package(write_notebook, tmp_path: Path, cells: list, name: str) -> dict[str, str]:
    """Convert the notebook; the environment that runs its package against a fresh store."""
    notebook = write_notebook(cells, name=f"{name}.ipynb")
    converted = run_cli("convert", notebook, "-o", tmp_path / "pkg")
    assert converted.code == 0, converted.stderr
    return {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "pkg"),
        "MLFLOW_TRACKING_URI": store_in(tmp_path),
    }


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_module(*args, cwd=cwd, env=env)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done


def trained(write_notebook, tmp_path: Path, cells: list, name: str) -> tuple[dict[str, str], str]:
    """Convert and train the notebook; the package's environment and what training said."""
    env = package(write_notebook, tmp_path, cells, name)
    done = run(env, tmp_path, f"{name}.train")
    assert done.returncode == 0, done.stderr[-2000:]
    return env, done.stdout


def test_a_notebook_whose_claim_beats_what_the_pipeline_measures_is_refused_by_the_gate(
    write_notebook, tmp_path
) -> None:
    env, said = trained(write_notebook, tmp_path, LUCKY_HOLDOUT, "lucky")
    # the claim is the folds' measure, not the notebook's 0.9-something on its easy rows
    assert "accuracy (5-fold cross-validation)" in said
    claimed = float(said.split("IMPLEMENTED, ")[1].split()[0])
    assert claimed < 0.8
    promoted = run(env, tmp_path, "lucky.promote")
    assert promoted.returncode == 1, promoted.stdout + promoted.stderr
    assert "the notebook's accuracy 0.9" in promoted.stderr
    assert "(holdout) beats what 5-fold cross-validation measured" in promoted.stderr
    assert "one lucky split" in promoted.stderr


def test_a_model_the_notebook_never_evaluated_is_measured_and_stays_heuristic(
    write_notebook, tmp_path
) -> None:
    env, said = trained(write_notebook, tmp_path, NEVER_EVALUATED, "unevaluated")
    said = said.splitlines()[-2]
    assert "HEURISTIC, 0.9" in said
    assert "accuracy (5-fold cross-validation), UNVALIDATED" in said
    # asked not to cross-validate, it says it measured nothing, and why
    again = run(env, tmp_path, "unevaluated.train", "--cross-validation-folds", "0")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "not measured (NONE - no held-out evaluation), UNVALIDATED" in again.stdout


def test_a_metric_on_probabilities_is_measured_on_probabilities(write_notebook, tmp_path) -> None:
    plan = build_plan(write_notebook(ON_PROBABILITIES))
    scorer = next(m.scorer for m in plan.metrics if m.name == "auc")
    assert scorer is not None
    assert (scorer.function, scorer.response_method) == (
        "sklearn.metrics.roc_auc_score",
        "predict_proba",
    )
    env, said = trained(write_notebook, tmp_path, ON_PROBABILITIES, "auc")
    assert "IMPLEMENTED, 0.99" in said  # ranked by probability, as the notebook does
    assert "auc (5-fold cross-validation)" in said
    assert run(env, tmp_path, "auc.promote").returncode == 0


@pytest.mark.parametrize(
    ("metric", "scorer"),
    [
        ("f1 = f1_score(y_test, pred, average='macro')", ("f1_score", {"average": "macro"})),
        ("f1 = f1_score(y_test, pred, average='macro') * 100", None),  # not a fold's score
        ("f1 = f1_score(y_test, pred, sample_weight=w)", None),  # a value only the notebook has
        ("f1 = model.score(X_test, y_test)", ("", {})),
    ],
)
def test_only_a_metric_the_package_can_repeat_on_folds_is_repeated(
    write_notebook, metric: str, scorer
) -> None:
    plan = build_plan(
        write_notebook(
            [
                "from sklearn.datasets import load_iris\nfrom sklearn.metrics import f1_score\n"
                "from sklearn.model_selection import train_test_split\n"
                "from sklearn.svm import SVC",
                "X, y = load_iris(return_X_y=True)\n"
                "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
                "w = y_test + 1",
                f"model = SVC().fit(X_train, y_train)\npred = model.predict(X_test)\n{metric}",
            ]
        )
    )
    found = next(m.scorer for m in plan.metrics if m.name == "f1")
    if scorer is None:
        assert found is None
    else:
        function, keywords = scorer
        assert found.function.rsplit(".", 1)[-1] == function
        assert dict(found.keywords) == keywords


def test_a_model_fitted_with_arguments_folds_would_leave_out_keeps_the_notebooks_measure(
    write_notebook, tmp_path
) -> None:
    """Early stopping on an eval set (`eval_set=`, `callbacks=`) or weights (`sample_weight=`)
    make the notebook's model; a fresh copy refitted on folds with `fit(X, y)` is another model
    (LightGBM's grows every tree it may, not the 76 early stopping kept). The claim is the
    notebook's held-out measure, and the run says why the package did not cross-validate."""
    weighted = [
        *ON_PROBABILITIES[:2],
        "from sklearn.utils.class_weight import compute_sample_weight\n"
        "weights = compute_sample_weight('balanced', y_train)\n"
        "model = make_pipeline(StandardScaler(), LogisticRegression())\n"
        "model.fit(X_train, y_train, logisticregression__sample_weight=weights)\n"
        "probabilities = model.predict_proba(X_test)[:, 1]\n"
        "auc = roc_auc_score(y_test, probabilities)",
    ]
    env, said = trained(write_notebook, tmp_path, weighted, "weighted")
    assert "auc (holdout 25%), VALIDATED" in said
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    run = client.get_run(client.get_model_version("weighted", "1").run_id)
    assert run.data.tags["measurement_note"] == (
        "the notebook fits the model with logisticregression__sample_weight= (cell 3), which a "
        "refit on folds would leave out"
    )
