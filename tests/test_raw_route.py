"""POST /predict/raw: a record of the data the notebook loaded gets the notebook's own answer.

The tumor sample's model reads two columns its feature code computes; a client holds the breast
cancer measurements only. convert makes that code one function the training step calls and the
service runs; training shows it row-wise on the loaded rows and records that on the version.
The end-to-end test runs the notebook itself (its cells, as saved) for the predictions it
makes, and posts the same rows as the notebook loaded them to the real service.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import (
    REPO,
    SAMPLES,
    background,
    free_port,
    notebook,
    run_beside_package,
    run_code,
    set_up_by_ci,
    train_package,
    wait_until_answers,
)

from nb2prod.backend.render import convert
from nb2prod.cli import main
from nb2prod_runtime.raw_input import NotRowWise, RawFeatures, check

sys.path.insert(0, str(REPO / "benchmarks"))
import corpus  # a script beside the benchmarks, not a package

SAMPLE = "tumor_classifier"
# The shapash tutorial's feature code maps two columns row by row (an `apply` over each record)
# from the Titanic table its wheel ships; an XGBoost classifier is fitted on them.
CORPUS_NOTEBOOK = "shapash/tutorial/use_encoders/tuto-encoder03-using-dict.ipynb"
# The notebook's own run: its code cells as saved (shell and magic lines left out) up to the one
# that fits the model (nb2prod's cell numbers count code cells), then its model's predictions
# for five of its held-out rows, and those rows as it loaded them.
NOTEBOOK_ANSWERS = """
import json, matplotlib, nbformat
matplotlib.use("Agg")
cells = [c for c in nbformat.read({path!r}, as_version=4).cells if c.cell_type == "code"]
space = {{}}
for number, cell in enumerate(cells[:{last}], 1):
    lines = [l for l in cell.source.splitlines() if not l.lstrip().startswith(("!", "%"))]
    exec(compile("\\n".join(lines), f"cell {{number}}", "exec"), space)
