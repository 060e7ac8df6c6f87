"""Outcomes fed back against signed prediction ids, counted beside the claim."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from iris_example import serve

from nb2prod_runtime import feedback
from nb2prod_runtime.feedback import FeedbackRefused, PredictionIds


@pytest.fixture(scope="module")
def client(trained) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("MLFLOW_TRACKING_URI", trained.tracking_uri)
        environment.setenv(feedback.KEY_VARIABLE, "a key every replica shares")
        yield TestClient(serve.create_app(trained.model_uri))


def live(client: TestClient, name: str) -> float:
    metrics = client.get("/metrics").text
    lines = [line for line in metrics.splitlines() if line.startswith(f"{name}{{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_each_prediction_has_an_id_that_takes_its_outcome(client: TestClient, trained) -> None:
    answer = client.post("/predict", json=trained.records[:2] * 2).json()
    predictions, ids = answer["predictions"], answer["prediction_ids"]
    assert len(ids) == len(predictions) == 4 and len(set(ids)) == 4
    outcomes_before, correct_before = (
        live(client, "live_outcomes_total"),
        live(client, "live_correct_total"),
    )
    wrong = (predictions[1] + 1) % 3
    sent = [
        {"prediction_id": ids[0], "outcome": predictions[0]},
        {"prediction_id": ids[1], "outcome": wrong},
    ]
    taken = client.post("/feedback", json=sent)
    assert taken.status_code == 200, taken.text
    assert taken.json() == {"counted": 2, "metric": "accuracy"}
    assert live(client, "live_outcomes_total") - outcomes_before == 2
    assert live(client, "live_correct_total") - correct_before == 1
    assert 0 < live(client, "claim_lower_bound") <= live(client, "claim_value") <= 1


def test_forged_altered_foreign_and_mistyped_outcomes_count_nothing(
    client: TestClient, trained
) -> None:
    (good,) = client.post("/predict", json=trained.records[0]).json()["prediction_ids"]
    payload, mac = good.split(".")
    other = feedback.PredictionIds(b"another key", "1").issue([0])[0]
    older = feedback.PredictionIds(b"a key every replica shares", "99").issue([0])[0]
    before = live(client, "live_outcomes_total")

    def send(token: str, outcome: object) -> httpx.Response:
        return client.post("/feedback", json={"prediction_id": token, "outcome": outcome})

    refused = {
        "forged": send(other, 0),
        "altered": send(payload + "x." + mac, 0),
        "unknown": send("nonsense", 0),
        "other version": send(older, 0),
        "a name for a label": send(good, "setosa"),
        "one bad of two": client.post(
            "/feedback",
            json=[{"prediction_id": good, "outcome": 0}, {"prediction_id": other, "outcome": 0}],
        ),
        "not JSON": client.post(
            "/feedback", content=b"{", headers={"content-type": "application/json"}
        ),
    }
    statuses = {name: answer.status_code for name, answer in refused.items()}
    assert statuses == {
        "forged": 403,
        "altered": 403,
        "unknown": 400,
        "other version": 409,
        "a name for a label": 422,
        "one bad of two": 403,
        "not JSON": 400,
    }
    assert "version 99" in refused["other version"].json()["detail"]
    assert live(client, "live_outcomes_total") == before


def test_an_expired_id_counts_nothing() -> None:
    ids = feedback.PredictionIds(b"k", "1", max_age=-1)
    (token,) = ids.issue([1])
    with pytest.raises(feedback.FeedbackRefused) as refused:
        ids.read(token)
    assert refused.value.status == 410


def test_a_regressor_takes_numbers_and_counts_their_error() -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    ids = feedback.PredictionIds(b"k", "3")
    taking = feedback.Feedback(
        feedback.LiveMetrics(registry), ids, {"accuracy_claim": "52.1 ±3.0 rmse (5-fold)"}
    )
    first, second = ids.issue([10.0, 20.0])
    assert taking.count([{"prediction_id": first, "outcome": 13}]) == 1
    assert taking.count({"prediction_id": second, "outcome": 16.0}) == 1
    labels = {"metric": "rmse", "model_version": "3"}
    assert registry.get_sample_value("live_squared_error_total", labels) == 25
    assert registry.get_sample_value("live_absolute_error_total", labels) == 7
    assert registry.get_sample_value("claim_lower_bound", labels) == pytest.approx(58.1)
    with pytest.raises(feedback.FeedbackRefused) as refused:
        taking.count({"prediction_id": first, "outcome": "high"})
    assert refused.value.status == 422


def test_a_key_longer_than_blake2b_takes_signs_and_verifies() -> None:
    """A Secret may hold a long key; BLAKE2b takes 64 bytes, so a longer one is hashed down,
    and another long key still does not verify the id."""
    long_key = b"k" * 100
    (issued,) = PredictionIds(long_key, "3").issue(["yes"])
    assert PredictionIds(long_key, "3").read(issued).prediction == "yes"
    with pytest.raises(FeedbackRefused) as refused:
        PredictionIds(b"j" * 100, "3").read(issued)
    assert refused.value.status == 403
