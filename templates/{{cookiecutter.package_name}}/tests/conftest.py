# {{ cookiecutter._code.header }}
"""Fixtures: a real MLflow store in a temporary folder, and one training run shared by tests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from {{ cookiecutter.package_name }} import honesty, pipeline, train


@dataclass(frozen=True)
class Trained:
    tracking_uri: str
    version: str
    model_uri: str
    records: list[dict[str, Any]]


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite tracking store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """Train once, with the notebook's default parameters, into a session store."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        assert train.main([]) == 0
        name = honesty.MODEL["model_name"]
        version = max(int(v.version) for v in MlflowClient(uri).search_model_versions(f"name='{name}'"))
        example = pipeline.run(pipeline.Parameters()).model_input
        rows = example.iloc[:3] if hasattr(example, "iloc") else example[:3]
        records = json.loads(rows.to_json(orient="records")) if hasattr(rows, "to_json") else rows.tolist()
        yield Trained(uri, str(version), f"models:/{name}/{version}", records)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
