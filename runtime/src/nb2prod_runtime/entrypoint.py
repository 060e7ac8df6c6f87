"""Start the service as the container does: a clean metrics folder, then the server command.

``python -m <package>.entrypoint [COMMAND...]`` (``main("<package>.serve:app")``) clears
``PROMETHEUS_MULTIPROC_DIR`` (a temporary folder when unset), where each worker process writes
its metric values, so counts left by an earlier run are not added to this one's; then it
replaces itself with COMMAND, by default one uvicorn serving the app on ``PORT`` (8000) with
``WEB_CONCURRENCY`` workers (uvicorn reads that variable itself; default 1, the right number
under Kubernetes, which scales by pods). On SIGTERM uvicorn stops taking connections and lets
the requests in flight finish, for at most ``UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN`` seconds.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nb2prod_runtime.feedback import KEY_VARIABLE

METRIC_FILES = ("counter", "gauge", "histogram", "summary")  # how prometheus_client names them
DEFAULT_PORT = "8000"


def default_command(app: str) -> list[str]:
    """uvicorn on every interface, on PORT: a platform that assigns the port (host networking,
    several services on one machine) sets it, and the HEALTHCHECK asks the same port."""
    port = os.environ.get("PORT", DEFAULT_PORT)
    return ["uvicorn", app, "--host", "0.0.0.0", "--port", port]


def clean_metrics_folder() -> Path:
    """PROMETHEUS_MULTIPROC_DIR without the files metric values were kept in, created if needed.

    Only prometheus_client's own files are removed (counter_*.db, gauge_*.db...): a variable
    pointing at the wrong folder loses nothing else. The folder must hold nothing but them all
    the same, since /metrics reads every *.db file in it.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(configured or tempfile.mkdtemp(prefix="prometheus-"))
    folder.mkdir(parents=True, exist_ok=True)
    for kind in METRIC_FILES:
        for path in folder.glob(f"{kind}_*.db"):
            path.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def main(app: str, argv: Sequence[str] | None = None) -> None:
    """Serve `app` (``module:attribute``) unless `argv` (default: the command line) asks
    for another command."""
    command = list(argv if argv is not None else sys.argv[1:]) or default_command(app)
    clean_metrics_folder()
    if not os.environ.get(KEY_VARIABLE):  # one key for every worker, so any takes feedback
        os.environ[KEY_VARIABLE] = secrets.token_urlsafe(32)
        print(
            f"entrypoint: {KEY_VARIABLE} is not set: prediction ids verify in this pod only; "
            "set one key for every replica (a Secret)",
            file=sys.stderr,
        )
    if command[0] == "uvicorn":  # the uvicorn of this interpreter, as `python -m` would pick
        command = [sys.executable, "-m", *command]
    os.execvp(command[0], command)
