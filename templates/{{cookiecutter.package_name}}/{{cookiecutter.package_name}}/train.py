# {{ cookiecutter._code.header }}
"""Train the model as the notebook does, inside one MLflow run that records its honesty.

`python -m {{ cookiecutter.package_name }}.train --help` lists the notebook's parameters as options.
The run logs the parameters, the honesty fields (params and tags), the metrics, the data
(dataset input and SHA-256), the code version and the model, then registers a model version
that carries the same honesty tags. The accuracy claim is the package's own measurement: k-fold
cross-validation where it can (see measure.py), else the notebook's held-out metric. A PLANNED
model is refused before anything runs.

Any failure ends in one line on stderr naming its cause (and the notebook cell, when the code
came from one), no traceback: exit code 2 when nothing could run (a PLANNED model, an MLflow
store that cannot be used), 1 when training or logging failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

{%- if cookiecutter._code.feature_store %}
from {{ cookiecutter.package_name }} import feature_store, honesty, lineage, measure, pipeline, tracking
{%- else %}
from {{ cookiecutter.package_name }} import honesty, lineage, measure, pipeline, tracking
{%- endif %}
from {{ cookiecutter.package_name }}.model_io import ModelLoggingError, log_model

MODEL_NAME: str = honesty.MODEL["model_name"]


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """Options of training itself, not of the notebook: the types skops may load, and how many
    folds the package's own cross-validation uses."""

    trusted_types: tuple[str, ...] = ()
    cross_validation_folds: int | None = None  # None: the default, within a time budget


def parse_args(
    argv: Sequence[str] | None = None,
) -> tuple[pipeline.Parameters, TrainingOptions]:
    """The notebook's parameters, each overridable on the command line, and training's options."""
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
    options = parser.add_argument_group("training options (not the notebook's)")
    options.add_argument(
        "--trust-type",
        dest="nb2prod_trusted_types",
        action="append",
        default=[],
        metavar="MODULE.TYPE",
        help="a type in the model that skops may construct when it is loaded (repeatable; also "
        "NB2PROD_TRUSTED_TYPES); only trust code you ship: see 'Trusted types' in README.md",
    )
    options.add_argument(
        "--cross-validation-folds",
        dest="nb2prod_folds",
        type=int,
        default=None,
        metavar="K",
        help="folds of the package's own cross-validation, which the accuracy claim comes from "
        f"(default {measure.DEFAULT_FOLDS}, unless the notebook's steps took over "
        f"{measure.UNASKED_BUDGET_SECONDS:.0f} s; 0 keeps the notebook's held-out metric)",
    )
    values = vars(parser.parse_args(argv))
    chosen = TrainingOptions(
        tuple(values.pop("nb2prod_trusted_types")), values.pop("nb2prod_folds")
    )
    return pipeline.Parameters(**values), chosen


def parse_parameters(argv: Sequence[str] | None = None) -> pipeline.Parameters:
    """The notebook's parameters, each overridable on the command line."""
    return parse_args(argv)[0]


class TrainingFailed(Exception):
    """Training stopped; the message is the one line shown, `code` the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def cause(error: BaseException) -> str:
    """An error in one line: what the tracking server did, or the type and message's first line."""
    problem = tracking.server_problem(error)
    if problem:
        return problem
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def origin(error: BaseException) -> str:
    """Where the error was raised: the notebook cell its code came from, or the package line."""
    cell, where = lineage.notebook_cell(error)
    return f"notebook cell {cell} ({where})" if cell else where


def located(error: BaseException) -> str:
    """The cause, and the notebook cell when code from one raised it (a helper, say)."""
    cell, _ = lineage.notebook_cell(error)
    return f"{cause(error)} (in code from {origin(error)})" if cell else cause(error)


@contextlib.contextmanager
def stage(doing: str, code: int = 1) -> Iterator[None]:
    """Whatever goes wrong in the block ends training with one line: what failed, and why."""
    try:
        yield
    except TrainingFailed:
        raise
    except Exception as error:
        raise TrainingFailed(f"{doing}: {located(error)}", code) from error


def experiment_id(name: str) -> str:
    """The experiment's id, created when missing. Two trainings that create it at once both
    get it: `mlflow.set_experiment(name)` leaves the one that loses that race on the Default
    experiment, where its run would be lost from view."""
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.get_experiment_by_name(name)
        if found is None:  # created by the other training, then deleted at once
            raise TrainingFailed(f"experiment {name!r} was created and deleted meanwhile", 2)
    return found.experiment_id


