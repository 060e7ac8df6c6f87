"""The generated service as a client sees it, on a real uvicorn on 127.0.0.1.

Two models are converted, installed and trained once for the module: the tumor sample (a
scikit-learn forest, 10 trees to keep the load test short) and a rule-based model whose
`predict` sleeps as long as each record asks (`wait_seconds`), so a test controls how slow a
request is without touching the code under test. `/invocations` answers what
`mlflow models serve` answers, request for request (both run on the same model), plus the
honesty fields; a body over the limit gets 413, a batch over the limit 422 (400 on
`/invocations`), a prediction over the time limit 504; SIGTERM lets a request in flight
finish; two workers under load count exactly what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import nbformat
import pandas as pd
import pytest
from conftest import (
    SAMPLES,
    background,
    free_port,
    fresh_venv,
    install_into,
    notebook,
    run,
    store_in,
    wait_until_answers,
)
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from nb2prod.backend.render import convert

TUMOR = "tumor_classifier"
SLEEPY = "sleepy"
HONESTY_FIELDS = ("implementation_status", "accuracy_claim", "validation_status", "model_version")
SLEEPY_CELLS = [
    "import time\nimport pandas as pd",
    "class SleepyRule:\n"
    '    """Doubles x after waiting as long as the batch asks."""\n\n'
    "    def __init__(self, factor=2.0):\n"
    "        self.factor = factor\n\n"
    "    def predict(self, frame):\n"
    '        time.sleep(float(frame["wait_seconds"].max()))\n'
    '        return frame["x"].to_numpy() * self.factor',
    'frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "wait_seconds": [0.0, 0.0, 0.0]})',
    "model = SleepyRule(factor=2.0)\nestimates = model.predict(frame)",
]
# Records from the tumor pipeline and the registered model's own predictions for them.
EXPECTED = f"""
import json, mlflow
from {TUMOR} import pipeline
frame = pipeline.run(pipeline.Parameters()).model_input.iloc[:5]
model = mlflow.sklearn.load_model("models:/{TUMOR}/1")
print(json.dumps({{"records": json.loads(frame.to_json(orient="records")),
                  "predictions": model.predict(frame).tolist()}}))
"""
# A counter as a worker of an earlier run would have left it in the metrics folder.
LEFTOVER = """
from prometheus_client import Counter
done = Counter("predictions_total", "rows", ["implementation_status", "model_version"])
done.labels("IMPLEMENTED", "1").inc(123)
"""


@dataclass(frozen=True)
class Trained:
    python: Path
    work: Path  # holds mlflow.db: the service's working folder


@dataclass(frozen=True)
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_venv(tmp_path_factory.mktemp("venv"))


def trained(python: Path, source: Path, folder: Path, *train_args: str) -> Trained:
    package = convert(source, folder / source.stem).target
    install_into(python, package)
    work = folder / "work"
    work.mkdir()
    store_in(work)
    done = run(python, "-m", f"{source.stem}.train", *train_args, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    return Trained(python, work)


@pytest.fixture(scope="module")
def tumor(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("tumor")
    return trained(python, SAMPLES / f"{TUMOR}.ipynb", folder, "--n-estimators", "10")


@pytest.fixture(scope="module")
def sleepy(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("sleepy")
    source = folder / f"{SLEEPY}.ipynb"
    nbformat.write(notebook(SLEEPY_CELLS), source)
    return trained(python, source, folder)


@pytest.fixture(scope="module")
def expected(tumor: Trained) -> dict[str, list[Any]]:
    done = run(tumor.python, "-c", EXPECTED, cwd=tumor.work)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@contextlib.contextmanager
def serving(
    model: Trained, name: str, env: dict[str, str], *, entrypoint: bool = False
) -> Iterator[Service]:
    """The service on a free port, as `uvicorn` or as the container starts it; stopped after."""
    port = free_port()
    command = [str(model.python), "-m"]
    if entrypoint:
        command.append(f"{name}.entrypoint")
    command += ["uvicorn", f"{name}.serve:app", "--host", "127.0.0.1", "--port", str(port)]
    log = model.work / f"serve-{port}.log"
    environment = {"MODEL_URI": f"models:/{name}/1", **env}
    with background(command, cwd=model.work, env=environment, log=log) as process:
        service = Service(f"http://127.0.0.1:{port}", process, log)
        wait_until_answers(f"{service.url}/ready", process, log)
        yield service


def samples(metrics_text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric, keyed by their sorted labels."""
    found = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def assert_honest(body: dict[str, Any]) -> None:
    for field in HONESTY_FIELDS:
        assert body[field], field
    assert body["implementation_status"] == "IMPLEMENTED"
    assert body["validation_status"] == "VALIDATED"


