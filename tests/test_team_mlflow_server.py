"""A team's MLflow server for real: `mlflow server` on PostgreSQL, artifacts proxied by the
server (`--serve-artifacts`), basic auth on, all on 127.0.0.1.

PostgreSQL runs from a temporary data directory as the `postgres` user (it refuses to run as
root) for the whole file; the MLflow server in front of it can be stopped and started again,
so a test can take it away in the middle of a training. A generated package trains, promotes
and serves through it with nothing but environment variables: `MLFLOW_TRACKING_URI` and the
credentials. What the tests check at the end they read from PostgreSQL itself, which is the
registry a team shares.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from conftest import (
    SAMPLES,
    TRAINING_CELLS,
    background,
    free_port,
    fresh_venv,
    install_into,
    notebook,
    run,
    wait_until_answers,
)

from nb2prod.backend.render import convert

psycopg = pytest.importorskip("psycopg", reason="mlflow needs a PostgreSQL driver: psycopg")
pytest.importorskip("flask_wtf", reason="mlflow's basic-auth app needs Flask-WTF (mlflow[auth])")

TUMOR = "tumor_classifier"
TWIN = "twin"  # trained twice at once
PAUSED = "paused"  # trains only once the file `resume` exists in its working folder
PAUSED_CELLS = [
    TRAINING_CELLS[0] + "\nimport pathlib\nimport time",
    *TRAINING_CELLS[1:3],
    "def iterations_once(signal):\n"
    '    """200, once the file `signal` exists."""\n'
    "    while not pathlib.Path(signal).exists():\n"
    "        time.sleep(0.05)\n"
    "    return 200",
    "model = LogisticRegression(max_iter=iterations_once('resume'))\nmodel.fit(X_train, y_train)",
    TRAINING_CELLS[4],
]
HONESTY_FIELDS = ("implementation_status", "accuracy_claim", "validation_status", "model_version")
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
# MLflow retries a failed request 7 times with a doubling backoff (minutes when a server is
# down); the clients here retry a little, quickly, and the test of a server going away not at all.
QUICK_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
NO_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def postgres_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent  # where its createdb is too
    folders = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name or 0)
    )
    return next((f for f in reversed(folders) if (f / "pg_ctl").is_file()), None)


def as_postgres(*command: str | Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the command as the `postgres` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *map(str, command)]
    return list(map(str, command))


@dataclass(frozen=True)
class Database:
    port: int

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """The rows of a query on the MLflow database, read by PostgreSQL's own driver."""
        with psycopg.connect(self.url("mlflow"), connect_timeout=10) as connection:
            return connection.execute(query, args).fetchall()

    def runs(self, experiment: str) -> list[tuple[str, str]]:
        """(run id, status) of each run of an experiment."""
        return self.rows(
            "SELECT r.run_uuid, r.status FROM runs r JOIN experiments e"
            " ON r.experiment_id = e.experiment_id WHERE e.name = %s ORDER BY r.start_time",
            experiment,
        )

    def versions(self, model: str) -> list[tuple[int, str]]:
        """(version, run id) of each registered version of a model."""
        return self.rows(
            "SELECT version, run_id FROM model_versions WHERE name = %s ORDER BY version", model
        )

    def version_tags(self, model: str, version: int) -> dict[str, str]:
        rows = self.rows(
            "SELECT key, value FROM model_version_tags WHERE name = %s AND version = %s",
            model,
            version,
        )
        return dict(rows)


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    """A PostgreSQL server of its own, in a temporary data directory, stopped at the end."""
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (no pg_ctl; Debian package `postgresql`)")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("PostgreSQL refuses to run as root and runuser is missing")
    # Not under pytest's temporary folder: that one is readable by its owner only.
    folder = Path(tempfile.mkdtemp(prefix="nb2prod-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        as_postgres(
            binaries / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off"
    started = subprocess.run(
        as_postgres(
            binaries / "pg_ctl", "-D", data, "-o", options, "-l", folder / "log", "-w", "start"
        ),
        capture_output=True,
        text=True,
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        for name in ("mlflow", "mlflow_auth"):
            subprocess.run(
                as_postgres(
                    binaries / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", name
                ),
                check=True,
                capture_output=True,
            )
        yield Database(port)
    finally:
        subprocess.run(
            as_postgres(binaries / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


class TrackingServer:
    """`mlflow server` on PostgreSQL with proxied artifacts and basic auth; can be stopped
    and started again on the same port, database and artifact folder."""

    def __init__(self, database: Database, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifacts = folder / "artifacts"
        self.log = folder / "mlflow-server.log"
        self.admin = ("admin", secrets.token_urlsafe(16))
        config = folder / "basic_auth.ini"
        config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {database.url('mlflow_auth')}\n"
            f"admin_username = {self.admin[0]}\n"
            f"admin_password = {self.admin[1]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        self.command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", database.url("mlflow"),
            "--serve-artifacts", "--artifacts-destination", str(self.artifacts),
            "--app-name", "basic-auth",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2",
        ]  # fmt: skip
        self.env = {
            **os.environ,
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(16),
            # as the README's team server and compose.yaml's: no GenAI job runner (8 processes)
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        for name in CREDENTIALS:  # the server's own environment holds no client credentials
            self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in = 0.0

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return  # still running: one server per port
        began = time.monotonic()
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers are stopped with it, as a group
            )
        wait_until_answers(f"{self.url}/health", self.process, self.log, seconds=300)
        self.started_in = time.monotonic() - began

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):  # a worker that outlived its parent
            os.killpg(self.process.pid, signal.SIGKILL)

    def client_env(self, **extra: str) -> dict[str, str]:
        """What a team member sets to train into this server: the URI and the credentials."""
        return {
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_USERNAME": self.admin[0],
            "MLFLOW_TRACKING_PASSWORD": self.admin[1],
            **QUICK_RETRIES,
            **extra,
        }


@pytest.fixture(scope="session")
def server(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrackingServer]:
    tracking = TrackingServer(database, tmp_path_factory.mktemp("mlflow-server"))
    try:
        tracking.start()
        print(f"mlflow server with PostgreSQL answered in {tracking.started_in:.1f} s")
        yield tracking
    finally:
        tracking.stop()


@pytest.fixture(scope="session")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_venv(tmp_path_factory.mktemp("venv"))


@pytest.fixture(scope="session")
def tumor(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tumor sample, converted and installed; returns the package's folder."""
    package = convert(SAMPLES / f"{TUMOR}.ipynb", tmp_path_factory.mktemp("tumor") / TUMOR).target
    install_into(python, package)
    return package


def installed(python: Path, folder: Path, name: str, cells: list[str]) -> Path:
    """A notebook of `cells`, converted as package `name` and installed into `python`."""
    nbformat.write(notebook(cells), folder / f"{name}.ipynb")
    package = convert(folder / f"{name}.ipynb", folder / name).target
    install_into(python, package)
    return package


@pytest.fixture(scope="session")
def paused(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed(python, tmp_path_factory.mktemp("paused"), PAUSED, PAUSED_CELLS)


@pytest.fixture(scope="session")
def twin(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed(python, tmp_path_factory.mktemp("twin"), TWIN, TRAINING_CELLS)


def without_credentials(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name not in CREDENTIALS}


def trained_version(stdout: str, model: str) -> int:
    found = re.search(rf"trained {model} version (\d+) \(run (\w+)\)", stdout)
    assert found, stdout
    return int(found[1])


def one_line(stderr: str) -> str:
    """The one line a failing command wrote, besides MLflow's own log lines ("2026/01/01 ...
    INFO mlflow...: Creating a new experiment"), and no traceback."""
    mlflow_log = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARNING) mlflow")
    lines = [line for line in stderr.strip().splitlines() if not mlflow_log.match(line)]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def test_a_sample_trains_promotes_and_serves_through_the_team_server(
    python: Path, tumor: Path, server: TrackingServer, database: Database, tmp_path: Path
) -> None:
    env = server.client_env()
    began = time.monotonic()
    trained = run(python, "-m", f"{TUMOR}.train", "--n-estimators", "10", cwd=tmp_path, env=env)
    print(f"training through the server took {time.monotonic() - began:.1f} s")
    assert trained.returncode == 0, trained.stderr[-3000:]
    version = trained_version(trained.stdout, TUMOR)
    # The run and the version are in PostgreSQL, the model's files in the server's artifact
    # folder (proxied: the client wrote no file of its own); nothing went to a local store.
    run_id, status = database.runs(TUMOR)[-1]
    assert status == "FINISHED"
    assert (version, run_id) in database.versions(TUMOR)
    assert any(server.artifacts.rglob("MLmodel"))
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()

    promoted = run(
        python, "-m", f"{TUMOR}.promote", "--version", str(version), cwd=tmp_path, env=env
    )
    assert promoted.returncode == 0, promoted.stderr
    assert f"promoted {TUMOR} version {version} to models:/{TUMOR}@champion" in promoted.stdout
    aliases = database.rows(
        "SELECT alias, version FROM registered_model_aliases WHERE name = %s", TUMOR
    )
    assert ("champion", version) in aliases

    records = run(
        python,
        "-c",
        f"from {TUMOR} import pipeline; "
        "print(pipeline.run(pipeline.Parameters()).model_input.iloc[:2].to_json(orient='records'))",
        cwd=tmp_path,
    )
    port = free_port()
    command = [
        python,
        "-m",
        "uvicorn",
        f"{TUMOR}.serve:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = tmp_path / "serve.log"
    with background(command, cwd=tmp_path, env=env, log=log) as service:  # MODEL_URI: the default
        base = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{base}/ready", service, log)
        answer = httpx.post(f"{base}/predict", json=json.loads(records.stdout), timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["predictions"]) == 2
    assert body["implementation_status"] == "IMPLEMENTED"
    assert body["model_version"] == str(version)
    assert body["accuracy_claim"] and body["validation_status"] in ("VALIDATED", "UNVALIDATED")


def test_two_trainings_at_once_lose_no_run(
    python: Path, twin: Path, server: TrackingServer, database: Database, tmp_path: Path
) -> None:
    """Both race to create the experiment and the registered model, then register a version."""
    env = {**os.environ, **server.client_env()}
    command = [str(python), "-m", f"{TWIN}.train", "--cross-validation-folds", "0"]
    trainings = []
    for n in (1, 2):
        (tmp_path / str(n)).mkdir()
        trainings.append(
            subprocess.Popen(
                command,
                cwd=tmp_path / str(n),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [training.communicate(timeout=600) for training in trainings]
    for training, (_, stderr) in zip(trainings, outputs, strict=True):
        assert training.returncode == 0, stderr[-3000:]
    versions = sorted(trained_version(stdout, TWIN) for stdout, _ in outputs)
    assert versions == [1, 2]
    runs = database.runs(TWIN)  # both in the package's experiment, not one on Default
    assert [status for _, status in runs] == ["FINISHED", "FINISHED"], database.rows(
        "SELECT r.run_uuid, e.name, r.status FROM runs r JOIN experiments e"
        " ON r.experiment_id = e.experiment_id"
    )
    assert sorted(run_id for _, run_id in database.versions(TWIN)) == sorted(r for r, _ in runs)


def test_credentials_come_from_the_environment_only(
    python: Path, tumor: Path, server: TrackingServer, database: Database, tmp_path: Path
) -> None:
    runs_before = database.runs(TUMOR)
    anonymous = without_credentials({**os.environ, **server.client_env()})
    refused = subprocess.run(
        [python, "-m", f"{TUMOR}.train", "--n-estimators", "10"],
        cwd=tmp_path,
        env=anonymous,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    line = one_line(refused.stderr)
    assert line.startswith(f"train: cannot use the MLflow store {server.url}: "), line
    assert "401 Unauthorized" in line and "MLFLOW_TRACKING_USERNAME" in line, line
    assert database.runs(TUMOR) == runs_before
    denied = subprocess.run(
        [python, "-m", f"{TUMOR}.promote"],
        cwd=tmp_path,
        env=anonymous,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert denied.returncode == 2 and "401 Unauthorized" in one_line(denied.stderr), denied.stderr

    # The package reads no credential itself (MLflow does), and none reaches the store.
    reads = re.compile(r"(environ|getenv)\W+[\"']MLFLOW_TRACKING_(USERNAME|PASSWORD|TOKEN)")
    for source in tumor.rglob("*.py"):
        assert not reads.search(source.read_text()), source
    password = server.admin[1]
    assert not any(
        password in path.read_text(errors="replace") for path in tumor.rglob("*") if path.is_file()
    )
    stored = database.rows(
        "SELECT value FROM params UNION ALL SELECT value FROM tags"
        " UNION ALL SELECT value FROM model_version_tags"
    )
    assert not any(password in (value or "") for (value,) in stored)
    readme = (tumor / "README.md").read_text()
    assert all(name in readme for name in CREDENTIALS), (
        "the README names the credentials' variables"
    )


def test_server_going_away_during_training_fails_the_run_in_one_line(
    python: Path, paused: Path, server: TrackingServer, database: Database, tmp_path: Path
) -> None:
    env = {**os.environ, **server.client_env(**NO_RETRIES)}
    command = [str(python), "-m", f"{PAUSED}.train", "--cross-validation-folds", "0"]
    training = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not database.runs(PAUSED) and training.poll() is None:
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
        assert training.poll() is None, training.communicate()
        server.stop()
        (tmp_path / "resume").touch()
        began = time.monotonic()
        stdout, stderr = training.communicate(timeout=300)
        failed_in = time.monotonic() - began
    finally:
        if training.poll() is None:
            training.kill()
        server.start()
    print(f"train failed {failed_in:.1f} s after the server went away")
    assert training.returncode == 1, stdout + stderr
    line = one_line(stderr)
    assert line.startswith("train: cannot log the metrics and the honesty record: "), line
    assert f"the MLflow server {server.url} did not answer" in line, line
    assert "Connection refused" in line, line
    # The run could not be told it failed: the line says so, and the store agrees.
    [(run_id, status)] = database.runs(PAUSED)
    assert f"run {run_id} stays RUNNING" in line and status == "RUNNING"
    assert database.versions(PAUSED) == []  # nothing half-registered
    assert failed_in < 60

    # With the server back, the next training registers version 1 with all its honesty.
    (tmp_path / "resume").touch()
    again = run(python, *command[1:], cwd=tmp_path, env=server.client_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert trained_version(again.stdout, PAUSED) == 1
    [(version, run_of_version)] = database.versions(PAUSED)
    assert run_of_version == database.runs(PAUSED)[-1][0]
    tags = database.version_tags(PAUSED, version)
    assert {"implementation_status", "accuracy_claim", "honesty_warning", "data_sha256"} <= set(
        tags
    )
