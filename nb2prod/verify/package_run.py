"""Train the generated package with its own `train` module, and mark the run with the verdict."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from nb2prod.errors import InputError
from nb2prod.verify.kernel import Sample
from nb2prod.verify.package_side import REPLY

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
    as it comes (a full pipe would stop it). Once trained, the same process answers verify's
    requests (package_side): the run's metrics, the model's predictions, the verdict to record.
    """

    def __init__(
        self,
        package_dir: Path,
        name: str,
        tracking_uri: str,
        seeding: str,
        train_args: tuple[str, ...] = (),
    ) -> None:
        require_package(package_dir, name)
        self.package_dir, self.name = package_dir, name
        path = os.pathsep.join(filter(None, [str(package_dir), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": path}
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _training(name, seeding, tracking_uri), *train_args],
            cwd=package_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.trained: re.Match[str] | None = None
        self.seconds = 0.0
        self.stderr = ""
        self.readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(REPLY):
                self.replies.put(json.loads(line.removeprefix(REPLY)))
                continue
            if self.trained is None and (found := _TRAINED.search(line)):
                self.seconds = time.perf_counter() - self.started
                self.trained = found
                self.replies.put({"trained": True})
        self.replies.put(None)  # the process's output ended: it exited

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def result(self) -> PackageRun:
        """Wait for the training; the run it logged, or InputError with its last line."""
        if self.replies.get() is None or self.trained is None:
            self._failed("the package's training failed")
        assert self.trained is not None
        run, version = self.trained["run"], self.trained["version"]
        metrics = self._ask("metrics", run=run)["metrics"]
        return PackageRun(run, version, metrics, self.seconds)

    def predictions(self, run: PackageRun, sample: Sample) -> list:
        """What the package's logged model answers for the notebook's rows (package_side)."""
        answer = self._ask(
            "predict",
            name=self.name,
            version=run.version,
            frame=sample.frame,
            exact=sample.exact,
            array=sample.array,
            stretch=sample.stretch,
        )
        if "error" in answer:
            raise PredictionFailed(answer["type"])
        return answer["predictions"]

    def record_parity(
        self,
        run: PackageRun,
        verified: bool,
        deltas: dict[str, float],
        rtol: float,
        seed: int | None,
    ) -> None:
        """The verdict on the run that trained the version: the promotion gate reads it there,
        and a reader of the run sees the seed both sides started from. Ends the process."""
        tags = {
            "parity_verified": "true" if verified else "false",
            "parity_rtol": repr(rtol),
            "parity_seed": "none" if seed is None else str(seed),
        }
        self._ask("record", run=run.run_id, tags=tags, deltas=deltas)
        self.finish()

    def finish(self) -> None:
        """Let the process end: nothing more is asked of it."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        self.process.wait()
        for reader in self.readers:
            reader.join()

    def stop(self) -> None:
        """End the training (the notebook failed, or verify was stopped)."""
        if self.process.poll() is None:
            self.process.kill()
        self.finish()

    def _ask(self, op: str, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"op": op, **request}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self._failed("the package's training process ended early")
        answer = self.replies.get()
        if answer is None:
            self._failed("the package's training process ended early")
        assert answer is not None
        if "error" in answer and op != "predict":
            raise InputError(self.package_dir, f"verify could not read the run: {answer['error']}")
        return answer

    def _failed(self, what: str) -> NoReturn:
        self.stop()
        said = (self.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(self.package_dir, f"{what}: {said}")


class PredictionFailed(Exception):
    """The package's model did not predict on the notebook's rows (the type of its error)."""


def _training(name: str, seeding: str, tracking_uri: str) -> str:
    """What `python -m <name>.train` runs, after `seeding`; then verify's requests."""
    module = f"{name}.train"
    return (
        f"{seeding}import runpy\n"
        "try:\n"
        f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    if exit.code not in (0, None):\n"
        "        raise\n"
        "from nb2prod.verify.package_side import answer_requests\n"
        f"answer_requests({tracking_uri!r})\n"
    )
