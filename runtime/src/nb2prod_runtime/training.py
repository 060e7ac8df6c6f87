"""The training run's machinery: options, one-line failures, the store, lineage, the model.

A generated package's ``train.py`` keeps what a reviewer must see (the PLANNED refusal, the run,
the honesty record logged as params and tags); a `Trainer` does the rest the same way in
every package, and `main` turns any failure into one line and an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import get_model_info

from nb2prod_runtime import drift, lineage, loading, measure, pytorch_io, raw_input, tracking
from nb2prod_runtime.measure import Measurement
from nb2prod_runtime.model_io import ModelLoggingError, first_rows, log_model, request_rows
from nb2prod_runtime.package import Package
from nb2prod_runtime.raw_input import RawFeatures


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """Options of training itself, not of the notebook: the types skops may load, and how many
    folds the package's own cross-validation uses."""

    trusted_types: tuple[str, ...] = ()
    cross_validation_folds: int | None = None  # None: the default, within a time budget


class PipelineResult(Protocol):
    """What a package's ``pipeline.run`` returns."""

    model: Any
    model_input: Any
    metrics: Mapping[str, Any]
    data: Mapping[str, Any]
    fit_data: tuple[Any, Any] | None


class TrainingFailed(Exception):
    """Training stopped; the message is the one line shown, `code` the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def parse_args(
    package: Package, parameters: type[Any], argv: Sequence[str] | None = None
) -> tuple[Any, TrainingOptions]:
    """The notebook's parameters (a dataclass), each overridable on the command line, and
    training's options."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {package.name}.train",
        description=f"Train {package.model_name} from {package.model['notebook']} into MLflow.",
    )
    for field in dataclasses.fields(parameters):
        option = "--" + field.name.lower().replace("_", "-")
        default = getattr(parameters(), field.name)
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
    return parameters(**values), chosen


def cause(error: BaseException) -> str:
    """An error in one line: what the tracking server did, or the type and message's first line."""
    problem = tracking.server_problem(error)
    if problem:
        return problem
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


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


