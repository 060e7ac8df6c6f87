"""Generated packages built from small notebooks of the kinds users write: trained on a bare
array, with a native booster, a statsmodels result or a search as the model, failing in one
line, and a test suite that trains once. Each converts a notebook, then runs the generated
code as a user does (`python -m <pkg>.train`, the generated tests, the service in-process)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from conftest import TRAINING_CELLS, notebook, run_code, run_module

from nb2prod.backend.render import convert

PYTHON = Path(sys.executable)


def package_from(tmp_path: Path, name: str, cells: list) -> Path:
    """Convert a notebook made of `cells` into tmp_path/name; returns the package folder."""
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(notebook(cells), path)
    return convert(path, tmp_path / name).target


def env_for(package: Path, **extra: str) -> dict[str, str]:
    return {
        "PYTHONPATH": str(package),
        "MLFLOW_TRACKING_URI": f"sqlite:///{package / 'mlflow.db'}",
        **extra,
    }


def train(package: Path, *args: str, **env: str):
    module = f"{package.name}.train"
    return run_module(module, *args, cwd=package, env=env_for(package, **env))


def assert_one_line(stderr: str, prefix: str, *says: str) -> str:
    """The error is one line starting with `prefix`, saying `says`, with no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith(prefix)]
    assert len(errors) == 1, stderr
    for text in says:
        assert text in errors[0], errors[0]
    return errors[0]


# ---------------------------------------------------------------------------------------------
# Goals 1 and 2: the generated suite of an array-trained model passes, training once, fast.


@pytest.fixture(scope="module")
def array_suite(tmp_path_factory: pytest.TempPathFactory):
    package = package_from(tmp_path_factory.mktemp("array"), "iris_array", TRAINING_CELLS)
    done = run_module(
        "pytest",
        "-q",
        "-s",  # MLflow's own log lines show how many stores were created
        "-p",
        "no:cacheprovider",
        cwd=package,
        env={"PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": ""},
    )
    return package, done


def test_an_array_trained_model_passes_its_generated_tests(array_suite) -> None:
    package, done = array_suite
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " failed" not in done.stdout
    serve_tests = (package / "tests" / "test_serve.py").read_text()
    assert "instances" in serve_tests and "test_malformed_rows_are_refused" in serve_tests


def test_the_generated_suite_creates_one_store_and_trains_once(array_suite) -> None:
    _, done = array_suite
    output = done.stdout + done.stderr
    assert output.count("Creating initial MLflow database tables") == 1, output[-4000:]
    assert output.count("trained iris_array version") == 1, output[-4000:]


# ---------------------------------------------------------------------------------------------
# Goal 3: each training API's model is logged with its own flavour, loaded and served.

