"""Train the generated package with its own `train` module, and mark the run with the verdict."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb2prod.errors import InputError
from nb2prod.verify.kernel import Sample

# anywhere in the output: a library's progress bar may end without a newline before it
_TRAINED = re.compile(r"trained \S+ version (?P<version>\d+) \(run (?P<run>[0-9a-f]+)\)")


@dataclass(frozen=True)
class PackageRun:
    run_id: str
    version: str
    metrics: dict[str, float]
    seconds: float


def require_package(package_dir: Path, name: str) -> None:
    """Said before the notebook runs for minutes, not after."""
    if not (package_dir / name / "train.py").is_file():
        raise InputError(
            package_dir,
            f"is not the package convert writes for this notebook (no {name}/train.py)",
            hint="pass the folder convert wrote, or convert the notebook first",
        )


class Training:
    """The package's training, running in its own process while the notebook runs in its
    kernel: verify takes as long as the slower of the two, not their sum. Its output is read
    as it comes (a full pipe would stop it)."""

    def __init__(
        self,
        package_dir: Path,
        name: str,
        tracking_uri: str,
        seeding: str,
        train_args: tuple[str, ...] = (),
    ) -> None:
        require_package(package_dir, name)
        self.package_dir, self.tracking_uri = package_dir, tracking_uri
        path = os.pathsep.join(filter(None, [str(package_dir), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": path}
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _training(name, seeding), *train_args],
            cwd=package_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.outputs = ("", "")
        self.seconds = 0.0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        self.outputs = self.process.communicate()
        self.seconds = time.perf_counter() - self.started

    def result(self) -> PackageRun:
        """Wait for the training; the run it logged, or InputError with its last line."""
        self.reader.join()
        stdout, stderr = self.outputs
        trained = _TRAINED.search(stdout)
        if self.process.returncode != 0 or trained is None:
            said = (stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(self.package_dir, f"the package's training failed: {said}")
        from mlflow import MlflowClient

        run = MlflowClient(self.tracking_uri).get_run(trained["run"])
        return PackageRun(trained["run"], trained["version"], dict(run.data.metrics), self.seconds)

    def stop(self) -> None:
        """End the training (the notebook failed, or verify was stopped)."""
        if self.process.poll() is None:
            self.process.kill()
        self.reader.join()


def train_package(package_dir: Path, name: str, tracking_uri: str, seeding: str = "") -> PackageRun:
    """`python -m <name>.train` in the package's folder, into `tracking_uri`; `seeding` runs
    first, in the same interpreter."""
    return Training(package_dir, name, tracking_uri, seeding).result()


def _training(name: str, seeding: str) -> str:
    """What `python -m <name>.train` runs, after `seeding`."""
    module = f"{name}.train"
    run = f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return f"{seeding}import runpy\n{run}\n"


def record_parity(
    tracking_uri: str,
    run: PackageRun,
    verified: bool,
    deltas: dict[str, float],
    rtol: float,
    seed: int | None,
) -> None:
    """The verdict on the run that trained the version: the promotion gate reads it there,
    and a reader of the run sees the seed both sides started from."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    client.set_tag(run.run_id, "parity_verified", "true" if verified else "false")
    client.set_tag(run.run_id, "parity_rtol", repr(rtol))
    client.set_tag(run.run_id, "parity_seed", "none" if seed is None else str(seed))
    for name, delta in deltas.items():
        client.log_metric(run.run_id, f"parity_delta_{name}", delta)


def package_predictions(
    package_dir: Path, tracking_uri: str, name: str, run: PackageRun, sample: Sample
) -> list:
    """What the package's logged model answers for the rows the notebook's model predicted on
    (for a forecaster, the stretch it forecast, asked as MLflow's statsmodels flavour is asked:
    one row of start and end), loaded as a client of the registry would load it. The package is
    importable meanwhile: a model may hold its types (the notebook's helpers, a forecast
    through another model)."""
    import mlflow
    import numpy as np
    import pandas as pd

    mlflow.set_tracking_uri(tracking_uri)
    # The notebook's rows may hold more than the model reads (a formula's target): MLflow
    # drops those columns, and its warning about them is not the user's to read here.
    logging.getLogger("mlflow.models.utils").setLevel(logging.ERROR)
    # what a model's library prints as it predicts (Keras's progress bar) is not verify's output
    with _importable(package_dir), contextlib.redirect_stdout(io.StringIO()):
        model = mlflow.pyfunc.load_model(f"models:/{name}/{run.version}")
        if sample.stretch is not None:
            start, end = sample.stretch
            rows = pd.DataFrame({"start": [start], "end": [end]})
        elif sample.frame is not None:
            rows = pd.read_json(io.StringIO(sample.frame), orient="split", dtype=False)
        else:
            rows = _as_signature_tensor(model, np.asarray(sample.array))
        answers = np.asarray(model.predict(rows))
        # one entry per row, as the notebook's side gives them (a row of class probabilities)
        return answers.reshape(len(answers), -1).tolist() if answers.ndim > 1 else answers.tolist()


def _as_signature_tensor(model: Any, rows: Any) -> Any:
    """JSON rows come back as float64; a tensor signature (a PyTorch module's float32) takes
    its own dtype, as serving gives it."""
    inputs = model.metadata.get_input_schema()
    if inputs is not None and inputs.is_tensor_spec() and len(inputs.inputs) == 1:
        return rows.astype(inputs.inputs[0].type)
    return rows


@contextmanager
def _importable(folder: Path) -> Iterator[None]:
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