@contextlib.contextmanager
def ending(run_id: str) -> Iterator[None]:
    """Ends the run FINISHED, or FAILED when the block fails (KILLED on Ctrl-C). A server that
    cannot be told (it went away) is named in the failure's one line, never raised over it."""
    try:
        yield
    except BaseException as error:
        status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        try:
            mlflow.end_run(status)
        except Exception as unrecorded:
            if isinstance(error, TrainingFailed):
                raise TrainingFailed(
                    f"{error}; run {run_id} stays RUNNING in the store, since it could not be "
                    f"marked {status} either",
                    error.code,
                ) from unrecorded
        raise
    with stage(f"cannot end run {run_id}"):
        mlflow.end_run()


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
    params, options = parse_args(argv)
    try:
        version, run_id, record = train(params, options)
    except TrainingFailed as failure:
        print(f"train: {failure}", file=sys.stderr)
        return failure.code
    print(
        f"trained {MODEL_NAME} version {version} (run {run_id}): "
        f"{honesty.label(record['implementation_status'])}, {record['accuracy_claim']}, "
        f"{record['honesty_warning']}"
    )
    print(f"next: python -m {MODEL_NAME}.promote --version {version}")
    return 0


def train(
    params: pipeline.Parameters, options: TrainingOptions
) -> tuple[str, str, dict[str, str]]:
    """One MLflow run: the notebook's steps, then what they produced. Returns the version, the
    run id and the honesty record; any failure is a TrainingFailed naming its cause."""
    status = honesty.MODEL["implementation_status"]
    try:
        honesty.require_trainable(status)
    except honesty.HonestyError as error:
        raise TrainingFailed(f"refused: {error}", code=2) from None
    uri = tracking.tracking_uri()
    with stage(f"cannot use the MLflow store {uri}", code=2):
        mlflow.set_tracking_uri(uri)
        experiment = experiment_id(os.environ.get("MLFLOW_EXPERIMENT_NAME", MODEL_NAME))
        mlflow.set_experiment(experiment_id=experiment)
        run = mlflow.start_run()
    with ending(run.info.run_id):
        with stage("cannot log the parameters"):
            mlflow.log_params(dataclasses.asdict(params))
        started = time.perf_counter()
        try:
            result = pipeline.run(params)
{%- if cookiecutter._code.feature_store %}
        except feature_store.FeatureStoreError as error:
            with contextlib.suppress(Exception):
                mlflow.set_tag("failure", f"feature store: {error}")
            raise TrainingFailed(f"feature store: {error}", 2) from None
{%- endif %}
        except Exception as error:
            with contextlib.suppress(Exception):  # the line below says it, recorded or not
                mlflow.set_tag("failure", f"{origin(error)}: {cause(error)}")
            raise TrainingFailed(f"failed in code from {origin(error)}: {cause(error)}") from error
        with stage("cannot log the metrics and the honesty record"):
            metrics = log_metrics(result.metrics)
        with stage("cannot measure the model"):
            folds, why_not = measure.folds_to_use(
                options.cross_validation_folds, time.perf_counter() - started
            )
            measured = measure.measure(result.model, result.fit_data, metrics, folds, why_not)
        with stage("cannot log the metrics and the honesty record"):
            if measured.metric and measured.metric not in metrics:
                log_metrics({measured.metric: measured.value})
                mlflow.log_metric(f"{measured.metric}_std", measured.spread or 0.0)
            record = honesty.run_record(
                status,
                measured.value,
                measured.spread,
                method=measured.method,
                metric=(measured.metric or "").removesuffix("_cv") or None,
            )
            mlflow.log_params(record)
            mlflow.set_tags(record)
            mlflow.set_tag("claim_metric", measured.metric or "")
            if measured.note:
                mlflow.set_tag("measurement_note", measured.note)
        with stage("cannot record the data and the code version"):
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
{%- if cookiecutter._code.feature_store %}
        with stage("cannot record the features the model read"):
            read_from = feature_store.run_tags()
            mlflow.set_tags(read_from)
{%- endif %}
        try:
            model_uri = log_model(result.model, result.model_input, list(options.trusted_types))
        except ModelLoggingError as error:  # says what to change itself
            raise TrainingFailed(f"cannot log the model: {error}") from None
        except Exception as error:
            raise TrainingFailed(f"cannot log the model: {located(error)}") from error
        tags = {
            **record,
            **provenance,
            "validation_status": record["honesty_warning"],
            "primary_metric": honesty.MODEL.get("primary_metric") or "",
            "claim_metric": measured.metric or "",
            "primary_metric_value": "" if measured.value is None else repr(measured.value),
            "data_sha256": digest,
{%- if cookiecutter._code.feature_store %}
            **read_from,
{%- endif %}
        }
        # The version is created with its tags in one request, so the registry never holds a
        # version without its honesty, whatever happens to this process or the server.
        with stage(f"cannot register the model as {MODEL_NAME}"):
            version = mlflow.register_model(model_uri, MODEL_NAME, tags=tags).version
    return str(version), run.info.run_id, record


if __name__ == "__main__":
    sys.exit(main())
