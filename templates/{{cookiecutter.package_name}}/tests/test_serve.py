# {{ cookiecutter._code.header }}
"""The served model answers this notebook's records with every honesty field, refuses malformed
ones naming what is wrong, and counts its answers. (Every payload format, the limits and the
error bodies are nb2prod-runtime's and tested there.)"""

from __future__ import annotations

{%- if cookiecutter._code.raw_route %}
import json
from typing import Any

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from {{ cookiecutter.package_name }} import features, honesty, serve
{%- else %}
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }} import honesty, serve
{%- endif %}


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
    assert serve.PredictResponse.model_validate_json(response.content).model_dump() == body
    for field in (*honesty.HONESTY.response_fields, "model_version"):
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
    if not isinstance(trained.records[0], dict):
        pytest.skip("an unnamed tensor has no fields: see test_malformed_rows_are_refused")
    record = dict(trained.records[0])
    field = next(iter(record))
    record[field] = "not a number" if not isinstance(record[field], str) else None
    response = client.post("/predict", json=record)
    assert response.status_code == 422
    assert field in response.text


def test_malformed_rows_are_refused(client: TestClient, trained) -> None:
    if isinstance(trained.records[0], dict):
        pytest.skip("records with names: see test_malformed_input_names_the_field")
    row = trained.records[0]
    if isinstance(row, list):
        cases = ((_with_last_value(row, "not a number"), "numbers"), (row[:-1], "shape"))
    else:  # a model of one unnamed value: a record is a bare number
        cases = (("not a number", "number"), ([[row]], "shape"))
    for bad, says in cases:
        for path, body in (("/predict", bad), ("/invocations", {"instances": [bad]})):
            response = client.post(path, json=body)
            assert response.status_code in (400, 422), (path, response.text)
            assert says in response.text, (path, response.text)


def _with_last_value(row: list[Any], value: Any) -> list[Any]:
    """The row with its innermost last number replaced: the same shape, one bad value."""
    if row and isinstance(row[-1], list):
        return [*row[:-1], _with_last_value(row[-1], value)]
    return [*row[:-1], value]

{%- if cookiecutter._code.raw_route %}


def test_records_of_the_loaded_data_get_the_answer_for_their_features(
    client: TestClient, trained
) -> None:
    """/predict/raw runs features_from_raw on a client's records. Training checked it row-wise
    and logged loaded rows as a client sends them: their answer is the model's answer for the
    features that function computes from them, and a version it could not check says why."""
    name = honesty.MODEL["model_name"]
    version = MlflowClient().get_model_version(name, trained.version)
    if version.tags.get("raw_input") != "row-wise":
        response = client.post("/predict/raw", json={})
        assert response.status_code == 409, response.text
        assert version.tags["raw_input"].removeprefix("not served: ") in response.json()["detail"]
        return
    spec = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/nb2prod/raw_input.json")
    records = spec["example"]
    raw = client.post("/predict/raw", json=records)
    assert raw.status_code == 200, raw.text
    for field in (*honesty.HONESTY.response_fields, "model_version"):
        assert raw.json()[field], field
    # the columns a record may leave out (the label) reach the function empty, as the service
    # hands them over
    loaded = pd.DataFrame(records).reindex(columns=spec["order"])
    computed = features.features_from_raw(loaded)
    columns = list(trained.records[0]) if isinstance(trained.records[0], dict) else []
    inputs = json.loads(computed[columns].to_json(orient="records"))
    assert raw.json()["predictions"] == client.post("/predict", json=inputs).json()["predictions"]
{%- endif %}


def test_health_ready_and_metrics(client: TestClient, trained) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    client.post("/predict", json=trained.records[0])
    metrics = client.get("/metrics").text
    assert "predictions_total{" in metrics
    assert "honesty_compliant_responses_total{" in metrics
    assert "prediction_latency_seconds_bucket" in metrics
