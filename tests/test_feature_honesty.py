"""Each feature step's own honesty: hand-made weights, thresholds and constant fills make a
feature HEURISTIC whatever the model is, and the generated features.py says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_code

from nb2prod.backend.render import convert
from nb2prod.frontend.feature_honesty import feature_honesty
from nb2prod.frontend.planner import build_plan

LOAD = [
    "import numpy as np\n"
    "import pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split",
    "rng = np.random.default_rng(0)\n"
    "df = pd.DataFrame(rng.integers(1, 9, size=(200, 3)), columns=['a', 'b', 'c'])\n"
    "df['label'] = (df.a > df.b).astype(int)",
]
FIT = [
    "X = df.drop(columns=['label'])\n"
    "y = df['label']\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "model = LogisticRegression().fit(X_train, y_train)",
    "accuracy = accuracy_score(y_test, model.predict(X_test))",
]


def features_of(write_notebook, feature_cell: str, helpers: list[str] | None = None):
    features = {"source": feature_cell, "tags": ["features"]}
    path = write_notebook([*LOAD, *(helpers or []), features, *FIT])
    plan = build_plan(path)
    (step,) = [s for s in plan.steps if s.role == "features"]
    return plan, feature_honesty(step, plan)


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("df['score'] = 0.3 * df['a'] + 0.7 * df['b']", "hand-made score score = 0.3"),
        ("df = df.assign(score=df.a * 1.5 - df.c * 0.25)", "hand-made score score"),
        ("df['big'] = (df['a'] > 4.5).astype(int)", "hand-made threshold big"),
        ("df['c'] = df['c'].fillna(3)", "missing values filled with a constant: df['c'].fillna(3)"),
    ],
    ids=["weighted-sum", "assign", "threshold", "constant-fill"],
)
def test_a_hand_made_feature_is_heuristic_under_a_validated_model(
    write_notebook, code: str, said: str
) -> None:
    plan, honesty = features_of(write_notebook, code)
    assert plan.honesty.implementation_status == "IMPLEMENTED"
    assert honesty.implementation_status == "HEURISTIC"
    assert honesty.validation.startswith("NONE")
    assert said in honesty.reason
    assert "(cell 3)" in honesty.reason


@pytest.mark.parametrize(
    "code",
    [
        "df['ratio'] = df['a'] / (df['b'] + 1e-6)",
        "df['pct'] = df['a'] * 100",
        "df['first'] = df.iloc[:, 0] + df.iloc[:, 2]",
        "df['mean_filled'] = df['c'].fillna(df['c'].mean())",
    ],
    ids=["epsilon-guard", "unit-scale", "positional-index", "fill-from-data"],
)
def test_a_feature_computed_from_the_data_shares_the_models_validation(
    write_notebook, code: str
) -> None:
    _, honesty = features_of(write_notebook, code)
    assert honesty.implementation_status == "IMPLEMENTED"
    assert honesty.validation == "end to end, by the model's accuracy (holdout 25%)"


def test_a_hand_made_score_inside_a_notebook_function_is_found_in_its_cell(
    write_notebook,
) -> None:
    helper = "def engagement(frame):\n    return 2.5 * frame['a'] - 0.5 * frame['c']"
    _, honesty = features_of(write_notebook, "df['engaged'] = engagement(df)", [helper])
    assert honesty.implementation_status == "HEURISTIC"
    assert honesty.reason == (
        "hand-made score engagement() = 2.5 * frame['a'] - 0.5 * frame['c'] (cell 3)"
    )


def test_features_py_carries_the_feature_steps_own_status_and_why(
    write_notebook, tmp_path: Path
) -> None:
    path = write_notebook(
        [
            *LOAD,
            {"source": "df['score'] = 0.3 * df['a'] + 0.7 * df['b']", "tags": ["features"]},
            *FIT,
        ]
    )
    conversion = convert(path, tmp_path / "pkg")
    features = (conversion.target / conversion.plan.package_name / "features.py").read_text()
    assert 'implementation_status="HEURISTIC"' in features
    assert 'validation="NONE - hand-made, not validated against outcomes"' in features
    assert "reason=\"hand-made score score = 0.3 * df['a'] + 0.7 * df['b'] (cell 3)\"" in features


def test_feature_code_that_fits_an_encoder_converts_and_a_planned_feature_refuses_to_run(
    write_notebook, tmp_path: Path
) -> None:
    """features.py fits a scaler on the whole table: the module trains, so nb2prod's own lint
    (NBH107) asks it to refuse a PLANNED status, which the registry does when a feature is
    called. It used to fail that lint, and convert refused the notebook as nb2prod's bug."""
    scaler = (
        "from sklearn.preprocessing import StandardScaler\n"
        "scaler = StandardScaler().fit(df[['a', 'b', 'c']])\n"
        "df[['a', 'b', 'c']] = scaler.transform(df[['a', 'b', 'c']])"
    )
    path = write_notebook([*LOAD, {"source": scaler, "tags": ["features"]}, *FIT])
    conversion = convert(path, tmp_path / "planned", status="PLANNED")
    package = conversion.target
    code = (
        "import pandas as pd\n"
        f"from {conversion.plan.package_name} import features\n"
        "from nb2prod_runtime.honesty import HonestyError\n"
        "try:\n"
        "    features.build_features(pd.DataFrame({'a': [1], 'b': [2], 'c': [3], 'label': [0]}))\n"
        "except HonestyError as refused:\n"
        "    print('refused:', refused)\n"
    )
    ran = run_code(code, cwd=tmp_path, env={"PYTHONPATH": str(package)})
    assert ran.stdout.startswith("refused: implementation_status is PLANNED"), ran.stderr[-2000:]