SPLIT = "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
DIABETES = "from sklearn.datasets import load_diabetes\nfrom sklearn.metrics import r2_score\n"
CANCER = (
    "from sklearn.datasets import load_breast_cancer\nfrom sklearn.metrics import accuracy_score\n"
)
FLAVOURS = {
    "xgb_classifier": (
        "xgboost",
        "xgboost",
        [
            CANCER + "from sklearn.model_selection import train_test_split\n"
            "from xgboost import XGBClassifier",
            "X, y = load_breast_cancer(return_X_y=True, as_frame=True)",
            SPLIT,
            "model = XGBClassifier(n_estimators=10, max_depth=2)\nmodel.fit(X_train, y_train)",
            "accuracy = accuracy_score(y_test, model.predict(X_test))",
        ],
    ),
    "xgb_booster": (
        "xgboost",
        "xgboost",
        [
            CANCER + "from sklearn.model_selection import train_test_split\nimport xgboost as xgb",
            "X, y = load_breast_cancer(return_X_y=True, as_frame=True)",
            SPLIT,
            {
                "source": "dtrain = xgb.DMatrix(X_train, label=y_train)\n"
                "model = xgb.train({'objective': 'binary:logistic', 'max_depth': 2}, dtrain, 10)",
                "tags": ["nb2prod:model=model"],
            },
            "accuracy = accuracy_score(y_test, model.predict(xgb.DMatrix(X_test)) > 0.5)",
        ],
    ),
    "lgb_booster": (
        "lightgbm",
        "lightgbm",
        [
            DIABETES + "from sklearn.model_selection import train_test_split\n"
            "import lightgbm as lgb",
            "X, y = load_diabetes(return_X_y=True)",  # a bare array: a tensor signature
            SPLIT,
            {
                "source": "model = lgb.train({'objective': 'regression', 'verbose': -1}, "
                "lgb.Dataset(X_train, y_train), num_boost_round=20)",
                "tags": ["nb2prod:model=model"],
            },
            "r2 = r2_score(y_test, model.predict(X_test))",
        ],
    ),
    "ols": (
        "statsmodels",
        "statsmodels",
        [
            DIABETES + "from sklearn.model_selection import train_test_split\n"
            "import statsmodels.api as sm",
            "X, y = load_diabetes(return_X_y=True, as_frame=True)",
            SPLIT,
            {"source": "model = sm.OLS(y_train, X_train).fit()", "tags": ["nb2prod:model=model"]},
            "r2 = r2_score(y_test, model.predict(X_test))",
        ],
    ),
    # fitted on a dict of columns that holds the target too, an id and the target's log
    "formula_on_columns": (
        "statsmodels",
        "statsmodels",
        [
            "import numpy as np\nimport statsmodels.formula.api as smf",
            "rng = np.random.default_rng(0)\nx1 = np.linspace(0, 20, 50)\n"
            "y = 1 + 0.5 * x1 + rng.normal(size=50)\n"
            "data = {'id': np.arange(50), 'x1': x1, 'y': y, 'log_y': np.log(np.abs(y) + 1)}",
            "res = smf.ols('y ~ x1 + np.sin(x1)', data=data).fit()",
        ],
    ),
    "intercept_only": (  # its input is an expression, np.ones(len(eff)): one bare number a row
        "statsmodels",
        "statsmodels",
        [
            "import numpy as np\nfrom statsmodels.genmod.generalized_linear_model import GLM",
            "eff = np.array([61.0, 61.4, 62.2, 62.3, 62.3, 62.6])\n"
            "var_eff = np.array([0.2, 1.2, 0.09, 0.2, 0.38, 0.56])",
            "mod_glm = GLM(eff, np.ones(len(eff)), var_weights=1 / var_eff)\n"
            "res_glm = mod_glm.fit(scale=1.0)",
        ],
    ),
    "grid": (
        "sklearn",
        "sklearn",
        [
            "from sklearn.datasets import load_iris\nfrom sklearn.metrics import accuracy_score\n"
            "from sklearn.model_selection import GridSearchCV, train_test_split\n"
            "from sklearn.linear_model import LogisticRegression",
            "X, y = load_iris(return_X_y=True, as_frame=True)",
            SPLIT,
            "search = GridSearchCV(LogisticRegression(max_iter=300), {'C': [0.1, 1.0]}, cv=3)\n"
            "search.fit(X_train, y_train)",
            "accuracy = accuracy_score(y_test, search.predict(X_test))",
        ],
    ),
}

