"""The Feast feature store for real: `convert --feature-store feast`, then `train` reading its
features from the offline store with get_historical_features into a real MLflow store,
`features materialize` into the sqlite online store, and the service answering entity keys from
it with the honesty of the model and of the weakest feature view.

Feast runs in the venv .ci/feast-env makes (it needs pandas<3; the main environment has
pandas 3); nb2prod converts there, as a user with Feast installed would. Two samples: the
churn notebook, whose hand-made engagement score is a HEURISTIC feature under an IMPLEMENTED
model and whose data has an id and a timestamp, and the tumor notebook, keyed by the row
label the pipeline adds. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pandas as pd
import pytest
from conftest import (
    SAMPLES,
    TRAINING_CELLS,
    background,
    feast_python,
    free_port,
    notebook,
    run,
    run_cli,
    run_code,
    run_module,
    store_in,
    wait_until_answers,
)
from mlflow import MlflowClient

CHURN = SAMPLES / "feature_store" / "customer_churn.ipynb"


@dataclass(frozen=True)
class Package:
    python: Path  # the Feast venv's
    folder: Path
    name: str
    tracking_uri: str

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri}

    def run(self, *args: str, python: Path | None = None) -> subprocess.CompletedProcess[str]:
        """`python -m MODULE ...` or `python -c CODE` in the package's folder (preloaded)."""
        python = python or self.python
        if args[0] == "-c":
            return run_code(args[1], cwd=self.folder, env=self.env, python=python)
        assert args[0] == "-m", args
        return run_module(*args[1:], cwd=self.folder, env=self.env, python=python)

    def written(self) -> pd.DataFrame:
        return pd.read_parquet(next((self.folder / "feature_repo" / "data").glob("*.parquet")))


