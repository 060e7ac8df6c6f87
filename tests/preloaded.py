"""Run `python -m MODULE` (or `python -c CODE`) as a child forked from a process that has
imported MLflow, scikit-learn, pandas and skops once.

A generated package's `train` spends about 8 of its 13 s of CPU importing those, in every
test that trains; a forked child starts with them imported and is otherwise the process
`python -m` would be: its own working folder, environment, argv, stdin from /dev/null, its
stdout and stderr in files, numpy's global generator seeded afresh, its exit code its own.
One preloaded process per interpreter per xdist worker serves that worker's tests one at a
time (the interpreter running the tests, or a venv's: the children are then what that venv's
`python -m` would be).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

# What the preloaded process runs: import, then fork a child per request (one JSON line on
# stdin), wait for it, and answer its exit code on stdout.
_SERVER = r"""
import atexit, importlib, json, os, runpy, sys, traceback
import mlflow, mlflow.sklearn, numpy, pandas, sklearn.ensemble, sklearn.model_selection
from mlflow.store.tracking import sqlalchemy_store
from nb2prod_runtime.skops_import import import_skops_io
import_skops_io()
import nb2prod_runtime.training

requests, replies = sys.stdin, sys.stdout
for line in requests:
    request = json.loads(line)
    replies.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(request["cwd"])
            importlib.invalidate_caches()  # what was installed since this process started
            os.environ.clear()
            os.environ.update(request["env"])
            paths = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
            sys.path[1:1] = paths
            for fd, target, mode in ((0, os.devnull, os.O_RDONLY),
                                     (1, request["stdout"], os.O_WRONLY),
                                     (2, request["stderr"], os.O_WRONLY)):
                opened = os.open(target, mode)
                os.dup2(opened, fd)
                os.close(opened)
            sys.stdin = open(0, closefd=False)
            numpy.random.seed()  # a new process's numpy draws other numbers than its siblings
            try:
                if "code" in request:  # python -c CODE
                    sys.argv = ["-c", *request["args"]]
                    exec(compile(request["code"], "<string>", "exec"), {"__name__": "__main__"})
                else:  # python -m MODULE
                    sys.argv = ["-m", *request["args"]]
                    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exit:  # as the interpreter does: None is 0, a message is 1
                if exit.code is None or isinstance(exit.code, int):
                    code = exit.code or 0
                else:
                    print(exit.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
        finally:
            try:
                atexit._run_exitfuncs()  # MLflow ends its runs and flushes its logging here
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    replies.write(json.dumps({"pid": pid}) + "\n")
    replies.flush()
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
    replies.flush()
"""


class Preloaded:
    """The preloaded process; `run` is `subprocess.run([python, "-m", module, *args])`."""

    def __init__(self, python: Path) -> None:
        self.python = python
        self.process = subprocess.Popen(
            [python, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        atexit.register(self.close)

    def run(
        self, module: str, *args: str, cwd: Path, env: Mapping[str, str], timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """`python -m module args` in `cwd` with exactly `env`."""
        command = [str(self.python), "-m", module, *args]
        return self._child({"module": module}, command, cwd, env, timeout)

    def run_code(
        self, code: str, cwd: Path, env: Mapping[str, str], timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """`python -c code` in `cwd` with exactly `env`."""
        command = [str(self.python), "-c", code]
        return self._child({"code": code}, command, cwd, env, timeout)

    def _child(
        self,
        what: dict[str, str],
        command: list[str],
        cwd: Path,
        env: Mapping[str, str],
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        with tempfile.TemporaryDirectory(prefix="nb2prod-preloaded-") as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            out.touch()
            err.touch()
            request = {
                **what,
                "args": command[3:],
                "cwd": str(cwd),
                "env": dict(env),
                "stdout": str(out),
                "stderr": str(err),
            }
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            pid = self._reply()["pid"]
            if not select.select([self.process.stdout], [], [], timeout)[0]:
                os.kill(pid, signal.SIGKILL)
                self._reply()
                raise subprocess.TimeoutExpired(command, timeout, out.read_text(), err.read_text())
            code = self._reply()["code"]
            return subprocess.CompletedProcess(command, code, out.read_text(), err.read_text())

    def _reply(self) -> dict[str, int]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the preloaded process ended")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=30)


def preloaded(python: Path | None = None) -> Preloaded:
    """This worker's preloaded process for `python` (the one running the tests by default),
    started at its first use."""
    return _preloaded(Path(python or sys.executable))


@functools.cache
def _preloaded(python: Path) -> Preloaded:
    return Preloaded(python)