# Train with the generated module, then load the registered version through the service and
# predict with the example saved beside the model.
SERVE_CHECK = textwrap.dedent(
    """
    import json, sys
    import mlflow
    from fastapi.testclient import TestClient
    from mlflow import MlflowClient
    from mlflow.models import Model
    from {pkg} import serve, train

    assert train.main([]) == 0
    uri = "models:/{pkg}/1"
    example = Model.load(uri).load_input_example(uri)
    records = (
        json.loads(example.to_json(orient="records")) if hasattr(example, "to_json")
        else example.tolist()
    )
    app = serve.create_app(uri)
    client = TestClient(app)
    answer = client.post("/predict", json=records)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == len(records), answer.text
    one = client.post("/predict", json=records[0])
    assert one.status_code == 200 and len(one.json()["predictions"]) == 1, one.text
    key = "dataframe_records" if isinstance(records[0], dict) else "instances"
    again = client.post("/invocations", json={{key: records}})
    assert again.json()["predictions"] == answer.json()["predictions"], again.text
    info = mlflow.models.get_model_info(uri)
    run = MlflowClient().get_run(info.run_id)
    served = type(app.state.service.served.model).__name__
    print(json.dumps({{"flavors": sorted(info.flavors), "params": run.data.params,
                      "metrics": run.data.metrics, "served": served,
                      "inputs": info.signature.inputs.input_names()}}))
    """
)