@pytest.fixture(scope="module")
def limited(tumor: Trained) -> Iterator[Service]:
    """The tumor service with small limits: 50 records, 200 kB."""
    env = {"PREDICT_MAX_BATCH": "50", "MAX_BODY_BYTES": "200000"}
    with serving(tumor, TUMOR, env) as service:
        yield service


def invocation_payloads(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    columns = list(records[0])
    shuffled = columns[::-1]  # dataframe_split may name its columns in any order
    return {
        "dataframe_split": {"columns": columns, "data": [list(r.values()) for r in records]},
        "dataframe_split, columns reordered": {
            "columns": shuffled,
            "data": [[r[c] for c in shuffled] for r in records],
        },
        "dataframe_records": records,
        "instances": records,
        "inputs": {column: [r[column] for r in records] for column in columns},
    }


def test_invocations_take_every_mlflow_format(
    limited: Service, expected: dict[str, list[Any]]
) -> None:
    records, predictions = expected["records"], expected["predictions"]
    for name, payload in invocation_payloads(records).items():
        key = name.split(",")[0]
        answer = httpx.post(f"{limited.url}/invocations", json={key: payload}, timeout=30)
        assert answer.status_code == 200, (name, answer.text)
        body = answer.json()
        assert body["predictions"] == predictions, name
        assert_honest(body)
    one = httpx.post(f"{limited.url}/invocations", json={"inputs": records[0]}, timeout=30)
    assert one.json()["predictions"] == predictions[:1]
    batch = httpx.post(f"{limited.url}/predict", json=records, timeout=30)
    assert batch.json()["predictions"] == predictions


def test_invocations_refuse_what_mlflow_refuses(limited: Service, expected: dict) -> None:
    records = expected["records"]
    both = {"instances": records, "inputs": records}
    for payload in (both, records, {"records": records}):
        answer = httpx.post(f"{limited.url}/invocations", json=payload, timeout=30)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "BAD_REQUEST"
    field = next(iter(records[0]))
    bad = [{**records[0], field: "not a number"}]
    answer = httpx.post(f"{limited.url}/invocations", json={"dataframe_records": bad}, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["message"].startswith(f"body.0.{field}: Input should be a valid number")
    assert answer.json()["detail"][0]["loc"] == ["body", 0, field]
    # /predict keeps FastAPI's 422, and takes JSON only
    answer = httpx.post(f"{limited.url}/predict", json=bad, timeout=30)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", 0, field]
    text = httpx.post(f"{limited.url}/predict", content=b"x,y\n1,2", timeout=30)
    assert text.status_code == 422  # not JSON: the error says so, the body is not echoed
    csv = {"Content-Type": "text/csv"}
    assert httpx.post(f"{limited.url}/predict", content=b"x", headers=csv).status_code == 415


@pytest.fixture(scope="module")
def mlflow_serve(tumor: Trained) -> Iterator[str]:
    """`mlflow models serve` on the same registered model, in the same environment."""
    port = free_port()
    log = tumor.work / "mlflow-serve.log"
    command = [str(tumor.python), "-m", "mlflow", "models", "serve"]
    command += ["-m", f"models:/{TUMOR}/1", "--env-manager", "local"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    env = {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    with background(command, cwd=tumor.work, env=env, log=log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{url}/ping", process, log)
        yield url


def client_requests(records: list[dict[str, Any]]) -> dict[str, tuple[str, bytes]]:
    """Requests a client of `mlflow models serve` sends: (Content-Type, body) by name."""
    frame = pd.DataFrame(records)
    first = next(iter(records[0]))
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    sent: dict[str, Any] = {
        **{name: {name.split(",")[0]: p} for name, p in invocation_payloads(records).items()},
        "dataframe_split from DataFrame.to_json, index included": {
            "dataframe_split": json.loads(frame.to_json(orient="split"))
        },
        "inputs, one record": {"inputs": records[0]},
        "inputs, a list of records": {"inputs": records},
        "params beside the data": {"dataframe_records": records, "params": {"unused": 1}},
        "a column the model does not know": {"dataframe_records": [{**records[0], "id": 7}]},
        "a number as a string": {"dataframe_records": [{**records[0], first: "1.5"}]},
        "an integer for a float": {"dataframe_records": [{**records[0], first: 3}]},
        "a value that is not a number": {"dataframe_records": [{**records[0], first: "abc"}]},
        "a missing column": {
            "dataframe_records": [{k: v for k, v in records[0].items() if k != first}]
        },
        "two formats": {"instances": records, "inputs": records},
        "no format": {"records": records},
        "a bare list": records,
    }
    requests = {
        name: ("application/json", json.dumps(body).encode()) for name, body in sent.items()
    }
    return requests | {
        "not JSON": ("application/json", b"{nope"),
        "CSV": ("text/csv", frame.to_csv(index=False).encode()),
        "CSV with the frame's index": ("text/csv", frame.to_csv().encode()),
        "CSV, columns reordered": (
            "text/csv",
            frame[frame.columns[::-1]].to_csv(index=False).encode(),
        ),
        "CSV, a value that is not a number": (
            "text/csv",
            frame.assign(**{first: "abc"}).to_csv(index=False).encode(),
        ),
        "CSV, UTF-8 charset": ("text/csv; charset=utf-8", frame.to_csv(index=False).encode()),
        "CSV, Latin-1 charset": ("text/csv; charset=latin-1", frame.to_csv(index=False).encode()),
        "Parquet": ("application/vnd.apache.parquet", parquet.getvalue()),
        "plain text": ("text/plain", b"hello"),
    }


def test_mlflow_clients_switch_unchanged(
    limited: Service, mlflow_serve: str, expected: dict[str, list[Any]]
) -> None:
    """Every request gets the status `mlflow models serve` gives it, the same predictions
    plus the honesty fields, or an error body in MLflow's shape (error_code, message)."""
    for name, (content_type, body) in client_requests(expected["records"]).items():
        headers = {"Content-Type": content_type}
        theirs = httpx.post(f"{mlflow_serve}/invocations", content=body, headers=headers)
        ours = httpx.post(f"{limited.url}/invocations", content=body, headers=headers)
        assert ours.status_code == theirs.status_code, (name, theirs.text[:300], ours.text[:300])
        if theirs.status_code == 200:
            assert ours.json()["predictions"] == theirs.json()["predictions"], name
            assert_honest(ours.json())
        elif theirs.status_code == 400:  # MLflow says INVALID_PARAMETER_VALUE for some
            assert theirs.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
            assert ours.json()["error_code"] == "BAD_REQUEST", name
            assert ours.json()["message"], name
    for path in ("/ping", "/version"):
        theirs, ours = httpx.get(f"{mlflow_serve}{path}"), httpx.get(f"{limited.url}{path}")
        assert (ours.status_code, ours.text) == (theirs.status_code, theirs.text), path


def test_invocations_differ_from_mlflow_where_mlflow_guesses(
    limited: Service, expected: dict
) -> None:
    """Two deliberate differences. A null in a column the signature requires is refused
    (MLflow hands the model a NaN, and a forest predicts from it). A dataframe_split without
    column names is read in the signature's column order (MLflow names them 0, 1, ... and
    refuses them)."""
    records = expected["records"]
    first = next(iter(records[0]))
    null = {"dataframe_records": [{**records[0], first: None}]}
    answer = httpx.post(f"{limited.url}/invocations", json=null)
    assert answer.status_code == 400 and answer.json()["detail"][0]["loc"] == ["body", 0, first]
    empty_field = pd.DataFrame(records).assign(**{first: None}).to_csv(index=False).encode()
    answer = httpx.post(
        f"{limited.url}/invocations", content=empty_field, headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 400 and answer.json()["detail"][0]["loc"] == ["body", 0, first]
    unnamed = {"dataframe_split": {"data": [list(r.values()) for r in records]}}
    answer = httpx.post(f"{limited.url}/invocations", json=unnamed)
    assert answer.json()["predictions"] == expected["predictions"]


def test_body_over_the_limit_gets_413(limited: Service, expected: dict) -> None:
    record = expected["records"][0]
    big = json.dumps([record] * 300).encode()  # ~250 kB, over the 200 kB limit
    assert len(big) > 200_000
    declared = httpx.post(
        f"{limited.url}/predict",
        content=big,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert declared.status_code == 413, declared.text
    assert "MAX_BODY_BYTES" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(big), 16_384):
            yield big[start : start + 16_384]

    streamed = httpx.post(
        f"{limited.url}/predict",
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert streamed.status_code == 413, streamed.text
    assert httpx.post(f"{limited.url}/predict", json=record, timeout=30).status_code == 200


def test_batch_over_the_limit_is_refused(limited: Service, expected: dict) -> None:
    record = expected["records"][0]
    over = httpx.post(f"{limited.url}/predict", json=[record] * 51, timeout=30)
    assert over.status_code == 422
    assert "PREDICT_MAX_BATCH" in over.text
    split = {"dataframe_split": {"columns": list(record), "data": [list(record.values())] * 51}}
    invocation = httpx.post(f"{limited.url}/invocations", json=split, timeout=30)
    assert invocation.status_code == 400 and "PREDICT_MAX_BATCH" in invocation.json()["message"]
    at_limit = httpx.post(f"{limited.url}/predict", json=[record] * 50, timeout=30)
    assert at_limit.status_code == 200
    assert len(at_limit.json()["predictions"]) == 50


def test_a_nan_prediction_is_answered_as_null(sleepy: Trained) -> None:
    """A model may predict NaN (here from an explicit "nan" in a CSV): the answer says null,
    as orjson writes it, where FastAPI's JSON response refused NaN with a 500."""
    with serving(sleepy, SLEEPY, {}) as service:
        answer = httpx.post(
            f"{service.url}/invocations",
            content=b"x,wait_seconds\nnan,0\n2,0\n",
            headers={"Content-Type": "text/csv"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [None, 4.0]
    assert answer.json()["implementation_status"] == "HEURISTIC" and answer.json()["uncertainty"]


def test_prediction_over_the_time_limit_gets_504(sleepy: Trained) -> None:
    with serving(sleepy, SLEEPY, {"PREDICT_TIMEOUT_SECONDS": "1"}) as service:
        slow = httpx.post(f"{service.url}/predict", json={"x": 1.0, "wait_seconds": 4}, timeout=30)
        assert slow.status_code == 504
        assert "PREDICT_TIMEOUT_SECONDS" in slow.json()["detail"]
        # the abandoned prediction still sleeps in its thread; the service answers meanwhile
        quick = httpx.post(f"{service.url}/predict", json={"x": 1.5, "wait_seconds": 0}, timeout=30)
        assert quick.status_code == 200
        assert quick.json()["predictions"] == [3.0]
        assert quick.json()["implementation_status"] == "HEURISTIC"
        metrics = httpx.get(f"{service.url}/metrics", timeout=10).text
    answered = samples(metrics, "http_requests_total")
    key = (("endpoint", "/predict"), ("method", "POST"), ("status", "504"))
    assert answered[key] == 1


def test_sigterm_lets_the_request_in_flight_finish(sleepy: Trained) -> None:
    env = {"UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": "30", "WEB_CONCURRENCY": "1"}
    with serving(sleepy, SLEEPY, env, entrypoint=True) as service:
        answers: list[httpx.Response] = []

        def slow_request() -> None:
            payload = {"x": 2.0, "wait_seconds": 4}
            answers.append(httpx.post(f"{service.url}/predict", json=payload, timeout=60))

        sender = threading.Thread(target=slow_request)
        sender.start()
        time.sleep(1.0)  # the request is in flight: the model sleeps 4 s
        service.process.send_signal(signal.SIGTERM)
        sender.join(timeout=60)
        # uvicorn re-raises the signal once it has shut down, as a process killed by it
        assert service.process.wait(timeout=60) in (0, -signal.SIGTERM)
    (answer,) = answers
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [4.0]
    assert "Waiting for connections to close" in service.log.read_text()


async def send_all(url: str, record: dict[str, Any], requests: int, concurrency: int) -> list[int]:
    """`requests` POSTs, `concurrency` at a time; their status codes.

    Each request opens its own connection: kept-alive connections would all stay with the
    worker that accepted them first, and the test wants both workers to serve.
    """
    body = json.dumps(record).encode()
    headers = {"Content-Type": "application/json"}
    codes: list[int] = []
    remaining = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for _ in remaining:
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    codes.append(answer.status)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return codes


def test_two_workers_under_load_count_every_request(
    tumor: Trained, expected: dict, tmp_path: Path
) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    leftover = run(
        tumor.python, "-c", LEFTOVER, cwd=tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    )
    assert leftover.returncode == 0 and list(folder.glob("counter_*.db")), leftover.stderr
    (folder / "notes.txt").write_text("not a metric file")  # the entrypoint leaves it alone
    env = {"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    sent = 3_000  # enough for both workers to answer and for a lost count to show
    with serving(tumor, TUMOR, env, entrypoint=True) as service:
        record = expected["records"][0]
        codes = asyncio.run(send_all(f"{service.url}/predict", record, sent, concurrency=32))
        metrics = httpx.get(f"{service.url}/metrics", timeout=10).text
        per_worker = {
            path.name: sum(
                value
                for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))
                if json.loads(key)[1] == "predictions_total"
            )
            for path in folder.glob("counter_*.db")
        }
    assert len(codes) == sent and set(codes) == {200}
    assert (folder / "notes.txt").read_text() == "not a metric file"
    rows = samples(metrics, "predictions_total")
    assert rows == {(("implementation_status", "IMPLEMENTED"), ("model_version", "1")): sent}
    answered = samples(metrics, "http_requests_total")
    assert answered[(("endpoint", "/predict"), ("method", "POST"), ("status", "200"))] == sent
    compliant = samples(metrics, "honesty_compliant_responses_total")
    assert compliant == {(("status_value", "IMPLEMENTED"),): sent}
    assert sum(samples(metrics, "prediction_latency_seconds_count").values()) == sent
    (info,) = samples(metrics, "model_info").values()  # one series across both workers
    assert info == 1
    assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values()), per_worker
