"""The served app answers with every honesty field, in every payload format, within limits."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from iris_example import honesty, serve


@pytest.fixture(scope="module")
def client(trained) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as environment:  # the store is found as in production
        environment.setenv("MLFLOW_TRACKING_URI", trained.tracking_uri)
        yield TestClient(serve.create_app(trained.model_uri))


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


def test_health_ready_and_metrics(client: TestClient, trained) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    client.post("/predict", json=trained.records[0])
    metrics = client.get("/metrics").text
    assert "predictions_total{" in metrics
    assert "honesty_compliant_responses_total{" in metrics
    assert "prediction_latency_seconds_bucket" in metrics


def mlflow_payloads(records: list[Any]) -> dict[str, Any]:
    """The same records in each payload format of `mlflow models serve`."""
    if not isinstance(records[0], dict):  # an unnamed tensor: rows of numbers
        return {"dataframe_split": {"data": records}, "instances": records, "inputs": records}
    columns = list(records[0])
    return {
        "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in records]},
        "dataframe_records": records,
        "instances": records,
        "inputs": {column: [r[column] for r in records] for column in columns},
    }


def test_invocations_take_mlflow_payloads_and_answer_honestly(client: TestClient, trained) -> None:
    expected = client.post("/predict", json=trained.records).json()["predictions"]
    for key, payload in mlflow_payloads(trained.records).items():
        response = client.post("/invocations", json={key: payload})
        assert response.status_code == 200, (key, response.text)
        body = response.json()
        assert body["predictions"] == expected, key
        for field in (*honesty.HONESTY.response_fields, "model_version"):
            assert body[field], (key, field)


def test_invocations_take_csv(client: TestClient, trained) -> None:
    if not isinstance(trained.records[0], dict):
        pytest.skip("an unnamed tensor has no columns to name in a CSV header")
    if any(isinstance(value, list) for value in trained.records[0].values()):
        pytest.skip("a field that holds a list (a forecaster's exog) has no CSV form")
    expected = client.post("/predict", json=trained.records).json()["predictions"]
    text = io.StringIO()
    columns = list(trained.records[0])
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows([["" if r[c] is None else r[c] for c in columns] for r in trained.records])
    response = client.post(
        "/invocations", content=text.getvalue(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected


def test_invocations_refuse_as_mlflow_does(client: TestClient) -> None:
    response = client.post("/invocations", json={"records": []})
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert "dataframe_split" in response.json()["message"]
    assert client.get("/ping").status_code == 200


def test_limits(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.tracking_uri)
    monkeypatch.setenv("PREDICT_MAX_BATCH", "1")
    one = json.dumps(trained.records[:1])
    two = (trained.records * 2)[:2]  # a forecaster's example is one record
    limit = 2 * len(json.dumps(two))  # two records fit, whatever their digits
    monkeypatch.setenv("MAX_BODY_BYTES", str(limit))
    monkeypatch.setenv("PREDICT_TIMEOUT_SECONDS", "0")  # no time limit: predicts on the loop
    limited = TestClient(serve.create_app(trained.model_uri))
    assert limited.post("/predict", json=trained.records[:1]).status_code == 200
    over = limited.post("/predict", json=two)
    assert over.status_code == 422 and "PREDICT_MAX_BATCH" in over.text
    big = json.dumps(trained.records[:1] * (limit // len(one) + 2))
    response = limited.post("/predict", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