class Trainer:
    """One package's training steps outside the notebook's code and the honesty record."""

    def __init__(self, package: Package) -> None:
        self.package = package

    def origin(self, error: BaseException) -> str:
        """Where the error was raised: the notebook cell its code came from, or the line."""
        cell, where = lineage.notebook_cell(error, self.package.directory)
        return f"notebook cell {cell} ({where})" if cell else where

    def located(self, error: BaseException) -> str:
        """The cause, and the notebook cell when code from one raised it (a helper, say)."""
        cell, _ = lineage.notebook_cell(error, self.package.directory)
        return f"{cause(error)} (in code from {self.origin(error)})" if cell else cause(error)

    @contextlib.contextmanager
    def stage(self, doing: str, code: int = 1) -> Iterator[None]:
        """Whatever goes wrong in the block ends training with one line: what failed, and why."""
        try:
            yield
        except TrainingFailed:
            raise
        except Exception as error:
            raise TrainingFailed(f"{doing}: {self.located(error)}", code) from error

    def use_store(self) -> str:
        """The tracking store (MLFLOW_TRACKING_URI, else sqlite:///mlflow.db) and the model's
        experiment (MLFLOW_EXPERIMENT_NAME, else the model's name); returns the store's URI."""
        uri = tracking.tracking_uri()
        with self.stage(f"cannot use the MLflow store {uri}", code=2):
            mlflow.set_tracking_uri(uri)
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", self.package.model_name)
            mlflow.set_experiment(experiment_id=experiment_id(name))
        return uri

    @contextlib.contextmanager
    def ending(self, run_id: str) -> Iterator[None]:
        """Ends the run FINISHED, or FAILED when the block fails (KILLED on Ctrl-C). A server
        that cannot be told (it went away) is named in the failure's line, never raised over it."""
        try:
            yield
        except BaseException as error:
            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            try:
                mlflow.end_run(status)
            except Exception as unrecorded:
                if isinstance(error, TrainingFailed):
                    raise TrainingFailed(
                        f"{error}; run {run_id} stays RUNNING in the store, since it could not "
                        f"be marked {status} either",
                        error.code,
                    ) from unrecorded
            raise
        with self.stage(f"cannot end run {run_id}"):
            mlflow.end_run()

    def run_pipeline(
        self,
        run: Callable[[Any], PipelineResult],
        params: Any,
        refused: tuple[type[Exception], str] | None = None,
    ) -> PipelineResult:
        """The notebook's steps; a failure names the notebook cell its code came from. An error
        of the `refused` type (e.g. the feature store's) stops training as a setup problem."""
        try:
            return run(params)
        except Exception as error:
            if refused is not None and isinstance(error, refused[0]):
                with contextlib.suppress(Exception):
                    mlflow.set_tag("failure", f"{refused[1]}: {error}")
                raise TrainingFailed(f"{refused[1]}: {error}", 2) from None
            with contextlib.suppress(Exception):  # the line below says it, recorded or not
                mlflow.set_tag("failure", f"{self.origin(error)}: {cause(error)}")
            raise TrainingFailed(
                f"failed in code from {self.origin(error)}: {cause(error)}"
            ) from error

    def measure(
        self,
        result: PipelineResult,
        metrics: Mapping[str, tuple[float, float | None]],
        options: TrainingOptions,
        started: float,
    ) -> Measurement:
        """The package's own measurement (`measure`), logged beside the notebook's metric."""
        with self.stage("cannot measure the model"):
            folds, why_not = measure.folds_to_use(
                options.cross_validation_folds, time.perf_counter() - started
            )
            measured = measure.measure(
                self.package.model, result.model, result.fit_data, metrics, folds, why_not
            )
        with self.stage("cannot log the metrics and the honesty record"):
            if measured.metric and measured.metric not in metrics:
                log_metrics({measured.metric: measured.value})
                mlflow.log_metric(f"{measured.metric}_std", measured.spread or 0.0)
        return measured

    def log_measurement(self, measured: Measurement) -> None:
        """Which metric the claim comes from, and why the package could not measure more."""
        mlflow.set_tag("claim_metric", measured.metric or "")
        if measured.note:
            mlflow.set_tag("measurement_note", measured.note)

    def log_reference_profile(
        self, result: PipelineResult, model_uri: str, raw: Mapping[str, Any] | None = None
    ) -> None:
        """Log the reference profile beside the model. Without one the service serves all the
        same, unmeasured, so a profile that cannot be made is a tag, not a failed training."""
        try:
            profile = reference_profile(self.package, result, model_uri, raw)
        except Exception as error:
            reason = f"no reference profile: {self.located(error)}"
            print(f"train: {reason}; drift will not be measured", file=sys.stderr)
            mlflow.set_tag("drift_profile", reason)
            return
        with self.stage("cannot log the reference profile"):
            mlflow.log_dict(profile, drift.PROFILE_PATH)
            mlflow.set_tag("drift_profile", drift.PROFILE_PATH)

    def log_raw_input(
        self, result: PipelineResult, raw: RawFeatures
    ) -> tuple[str, dict[str, Any] | None]:
        """Check the feature code /predict/raw runs on rows of the loaded data, log the record
        schema when it holds, and say the outcome (the version's `raw_input` tag) with the
        schema. A check that fails is a route not served, not a failed training."""
        spec = None
        columns = getattr(result.model_input, "columns", None)
        label = getattr(result.fit_data[1], "name", None) if result.fit_data else None
        try:
            if columns is None:
                raise raw_input.NotRowWise("the model's input is not a table of named columns")
            spec = raw_input.check(
                raw,
                result.data.get(raw.loaded),
                [str(c) for c in columns],
                label if isinstance(label, str) else None,
            )
        except raw_input.NotRowWise as reason:
            outcome = f"not served: {reason}"
            print(
                f"train: POST /predict/raw will not serve this version: {reason}", file=sys.stderr
            )
        else:
            with self.stage("cannot log the record schema of /predict/raw"):
                mlflow.log_dict(spec, raw_input.SPEC_PATH)
            outcome = raw_input.ROW_WISE
        with self.stage("cannot log the record schema of /predict/raw"):
            mlflow.set_tag(raw_input.TAG, outcome)
        return outcome, spec

    def register(
        self,
        result: PipelineResult,
        record: Mapping[str, str],
        measured: Measurement,
        options: TrainingOptions,
        read_from: Mapping[str, str] | None = None,
        raw: RawFeatures | None = None,
    ) -> str:
        """Record the data and code, log the model, and register a version carrying the honesty
        record as tags (created with them in one request). Returns the version."""
        model = self.package.model
        with self.stage("cannot record the data and the code version"):
            digest = lineage.data_digest(result.data)
            mlflow.log_param("data_sha256", digest)
            data = lineage.dataset(result.data, digest)
            if data is not None:
                mlflow.log_input(data, context="training")
            provenance = {
                "code_version": lineage.code_version(self.package.directory),
                "notebook": model["notebook"],
                "notebook_sha256": model["notebook_sha256"],
            }
            mlflow.set_tags(provenance)
        if read_from:
            with self.stage("cannot record the features the model read"):
                mlflow.set_tags(dict(read_from))
        try:
            model_uri = log_model(
                self.package, result.model, result.model_input, list(options.trusted_types)
            )
        except ModelLoggingError as error:  # says what to change itself
            raise TrainingFailed(f"cannot log the model: {error}") from None
        except Exception as error:
            raise TrainingFailed(f"cannot log the model: {self.located(error)}") from error
        raw_tag, raw_spec = {}, None
        if raw is not None:
            outcome, raw_spec = self.log_raw_input(result, raw)
            raw_tag = {raw_input.TAG: outcome}
        self.log_reference_profile(result, model_uri, raw_spec)
        tags = {
            **record,
            **provenance,
            "validation_status": record["honesty_warning"],
            "primary_metric": model.get("primary_metric") or "",
            "claim_metric": measured.metric or "",
            "primary_metric_value": "" if measured.value is None else repr(measured.value),
            "data_sha256": digest,
            **(read_from or {}),
            **raw_tag,
        }
        # The version is created with its tags in one request, so the registry never holds a
        # version without its honesty, whatever happens to this process or the server.
        name = self.package.model_name
        with self.stage(f"cannot register the model as {name}"):
            version = mlflow.register_model(model_uri, name, tags=tags).version
        return str(version)


