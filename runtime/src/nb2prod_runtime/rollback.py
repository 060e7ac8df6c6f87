"""Rolling an alias back: to the version that held it before, among those the gate passed.

Used by ``python -m <package>.promote --rollback`` and by the service's ``POST /rollback``,
which Alertmanager calls when an alert that breaks the honesty contract fires. The alias moves
first, then both versions say why as tags: the one rolled back from is no longer a candidate
(its decision becomes "rolled back" until the gate passes it again), and the one restored says
what it replaced. The first version the gate passed for an alias is the floor: nothing earlier
is ever restored, since nothing earlier passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

ROLLED_BACK = "rolled back"  # the promotion_decision of a version rolled back from


class NoRollback(Exception):
    """Nothing to roll back: no version holds the alias, or none the gate passed before it.
    `exit_code` is promote's: 1 for a refusal (the floor), 2 for nothing to act on."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Rollback:
    """What a rollback did."""

    name: str
    alias: str
    replaced: str  # the version that held the alias
    restored: str  # the version that holds it now
    reason: str


def holder(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    """The version the alias points at; NoRollback when none does."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise NoRollback(f"no version of {name} holds @{alias}: nothing to roll back", 2) from None


def _promoted(version: ModelVersion) -> tuple[str, int]:
    """When the gate last passed a version (ISO time, so it sorts), the version number breaking
    ties within one second."""
    return version.tags.get("promoted_at", ""), int(version.version)


def previous(versions: Sequence[ModelVersion], alias: str, current: ModelVersion) -> ModelVersion:
    """The version the gate passed for `alias` most recently before `current`, not since rolled
    back from; NoRollback at the floor."""
    passed = [
        version
        for version in versions
        if version.tags.get("promotion_decision") == "accepted"
        and version.tags.get("promoted_alias") == alias
        and version.version != current.version
    ]
    if current.tags.get("promoted_at"):  # set by hand, it replaced whatever passed last
        passed = [version for version in passed if _promoted(version) < _promoted(current)]
    if not passed:
        raise NoRollback(
            f"version {current.version} is the first version the gate passed for @{alias}: "
            "there is nothing earlier to roll back to",
            1,
        )
    return max(passed, key=_promoted)


def handled(versions: Sequence[ModelVersion], alert: str) -> ModelVersion | None:
    """The version already rolled back from for this alert, if any: an alert Alertmanager sends
    again (its repeat interval, a retry, another replica) rolls back once."""
    return next((v for v in versions if v.tags.get("rollback_alert") == alert), None)


def versions_of(client: MlflowClient, name: str) -> list[ModelVersion]:
    return list(client.search_model_versions(f"name = '{name}'"))


def roll_back(
    client: MlflowClient, name: str, alias: str, reason: str, now: str, alert: str | None = None
) -> Rollback:
    """Move `alias` back to the previous version the gate passed, and record why on both."""
    current = holder(client, name, alias)
    return move_back(client, alias, current, versions_of(client, name), reason, now, alert)


def move_back(
    client: MlflowClient,
    alias: str,
    current: ModelVersion,
    versions: Sequence[ModelVersion],
    reason: str,
    now: str,
    alert: str | None = None,
) -> Rollback:
    """`roll_back` from the holder and the versions already read (the webhook reads them to
    check the alert first)."""
    name = current.name
    target = previous(versions, alias, current)
    client.set_registered_model_alias(name, alias, str(target.version))
    left = {
        "promotion_decision": ROLLED_BACK,
        "rolled_back_at": now,
        "rolled_back_to": str(target.version),
        "rollback_reason": reason,
    }
    if alert:
        left["rollback_alert"] = alert
    for key, value in left.items():
        client.set_model_version_tag(name, str(current.version), key, value)
    restored = {
        "restored_at": now,
        "restored_from": str(current.version),
        "restore_reason": reason,
    }
    for key, value in restored.items():
        client.set_model_version_tag(name, str(target.version), key, value)
    return Rollback(name, alias, str(current.version), str(target.version), reason)
