"""Shared helpers: write small notebooks, run the real CLI, start servers on 127.0.0.1."""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import site
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import nbformat
import pytest
from preloaded import preloaded

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_notebooks"
SCHEMAS = Path(os.environ.get("NB2PROD_SCHEMAS", Path.home() / ".cache" / "nb2prod-schemas"))


def fetched_schema(name: str) -> Path:
    """A schema .ci/fetch-schemas fetched from a package registry (tests reach no other host):
    skipped where it was not fetched, a failure under CI, whose .ci/run fetches it."""
    path = SCHEMAS / name
    if not path.exists():
        set_up_by_ci(f"{path} is missing: run .ci/fetch-schemas")
    return path


def set_up_by_ci(missing: str) -> NoReturn:
    """What .ci/run sets up is missing: a skip here, a failure under CI."""
    if os.environ.get("CI"):
        raise AssertionError(missing)
    pytest.skip(missing)


ENVIRONMENT_AT_START = dict(os.environ)


@pytest.fixture(autouse=True, scope="module")
def environment_as_at_start() -> Iterator[None]:
    """Every module starts from the environment the session started with. In-process tests leak
    into it (``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI``), and a subprocess
    started later in the same worker would otherwise train into another test's store."""
    os.environ.clear()
    os.environ.update(ENVIRONMENT_AT_START)
    yield


FEAST_ENV = Path(os.environ.get("NB2PROD_FEAST_ENV", Path.home() / ".cache" / "nb2prod-feast"))


