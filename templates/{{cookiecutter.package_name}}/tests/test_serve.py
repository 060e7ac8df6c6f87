# {{ cookiecutter._code.header }}
"""The served app answers with every honesty field, and /metrics counts it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }} import honesty, serve


@pytest.fixture(scope="module")
def client(trained) -> TestClient:
    import os

    os.environ["MLFLOW_TRACKING_URI"] = trained.tracking_uri
    return TestClient(serve.create_app(trained.model_uri))


def test_one_record_carries_every_honesty_field(client: TestClient, trained) -> None:
    response = client.post("/predict", json=trained.records[0])
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["predictions"]) == 1
    for field in (*honesty.RESPONSE_FIELDS, "model_version"):
        assert body[field], field
    assert body["implementation_status"] == honesty.MODEL["implementation_status"]
    assert body["model_version"] == trained.version
    if honesty.MODEL["implementation_status"] == "HEURISTIC":
        assert body["uncertainty"]


def test_batch(client: TestClient, trained) -> None:
    response = client.post("/predict", json=trained.records)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == len(trained.records)


def test_malformed_input_names_the_field(client: TestClient, trained) -> None:
    record = dict(trained.records[0])
    field = next(iter(record))
    record[field] = "not a number" if not isinstance(record[field], str) else None
    response = client.post("/predict", json=record)
    assert response.status_code == 422
    assert field in response.text


def test_health_ready_and_metrics(client: TestClient, trained) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    client.post("/predict", json=trained.records[0])
    metrics = client.get("/metrics").text
    assert "predictions_total{" in metrics
    assert "honesty_compliant_responses_total{" in metrics
    assert "prediction_latency_seconds_bucket" in metrics
