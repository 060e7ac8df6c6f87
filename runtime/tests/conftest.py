"""Fixtures: real MLflow stores in temporary folders, and one training run shared by tests.

Creating a sqlite store's tables takes seconds (MLflow runs its schema migrations, each
committed to disk), so they are created once per session and every store a test needs is a
copy of that empty one, made in milliseconds. The stores use sqlite's write-ahead log, which
syncs once per commit instead of several times; what MLflow stores is the same. Training runs
once per session too: the tests about what a run records, serving and the model's signature all
read that one run. The package they drive, iris_example, is what nb2prod generates from a
five-cell iris notebook: the runtime is tested through a real package, once, here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.models import Model
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))  # iris_example, the package under test

from iris_example import honesty, train
from promotion_registry import Registry


@dataclass(frozen=True)
class Trained:
    tracking_uri: str
    version: str
    model_uri: str
    records: list[dict[str, Any]]


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sqlite store with MLflow's tables and nothing in them, created once per session."""
    path = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")  # kept in the file, so every copy has it too
    MlflowClient(f"sqlite:///{path}").search_experiments()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the file that is copied
    return path


def store_in(folder: Path, empty_store: Path) -> str:
    """A fresh store in `folder`: a copy of the empty one. Returns its tracking URI."""
    shutil.copyfile(empty_store, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> Iterator[str]:
    """A fresh sqlite tracking store and registry for one test, found through the environment;
    the process's tracking URI is given back afterwards, as tests reading the session's store
    (`trained`) expect."""
    uri = store_in(tmp_path, empty_store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[Trained]:
    """Train once, with the notebook's default parameters, into a session store."""
    folder = tmp_path_factory.mktemp("trained")
    uri = store_in(folder, empty_store)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        with contextlib.chdir(folder):  # the store's artifacts (./mlruns) go beside it
            assert train.main([]) == 0
        name = honesty.MODEL["model_name"]
        version = max(
            int(v.version) for v in MlflowClient(uri).search_model_versions(f"name='{name}'")
        )
        model_uri = f"models:/{name}/{version}"
        # What the model takes, as training saved it: no second training run to find out.
        example = Model.load(model_uri).load_input_example(model_uri)
        records = (
            json.loads(example.to_json(orient="records"))
            if hasattr(example, "to_json")
            else np.asarray(example).tolist()
        )
        yield Trained(uri, str(version), model_uri, records)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny model, trained and saved once: the gate judges versions, never their files."""
    features, target = load_iris(return_X_y=True, as_frame=True)
    features, target = features[::7], target[::7]  # 22 rows, all three classes
    path = tmp_path_factory.mktemp("tiny-model") / "model"
    mlflow.sklearn.save_model(
        LogisticRegression(max_iter=500).fit(features, target),  # nb2prod: ignore[NBH107]
        path,
        input_example=features.head(2),
        pip_requirements=["scikit-learn"],
    )
    return str(path)


@pytest.fixture
def client(tracking: str, tiny_model: str) -> Registry:
    """A fresh sqlite tracking store and registry, found by the gate through the environment."""
    return Registry(tracking, tiny_model)
