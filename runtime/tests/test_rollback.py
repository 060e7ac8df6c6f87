"""Rollback against a real MLflow registry: by hand (`promote --rollback`), by Alertmanager's
webhook (`POST /rollback` on the service), and the service following its alias without a
restart (MODEL_REFRESH_SECONDS). Versions are registered as in test_promote.py, each pointing at
one tiny saved model, in a store of each test's own.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from iris_example import promote, serve
from promotion_registry import Registry
from sklearn.datasets import load_iris
from test_promote import NAME, assert_accepted, assert_refused, champion, record, register

pytestmark = pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")
TOKEN = "a-token-from-a-secret"


def promoted(client: Registry, capsys: pytest.CaptureFixture[str], count: int) -> list[str]:
    """`count` versions, each passed by the gate in turn: the last one is the champion."""
    versions = [register(client, record(0.9)) for _ in range(count)]
    for version in versions:
        assert_accepted(client, capsys, version, [])
    return versions


def test_rollback_restores_the_previous_champion_and_records_why_on_both(client, capsys):
    first, second, third = promoted(client, capsys, 3)

    assert promote.main(["--rollback", "--reason", "ClaimNotHolding"]) == 0
    said = capsys.readouterr().out
    assert f"from version {third} to version {second}: ClaimNotHolding" in said
    assert champion(client) == second
    left = client.get_model_version(NAME, third).tags
    assert left["promotion_decision"] == "rolled back"
    assert left["rollback_reason"] == "ClaimNotHolding"
    assert left["rolled_back_to"] == second
    datetime.fromisoformat(left["rolled_back_at"])
    restored = client.get_model_version(NAME, second).tags
    assert restored["restored_from"] == third
    assert restored["restore_reason"] == "ClaimNotHolding"

    assert promote.main(["--rollback"]) == 0  # and again: the one before
    assert champion(client) == first


def test_rollback_never_goes_past_the_first_version_the_gate_passed(client, capsys):
    (first,) = promoted(client, capsys, 1)
    unpromoted = register(client, record(0.9))  # registered, never passed: not a candidate
    client.set_registered_model_alias(NAME, "champion", first)

    assert promote.main(["--rollback"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"refused: version {first} is the first version the gate passed" in error
    assert champion(client) == first
    assert "rolled_back_at" not in client.get_model_version(NAME, first).tags
    assert "restored_at" not in client.get_model_version(NAME, unpromoted).tags


def test_rollback_skips_versions_the_gate_refused_or_rolled_back_from(client, capsys):
    first, second = promoted(client, capsys, 2)
    planned = register(client, record(0.9, implementation_status="PLANNED"))
    assert_refused(client, capsys, planned, [], because="PLANNED")
    third = register(client, record(0.9))
    assert_accepted(client, capsys, third, [])
    assert promote.main(["--rollback"]) == 0
    assert champion(client) == second  # not the refused version
    assert promote.main(["--rollback"]) == 0
    assert champion(client) == first

    assert_accepted(client, capsys, third, [])  # passed again: a candidate again
    assert promote.main(["--rollback"]) == 0
    assert champion(client) == first  # the last passed before it; second was rolled back from


def test_rollback_with_no_champion_is_one_line(client, capsys):
    register(client, record(0.9))
    assert promote.main(["--rollback"]) == 2
    error = capsys.readouterr().err
    assert error == f"error: no version of {NAME} holds @champion: nothing to roll back\n"


def alert(name: str, fingerprint: str, **labels: str) -> dict[str, Any]:
    """Alertmanager's webhook body for one firing alert (its version 4 format)."""
    return {
        "version": "4",
        "status": "firing",
        "receiver": "rollback",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "rollback": "true", **labels},
                "annotations": {"summary": f"{name} fired"},
                "startsAt": "2026-12-05T10:00:00Z",
                "fingerprint": fingerprint,
            }
        ],
    }


def served_version(service: TestClient) -> str:
    return service.get("/health").json()["model_version"]


