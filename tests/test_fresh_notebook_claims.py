"""What fresh Kaggle-style notebooks showed the plan misstating (issue 22): a claim whose
direction, holdout or value is not what the notebook measured. Each notebook is the smallest
of its class, and each test reads the plan as `nb2prod plan` shows it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from conftest import run_cli, run_module, train_package
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from nb2prod.backend.render import convert
from nb2prod.frontend.planner import build_plan

DIABETES = (
    "import numpy as np\n"
    "from sklearn.datasets import load_diabetes\n"
    "from sklearn.ensemble import RandomForestRegressor\n"
    "from sklearn.metrics import mean_squared_log_error\n"
    "from sklearn.model_selection import cross_validate, train_test_split",
    "X, y = load_diabetes(return_X_y=True)\n"
    "X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)",
)


def test_a_logarithmic_error_is_lower_is_better(write_notebook: Callable[..., Path]) -> None:
    """RMSLE, the usual score of demand and price competitions: a plan that read it as
    greater-is-better made promote refuse a model for an error under the threshold."""
    cells = [
        *DIABETES,
        "def rmsle(y, y_):\n    return np.sqrt(mean_squared_log_error(y, y_))",
        "model = RandomForestRegressor(n_estimators=20, random_state=0).fit(X_train, y_train)\n"
        "valid_rmsle = rmsle(y_valid, model.predict(X_valid))\n"
        "msle = mean_squared_log_error(y_valid, model.predict(X_valid))",
    ]
    plan = build_plan(write_notebook(cells))
    assert {m.name: m.greater_is_better for m in plan.metrics} == {
        "valid_rmsle": False,
        "msle": False,
    }


def test_cross_validate_is_a_table_of_scores_not_a_metric(
    write_notebook: Callable[..., Path],
) -> None:
    """`cv = cross_validate(...)` holds arrays per scorer, no number: the metric is what the
    notebook reads from it. Taken for a metric, it was missing on both sides of verify, which
    called that a mismatch with no known cause."""
    cells = [
        *DIABETES,
        "model = RandomForestRegressor(n_estimators=20, random_state=0)\n"
        "scoring = ['r2', 'neg_mean_absolute_error']\n"
        "cv = cross_validate(model, X_train, y_train, cv=3, scoring=scoring)\n"
        "cv_r2 = cv['test_r2'].mean()\n"
        "print(cv_r2)",
        "model.fit(X_train, y_train)",
    ]
    plan = build_plan(write_notebook(cells))
    assert "cv" not in {m.name for m in plan.metrics}


def test_a_prediction_holds_the_rows_it_predicts_on_not_the_early_stopping_rows(
    write_notebook: Callable[..., Path],
) -> None:
    """LightGBM's native API early-stops on a split of the training rows (15% of 75%); the
    metric is measured on the 25% test split, and the honesty record says 25%, not 11.25%."""
    cells = [
        "import lightgbm as lgb\n"
        "import numpy as np\n"
        "from sklearn.datasets import load_wine\n"
        "from sklearn.metrics import f1_score\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_wine(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, "
        "random_state=0)\n"
        "X_tr, X_val, y_tr, y_val = train_test_split(X_train, y_train, test_size=0.15, "
        "random_state=0)",
        "params = {'objective': 'multiclass', 'num_class': 3, 'seed': 0, 'verbose': -1}\n"
        "lgb_train = lgb.Dataset(X_tr, y_tr)\n"
        "lgb_val = lgb.Dataset(X_val, y_val, reference=lgb_train)\n"
        "gbm = lgb.train(params, lgb_train, num_boost_round=50, valid_sets=[lgb_train, lgb_val])",
        "y_prob = gbm.predict(X_test)\n"
        "macro_f1 = f1_score(y_test, np.argmax(y_prob, axis=1), average='macro')",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.honesty.validation_method == "holdout 25%"


def test_a_counter_one_branch_resets_and_the_other_counts_is_kept(
    write_notebook: Callable[..., Path],
) -> None:
    """Early stopping by hand: `wait = 0` before the loop is read by the else branch (the
    first round's `wait += 1`), so the slice keeps it; the plan called it read by nothing
    and the package's loop ran on an unbound name whenever the first round did not improve."""
    cells = [
        *DIABETES,
        "model = RandomForestRegressor(n_estimators=5, warm_start=True, random_state=0)\n"
        "best = float('inf')\n"
        "wait = 0\n"
        "for rounds in range(5, 50, 5):\n"
        "    model.set_params(n_estimators=rounds).fit(X_train, y_train)\n"
        "    error = ((model.predict(X_valid) - y_valid) ** 2).mean()\n"
        "    if error < best:\n"
        "        best = error\n"
        "        wait = 0\n"
        "    else:\n"
        "        wait += 1\n"
        "    if wait >= 2:\n"
        "        break",
    ]
    plan = build_plan(write_notebook(cells))
    (train,) = [step for step in plan.steps if step.role == "train"]
    assert "wait = 0\nfor rounds in" in train.blocks[0].source


def test_an_estimator_built_from_a_dict_of_parameters_is_not_called_unseeded(
    write_notebook: Callable[..., Path],
) -> None:
    """`LGBMClassifier(**params)` with the seed among the params, the Kaggle way to share them
    between folds: nothing says the model is unseeded."""
    cells = [
        *DIABETES,
        "params = {'n_estimators': 20, 'random_state': 0}\n"
        "model = RandomForestRegressor(**params).fit(X_train, y_train)\n"
        "valid_mse = ((model.predict(X_valid) - y_valid) ** 2).mean()",
    ]
    plan = build_plan(write_notebook(cells))
    assert "unseeded-random" not in {finding.code for finding in plan.findings}


def test_a_booster_is_served_with_the_trees_the_notebook_measured(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """`xgb.train(..., early_stopping_rounds=5)` keeps training 5 rounds past the best one, and
    `bst.predict` uses every tree unless given `iteration_range`: the notebook measured the
    trees up to its best round, so the service answers with those, and its answers score the
    run's claim exactly (it served every tree, and a worse model, before). verify gives the
    notebook's booster its rows as a DMatrix and finds the same answers (it compared none)."""
    xgboost = pytest.importorskip("xgboost", reason="the corpus requirements install it")
    cells = [
        "import numpy as np\n"
        "import xgboost as xgb\n"
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_diabetes(return_X_y=True)\n"
        "X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)\n"
        "dtrain = xgb.DMatrix(X_train, label=y_train)\n"
        "dvalid = xgb.DMatrix(X_valid, label=y_valid)",
        "params = {'eta': 0.5, 'max_depth': 4, 'seed': 0}\n"
        "bst = xgb.train(params, dtrain, num_boost_round=200, evals=[(dvalid, 'valid')], "
        "early_stopping_rounds=5)",
        "predicted = bst.predict(dvalid, iteration_range=(0, bst.best_iteration + 1))\n"
        "valid_rmse = float(np.sqrt(np.mean((predicted - y_valid) ** 2)))",
    ]
    package = convert(write_notebook(cells, name="boosted.ipynb"), tmp_path / "pkg").target
    trained = train_package(package, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        served = mlflow.xgboost.load_model("models:/boosted/1")
        claimed = mlflow.get_run(mlflow.models.get_model_info("models:/boosted/1").run_id)
    finally:
        mlflow.set_tracking_uri(previous)
    X, y = load_diabetes(return_X_y=True)
    _, X_valid, _, y_valid = train_test_split(X, y, random_state=0)
    answers = served.predict(xgboost.DMatrix(X_valid))
    rmse = float(((answers - y_valid) ** 2).mean() ** 0.5)
    assert rmse == pytest.approx(claimed.data.metrics["valid_rmse"], rel=1e-6)
    done = run_cli("verify", tmp_path / "boosted.ipynb", package, timeout=600)
    assert done.code == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "predictions: the same on all 20 rows" in done.stdout


def test_verify_compares_a_model_fitted_on_narrow_integer_columns(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Date parts (`dt.year`, `dt.hour`) are int32 columns: the rows verify sends come back
    from JSON as int64, which MLflow's schema check refused, so no prediction was compared.
    The package's model is asked as its service asks it, and the answers are compared."""
    cells = [
        "import numpy as np\n"
        "import pandas as pd\n"
        "from sklearn.ensemble import RandomForestRegressor\n"
        "from sklearn.metrics import mean_absolute_error\n"
        "from sklearn.model_selection import train_test_split",
        "rng = np.random.default_rng(0)\n"
        "rides = pd.DataFrame({'when': pd.date_range('2024-01-01', periods=400, freq='h')})\n"
        "rides['hour'] = rides['when'].dt.hour\n"
        "rides['weekday'] = rides['when'].dt.dayofweek\n"
        "rides['count'] = rides['hour'] * 3 + rng.normal(size=400)",
        "X = rides[['hour', 'weekday']]\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, rides['count'], "
        "random_state=0)\n"
        "model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X_train, y_train)\n"
        "mae = mean_absolute_error(y_test, model.predict(X_test))",
    ]
    source = write_notebook(cells, name="rides.ipynb")
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "predictions: the same on all 20 rows" in done.stdout


def test_a_function_named_for_a_score_that_returns_a_table_keeps_nothing_alive(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """`mono_metrics, preview = score_monolithic(predictor, path)` over an object that holds
    the model: it measures nothing the plan can claim, so nothing keeps it, nor the cell that
    built what it reads (convert said "step load_data reads explainer, which no earlier step
    returns")."""
    explainer = (
        "class Explainer:\n"
        "    def __init__(self, model):\n"
        "        self.model = model\n"
        "        self.rows = None\n"
        "\n"
        "    def add_input(self, x):\n"
        "        self.rows = x\n"
        "\n\n"
        "explainer = Explainer(model)\n"
        "explained = pd.DataFrame({'pred': model.predict(X_test)})"
    )
    scored = (
        "def score_rows(explainer_obj, path):\n"
        "    rows = pd.read_csv(path)\n"
        "    explainer_obj.add_input(rows)\n"
        "    return {'rows': len(rows)}, rows.head()\n"
        "\n\n"
        "counts, preview = score_rows(explainer, 'rows.csv')\n"
        "print(counts)"
    )
    data = (
        "import pandas as pd\n"
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import Ridge\n"
        "from sklearn.metrics import r2_score\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_diabetes(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "X_test.to_csv('rows.csv', index=False)",
        "model = Ridge().fit(X_train, y_train)\nr2 = r2_score(y_test, model.predict(X_test))",
    )
    cells = [*data, explainer, scored]
    notebook = write_notebook(cells)
    plan = build_plan(notebook)
    assert [cell.kept for cell in plan.cells[-2:]] == [False, False]
    assert "counts" not in {metric.name for metric in plan.metrics}
    convert(notebook, tmp_path / "pkg")


def test_printed_flags_of_a_notebook_error_function_are_no_metric(
    write_notebook: Callable[..., Path],
) -> None:
    """`print(reconstruction_error(model, X[:5]) > threshold)` shows five True/False flags:
    the plan lifted the error function's call out of the comparison and logged its mean as a
    metric "on holdout" that the notebook never computed."""
    helper = (
        "def reconstruction_error(model, rows):\n"
        "    return np.abs(model.predict(rows) - rows[:, 0])"
    )
    fit = (
        "model = RandomForestRegressor(n_estimators=10, random_state=0)\n"
        "model.fit(X_train, X_train[:, 0])\n"
        "threshold = 0.05\n"
        "print(reconstruction_error(model, X_valid[:5]) > threshold)"
    )
    plan = build_plan(write_notebook([DIABETES[0], DIABETES[1], helper, fit]))
    assert "reconstruction_error_value" not in {metric.name for metric in plan.metrics}


def test_a_plotting_function_named_like_a_loss_is_no_metric(
    write_notebook: Callable[..., Path],
) -> None:
    """`def plot_loss(history): plt.plot(...)` then `plot_loss(history)` (TensorFlow's
    regression tutorial) draws and returns nothing: it was lifted as a metric
    `plot_loss_value`, None on both sides, and verify failed on it."""
    helper = (
        "import matplotlib.pyplot as plt\n"
        "def plot_loss(errors):\n"
        "    plt.plot(errors, label='loss')\n"
        "    plt.legend()"
    )
    fit = (
        "model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X_train, y_train)\n"
        "plot_loss(model.predict(X_train) - y_train)"
    )
    plan = build_plan(write_notebook([DIABETES[0], DIABETES[1], helper, fit]))
    assert not any(metric.name.startswith("plot_loss") for metric in plan.metrics)


@pytest.mark.parametrize(
    "reduced",
    ["((predicted - rows) ** 2).mean(axis=1)", "np.mean((predicted - rows) ** 2, 1)"],
)
def test_a_notebook_error_function_that_answers_per_row_is_no_metric(
    write_notebook: Callable[..., Path], reduced: str
) -> None:
    """An anomaly score per row (`reconstruction_error(model, X)`), named like a metric: its
    values calibrate a threshold and rank rows, and their mean, logged as a metric measured
    "on the training data", is a number the notebook never computed."""
    helper = (
        "def reconstruction_error(model, rows):\n"
        "    predicted = model.predict(rows)[:, None]\n"
        f"    return {reduced}"
    )
    fit = (
        "model = RandomForestRegressor(n_estimators=10, random_state=0)\n"
        "model.fit(X_train, X_train[:, 0])\n"
        "train_err = reconstruction_error(model, X_train)\n"
        "test_err = reconstruction_error(model, X_valid)\n"
        "threshold = np.percentile(train_err, 95)\n"
        "flagged = (test_err > threshold).mean()"
    )
    plan = build_plan(write_notebook([DIABETES[0], DIABETES[1], helper, fit]))
    assert not {"train_err", "test_err"} & {metric.name for metric in plan.metrics}
    assert not [f for f in plan.findings if f.code == "metric-on-training-data"]


@pytest.mark.parametrize(
    "printed",
    [
        'print("RMSE:", round(np.sqrt(mean_squared_error(y_valid, predicted)), 2))',
        'print(f"rmse {mean_squared_error(y_valid, predicted) ** 0.5:.1f}")',
    ],
)
def test_a_printed_root_of_a_metric_is_the_metric_it_shows(
    write_notebook: Callable[..., Path], printed: str
) -> None:
    """The notebook showed a root mean squared error: the run logs that number under that
    name, not the mean squared error inside it (logged as `mean_squared_error_value`)."""
    imports = DIABETES[0] + "\nfrom sklearn.metrics import mean_squared_error"
    fit = (
        "model = RandomForestRegressor(n_estimators=20, random_state=0).fit(X_train, y_train)\n"
        "predicted = model.predict(X_valid)\n" + printed
    )
    plan = build_plan(write_notebook([imports, DIABETES[1], fit]))
    (metric,) = plan.metrics
    assert metric.name == "root_mean_squared_error"
    assert metric.greater_is_better is False


DAILY_SALES = [
    "import numpy as np\n"
    "import pandas as pd\n"
    "from sklearn.ensemble import GradientBoostingRegressor\n"
    "from sklearn.metrics import mean_absolute_error",
    "rng = np.random.default_rng(0)\n"
    "sales = pd.DataFrame({'date': pd.date_range('2022-01-01', periods=600, freq='D')})\n"
    "sales['trend'] = np.arange(600)\n"
    "sales['weekday'] = sales['date'].dt.dayofweek\n"
    "sales['units'] = 0.5 * sales['trend'] + 5 * sales['weekday'] + rng.normal(0, 5, 600)",
    "{split}\n"
    "features = ['trend', 'weekday']\n"
    "model = GradientBoostingRegressor(random_state=0)\n"
    "model.fit(train[features], train['units'])\n"
    "mae = mean_absolute_error(test['units'], model.predict(test[features]))",
]


@pytest.mark.parametrize(
    "split",
    [
        "train = sales[sales['date'] < '2023-06-01']\ntest = sales[sales['date'] >= '2023-06-01']",
        "cutoff = pd.Timestamp('2023-06-01')\n"
        "train = sales.loc[sales.date < cutoff]\ntest = sales.loc[sales.date >= cutoff]",
        "from sklearn.model_selection import train_test_split\n"
        "train, test = train_test_split(sales, test_size=0.2, shuffle=False)",
        "sales = sales.sort_values('date')\n"
        "cut = int(len(sales) * 0.8)\n"
        "train, test = sales.iloc[:cut], sales.iloc[cut:]",
    ],
)
def test_a_model_measured_on_later_rows_is_cross_validated_in_time_order(
    write_notebook: Callable[..., Path], tmp_path: Path, split: str
) -> None:
    """The notebook measured its model on the days after those it learned from: the package's
    folds keep that order (TimeSeriesSplit), and the claim says so. Shuffled folds scored the
    model on days between those it learned from, a better number than the notebook's own."""
    cells = [*DAILY_SALES[:2], DAILY_SALES[2].replace("{split}", split)]
    package = convert(write_notebook(cells, name="sales.ipynb"), tmp_path / "pkg").target
    honesty = json.loads((package / "sales" / "honesty.json").read_text())
    assert honesty["cross_validation"]["ordered"].startswith(("cell 3 splits", "cell 3 cuts"))
    trained = train_package(package, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "mae (5-fold time-ordered cross-validation)" in trained.stdout, trained.stdout
    own_tests = run_module(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=package,
        env={
            "PYTHONPATH": str(package),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        },
    )
    assert own_tests.returncode == 0, own_tests.stdout[-3000:]


def test_rows_shuffled_then_cut_at_a_position_are_no_split_in_time(
    write_notebook: Callable[..., Path],
) -> None:
    """A cut at a position measures later rows only when the rows were put in time order:
    shuffled first, random folds match the notebook's own split."""
    split = (
        "sales = sales.sample(frac=1, random_state=0)\n"
        "cut = int(len(sales) * 0.8)\n"
        "train, test = sales.iloc[:cut], sales.iloc[cut:]"
    )
    cells = [*DAILY_SALES[:2], DAILY_SALES[2].replace("{split}", split)]
    plan = build_plan(write_notebook(cells))
    assert [metric.ordered for metric in plan.metrics] == [None]


def test_a_notebook_function_that_returns_a_metric_measures_whatever_its_name(
    write_notebook: Callable[..., Path],
) -> None:
    """`def evaluate(y_true, y_pred): rmse = np.sqrt(mean_squared_error(...)); return rmse`:
    its name says nothing, its body computes a metric, so `val_rmse = evaluate(...)` measures
    the model (the plan called a model measured on held-out rows never evaluated)."""
    imports = DIABETES[0] + "\nfrom sklearn.metrics import mean_absolute_error, mean_squared_error"
    helper = (
        "def evaluate(y_true, y_pred, name='model'):\n"
        "    rmse = np.sqrt(mean_squared_error(y_true, y_pred))\n"
        "    mae = mean_absolute_error(y_true, y_pred)\n"
        "    print(f'{name}: rmse={rmse:.2f} mae={mae:.2f}')\n"
        "    return rmse"
    )
    fit = (
        "model = RandomForestRegressor(n_estimators=20, random_state=0).fit(X_train, y_train)\n"
        "val_rmse = evaluate(y_valid, model.predict(X_valid), 'forest')"
    )
    plan = build_plan(write_notebook([imports, DIABETES[1], helper, fit]))
    (metric,) = plan.metrics
    assert (metric.name, metric.validation, metric.greater_is_better) == (
        "val_rmse",
        "holdout",
        False,
    )
    assert plan.honesty.primary_metric == "val_rmse"


@pytest.mark.parametrize(
    ("target", "back"),
    [
        ("np.log1p(y_train)", "np.expm1(model.predict(X_valid))"),
        ("np.log(y_train)", "np.exp(model.predict(X_valid))"),
    ],
)
def test_predictions_the_notebook_turns_back_from_a_log_scale_are_said_to_be_served_on_it(
    write_notebook: Callable[..., Path], target: str, back: str
) -> None:
    """`y = np.log1p(price)` fitted, `np.expm1(model.predict(X))` measured: the service
    answers what the model predicts, on the log scale, and the plan says so at the line that
    turns it back (it said nothing: callers got log-prices)."""
    imports = DIABETES[0] + "\nfrom sklearn.metrics import mean_absolute_error"
    fit = (
        "model = RandomForestRegressor(n_estimators=20, random_state=0)\n"
        f"model.fit(X_train, {target})\n"
        f"predicted = {back}\n"
        "mae = mean_absolute_error(y_valid, predicted)"
    )
    plan = build_plan(write_notebook([imports, DIABETES[1], fit]))
    (said,) = [f for f in plan.findings if f.code == "target-transform-not-served"]
    function = back.split("(")[0]
    assert (said.cell, said.line, said.severity) == (3, 3, "warning")
    assert said.message.startswith(
        f"the notebook turns model's predictions back with {function}(...); the service answers "
        "what model.predict returns, before it"
    )
    assert "TransformedTargetRegressor" in (said.hint or "")


# A classifier fitted on one split of the breast cancer data, its validation rows kept.
CLASSIFIER_FITTED = [
    "import numpy as np\n"
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import f1_score\n"
    "from sklearn.model_selection import train_test_split",
    "X, y = load_breast_cancer(return_X_y=True)\n"
    "X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)\n"
    "model = LogisticRegression(max_iter=5000).fit(X_train, y_train)",
]


def test_a_threshold_the_notebook_decides_at_is_said_not_to_be_served(
    write_notebook: Callable[..., Path],
) -> None:
    """A cut-off tuned for F1 decides the notebook's classes; the service answers predict's,
    decided at 0.5: said where the notebook decides, not in the loop that tries cut-offs."""
    cells = [
        *CLASSIFIER_FITTED,
        "cuts = np.arange(0.2, 0.8, 0.05)\n"
        "scores = [f1_score(y_val, model.predict_proba(X_val)[:, 1] > t) for t in cuts]\n"
        "best_t = cuts[int(np.argmax(scores))]",
        "proba = model.predict_proba(X_val)[:, 1]\n"
        "y_pred = (proba >= best_t).astype(int)\n"
        "f1 = f1_score(y_val, y_pred)",
    ]
    plan = build_plan(write_notebook(cells))
    (said,) = [f for f in plan.findings if f.code == "threshold-not-served"]
    assert (said.cell, said.line) == (4, 2)
    assert said.message == (
        "the notebook decides model's classes at proba >= best_t; the service answers "
        "model.predict's classes, decided at 0.5"
    )
    assert (
        said.hint is not None and "FixedThresholdClassifier(model, threshold=best_t)" in said.hint
    )
    at_half = [cell.replace("best_t)", "0.5)") for cell in cells]
    plan = build_plan(write_notebook(at_half, name="at_half.ipynb"))
    assert not [f for f in plan.findings if f.code == "threshold-not-served"]


def test_a_threshold_applied_to_a_renamed_probability_is_said_not_to_be_served(
    write_notebook: Callable[..., Path],
) -> None:
    """`proba = proba_rf`, then `proba >= best_t`: the same probabilities under another name
    (the notebook compared two models, then took the better one's). Nothing was said."""
    cells = [
        CLASSIFIER_FITTED[0],
        CLASSIFIER_FITTED[1] + "\nproba_lr = model.predict_proba(X_val)[:, 1]",
        "proba = proba_lr\nbest_t = 0.35\n"
        "y_pred = (proba >= best_t).astype(int)\nf1 = f1_score(y_val, y_pred)",
    ]
    plan = build_plan(write_notebook(cells))
    (said,) = [f for f in plan.findings if f.code == "threshold-not-served"]
    assert (said.cell, said.line) == (3, 3)


def test_a_model_fitted_on_data_its_training_step_keeps_says_so(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """`model.fit(X_full, y_full)` on frames the training cell concatenates: the note said the
    model was "fitted without labels", as if it learned without any."""
    cells = [
        "import pandas as pd\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
        "X_rest, X_test, y_rest, y_test = train_test_split(X, y, random_state=0)\n"
        "X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, random_state=0)",
        "model = RandomForestClassifier(n_estimators=20, random_state=0)\n"
        "X_full = pd.concat([X_train, X_val])\n"
        "y_full = pd.concat([y_train, y_val])\n"
        "model.fit(X_full, y_full)\n"
        "acc = accuracy_score(y_test, model.predict(X_test))",
    ]
    package = convert(write_notebook(cells, name="full.ipynb"), tmp_path / "pkg").target
    honesty = json.loads((package / "full" / "honesty.json").read_text())
    assert honesty["cross_validation_note"] == (
        "what the model is fitted on (X_full, y_full, cell 3) stays inside the training step, "
        "which does not hand it back, so the model cannot be refitted on folds"
    )


def test_the_model_refitted_on_all_rows_after_a_fold_loop_is_served(
    write_notebook: Callable[..., Path],
) -> None:
    """`for train, valid in kf.split(X): model = ...; model.fit(...)` scores fold models, then
    `final.fit(X, y)` fits the one to serve. The conventional name won: the package served
    the last fold's model, fitted on four fifths of the rows, and claimed that fold's score
    as a holdout."""
    imports = DIABETES[0] + "\nfrom sklearn.model_selection import KFold"
    folds = (
        "kf = KFold(n_splits=4, shuffle=True, random_state=0)\n"
        "errors = []\n"
        "for fold, (tr, va) in enumerate(kf.split(X)):\n"
        "    model = RandomForestRegressor(n_estimators=10, random_state=0)\n"
        "    model.fit(X[tr], y[tr])\n"
        "    errors.append(mean_squared_log_error(y[va], model.predict(X[va])))"
    )
    final = "final = RandomForestRegressor(n_estimators=10, random_state=0)\nfinal.fit(X, y)"
    plan = build_plan(write_notebook([imports, DIABETES[1], folds, final]))
    assert (plan.model.name, plan.model.fit_inputs) == ("final", ("X", "y"))
    assert plan.honesty.primary_metric is None


@pytest.mark.parametrize(
    "read", ["scores['test_neg_mean_squared_error'].mean()", "np.mean(scores['test_r2'])"]
)
def test_a_score_read_from_cross_validate_is_a_cross_validated_metric(
    write_notebook: Callable[..., Path], read: str
) -> None:
    """`scores = cross_validate(model, X, y, scoring=[...])` then `score =
    scores["test_r2"].mean()`: the notebook measured the model on folds. The plan said
    nothing measures it, and the claim was "never evaluated"."""
    fit = (
        "model = RandomForestRegressor(n_estimators=10, random_state=0)\n"
        "scores = cross_validate(model, X, y, cv=4, "
        "scoring=['neg_mean_squared_error', 'r2'])\n"
        f"score = {read}\n"
        "print(score)\n"
        "model.fit(X, y)"
    )
    plan = build_plan(write_notebook([DIABETES[0], DIABETES[1], fit]))
    (metric,) = plan.metrics
    assert (metric.name, metric.validation, metric.folds) == ("score", "cross-validation", 4)
    assert metric.greater_is_better
    assert plan.honesty.primary_metric == "score"


def test_a_dict_of_scores_a_notebook_function_fills_is_no_metric(
    write_notebook: Callable[..., Path],
) -> None:
    """`out = {}`, `out[name] = mean_squared_log_error(...)` in a loop, `return out`: a dict of
    scores is not one number. It was the claim's metric, which training could not log ("not
    a number") and verify called a mismatch with no known cause."""
    helper = (
        "def evaluate(model, X, y):\n"
        "    out = {}\n"
        "    for name, rows in [('all', slice(None)), ('head', slice(0, 20))]:\n"
        "        out[name] = mean_squared_log_error(y[rows], model.predict(X[rows]))\n"
        "    return out"
    )
    fit = (
        "model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X_train, y_train)\n"
        "scores = evaluate(model, X_valid, y_valid)\n"
        "msle = mean_squared_log_error(y_valid, model.predict(X_valid))"
    )
    plan = build_plan(write_notebook([DIABETES[0], DIABETES[1], helper, fit]))
    assert {metric.name for metric in plan.metrics} == {"msle"}
    assert plan.honesty.primary_metric == "msle"
