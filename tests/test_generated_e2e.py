"""Every sample, end to end with real parts: convert, install, train into a real MLflow sqlite
store, promote through the gate, serve with a real uvicorn on 127.0.0.1, and run the generated
package's own tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import (
    SAMPLES,
    TRAINING_CELLS,
    background,
    free_port,
    fresh_venv,
    install_into,
    run,
    run_code,
    run_module,
    wait_until_answers,
)

from nb2prod.backend.render import convert


@dataclass(frozen=True)
class Expected:
    status: str
    promote_args: tuple[str, ...]  # the arguments with which promotion is accepted
    refusal: str  # what a plain `promote` says when it refuses ('' when it accepts)


EXPECTED = {
    "tumor_classifier": Expected("IMPLEMENTED", (), ""),
    "wine_kale_pipeline": Expected("IMPLEMENTED", (), ""),
    "diabetes_regressor": Expected("IMPLEMENTED", (), "below the IMPLEMENTED threshold"),
    "pool_heuristic": Expected("HEURISTIC", ("--allow-heuristic",), "--allow-heuristic"),
}


@pytest.fixture(scope="session")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh venv for the generated packages; it sees the installed runtime (no network)."""
    return fresh_venv(tmp_path_factory.mktemp("venv"))


@pytest.fixture
def uvicorn(python: Path) -> Iterator[Callable[[str, Path, dict[str, str]], str]]:
    """Starts `uvicorn APP` in a folder on a free port; every server stops with the test."""
    with contextlib.ExitStack() as servers:

        def start(app: str, cwd: Path, env: dict[str, str]) -> str:
            port = free_port()
            log = cwd / f"uvicorn-{port}.log"
            command = [python, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
            process = servers.enter_context(background(command, cwd=cwd, env=env, log=log))
            base = f"http://127.0.0.1:{port}"
            wait_until_answers(f"{base}/health", process, log, seconds=90)
            return base

        yield start


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_end_to_end(sample: str, python: Path, tmp_path: Path, uvicorn) -> None:
    expected = EXPECTED[sample]
    package = convert(SAMPLES / f"{sample}.ipynb", tmp_path / sample).target
    install_into(python, package)
    work = tmp_path / "work"
    work.mkdir()

    unset = {"MLFLOW_TRACKING_URI": ""}  # whatever the environment says: the default store
    trained = run_module(f"{sample}.train", cwd=work, env=unset, python=python)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert f"trained {sample} version 1" in trained.stdout
    assert (work / "mlflow.db").is_file()  # the default store: sqlite in the working folder

    refused = run_module(f"{sample}.promote", cwd=work, env=unset, python=python)
    if expected.refusal:
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert expected.refusal in refused.stderr
    else:
        assert refused.returncode == 0, refused.stderr
    if expected.promote_args:
        accepted = run_module(
            f"{sample}.promote", *expected.promote_args, cwd=work, env=unset, python=python
        )
        assert accepted.returncode == 0, accepted.stderr

    promoted = not expected.refusal or expected.promote_args
    env = unset if promoted else {**unset, "MODEL_URI": f"models:/{sample}/1"}
    base = uvicorn(f"{sample}.serve:app", work, env)
    records = json.loads(
        run_code(
            f"from {sample} import pipeline; import json; "
            "x = pipeline.run(pipeline.Parameters()).model_input.iloc[:3]; "
            "print(x.to_json(orient='records'))",
            cwd=work,
            python=python,
        ).stdout
    )
    one = httpx.post(f"{base}/predict", json=records[0], timeout=30)
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["implementation_status"] == expected.status
    assert body["accuracy_claim"] and body["validation_status"] and body["model_version"] == "1"
    if expected.status == "HEURISTIC":
        assert body["uncertainty"]
        assert body["validation_status"] == "UNVALIDATED"
    batch = httpx.post(f"{base}/predict", json=records, timeout=30)
    assert batch.status_code == 200 and len(batch.json()["predictions"]) == 3
    assert httpx.get(f"{base}/ready", timeout=5).status_code == 200
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    counted = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("predictions_total{")
    ]
    assert sum(counted) == 4
    assert f'honesty_compliant_responses_total{{status_value="{expected.status}"}} 2.0' in metrics

    tests = run_module("pytest", "-q", "-p", "no:cacheprovider", cwd=package, python=python)
    assert tests.returncode == 0, tests.stdout[-4000:]


def test_failing_training_code_names_its_cell(python: Path, tmp_path: Path, write_notebook) -> None:
    cells = [*TRAINING_CELLS[:3], "model = LogisticRegression()\nmodel.fit(X_train, y_train[:5])"]
    notebook = write_notebook(cells, name="broken.ipynb")
    package = convert(notebook, tmp_path / "broken").target
    install_into(python, package)
    done = run(python, "-m", "broken.train", cwd=tmp_path)
    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert "train: failed in code from notebook cell 4 (pipeline.py:" in line
    assert "ValueError" in line


def test_data_files_beside_the_notebook_ship_with_the_package(
    python: Path, tmp_path: Path, write_notebook
) -> None:
    rows = ["sepal,petal,label"] + [f"{i % 7}.{i % 3},{i % 5}.1,{i % 2}" for i in range(60)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "flowers.csv").write_text("\n".join(rows) + "\n")
    notebook = write_notebook(
        [
            "import pandas as pd\n" + TRAINING_CELLS[0],
            "frame = pd.read_csv('data/flowers.csv')\n"
            "X, y = frame[['sepal', 'petal']], frame['label']",
            *TRAINING_CELLS[2:],
        ],
        name="flowers.ipynb",
    )
    package = convert(notebook, tmp_path / "flowers").target
    assert (package / "flowers" / "data" / "data" / "flowers.csv").read_text().startswith("sepal")
    assert (
        'pd.read_csv(data_path("data/flowers.csv"))'
        in (package / "flowers" / "pipeline.py").read_text()
    )
    install_into(python, package)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run(python, "-m", "flowers.train", cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-2000:]