PROFILE_ROWS = 2000  # rows the logged model answers for the profile of its predictions


def reference_profile(
    package: Package,
    result: PipelineResult,
    model_uri: str,
    raw: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What drift is measured against: the features the model was fitted on (its input example
    when it was fitted without labels), then the loaded columns /predict/raw's feature code reads
    that the model does not (`raw`: its record schema), and what the logged model, loaded back as
    the service loads it, answers for its input example."""
    features = result.fit_data[0] if result.fit_data is not None else result.model_input
    if hasattr(features, "tocsr"):  # sparse: profiled on as many rows as the predictions
        features = first_rows(features, PROFILE_ROWS)
    if pytorch_io.is_tensor(features):  # a module's: profiled as the arrays requests become
        features = pytorch_io.as_array(features)
    # as a request becomes it: float32 for a network's tensor signature
    example = request_rows(package, result.model, result.model_input, PROFILE_ROWS)
    model, _ = loading.answering_model(model_uri, get_model_info(model_uri))
    predictions = model.predict(example)
    only_raw = raw_input.read_columns_beside(raw, features, result.data) if raw else None
    if only_raw is not None:
        features = only_raw[0]
    columns = only_raw[1] if only_raw is not None else ()
    return drift.build(features, predictions, "the rows of the model's input example", columns)


def main(
    package: Package,
    parameters: type[Any],
    train: Callable[[Any, TrainingOptions], tuple[str, str, dict[str, str]]],
    argv: Sequence[str] | None = None,
) -> int:
    """`python -m <package>.train`: parse, train, say what was trained or why not in one line."""
    params, options = parse_args(package, parameters, argv)
    try:
        version, run_id, record = train(params, options)
    except TrainingFailed as failure:
        print(f"train: {failure}", file=sys.stderr)
        return failure.code
    honesty = package.honesty
    print(
        f"trained {package.model_name} version {version} (run {run_id}): "
        f"{honesty.label(record['implementation_status'])}, {record['accuracy_claim']}, "
        f"{record['honesty_warning']}"
    )
    print(f"next: python -m {package.name}.promote --version {version}")
    return 0
