"""Automatic rollback: the service's side of Alertmanager's webhook.

monitoring/alertmanager.yml routes every alert labelled ``rollback="true"`` (ClaimNotHolding,
MissingHonestyLabels: the honesty contract broken in production) to ``POST /rollback`` with a
bearer token. The service checks the token, takes the first firing alert that asks for a
rollback, and moves its alias back as ``promote --rollback`` would (``rollback.roll_back``).

- No token configured (ROLLBACK_TOKEN), no rollback: every call is a 401.
- Idempotent: the alert's identity (name, fingerprint, start) is recorded on the version rolled
  back from, and an alert about a version that no longer holds the alias changes nothing, so
  Alertmanager's repeats and retries, on any replica, roll back once.
- The floor holds: at the first version the gate passed, the answer is a 409 and nothing moves.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from mlflow import MlflowClient

from nb2prod_runtime import rollback
from nb2prod_runtime.tracking import tracking_uri

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "ROLLBACK_TOKEN"
LABEL = "rollback"  # alerts labelled rollback="true" roll the alias back


class RollbackRefused(Exception):
    """A webhook call that rolls nothing back, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def alert_identity(alert: Mapping[str, Any]) -> str:
    """One firing of one alert: the same string every time Alertmanager sends it again."""
    labels = alert.get("labels") or {}
    fingerprint = alert.get("fingerprint") or ",".join(
        f"{key}={value}" for key, value in sorted(labels.items())
    )
    return f"{labels.get('alertname', 'alert')}/{fingerprint}/{alert.get('startsAt', '')}"


def rollback_alerts(payload: Any) -> list[Mapping[str, Any]]:
    """The firing alerts of an Alertmanager webhook body that ask for a rollback, oldest first;
    RollbackRefused(400) for a body that is not one."""
    alerts = payload.get("alerts") if isinstance(payload, dict) else None
    if not isinstance(alerts, list) or not all(isinstance(alert, dict) for alert in alerts):
        raise RollbackRefused(400, "not an Alertmanager webhook body: no list of alerts")
    firing = [
        alert
        for alert in alerts
        if alert.get("status") == "firing"
        and isinstance(alert.get("labels"), dict)
        and alert["labels"].get(LABEL) == "true"
    ]
    return sorted(firing, key=lambda alert: str(alert.get("startsAt", "")))


class AlertRollback:
    """Rolls `alias` of `model_name` back when an authenticated alert asks for it."""

    def __init__(self, model_name: str, alias: str | None, token: str | None) -> None:
        self.model_name = model_name
        self.alias = alias
        self.token = token or None
        self.lock = threading.Lock()  # one rollback at a time in this process

    @classmethod
    def from_environment(cls, model_name: str, alias: str | None) -> AlertRollback:
        return cls(model_name, alias, os.environ.get(TOKEN_VARIABLE))

    def authenticate(self, authorization: str | None) -> None:
        if self.token is None:
            raise RollbackRefused(401, f"rollback is off: {TOKEN_VARIABLE} is not set")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            raise RollbackRefused(401, "a bearer token that is not this service's")

    def handle(self, authorization: str | None, body: bytes) -> dict[str, Any]:
        """Authenticate, then roll back for the first firing alert that asks; what was done."""
        self.authenticate(authorization)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise RollbackRefused(400, "the body is not JSON") from None
        alerts = rollback_alerts(payload)
        if self.alias is None:
            raise RollbackRefused(409, "this service serves a fixed model URI, not an alias")
        if not alerts:
            return {"rolled_back": False, "reason": f'no firing alert labelled {LABEL}="true"'}
        with self.lock:
            return self._roll_back(alerts[0])

    def _roll_back(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        assert self.alias is not None
        client = MlflowClient(tracking_uri=tracking_uri())
        identity = alert_identity(alert)
        labels = alert["labels"]
        versions = rollback.versions_of(client, self.model_name)
        done = rollback.handled(versions, identity)
        if done is not None:
            return {
                "rolled_back": False,
                "reason": f"already rolled back from version {done.version} for this alert",
            }
        try:
            current = rollback.holder(client, self.model_name, self.alias)
        except rollback.NoRollback as refusal:
            raise RollbackRefused(409, str(refusal)) from None
        about = labels.get("model_version")
        if about and about != str(current.version):
            return {
                "rolled_back": False,
                "reason": f"version {about} the alert is about no longer holds @{self.alias} "
                f"(version {current.version} does)",
            }
        summary = (alert.get("annotations") or {}).get("summary")
        reason = f"alert {labels.get('alertname', 'unnamed')}" + (f": {summary}" if summary else "")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            result = rollback.move_back(
                client, self.alias, current, versions, reason, now, alert=identity
            )
        except rollback.NoRollback as refusal:
            log.error("rollback refused for %s: %s", identity, refusal)
            raise RollbackRefused(409, str(refusal)) from None
        log.warning(
            "rolled back models:/%s@%s from version %s to version %s: %s",
            result.name,
            result.alias,
            result.replaced,
            result.restored,
            reason,
        )
        return {
            "rolled_back": True,
            "from_version": result.replaced,
            "to_version": result.restored,
            "reason": reason,
        }