def converted(python: Path, notebook_path: Path, root: Path, *options: str) -> Package:
    name = notebook_path.stem
    folder = root / name
    root.mkdir(parents=True, exist_ok=True)
    done = run(
        python, "-m", "nb2prod", "convert", str(notebook_path), "-o", str(folder), *options,
        cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return Package(python, folder, name, store_in(root))


def trained_and_served(package: Package) -> Package:
    """Train (reading the offline store), materialize, promote: what a user runs in order. No
    test here reads the claim's spread, so training skips the folds it comes from."""
    for step in (
        [f"{package.name}.train", "--cross-validation-folds", "0"],
        [f"{package.name}.features", "materialize"],
        [f"{package.name}.promote", "--allow-heuristic"],
    ):
        done = package.run("-m", *step)
        assert done.returncode == 0, f"{step}: {done.stderr[-3000:]}"
    return package


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Package:
    root = tmp_path_factory.mktemp("churn")
    shutil.copy(CHURN, root / CHURN.name)
    package = converted(feast_python(), root / CHURN.name, root, "--feature-store", "feast")
    return trained_and_served(package)


@contextlib.contextmanager
def service(package: Package, log: Path, python: Path | None = None) -> Iterator[str]:
    """The package's service on 127.0.0.1, ready; yields its base URL."""
    port = free_port()
    command = [
        python or package.python, "-m", "uvicorn", f"{package.name}.serve:app",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with background(command, cwd=package.folder, log=log, env=package.env) as process:
        wait_until_answers(f"http://127.0.0.1:{port}/health", process, log)
        yield f"http://127.0.0.1:{port}"


def test_training_fits_on_what_the_offline_store_holds_as_of_each_rows_time(
    churn: Package,
) -> None:
    written = churn.written()
    assert len(written) == 1500 and written["customer_id"].is_unique
    # point in time: each customer's features are stamped with the data's own as_of date
    assert written["event_timestamp"].nunique() > 1
    assert written["event_timestamp"].min() >= pd.Timestamp("2026-10-01", tz="UTC")
    layout = json.loads((churn.folder / "feature_repo/data/build_features.json").read_text())
    assert layout["timestamps"] == "customers['as_of']"
    assert "engagement_score" in layout["columns"]
    client = MlflowClient(churn.tracking_uri)
    (version,) = client.search_model_versions(f"name='{churn.name}'")
    assert version.tags["implementation_status"] == "IMPLEMENTED"
    assert version.tags["feature_implementation_status"] == "HEURISTIC"
    assert version.tags["feature_views"] == "build_features"
    run_ = client.get_run(version.run_id)
    assert run_.data.tags["feature_service"] == churn.name
    # the model fitted on the features read back from the store measures what the notebook
    # printed: accuracy=0.712
    assert run_.data.metrics["accuracy"] == pytest.approx(0.712, abs=5e-4)


def test_an_entity_key_is_answered_from_the_online_store_with_the_weakest_features_honesty(
    churn: Package, tmp_path: Path
) -> None:
    written = churn.written().set_index("customer_id")
    keys = [10012, 10400, 11499]
    columns = json.loads((churn.folder / "feature_repo/data/build_features.json").read_text())
    rows = written.loc[keys, columns["columns"]].to_dict(orient="records")
    with service(churn, tmp_path / "serve.log") as url:
        by_key = httpx.post(f"{url}/predict/by-key", json={"customer_id": keys}, timeout=30)
        assert by_key.status_code == 200, by_key.text
        body = by_key.json()
        assert body["implementation_status"] == "IMPLEMENTED"
        assert body["validation_status"] == "VALIDATED"
        assert body["feature_view"] == "build_features"
        assert body["feature_implementation_status"] == "HEURISTIC"
        assert body["feature_validation_method"].startswith("NONE")
        assert (
            "the model is IMPLEMENTED but reads feature view build_features"
            in (body["feature_warning"])
        )
        assert "engagement_score" in body["feature_warning"]
        # the same prediction as the service gives for the same features sent by hand
        direct = httpx.post(f"{url}/predict", json=rows, timeout=30)
        assert direct.status_code == 200, direct.text
        assert body["predictions"] == direct.json()["predictions"]
        assert "feature_warning" not in direct.json()

        unknown = httpx.post(f"{url}/predict/by-key", json={"customer_id": [10012, 99]})
        assert unknown.status_code == 404
        assert unknown.json()["detail"].startswith(
            "no features for customer_id=99 in the online store"
        )
        wrong = httpx.post(f"{url}/predict/by-key", json={"id": 10012})
        assert wrong.status_code == 422
        assert "customer_id" in wrong.text
        metrics = httpx.get(f"{url}/metrics").text
        # 3 rows by key, then the same 3 sent as features
        assert re.search(r"predictions_total\{[^}]*\} 6\.0", metrics), metrics[:2000]


def test_a_feature_view_stripped_of_its_honesty_tags_fails_lint_and_stops_the_service(
    churn: Package, tmp_path: Path
) -> None:
    copy = Package(churn.python, tmp_path / churn.name, churn.name, churn.tracking_uri)
    shutil.copytree(churn.folder, copy.folder)
    definitions = copy.folder / "feature_repo" / "definitions.py"
    text = definitions.read_text()
    stripped = re.sub(r'\n\s*"implementation_status": [^\n]*', "", text)
    assert stripped != text
    definitions.write_text(stripped)

    linted = run_cli("lint", copy.folder / "feature_repo")
    assert linted.code == 1
    assert "definitions.py" in linted.stdout
    assert "NBH109 feature view build_features has no implementation_status" in linted.stdout

    log = tmp_path / "refused.log"
    command = [copy.python, "-m", "uvicorn", f"{copy.name}.serve:app", "--port", str(free_port())]
    with background(command, cwd=copy.folder, log=log, env=copy.env) as process:
        assert process.wait(timeout=120) == 2
    said = log.read_text().strip().splitlines()
    assert said[-1].startswith("serve: cannot start: UntaggedFeatureView: feature view "), said
    assert "build_features (no implementation_status)" in said[-1]
    assert "Traceback" not in log.read_text()

    applied = copy.run("-m", f"{copy.name}.features", "apply")
    assert applied.returncode == 2
    assert applied.stderr.strip().splitlines()[-1].startswith("features: feature view ")


def test_without_feast_the_package_imports_and_says_what_to_install(
    churn: Package, tmp_path: Path
) -> None:
    """The main environment has no Feast: the package still imports, and train names the extra."""
    python = Path(sys.executable)
    imported = churn.run(
        "-c",
        f"import {churn.name}.serve, {churn.name}.pipeline, sys; print('feast' in sys.modules)",
        python=python,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert imported.stdout.strip() == "False"
    trained = churn.run("-m", f"{churn.name}.train", python=python)
    assert trained.returncode == 2
    assert trained.stderr.strip().splitlines()[-1] == (
        "train: feature store: this package reads its features through Feast, which is not "
        "installed: pip install '.[feast]'"
    )


def test_rows_without_an_id_are_keyed_by_the_label_the_pipeline_adds(tmp_path: Path) -> None:
    """The tumor sample (IMPLEMENTED features under an IMPLEMENTED model): no id column, so
    the key is each row's label in the loaded data; no warning rides on its responses."""
    shutil.copy(SAMPLES / "tumor_classifier.ipynb", tmp_path / "tumor_classifier.ipynb")
    package = trained_and_served(
        converted(
            feast_python(),
            tmp_path / "tumor_classifier.ipynb",
            tmp_path,
            "--feature-store",
            "feast",
        )
    )
    definitions = (package.folder / "feature_repo" / "definitions.py").read_text()
    assert 'join_keys=["row_id"]' in definitions
    assert "the pipeline adds this key" in definitions
    written = package.written()
    assert sorted(written["row_id"]) == list(range(569))  # load_breast_cancer's labels
    applied = package.run("-m", "tumor_classifier.features", "apply")
    assert applied.returncode == 0, applied.stderr[-2000:]
    assert applied.stdout.startswith("applied build_features, build_features_source")
    with service(package, tmp_path / "serve.log") as url:
        answer = httpx.post(f"{url}/predict/by-key", json={"row_id": 7}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["feature_implementation_status"] == "IMPLEMENTED"
        assert body["feature_validation_method"] == (
            "end to end, by the model's accuracy (holdout 20%)"
        )
        assert "feature_warning" not in body
        assert len(body["predictions"]) == 1


def test_convert_refuses_what_cannot_work_in_one_line(tmp_path: Path, write_notebook) -> None:
    path = write_notebook(TRAINING_CELLS)
    without_feast = run_cli("convert", path, "-o", tmp_path / "out", "--feature-store", "feast")
    assert without_feast.code == 2
    assert without_feast.stderr.count("\n") == 1
    assert "Feast is not installed where nb2prod runs" in without_feast.stderr
    assert not (tmp_path / "out").exists()

    (tmp_path / "pyproject.toml").write_text('[tool.nb2prod]\nfeature-store = "tecton"\n')
    unknown = run_cli("convert", path, "-o", tmp_path / "out")
    assert unknown.code == 2
    assert "pyproject.toml: [tool.nb2prod] feature-store: unknown feature store 'tecton'" in (
        unknown.stderr
    )
    assert not (tmp_path / "out").exists()

    clash = run(
        feast_python(),
        "-c",
        "from pathlib import Path\n"
        "from nb2prod.backend.feature_store import feast_requirement\n"
        "from nb2prod.errors import InputError\n"
        "try:\n"
        "    feast_requirement(['pandas==3.1.1', 'mlflow==3.17.2'], Path('nb.ipynb'))\n"
        "except InputError as error:\n"
        "    print(error)\n",
        cwd=tmp_path,
    )
    assert "needs pandas<3,>=1.4.3, but the package pins pandas==3.1.1" in clash.stdout, (
        clash.stdout + clash.stderr
    )


def test_the_setting_comes_from_pyproject_or_the_notebook_and_the_flag_wins(
    tmp_path: Path,
) -> None:
    python = feast_python()
    (tmp_path / "pyproject.toml").write_text('[tool.nb2prod]\nfeature-store = "feast"\n')
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(TRAINING_CELLS), path)
    from_pyproject = converted(python, path, tmp_path / "a")
    assert (from_pyproject.folder / "feature_repo" / "definitions.py").is_file()
    assert '"feast==0.67.0"' in (from_pyproject.folder / "pyproject.toml").read_text()
    overridden = converted(python, path, tmp_path / "b", "--feature-store", "none")
    assert not (overridden.folder / "feature_repo").exists()
    assert "feast" not in (overridden.folder / "pyproject.toml").read_text()

    (tmp_path / "pyproject.toml").unlink()
    nbformat.write(notebook(TRAINING_CELLS, metadata={"nb2prod": {"feature_store": "feast"}}), path)
    from_metadata = converted(python, path, tmp_path / "c")
    assert (from_metadata.folder / "feature_repo" / "feature_store.yaml").is_file()


def test_verify_proves_a_package_that_trains_through_the_store(tmp_path: Path) -> None:
    """The notebook and the package fitted on what Feast reads back agree, metric by metric."""
    shutil.copy(CHURN, tmp_path / CHURN.name)
    done = run(
        feast_python(), "-m", "nb2prod", "convert", CHURN.name, "--feature-store", "feast",
        "--verify", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "parity: every metric and prediction agrees" in done.stdout
    assert (tmp_path / "customer_churn" / "feature_repo/data/build_features.parquet").is_file()


CATEGORY_CELLS = [
    "import numpy as np\n"
    "import pandas as pd\n"
    "from sklearn.compose import make_column_transformer\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import OneHotEncoder",
    "rng = np.random.default_rng(0)\n"
    "names = ['red', 'green', 'blue', 'unseen']\n"
    "colors = pd.Categorical(rng.choice(names[:3], 300), categories=names)\n"
    "df = pd.DataFrame({'color': colors, 'size': rng.normal(size=300)})\n"
    "df['label'] = ((df['color'] == 'red') ^ (df['size'] > 0)).astype(int)",
    "X_train, X_test, y_train, y_test = train_test_split(\n"
    "    df[['color', 'size']], df['label'], random_state=0\n"
    ")",
    "encode = make_column_transformer(\n"
    "    (OneHotEncoder(handle_unknown='ignore'), ['color']), remainder='passthrough'\n"
    ")\n"
    "model = make_pipeline(encode, LogisticRegression()).fit(X_train, y_train)",
    "accuracy = accuracy_score(y_test, model.predict(X_test))",
]


def trained_from(cells: list[str], name: str, root: Path) -> Package:
    """A notebook of these cells, converted with Feast and trained through it."""
    path = root / f"{name}.ipynb"
    nbformat.write(notebook(cells), path)
    package = converted(feast_python(), path, root, "--feature-store", "feast")
    done = package.run("-m", f"{name}.train")
    assert done.returncode == 0, done.stderr[-3000:]
    return package


def test_a_categorical_column_is_stored_by_its_values_and_read_back_as_a_category(
    tmp_path: Path,
) -> None:
    """Feast cannot read a Parquet category (a dictionary type), so the store holds its values;
    the model gets the column back with the notebook's categories, unused ones included."""
    package = trained_from(CATEGORY_CELLS, "colors", tmp_path)
    written = package.written()
    assert set(written["color"]) == {"red", "green", "blue"}
    restored = package.run(
        "-c",
        "from colors import pipeline\n"
        "result = pipeline.run(pipeline.Parameters())\n"
        "print(list(result.model_input['color'].cat.categories))",
    )
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert restored.stdout.strip().splitlines()[-1] == "['red', 'green', 'blue', 'unseen']"


ONE_CELL = [
    "import numpy as np\n"
    "from sklearn.datasets import load_wine\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "X, y = load_wine(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "scaler = StandardScaler()\n"
    "X_train = scaler.fit_transform(X_train)\n"
    "model = LogisticRegression(max_iter=500)\n"
    "model.fit(X_train, y_train)\n"
    "accuracy = accuracy_score(y_test, model.predict(scaler.transform(X_test)))",
]


def test_a_notebook_in_one_cell_sends_what_the_model_is_fitted_on_through_the_store(
    tmp_path: Path,
) -> None:
    """The features go through the store just before the model's own fit, after the scaler's
    fit_transform: the store holds what the model reads, not the raw data. A model fitted on
    an array: columns x0.., keys by position, the array given back."""
    package = trained_from(ONE_CELL, "wine", tmp_path)
    written = package.written()
    assert len(written) == 133  # the training rows, scaled
    assert abs(written["x0"].mean()) < 1e-9 and written["x0"].std(ddof=0) == pytest.approx(1)
    # an array has no row labels: its rows are keyed by position, its columns x0, x1...
    assert sorted(written["row_id"]) == list(range(133))
    assert list(written.columns[:3]) == ["x0", "x1", "x2"]
    layout = json.loads(next((package.folder / "feature_repo/data").glob("*.json")).read_text())
    assert layout["input"] == "ndarray" and layout["shape"] == [13]
    assert layout["timestamps"] == "the time train wrote them"


def test_a_forecaster_is_refused_a_feature_store_in_one_line(write_notebook, tmp_path) -> None:
    path = write_notebook(
        [
            "import numpy as np\nfrom statsmodels.tsa.arima.model import ARIMA",
            "series = np.cumsum(np.random.default_rng(0).normal(size=120))",
            "results = ARIMA(series, order=(1, 1, 0)).fit()",
        ]
    )
    done = run_cli("convert", path, "-o", tmp_path / "out", "--feature-store", "feast")
    assert done.code == 2
    assert "--feature-store: results is a forecaster fitted on a series" in done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / "out").exists()