rows = space[{held_out!r}].index[:5]
print(json.dumps({{
    "predictions": space[{model!r}].predict(space[{features!r}].loc[rows]).tolist(),
    "records": json.loads(space[{loaded!r}].loc[rows].drop(columns=[{label!r}]).to_json(
        orient="records")),
}}))
"""


def corpus_index() -> list[dict[str, Any]]:
    try:
        return corpus.read_index(corpus.default_cache())
    except corpus.CorpusError:
        return []


def notebook_answers(path: Path, work: Path, **names: Any) -> dict[str, Any]:
    """What the notebook itself predicts for five held-out rows, and those rows as loaded."""
    ran = run_code(NOTEBOOK_ANSWERS.format(path=str(path), **names), cwd=work)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads(ran.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(SAMPLES / f"{SAMPLE}.ipynb", tmp_path_factory.mktemp("raw") / SAMPLE).target


@pytest.fixture(scope="module")
def work(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("work")
    trained = train_package(package, work, "--cross-validation-folds", "0")
    assert trained.returncode == 0, trained.stderr[-3000:]
    return work


def serve(package: Path, work: Path, log: str, name: str = SAMPLE) -> Iterator[str]:
    port = free_port()
    env = {
        "PYTHONPATH": str(package),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "MODEL_URI": f"models:/{name}/1",
    }
    command = [sys.executable, "-m", "uvicorn", f"{name}.serve:app", "--host", "127.0.0.1"]
    with background([*command, "--port", str(port)], cwd=work, env=env, log=work / log) as process:
        wait_until_answers(f"http://127.0.0.1:{port}/ready", process, work / log)
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def service(package: Path, work: Path) -> Iterator[str]:
    yield from serve(package, work, "service.log")


def test_convert_makes_the_feature_code_one_function_that_training_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", str(SAMPLES / f"{SAMPLE}.ipynb"), "-o", str(tmp_path / "p")]) == 0
    said = capsys.readouterr().out
    assert "POST /predict/raw  records of df as cell 4 loads it" in said
    features = (tmp_path / "p" / SAMPLE / "features.py").read_text()
    function = features[features.index("def features_from_raw(") :]
    assert "df_feat = add_ratio_features(df)\n    return df_feat" in function
    build = features[features.index("def build_features(") :]
    assert "df_feat = features_from_raw(df)" in build  # one code path, not a copy
    assert "add_ratio_features" not in build


def test_a_record_as_the_notebook_loaded_it_gets_the_notebooks_own_prediction(
    package: Path, work: Path, service: str
) -> None:
    notebook = notebook_answers(
        SAMPLES / f"{SAMPLE}.ipynb",
        work,
        last=10,
        held_out="X_test",
        model="model",
        features="X",
        loaded="df",
        label="target",
    )
    records = notebook["records"]
    assert "area_to_perimeter" not in records[0]  # what the notebook loaded, not the features

    one = httpx.post(f"{service}/predict/raw", json=records[0], timeout=30)
    assert one.status_code == 200, one.text
    assert one.json()["predictions"] == notebook["predictions"][:1]
    assert one.json()["implementation_status"] == "IMPLEMENTED"
    assert one.json()["model_version"] == "1" and one.json()["prediction_ids"]
    batch = httpx.post(f"{service}/predict/raw", json=records, timeout=30)
    assert batch.json()["predictions"] == notebook["predictions"]
    # the same record to the model-input route is refused: it lacks the computed columns
    assert httpx.post(f"{service}/predict", json=records[0], timeout=30).status_code == 422

    missing = {k: v for k, v in records[0].items() if k != "mean area"}
    refused = httpx.post(f"{service}/predict/raw", json=missing, timeout=30)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", 0, "mean area"]
    with_label = httpx.post(f"{service}/predict/raw", json={**records[0], "target": 1}, timeout=30)
    assert with_label.json()["predictions"] == notebook["predictions"][:1]  # the label is unread

    schema = httpx.get(f"{service}/openapi.json", timeout=30).json()
    raw_body = schema["paths"]["/predict/raw"]["post"]["requestBody"]["content"]
    record = raw_body["application/json"]["schema"]["anyOf"][0]
    assert "mean area" in record["required"] and "target" not in record["required"]
    model_body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert "area_to_perimeter" in model_body["application/json"]["schema"]["anyOf"][0]["required"]

    metrics = httpx.get(f"{service}/metrics", timeout=30).text
    assert 'honesty_compliant_responses_total{status_value="IMPLEMENTED"} 3.0' in metrics


def test_a_corpus_notebooks_record_gets_the_notebooks_own_prediction(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    entry = next((e for e in corpus_index() if e["id"] == CORPUS_NOTEBOOK), None)
    if entry is None:
        set_up_by_ci(f"{CORPUS_NOTEBOOK} is not fetched: run `benchmarks/corpus.py fetch`")
    notebook = corpus.default_cache() / entry["notebook"]
    name = "tuto_encoder03_using_dict"
    package = convert(notebook, tmp_path_factory.mktemp("corpus") / name).target
    work = tmp_path_factory.mktemp("corpus-work")
    trained = train_package(package, work)
    assert trained.returncode == 0, trained.stderr[-3000:]
    answers = notebook_answers(
        notebook,
        work,
        last=9,
        held_out="Xtest",
        model="clf",
        features="X",
        loaded="titan_df",
        label="Survived",
    )
    for url in serve(package, work, "corpus.log", name):
        answer = httpx.post(f"{url}/predict/raw", json=answers["records"], timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == answers["predictions"]
        assert answer.json()["implementation_status"] == "HEURISTIC"  # never evaluated
        assert answer.json()["uncertainty"]


def test_a_version_trained_with_other_feature_code_is_not_served_raw_records(
    package: Path, work: Path, tmp_path: Path
) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(package, changed)
    helpers = changed / SAMPLE / "helpers.py"
    helpers.write_text(helpers.read_text().replace("+ 1e-6", "+ 1e-3"))
    for answer in serve(changed, work, "changed.log"):
        refused = httpx.post(f"{answer}/predict/raw", json={"mean area": 1.0}, timeout=30)
        assert refused.status_code == 409
        detail = refused.json()["detail"]
        assert detail.startswith("model version 1 takes no records of the loaded data: ")
        assert "trained with other feature code than the feature code of cell 8" in detail
        assert httpx.get(f"{answer}/ready", timeout=30).status_code == 200


def test_the_version_says_whether_the_route_serves_it(work: Path, package: Path) -> None:
    code = (
        "from mlflow import MlflowClient\n"
        f"print(MlflowClient().get_model_version({SAMPLE!r}, '1').tags['raw_input'])"
    )
    said = run_beside_package(package, work, code)
    assert said.stdout.split()[-1:] == ["row-wise"], said.stderr[-2000:]


# The runtime's check, on feature code of each kind a notebook holds.
LOADED = pd.DataFrame(
    {
        "width": np.arange(1.0, 41.0),
        "height": np.linspace(2.0, 9.0, 40),
        "label": [0, 1] * 20,
        "id": [f"r{i}" for i in range(40)],
    },
    index=range(100, 140),
)
MODEL_COLUMNS = ["width", "height", "area"]


def with_area(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["area"] = out["width"] * out["height"]
    return out


def centred(frame: pd.DataFrame) -> pd.DataFrame:
    out = with_area(frame)
    out["area"] = out["area"] - out["area"].mean()
    return out


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    out = with_area(frame)
    out["label"] = out["label"].astype(int)
    return out


def test_row_wise_feature_code_gets_a_record_schema_without_the_unread_columns() -> None:
    spec = check(RawFeatures(with_area, "frame", (3,)), LOADED, MODEL_COLUMNS, "label")
    assert sorted(spec["unread"]) == ["id", "label"]
    assert [c["name"] for c in spec["columns"]] == ["width", "height", "label", "id"]
    assert spec["checked_rows"] == 20


@pytest.mark.parametrize(
    ("function", "said"),
    [
        (centred, "it reads other rows \\(an aggregate over the data set\\)"),
        (labelled, "reads the label label, which a record does not have"),
        (lambda frame: frame[["width"]], "does not compute the model's column height"),
        (lambda frame: frame.to_numpy(), "returns ndarray, not a table"),
    ],
    ids=["an aggregate", "the label", "a column short", "not a table"],
)
def test_feature_code_that_cannot_serve_one_record_is_said_why(function: Any, said: str) -> None:
    with pytest.raises(NotRowWise, match=said):
        check(RawFeatures(function, "frame", (3,)), LOADED, MODEL_COLUMNS, "label")


TABLE_CELLS = [
    "import numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split",
    "df = pd.DataFrame({'a': np.arange(1.0, 41.0), 'b': np.linspace(1, 2, 40), 'y': [0, 1] * 20})",
]


def test_a_model_split_twice_takes_records_before_the_first_split(
    write_notebook: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_notebook(
        [
            *TABLE_CELLS,
            "df['ratio'] = df['a'] / df['b']\nX = df[['a', 'ratio']]\ny = df['y']\n"
            "X_rest, X_test, y_rest, y_test = train_test_split(X, y, random_state=0)\n"
            "X_train, X_cal, y_train, y_cal = train_test_split(X_rest, y_rest, random_state=0)",
            "model = LogisticRegression().fit(X_train, y_train)\n"
            "score = model.score(X_test, y_test)",
        ],
        name="twice.ipynb",
    )
    assert main(["convert", str(path), "-o", str(tmp_path / "twice")]) == 0
    assert "POST /predict/raw  records of df as cell 2 loads it" in capsys.readouterr().out
    features = (tmp_path / "twice" / "twice" / "features.py").read_text()
    start = features.index("def features_from_raw(")
    function = features[start : features.index("\n\n\n", start)]
    # the table is changed in place: the function works on a copy, so the caller's stays as given
    assert "df = df.copy()" in function and 'df["ratio"] = df["a"] / df["b"]' in function
    # y is read from the same table, so the function returns the table; the route then takes
    # the model's columns from it
    assert function.endswith("return df") and "train_test_split" not in function


def test_a_model_refitted_on_all_the_rows_the_split_divided_takes_records(
    write_notebook: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Scored on a holdout, then `model.fit(X, y)` on every row: the route serves the feature
    code up to X. Convert said X was "computed after the split", which it is not."""
    path = write_notebook(
        [
            *TABLE_CELLS,
            "df['ratio'] = df['a'] / df['b']\nX = df[['a', 'ratio']]\ny = df['y']\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
            "model = LogisticRegression().fit(X_train, y_train)\n"
            "score = model.score(X_test, y_test)\n"
            "model.fit(X, y)",
        ],
        name="refit.ipynb",
    )
    assert main(["convert", str(path), "-o", str(tmp_path / "refit")]) == 0
    assert "POST /predict/raw  records of df as cell 2 loads it" in capsys.readouterr().out


