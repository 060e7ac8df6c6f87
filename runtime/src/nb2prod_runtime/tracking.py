"""The MLflow store this package trains into, promotes in and serves from, and its failures
told in one line.

The store is ``MLFLOW_TRACKING_URI``: ``sqlite:///mlflow.db`` in the working folder when unset,
``http://...`` for a team's ``mlflow server``. A server's credentials are read by MLflow itself,
from ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``:
this package never reads, logs or stores them.
"""

from __future__ import annotations

import importlib.util
import os
import re

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# Stores MLflow opens through SQLAlchemy, which MLflow's client alone (mlflow-skinny) lacks.
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})
CREDENTIALS = (
    "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
    "to an account of that server"
)
# How MLflow's REST client words a request that never got an answer: the operating system's
# error ("[Errno 111] Connection refused"), or the client giving up waiting.
_NO_ANSWER = re.compile(r"\[Errno -?\d+\] [^'\")]+|Read timed out|Connection aborted")


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else the local sqlite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def server_problem(error: BaseException) -> str | None:
    """What went wrong with the tracking server, in words a user acts on; None when the error
    is not the server refusing or failing to answer a request."""
    if (database := database_without_client()) is not None:
        return database
    code = getattr(error, "error_code", "")
    if code == "UNAUTHENTICATED":
        return (
            f"the MLflow server {tracking_uri()} refused the request (401 Unauthorized): "
            f"{CREDENTIALS}"
        )
    if code == "PERMISSION_DENIED":
        return (
            f"the MLflow server {tracking_uri()} refused the request (403 Forbidden): the "
            "account lacks the permission; ask the server's admin"
        )
    message = str(getattr(error, "message", error))
    no_answer = _NO_ANSWER.search(message) if message.startswith("API request to") else None
    if no_answer:
        return f"the MLflow server {tracking_uri()} did not answer ({no_answer[0].strip()})"
    return None


def database_without_client() -> str | None:
    """Why a database store cannot be opened here, where only MLflow's client is installed (the
    serving image), or None. The store has to be served by ``mlflow server`` instead."""
    uri = tracking_uri()
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in DATABASE_SCHEMES or importlib.util.find_spec("sqlalchemy") is not None:
        return None
    return (
        f"MLFLOW_TRACKING_URI={uri} is a database, and this environment has MLflow's client "
        f"only (mlflow-skinny, as the serving image): run `mlflow server --backend-store-uri "
        f"{uri}` where the database is, and set MLFLOW_TRACKING_URI to its http:// address"
    )