def feast_python() -> Path:
    """The Python of the venv .ci/feast-env makes, where Feast is installed: skipped where it
    was not made, a failure under CI, whose .ci/run makes it."""
    python = FEAST_ENV / "bin" / "python"
    if not python.exists():
        set_up_by_ci(f"{python} is missing: run .ci/feast-env")
    return python


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: int = 120) -> Run:
    """Run `python -m nb2prod` in a subprocess, as a user would."""
    done = subprocess.run(
        [sys.executable, "-m", "nb2prod", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )
    return Run(done.returncode, done.stdout, done.stderr)


# Where the interpreter running the tests finds its packages: a virtualenv's site-packages (and
# the system's too if it was made with --system-site-packages) or the system's, and the user's
# when it reads them.
SHARED_SITE = [
    path
    for path in [
        *([site.getusersitepackages()] if site.ENABLE_USER_SITE else []),
        *site.getsitepackages(),
    ]
    if Path(path).is_dir()
]


def fresh_venv(root: Path) -> Path:
    """A new virtual environment that sees the packages of the interpreter running the tests, so
    no network is needed.

    It sees them through a .pth file that `site.addsitedir`s each of SHARED_SITE (so the .pth
    files there, an editable install's, are read too): `system_site_packages=True` would see
    the base interpreter's packages, not those of a virtualenv running the tests. The file sorts
    after any other .pth in the venv's own site-packages, which comes first on sys.path: what
    is installed into the venv afterwards (nb2prod's wheel, a generated package) shadows the
    shared packages, so a test sees exactly what a user's install would give.
    """
    venv.EnvBuilder(with_pip=False).create(root)
    (own,) = root.glob("lib/python*/site-packages")
    shared = "".join(f"import site; site.addsitedir({path!r})\n" for path in SHARED_SITE)
    (own / "zz-shared-site-packages.pth").write_text(shared)
    return root / "bin" / "python"


def install_into(python: Path, target: Path | str) -> None:
    """`pip install --no-deps` a wheel or a project folder into the venv of `python`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(target),
        ],
        check=True,
        capture_output=True,
    )


def run(python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None):
    """Run `python ARGS` in `cwd` (e.g. a generated package's train or promote module)."""
    return subprocess.run(
        [python, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@functools.cache
def _empty_store() -> Path:
    """A sqlite store with MLflow's tables and nothing in them, made once per worker."""
    from mlflow import MlflowClient  # only the tests that train pay for importing MLflow

    folder = Path(tempfile.mkdtemp(prefix="nb2prod-empty-store-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def store_in(folder: Path) -> str:
    """A new sqlite store, `folder`/mlflow.db, the one a package's `train` makes by default, as
    a copy of an empty one: MLflow makes a store's tables by running its schema migrations,
    seconds of every training in a new folder otherwise. Returns its tracking URI."""
    path = folder / "mlflow.db"
    if not path.exists():
        shutil.copyfile(_empty_store(), path)
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            # the Default experiment's artifacts belong beside this store, not the empty one
            artifacts = folder.resolve() / "mlruns" / "0"
            db.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                (str(artifacts),),
            )
    return f"sqlite:///{path}"


def train_package(package: Path, work: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Run a generated package's `train` in `work`, into the sqlite store there, with `options`
    (`--cross-validation-folds 0` where the folds would only cost time): `python -m` as a child
    of a process that has imported MLflow and scikit-learn already (preloaded)."""
    name = next(p.name for p in package.iterdir() if (p / "train.py").is_file())
    env = {"PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": store_in(work)}
    return preloaded().run(f"{name}.train", *options, cwd=work, env={**os.environ, **env})


def run_beside_package(package: Path, work: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run `python -c code` as a client of a package trained in `work` (train_package): the
    package importable, its registry the sqlite store there."""
    env = {"PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    return run_code(code, cwd=work, env=env)


def run_code(
    code: str, *, cwd: Path, env: Mapping[str, str] | None = None, python: Path | None = None
):
    """`python -c code` in `cwd`, `env` over this process's environment, as a child of the
    preloaded `python` (a client of a generated package: its service, its registry)."""
    return preloaded(python).run_code(code, cwd=cwd, env={**os.environ, **(env or {})})


def run_module(
    module: str,
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    python: Path | None = None,
):
    """`python -m module args` in `cwd`, `env` over this process's environment, as a child of
    the preloaded `python` (a generated package's `train`, `promote` or tests)."""
    return preloaded(python).run(module, *args, cwd=cwd, env={**os.environ, **(env or {})})


def last_json_line(output: str) -> Any:
    """What the code printed last, as JSON (libraries may print before it)."""
    return json.loads(output.strip().splitlines()[-1])


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def background(
    command: Sequence[str | Path], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process writing to `log`, stopped (killed after 30 s) however the test ends."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_answers(
    url: str, process: subprocess.Popen[bytes], log: Path, *, seconds: float = 120
) -> None:
    """Until GET `url` answers 200; fails with the log's end if the process exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: the process exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def notebook(cells: list[str | dict[str, Any]], metadata: dict[str, Any] | None = None):
    """A v4 notebook; a cell is its source, or a dict with source, tags, execution_count.

    Cell ids are fixed (nbformat would draw random ones) so a notebook, and the sha256 that
    generated code quotes, is the same on every run.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(
        metadata
        if metadata is not None
        else {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    for count, cell in enumerate(cells, start=1):
        spec = {"source": cell} if isinstance(cell, str) else dict(cell)
        if spec.pop("markdown", False):
            nb.cells.append(nbformat.v4.new_markdown_cell(spec["source"], id=f"cell-{count}"))
            continue
        code = nbformat.v4.new_code_cell(spec["source"], id=f"cell-{count}")
        code.execution_count = spec.get("execution_count", count)
        if "tags" in spec:
            code.metadata["tags"] = spec["tags"]
        nb.cells.append(code)
    return nb


@pytest.fixture
def write_notebook(tmp_path: Path) -> Callable[..., Path]:
    def write(cells: list[str | dict[str, Any]], name: str = "nb.ipynb", **kwargs: Any) -> Path:
        path = tmp_path / name
        nbformat.write(notebook(cells, **kwargs), path)
        return path

    return write


# The smallest notebook nb2prod accepts: a model fitted and measured on held-out data.
TRAINING_CELLS = [
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split",
    "X, y = load_iris(return_X_y=True)",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "model = LogisticRegression(max_iter=200)\nmodel.fit(X_train, y_train)",
    "accuracy = accuracy_score(y_test, model.predict(X_test))",
]


# The files that take longest (an image build, a team server, notebook runs, trainings) are
# handed out first, so that the workers finish together rather than one running the last
# slow file alone.
SLOW_FIRST = (
    "test_container_image.py",
    "test_feature_store.py",
    "test_team_mlflow_server.py",
    "test_verify.py",
    "test_pytorch_serving.py",
    "test_keras.py",
    "test_tensorflow.py",
    "test_generated_package.py",
    "test_generated_e2e.py",
    "test_serving.py",
    "test_prometheus_live.py",
    "test_corpus_subset.py",
    "test_measured_claims.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))
