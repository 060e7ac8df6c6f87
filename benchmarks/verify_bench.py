"""What `nb2prod verify` costs on each sample, part by part, next to running the notebook alone.

For each notebook in ``sample_notebooks/`` (copied with its data into a temporary folder and
converted first, untimed) it measures, in one run:

* ``nbconvert --execute``: ``jupyter nbconvert --to notebook --execute``, a fresh process, as
  the baseline for "run the notebook once";
* the parts of verify, one after the other: planning, running the notebook with its probe
  cells in a fresh kernel, training the package into a temporary MLflow store (without the
  cross-validation, as verify does there), and comparing the metrics;
* ``verify``: ``python -m nb2prod verify`` as a user runs it (the notebook and the training
  run side by side there, and the training process also predicts on the notebook's rows), and
  its ratio to the baseline.

Only local files and a kernel on 127.0.0.1 are involved. Run it from the repository root::

    python benchmarks/verify_bench.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from nb2prod.backend.render import convert
from nb2prod.frontend.planner import build_plan
from nb2prod.verify.compare import rows
from nb2prod.verify.kernel import run_notebook
from nb2prod.verify.package_run import Training

T = TypeVar("T")
SAMPLES = Path(__file__).resolve().parents[1] / "sample_notebooks"


def timed(action: Callable[..., T], *args: Any, **options: Any) -> tuple[T, float]:
    started = time.perf_counter()
    result = action(*args, **options)
    return result, time.perf_counter() - started


def train(package: Path, name: str, uri: str) -> Any:
    training = Training(package, name, uri, "", ("--cross-validation-folds", "0"))
    trained = training.result()
    training.finish()
    return trained


def measure(sample: Path, folder: Path) -> list[float]:
    """Seconds for: nbconvert --execute, plan, the notebook with probes, training, comparing,
    and the whole of `nb2prod verify`."""
    for item in SAMPLES.iterdir():
        if item.is_file():
            shutil.copy(item, folder / item.name)
    notebook = folder / sample.name
    convert(notebook)
    executed = folder / "executed.ipynb"
    command = [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute"]
    _, baseline = timed(
        subprocess.run,
        [*command, "--output", str(executed), str(notebook)],
        check=True,
        capture_output=True,
    )
    plan, planning = timed(build_plan, notebook)
    metrics = [(m.name, m.cell) for m in plan.metrics]
    ran, running = timed(run_notebook, notebook, metrics, 600)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    package = folder / plan.package_name
    trained, training = timed(train, package, plan.package_name, uri)
    _, comparing = timed(rows, plan, ran.metrics, trained.metrics)
    verify = [sys.executable, "-m", "nb2prod", "verify", str(notebook), str(package)]
    _, whole = timed(subprocess.run, verify, check=True, capture_output=True)
    return [baseline, planning, running, training, comparing, whole]


def main() -> int:
    print(
        f"{'notebook':<22} {'nbconvert':>10} {'plan':>6} {'notebook':>9} {'train':>7} "
        f"{'compare':>8} {'verify':>7} {'ratio':>6}"
    )
    for sample in sorted(SAMPLES.glob("*.ipynb")):
        with tempfile.TemporaryDirectory() as scratch:
            figures = measure(sample, Path(scratch))
        baseline, planning, running, training, comparing, total = figures
        print(
            f"{sample.stem:<22} {baseline:>9.1f}s {planning:>5.1f}s {running:>8.1f}s "
            f"{training:>6.1f}s {comparing * 1000:>6.1f}ms {total:>6.1f}s "
            f"{total / baseline:>5.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