def roll_back(service: TestClient, body: dict[str, Any], token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return service.post("/rollback", json=body, headers=headers)


def one_row() -> list[dict[str, float]]:
    features, _ = load_iris(return_X_y=True, as_frame=True)
    return features.head(1).to_dict(orient="records")


def test_an_alert_rolls_back_once_and_the_service_serves_the_restored_version(
    client, capsys, monkeypatch
):
    first, second = promoted(client, capsys, 2)
    monkeypatch.setenv("ROLLBACK_TOKEN", TOKEN)
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    service = TestClient(serve.create_app())
    assert served_version(service) == second
    claim = alert("ClaimNotHolding", "f1", model_version=second, metric="accuracy")

    for token in (None, "not-the-token"):
        refused = roll_back(service, claim, token)
        assert refused.status_code == 401, refused.text
    assert champion(client) == second

    done = roll_back(service, claim)
    assert done.status_code == 200, done.text
    assert done.json() | {"reason": ""} == {
        "rolled_back": True,
        "from_version": second,
        "to_version": first,
        "reason": "",
    }
    assert champion(client) == first
    assert served_version(service) == first  # this worker at once, without a restart
    answered = service.post("/predict", json=one_row()).json()
    assert answered["model_version"] == first
    tags = client.get_model_version(NAME, second).tags
    assert tags["rollback_reason"] == "alert ClaimNotHolding: ClaimNotHolding fired"
    assert tags["rollback_alert"] == "ClaimNotHolding/f1/2026-12-05T10:00:00Z"

    again = roll_back(service, claim)  # Alertmanager's repeat, or a retry on another replica
    assert again.json()["rolled_back"] is False
    assert "already rolled back from version" in again.json()["reason"]
    stale = roll_back(service, alert("ClaimNotHolding", "f2", model_version=second))
    assert stale.json()["rolled_back"] is False
    assert f"version {second} the alert is about no longer holds" in stale.json()["reason"]
    assert champion(client) == first

    floor = roll_back(service, alert("MissingHonestyLabels", "f3", endpoint="/predict"))
    assert floor.status_code == 409
    assert "first version the gate passed" in floor.json()["detail"]
    assert champion(client) == first


def test_without_a_token_nothing_rolls_back(client, capsys, monkeypatch):
    promoted(client, capsys, 2)
    monkeypatch.delenv("ROLLBACK_TOKEN", raising=False)
    service = TestClient(serve.create_app())
    answer = roll_back(service, alert("ClaimNotHolding", "f1"), token="anything")
    assert answer.status_code == 401
    assert answer.json()["detail"] == "rollback is off: ROLLBACK_TOKEN is not set"


def test_alerts_that_do_not_ask_for_a_rollback_change_nothing(client, capsys, monkeypatch):
    _, second = promoted(client, capsys, 2)
    monkeypatch.setenv("ROLLBACK_TOKEN", TOKEN)
    service = TestClient(serve.create_app())
    resolved = alert("ClaimNotHolding", "f1")
    resolved["alerts"][0]["status"] = "resolved"
    unlabelled = alert("HighErrorRate", "f2")
    del unlabelled["alerts"][0]["labels"]["rollback"]
    for body in (resolved, unlabelled):
        answer = roll_back(service, body)
        assert answer.status_code == 200 and answer.json()["rolled_back"] is False
    assert roll_back(service, {"alerts": "none"}).status_code == 400
    assert champion(client) == second


def test_the_service_follows_its_alias_without_a_restart(client, capsys, monkeypatch):
    (first,) = promoted(client, capsys, 1)
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0.2")
    with TestClient(serve.create_app()) as service:  # the lifespan checks the alias
        assert served_version(service) == first
        second = register(client, record(0.9))
        assert_accepted(client, capsys, second, [])
        deadline = time.monotonic() + 30
        while served_version(service) != second:
            assert time.monotonic() < deadline, "the promoted version was never served"
            time.sleep(0.1)
        assert service.post("/predict", json=one_row()).json()["model_version"] == second


def test_a_version_that_fails_to_load_is_not_swapped_in_and_is_counted(
    client, capsys, monkeypatch, caplog, tmp_path: Path
):
    (first,) = promoted(client, capsys, 1)
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    service = TestClient(serve.create_app())
    missing = str(tmp_path / "no-such-model")
    broken = client.create_model_version(NAME, missing, tags=record(0.9)).version
    client.set_registered_model_alias(NAME, "champion", str(broken))
    with caplog.at_level(logging.ERROR):
        assert service.app.state.service.refresh() is False
    assert served_version(service) == first
    assert f"model version {broken} not swapped in, {first} keeps serving" in caplog.text
    metrics = service.get("/metrics").text
    assert f'model_refresh_failures_total{{model_version="{broken}"}} 1.0' in metrics
    assert service.app.state.service.refresh() is False  # not tried again until it moves
    assert service.post("/predict", json=one_row()).json()["model_version"] == first


def test_an_alias_that_cannot_be_read_is_said_once_and_the_version_keeps_serving(
    client, capsys, monkeypatch, caplog
):
    (first,) = promoted(client, capsys, 1)
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    service = TestClient(serve.create_app())
    client.delete_registered_model_alias(NAME, "champion")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # three checks, one line
            assert service.app.state.service.refresh() is False
    said = [r.getMessage() for r in caplog.records if "cannot read @champion" in r.getMessage()]
    assert len(said) == 1, said
    assert f"{first} keeps serving" in said[0]
    assert service.post("/predict", json=one_row()).json()["model_version"] == first

    caplog.clear()
    client.set_registered_model_alias(NAME, "champion", first)
    with caplog.at_level(logging.WARNING):
        assert service.app.state.service.refresh() is False  # the version it already serves
    assert "@champion of" in caplog.text and "reads again" in caplog.text