@pytest.mark.parametrize("name", list(FLAVOURS))
def test_each_training_api_is_logged_with_its_flavour_and_served(tmp_path: Path, name: str):
    library, flavour, cells = FLAVOURS[name]
    if importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} is not installed")
    package = package_from(tmp_path, name, cells)
    done = run_code(
        SERVE_CHECK.format(pkg=name),
        cwd=package,
        env=env_for(package),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert flavour in result["flavors"], result["flavors"]
    requirements = (package / "requirements.txt").read_text()
    assert library.replace("sklearn", "scikit-learn") in requirements
    if name == "grid":  # the search's best estimator is served, its findings are on the run
        assert result["params"]["search.best.C"] in ("0.1", "1.0")
        assert "search_best_score" in result["metrics"]
        assert result["served"] == "LogisticRegression"
    # callers are asked for what the formula reads: not the value it predicts, nor the rest
    if name == "formula_on_columns":
        assert result["inputs"] == ["x1"]
    if name == "intercept_only":
        assert "model_input=np.ones(len(eff))" in (package / name / "pipeline.py").read_text()


# ---------------------------------------------------------------------------------------------
# Goal 4: failures of the generated code are one line, with the option to use when there is one.

CUSTOM_TYPE_CELLS = [
    "import operator\nfrom sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import FunctionTransformer",
    "X, y = load_iris(return_X_y=True)",
    SPLIT,
    "model = make_pipeline(FunctionTransformer(operator.abs), LogisticRegression(max_iter=200))\n"
    "model.fit(X_train, y_train)",
    "accuracy = accuracy_score(y_test, model.predict(X_test))",
]


def test_an_untrusted_type_names_the_option_then_trains_with_it(tmp_path: Path) -> None:
    package = package_from(tmp_path, "abs_pipeline", CUSTOM_TYPE_CELLS)
    refused = train(package)
    assert refused.returncode == 1
    line = assert_one_line(refused.stderr, "train:", "--trust-type _operator.abs", "README")
    assert "SAFE_MODULES" not in line
    readme = (package / "README.md").read_text()
    assert "--trust-type" in readme and "only code you ship" in readme
    trusted = train(package, "--trust-type", "_operator.abs")
    assert trusted.returncode == 0, trusted.stderr[-3000:]
    by_variable = train(package, NB2PROD_TRUSTED_TYPES="_operator.abs")
    assert by_variable.returncode == 0, by_variable.stderr[-3000:]


def test_failures_outside_notebook_code_are_one_line(tmp_path: Path) -> None:
    package = package_from(tmp_path, "iris_fail", TRAINING_CELLS)
    (tmp_path / "a-file").write_text("not a folder")
    missing = tmp_path / "a-file" / "mlflow.db"  # a store that cannot be created
    store = train(package, MLFLOW_TRACKING_URI=f"sqlite:///{missing}")
    assert store.returncode == 2
    assert_one_line(store.stderr, "train:", "MLflow store")

    promote = run_module(
        "iris_fail.promote",
        cwd=package,
        env=env_for(package, MLFLOW_TRACKING_URI=f"sqlite:///{missing}"),
    )
    assert promote.returncode == 2
    assert_one_line(promote.stderr, "error:", str(missing))

    serve = run_code(
        "from iris_fail import serve; serve.app",
        cwd=package,
        env=env_for(package, PREDICT_MAX_BATCH="many"),
    )
    assert serve.returncode == 2
    assert_one_line(serve.stderr, "serve:", "PREDICT_MAX_BATCH='many'")


def test_a_missing_data_file_names_the_cell(tmp_path: Path) -> None:
    (tmp_path / "iris.csv").write_text(
        "a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(40))
    )
    cells = [
        "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split",
        "df = pd.read_csv('iris.csv')\nX, y = df[['a', 'b']], df['label']",
        SPLIT,
        "model = LogisticRegression()\nmodel.fit(X_train, y_train)",
        "accuracy = accuracy_score(y_test, model.predict(X_test))",
    ]
    package = package_from(tmp_path, "csv_fail", cells)
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = train(package, DATA_DIR=str(empty))
    assert failed.returncode == 1
    assert_one_line(failed.stderr, "train:", "FileNotFoundError", "notebook cell 2")
    assert os.path.exists(package / "mlflow.db")  # the run was recorded, as FAILED


# ---------------------------------------------------------------------------------------------
# A time-series model is served as MLflow's statsmodels flavour takes it: rows of start, end.

FORECASTER_CELLS = [
    "import numpy as np\nimport pandas as pd\nfrom statsmodels.tsa.arima.model import ARIMA",
    "rng = np.random.default_rng(0)\n"
    "series = pd.Series(np.cumsum(rng.normal(size=120)))\n"
    "train, test = series[:100], series[100:]",
    "res = ARIMA(train, order=(1, 0, 0)).fit()\nforecast = res.predict(100, 119)\n"
    "mae = float(np.mean(np.abs(forecast.to_numpy() - test.to_numpy())))",
]

FORECAST_CHECK = textwrap.dedent(
    """
    import json
    import mlflow
    from fastapi.testclient import TestClient
    from {pkg} import serve, train

    assert train.main([]) == 0
    uri = "models:/{pkg}/1"
    client = TestClient(serve.create_app(uri))
    answers = {{}}
    for name, body in {{
        "one": {{"start": 100, "end": 111}},
        "two": [{{"start": 100, "end": 101}}, {{"start": 110, "end": 110}}],
        "backwards": {{"start": 105, "end": 100}},
        "too_far": {{"start": 100, "end": 100 + 20000}},
    }}.items():
        response = client.post("/predict", json=body)
        answers[name] = [response.status_code, response.json()]
    info = mlflow.models.get_model_info(uri)
    print(json.dumps({{"answers": answers, "flavors": sorted(info.flavors),
                      "inputs": info.signature.inputs.input_names()}}))
    """
)


@pytest.mark.parametrize(
    "fit",
    [
        FORECASTER_CELLS[2],
        # a forecast through another model: STLForecast's results have no predict, no save
        "from statsmodels.tsa.forecasting.stl import STLForecast\n"
        "res = STLForecast(train, ARIMA, model_kwargs={'order': (1, 0, 0)}, period=12).fit()\n"
        "forecast = res.forecast(20)\n"
        "mae = float(np.mean(np.abs(forecast.to_numpy() - test.to_numpy())))",
    ],
    ids=["arima", "stl-forecast"],
)
def test_a_time_series_model_forecasts_the_stretch_each_row_asks_for(
    tmp_path: Path, fit: str
) -> None:
    package = package_from(tmp_path, "arima", [*FORECASTER_CELLS[:2], fit])
    done = run_code(FORECAST_CHECK.format(pkg="arima"), cwd=package, env=env_for(package))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "statsmodels" in result["flavors"] and result["inputs"] == ["start", "end"]
    assert '`{"start": 100, "end": 111}`' in (package / "README.md").read_text()
    answers = result["answers"]
    status, one = answers["one"]
    assert status == 200 and len(one["predictions"]) == 1 and len(one["predictions"][0]) == 12
    assert one["implementation_status"]  # the honesty fields ride along as for any model
    status, two = answers["two"]
    assert status == 200 and [len(p) for p in two["predictions"]] == [2, 1]
    assert two["predictions"][0][0] == one["predictions"][0][0]  # the same step, the same value
    for bad, says in (("backwards", "is before start"), ("too_far", "at most 10000 steps")):
        status, body = answers[bad]
        assert status == 422 and says in json.dumps(body), body


EXOG_CHECK = textwrap.dedent(
    """
    import json
    import mlflow
    from fastapi.testclient import TestClient
    from {pkg} import serve, train

    assert train.main([]) == 0
    uri = "models:/{pkg}/1"
    client = TestClient(serve.create_app(uri))
    future = [[0.5, 1.0], [0.1, 2.0], [0.0, 3.0], [1.5, 4.0], [0.2, 5.0]]
    answers = {{}}
    for name, body in {{
        "inside": {{"start": 90, "end": 99}},
        "ahead": {{"start": 98, "end": 104, "exog": future}},
        "no_exog": {{"start": 100, "end": 104}},
        "short": {{"start": 100, "end": 104, "exog": future[:3]}},
        "text": {{"start": 100, "end": 104, "exog": "soon"}},
    }}.items():
        response = client.post("/predict", json=body)
        answers[name] = [response.status_code, response.json()]
    info = mlflow.models.get_model_info(uri)
    optional = [c.name for c in info.signature.inputs.inputs if not c.required]
    print(json.dumps({{"answers": answers, "inputs": info.signature.inputs.input_names(),
                      "optional": optional}}))
    """
)


@pytest.mark.parametrize(
    "fit",
    [
        "res = ARIMA(train, exog=X[:100], order=(1, 0, 0)).fit()\n"
        "forecast = res.predict(100, 119, exog=X[100:])",
        "res = AutoReg(train, lags=2, exog=X[:100]).fit()\n"
        "forecast = res.predict(100, 119, exog_oos=X[100:])",
    ],
)
def test_a_forecaster_fitted_with_exog_takes_its_future_values_in_the_request(
    tmp_path: Path, fit: str
) -> None:
    cells = [
        FORECASTER_CELLS[0] + "\nfrom statsmodels.tsa.ar_model import AutoReg",
        FORECASTER_CELLS[1]
        + "\nX = pd.DataFrame({'promo': rng.normal(size=120), 'week': np.arange(120.0)})",
        fit + "\nmae = float(np.mean(np.abs(forecast.to_numpy() - test.to_numpy())))",
    ]
    package = package_from(tmp_path, "exog", cells)
    done = run_code(EXOG_CHECK.format(pkg="exog"), cwd=package, env=env_for(package))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["inputs"] == ["start", "end", "exog"] and result["optional"] == ["exog"]
    answers = result["answers"]
    status, inside = answers["inside"]
    assert status == 200 and len(inside["predictions"][0]) == 10  # the fitted stretch: no exog
    status, ahead = answers["ahead"]
    assert status == 200 and len(ahead["predictions"][0]) == 7, ahead
    for bad, says in (
        ("no_exog", "give exog, 5 rows of 2 numbers (promo, week)"),
        ("short", "exog must be 5 rows of 2 numbers (promo, week), got shape [3, 2]"),
        ("text", "exog must be 5 rows of 2 numbers"),
    ):
        status, body = answers[bad]
        assert status == 422 and says in json.dumps(body), body
    if "ARIMA" in fit:  # the package's own tests, with an exog example (once is enough)
        generated = run_module("pytest", "-q", "-x", cwd=package, env=env_for(package))
        assert generated.returncode == 0, generated.stdout[-3000:]