def test_a_fill_from_the_whole_column_is_found_on_the_rows_it_fills() -> None:
    """Two of forty widths are missing and filled with the column's median: a random sample
    would rarely hold them, so the check takes rows where each column is missing too."""
    gaps = LOADED.copy()
    gaps.loc[[103, 104], "width"] = np.nan  # rows the random sample leaves out

    def filled(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        out["width"] = out["width"].fillna(out["width"].median())
        return with_area(out)

    with pytest.raises(NotRowWise, match="it reads other rows"):
        check(RawFeatures(filled, "frame", (3,)), gaps, MODEL_COLUMNS, "label")


def test_feature_code_in_a_cell_before_the_one_that_splits_and_fits_is_cut_there(
    write_notebook: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The common shape of a notebook written on a CSV: columns computed in one cell, the split
    and the fit in the training cell. The feature step holds the cut; the training step is left
    as it was."""
    path = write_notebook(
        [
            *TABLE_CELLS,
            "df['ratio'] = df['a'] / df['b']",
            "X = df[['a', 'ratio']]\ny = df['y']",
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
            "model = LogisticRegression().fit(X_train, y_train)\n"
            "score = model.score(X_test, y_test)",
        ],
        name="later.ipynb",
    )
    assert main(["convert", str(path), "-o", str(tmp_path / "later")]) == 0
    assert "records of df as cell 2 loads it, through the feature code of cell 3" in (
        capsys.readouterr().out
    )
    package = tmp_path / "later" / "later"
    assert "df = features_from_raw(df)" in (package / "features.py").read_text()
    assert "features_from_raw" not in (package / "pipeline.py").read_text().split("def run(")[1]


RATIO_MODEL = (
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "model = LogisticRegression().fit(X_train, y_train)\n"
    "score = model.score(X_test, y_test)"
)


def _trained(work: Path, name: str, cells: list[str]) -> Path:
    """A package of the table notebook followed by `cells`, trained in `work`."""
    path = work / f"{name}.ipynb"
    nbformat.write(notebook([*TABLE_CELLS, *cells]), path)
    package = convert(path, work / name).target
    trained = train_package(package, work, "--cross-validation-folds", "0")
    assert trained.returncode == 0, trained.stderr[-3000:]
    return package


def _logged_input(package: Path, work: Path, name: str) -> tuple[str, list[str]]:
    """Version 1's `raw_input` tag and the columns of the dataset its run logged as input."""
    code = (
        "import json\n"
        "from mlflow import MlflowClient\n"
        "client = MlflowClient()\n"
        f"version = client.get_model_version({name!r}, '1')\n"
        "(logged,) = client.get_run(version.run_id).inputs.dataset_inputs\n"
        "columns = [c['name'] for c in json.loads(logged.dataset.schema)['mlflow_colspec']]\n"
        "print(json.dumps([version.tags.get('raw_input', ''), columns]))"
    )
    said = run_beside_package(package, work, code)
    assert said.returncode == 0, said.stderr[-2000:]
    tag, columns = json.loads(said.stdout.strip().splitlines()[-1])
    return tag, columns


@pytest.fixture(scope="module")
def rebound(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A package whose feature code rebinds the loaded table's name, trained: (package, work)."""
    work = tmp_path_factory.mktemp("rebound")
    cells = [
        "df['ratio'] = df['a'] / df['b']\ndf = df.drop(columns=['b'])",
        "X = df[['a', 'ratio']]\ny = df['y']",
        RATIO_MODEL,
    ]
    return _trained(work, "rebound", cells), work


def test_a_loaded_table_its_feature_code_rebinds_is_checked_and_logged_as_loaded(
    rebound: tuple[Path, Path],
) -> None:
    """`df = df.drop(...)` (or `pd.get_dummies(df)`, `df.dropna()`) rebinds the loaded table's
    name in the feature step. Training logs the table as the notebook loaded it and checks the
    feature code on it, not on its own output (which has no column `b` to drop any more)."""
    package, work = rebound
    pipeline = (package / "rebound" / "pipeline.py").read_text()
    assert "from nb2prod_runtime.lineage import as_loaded\n" in pipeline
    assert "df_as_loaded = as_loaded(df)" in pipeline
    tag, columns = _logged_input(package, work, "rebound")
    assert tag == "row-wise"
    assert columns == ["a", "b", "y"]


def test_a_loaded_table_its_feature_code_changes_in_place_is_logged_as_loaded(
    tmp_path: Path,
) -> None:
    """`df["ratio"] = ...` in a feature cell, the commonest feature code there is: the step
    changes the loaded table in place without returning it, and training logged the changed
    table as the run's input (with the derived column), which /predict/raw then asked for."""
    cells = [
        "df['ratio'] = df['a'] / df['b']",
        "X = df[['a', 'ratio']]\ny = df['y']\n" + RATIO_MODEL,
    ]
    package = _trained(tmp_path, "in_place", cells)
    _, columns = _logged_input(package, tmp_path, "in_place")
    assert columns == ["a", "b", "y"]


def test_the_packages_own_test_reads_a_reason_with_quotes_as_the_service_says_it(
    rebound: tuple[Path, Path], tmp_path: Path
) -> None:
    """pandas' errors quote in double quotes (`KeyError: "None of ['a'] are in the
    [columns]"`): the package's own test of /predict/raw compares the version's reason with
    the 409's detail, not with its JSON text, where those quotes are escaped. Here the feature
    code fails so on the few rows training checks it on (not on the whole table)."""
    package = tmp_path / "package"
    shutil.copytree(rebound[0], package)
    features = package / "rebound" / "features.py"
    failing = (
        "    if len(df) < 40:\n"
        "        raise KeyError(\"None of ['a'] are in the [columns]\")\n"
        "    df = df.copy()  # the caller's records stay as given"
    )
    text = features.read_text()
    features.write_text(
        text.replace("    df = df.copy()  # the caller's records stay as given", failing)
    )
    own_test = (
        "tests/test_serve.py::test_records_of_the_loaded_data_get_the_answer_for_their_features"
    )
    options = ["-q", "-p", "no:cacheprovider", own_test]
    ran = run_code(
        f"import pytest, sys; sys.exit(pytest.main({options!r}))",
        cwd=package,
        env={"PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": ""},
    )
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert "1 passed" in ran.stdout


def test_feature_code_looping_over_columns_is_served_from_records(
    write_notebook: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`for column in skewed: df[column] = np.log1p(df[column])`, the usual skew fix: the loop
    variable is the loop's own, not a second input, so the feature code serves records (it
    was refused as "reads column besides one loaded table")."""
    path = write_notebook(
        [
            "import numpy as np\nimport pandas as pd\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "from sklearn.model_selection import train_test_split",
            "df = pd.read_csv('table.csv')",
            "for column in ['a', 'b']:\n    df[column] = np.log1p(df[column])\n"
            "X = df[['a', 'b']]\ny = df['y']\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
            "model = LogisticRegression().fit(X_train, y_train)\n"
            "score = model.score(X_test, y_test)",
        ],
    )
    pd.DataFrame({"a": [1.0, 2, 3, 4] * 5, "b": [0.5, 1, 2, 3] * 5, "y": [0, 1] * 10}).to_csv(
        path.parent / "table.csv", index=False
    )
    assert main(["convert", str(path), "-o", str(tmp_path / "pkg")]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "/predict/raw" in line)
    assert "no /predict/raw" not in line, line


def test_convert_says_why_a_notebook_has_no_raw_route(
    write_notebook: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases = {
        "a scaler fitted outside the model": (
            "X = StandardScaler().fit_transform(df[['a', 'b']])",
            "fits StandardScaler() outside the model",
        ),
        "the model fitted on what the split's output became": (
            "X = df[['a', 'b']]",
            "the model is fitted on X_train_s, computed after the split",
        ),
        "synthetic data": (
            "X = np.ones((20, 2))",
            "the model's input X is not computed from a table the notebook loads (cell 3)",
        ),
    }
    for name, (features, said) in cases.items():
        fitted_on = "X_train_s" if "became" in name else "X_train"
        path = write_notebook(
            [
                "import numpy as np\nimport pandas as pd\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.model_selection import train_test_split\n"
                "from sklearn.preprocessing import StandardScaler",
                "df = pd.DataFrame({'a': [1.0, 2, 3, 4] * 5, 'b': [0.5, 1, 2, 3] * 5, "
                "'y': [0, 1] * 10})",
                f"{features}\ny = df['y']\n"
                "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
                "X_train_s = X_train * 2",
                f"model = LogisticRegression().fit({fitted_on}, y_train)\n"
                "score = model.score(X_test, y_test)",
            ],
        )
        assert main(["convert", str(path), "-o", str(tmp_path / name)]) == 0, name
        out = capsys.readouterr().out
        line = next(line for line in out.splitlines() if "/predict/raw" in line)
        assert line.startswith("  no /predict/raw: ") and said in line, (name, line)
        package = next(p for p in (tmp_path / name).iterdir() if (p / "serve.py").is_file())
        assert "/predict/raw" not in (package / "serve.py").read_text()


@pytest.mark.parametrize(
    ("after_split", "said"),
    [
        (
            "sc = StandardScaler()\n"
            "X_train = pd.DataFrame(sc.fit_transform(X_train), columns=X.columns)\n"
            "X_test = pd.DataFrame(sc.transform(X_test), columns=X.columns)",
            "no /predict/raw: the model is fitted on X_train as cell 3 changes it after the "
            "split in cell 3; only code before the split runs on a record",
        ),
        ("X_train.fillna(0, inplace=True)", "as cell 3 changes it after the split"),
        ("X_train = X_train.to_numpy()\nX_test = X_test.to_numpy()", "records of df"),
    ],
)
def test_a_split_output_changed_before_the_fit_has_no_raw_route(
    write_notebook: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    after_split: str,
    said: str,
) -> None:
    """A scaler fitted on the split's output, rebinding it, before the model is fitted on it:
    a record sent raw would skip the scaling (the package's own test of the route failed with
    422, and a table model would have answered unscaled records). The same rows handed over as
    an array keep the route."""
    path = write_notebook(
        [
            TABLE_CELLS[0] + "\nfrom sklearn.preprocessing import StandardScaler",
            TABLE_CELLS[1],
            "X = df[['a', 'b']]\ny = df['y']\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
            + after_split,
            "model = LogisticRegression().fit(X_train, y_train)\n"
            "score = model.score(X_test, y_test)",
        ],
    )
    assert main(["convert", str(path), "-o", str(tmp_path / "pkg")]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "/predict/raw" in line)
    assert said in line, line


@pytest.mark.parametrize("columns", ["df[['a', 'ratio']]", "df.drop(columns='y')"])
@pytest.mark.parametrize(
    ("cells", "said"),
    [
        (  # the feature code in the cell that splits: it is cut there
            ["df['ratio'] = df['a'] / df['b']\n{split}"],
            "POST /predict/raw  records of df as cell 2 loads it, through the feature code of "
            "cell 3",
        ),
        (  # changed in place in a cell of its own: said so, not "not split off"
            ["df['ratio'] = df['a'] / df['b']", "{split}"],
            "no /predict/raw: the model's input is taken from df as cell 3 changes it in place, "
            "in a step of its own",
        ),
    ],
)
def test_columns_taken_from_the_table_in_the_split_call_are_split_off_it(
    write_notebook: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    columns: str,
    cells: list[str],
    said: str,
) -> None:
    """`train_test_split(df[features], df[target])`: the model's input is split off the table
    in the call itself. Convert said it was "not split off (train_test_split) from a table the
    notebook loads"."""
    split = (
        f"X_train, X_test, y_train, y_test = train_test_split({columns}, df['y'], "
        "random_state=0)\nmodel = LogisticRegression().fit(X_train, y_train)\n"
        "score = model.score(X_test, y_test)"
    )
    path = write_notebook([*TABLE_CELLS, *(cell.format(split=split) for cell in cells)])
    assert main(["convert", str(path), "-o", str(tmp_path / "pkg")]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "/predict/raw" in line)
    assert said in line, line
