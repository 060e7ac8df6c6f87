# {{ cookiecutter._code.header }}
"""Train the model as the notebook does, inside one MLflow run that records its honesty.

`python -m {{ cookiecutter.package_name }}.train --help` lists the notebook's parameters as options.
The run logs the parameters, the honesty fields (params and tags), the metrics, the data
(dataset input and SHA-256), the code version and the model, then registers a model version
that carries the same honesty tags. A PLANNED model is refused before anything runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient

from {{ cookiecutter.package_name }} import honesty, lineage, pipeline
from {{ cookiecutter.package_name }}.model_io import ModelLoggingError, log_model

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MODEL_NAME: str = honesty.MODEL["model_name"]


def parse_parameters(argv: Sequence[str] | None = None) -> pipeline.Parameters:
    """The notebook's parameters, each overridable on the command line."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODEL_NAME}.train",
        description=f"Train {MODEL_NAME} from {honesty.MODEL['notebook']} into MLflow.",
    )
    for field in dataclasses.fields(pipeline.Parameters):
        option = "--" + field.name.lower().replace("_", "-")
        default = getattr(pipeline.Parameters(), field.name)
        if isinstance(default, bool):
            parser.add_argument(
                option, dest=field.name, default=default, action=argparse.BooleanOptionalAction
            )
        elif isinstance(default, int | float | str):
            parser.add_argument(
                option, dest=field.name, default=default, type=type(default), metavar="VALUE"
            )
        else:
            parser.add_argument(
                option, dest=field.name, default=default, type=json.loads, metavar="JSON"
            )
    return pipeline.Parameters(**vars(parser.parse_args(argv)))


def log_metrics(metrics: Mapping[str, Any]) -> dict[str, tuple[float, float | None]]:
    """Log each metric; a cross-validation array is logged as its mean and its spread."""
    logged: dict[str, tuple[float, float | None]] = {}
    for name, value in metrics.items():
        try:
            values = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            print(f"train: metric {name!r} is not a number; not logged", file=sys.stderr)
            continue
        if values.ndim == 0:
            logged[name] = (float(values), None)
            mlflow.log_metric(name, float(values))
        else:
            logged[name] = (float(values.mean()), float(values.std()))
            mlflow.log_metric(name, float(values.mean()))
            mlflow.log_metric(f"{name}_std", float(values.std()))
    return logged


def main(argv: Sequence[str] | None = None) -> int:
    params = parse_parameters(argv)
    status = honesty.MODEL["implementation_status"]
    try:
        honesty.require_trainable(status)
    except honesty.HonestyError as error:
        print(f"train: refused: {error}", file=sys.stderr)
        return 2
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", MODEL_NAME))
    with mlflow.start_run() as run:
        mlflow.log_params(dataclasses.asdict(params))
        try:
            result = pipeline.run(params)
        except Exception as error:
            cell, where = lineage.notebook_cell(error)
            origin = f"notebook cell {cell} ({where})" if cell else where
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            mlflow.set_tag("failure", f"{origin}: {message}")
            mlflow.end_run(status="FAILED")
            print(f"train: failed in code from {origin}: {message}", file=sys.stderr)
            return 1
        metrics = log_metrics(result.metrics)
        primary = honesty.MODEL.get("primary_metric")
        measured, spread = metrics.get(primary, (None, None)) if primary else (None, None)
        record = honesty.run_record(status, measured, spread)
        mlflow.log_params(record)
        mlflow.set_tags(record)
        digest = lineage.data_digest(result.data)
        mlflow.log_param("data_sha256", digest)
        data = lineage.dataset(result.data, digest)
        if data is not None:
            mlflow.log_input(data, context="training")
        provenance = {
            "code_version": lineage.code_version(),
            "notebook": honesty.MODEL["notebook"],
            "notebook_sha256": honesty.MODEL["notebook_sha256"],
        }
        mlflow.set_tags(provenance)
        try:
            version = log_model(result.model, result.model_input)
        except ModelLoggingError as error:
            mlflow.end_run(status="FAILED")
            print(f"train: cannot log the model: {error}", file=sys.stderr)
            return 1
        tags = {
            **record,
            **provenance,
            "validation_status": record["honesty_warning"],
            "primary_metric": primary or "",
            "primary_metric_value": "" if measured is None else repr(measured),
            "data_sha256": digest,
        }
        client = MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(MODEL_NAME, version, key, value)
    print(
        f"trained {MODEL_NAME} version {version} (run {run.info.run_id}): "
        f"{honesty.label(record['implementation_status'])}, {record['accuracy_claim']}, "
        f"{record['honesty_warning']}"
    )
    print(f"next: python -m {MODEL_NAME}.promote --version {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
