{%- if cookiecutter._code.feature_store -%}
# {{ cookiecutter._code.header }}
"""The Feast repository: training reads through it, the service answers entity keys from it,
and a feature view without its honesty tags stops both."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from {{ cookiecutter.package_name }} import feature_store, serve

try:
    feature_store.feast()  # as the package imports it: leaves the metrics settings alone
except feature_store.FeatureStoreError as missing:
    pytest.skip(str(missing), allow_module_level=True)


@pytest.fixture(scope="module")
def written(trained) -> pd.DataFrame:
    """What training wrote to the offline store, once materialized to the online store."""
    feature_store.materialize()
    return pd.read_parquet(feature_store.source_path(feature_store.definitions()))


@pytest.fixture(scope="module")
def client(trained, written) -> TestClient:
    os.environ["MLFLOW_TRACKING_URI"] = trained.tracking_uri
    return TestClient(serve.create_app(trained.model_uri))


def test_the_run_records_the_features_it_read(trained, written) -> None:
    version = MlflowClient(trained.tracking_uri).get_model_version(
        trained.model_uri.split("/")[1], trained.version
    )
    assert version.tags["feature_service"] == feature_store.SERVICE
    assert feature_store.VIEW in version.tags["feature_views"]
    assert version.tags["feature_implementation_status"] in ("IMPLEMENTED", "HEURISTIC")
    assert written[feature_store.JOIN_KEY].notna().all()


def test_a_key_is_answered_from_the_online_store_with_its_features_honesty(
    client: TestClient, written: pd.DataFrame
) -> None:
    keys = written[feature_store.JOIN_KEY].head(3).tolist()
    response = client.post("/predict/by-key", json={feature_store.JOIN_KEY: keys})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["predictions"]) == 3
    assert body["implementation_status"] and body["accuracy_claim"]
    assert body["feature_view"] == feature_store.VIEW
    assert body["feature_implementation_status"]
    weaker = feature_store.rank(body["feature_implementation_status"]) > feature_store.rank(
        body["implementation_status"]
    )
    assert ("feature_warning" in body) == weaker


def test_an_unknown_key_is_a_404_naming_it(client: TestClient, written: pd.DataFrame) -> None:
    unknown = int(written[feature_store.JOIN_KEY].max()) + 1000
    response = client.post("/predict/by-key", json={feature_store.JOIN_KEY: unknown})
    assert response.status_code == 404
    assert f"{feature_store.JOIN_KEY}={unknown}" in response.json()["detail"]


def test_a_view_without_its_honesty_tags_stops_the_service(
    trained, feature_repository: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    edited = tmp_path / "feature_repo"
    edited.mkdir()
    for name in ("feature_store.yaml", "definitions.py"):
        (edited / name).write_text((feature_repository / name).read_text())
    definitions = edited / "definitions.py"
    text = re.sub(r'\s*"implementation_status": [^\n]*', "", definitions.read_text())
    definitions.write_text(text)
    monkeypatch.setenv("FEATURE_REPO", str(edited))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.tracking_uri)
    with pytest.raises(feature_store.UntaggedFeatureView, match=feature_store.VIEW):
        serve.create_app(trained.model_uri)
{%- endif %}
