"""The model the service answers with, and what the registry says it honestly is.

What the model may claim is read from the registry (the model version's tags), never from this
code, so the service cannot claim more than the version that was promoted. A model that fails
to load is kept as an error for ``/ready`` to report, instead of crashing the process.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import get_model_info
from mlflow.models.model import ModelInfo
from mlflow.models.utils import load_serving_example
from mlflow.tracking import MlflowClient
from mlflow.types import Schema

from nb2prod_runtime import keras_io
from nb2prod_runtime.categories import CATEGORIES, NATIVE, Categorised, load_native
from nb2prod_runtime.forecasting import Forecaster, is_forecaster
from nb2prod_runtime.honesty import Honesty, HonestyError
from nb2prod_runtime.model_io import ONE_COLUMN
from nb2prod_runtime.package import Package
from nb2prod_runtime.payloads import ModelInputs, invocation_input, model_inputs
from nb2prod_runtime.skops_import import import_skops_io
from nb2prod_runtime.tracking import server_problem

log = logging.getLogger(__name__)

# What the training run records, as run params and model-version tags; /health shows them.
RECORDED_KEYS = (
    "implementation_status",
    "accuracy_claim",
    "validation_method",
    "validation_status",
    "honesty_warning",
    "primary_metric",
    "primary_metric_value",
    "data_sha256",
    "code_version",
    "notebook_sha256",
)
# scikit-learn's warning for an array given to a model fitted on a frame; see by_name().
_UNNAMED_COLUMNS = "X does not have valid feature names"
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))/?$")


@dataclass(frozen=True)
class Metadata:
    """What the registry (or the training run) says about the loaded model."""

    model_name: str
    model_version: str | None
    source: str
    fields: Mapping[str, str | None]  # every response field of the contract
    missing: tuple[str, ...]  # what the contract requires and the record lacks
    recorded: Mapping[str, str]  # what training recorded: claim, data and code digests...
    honesty: Honesty = field(repr=False, compare=False)

    @property
    def status(self) -> str | None:
        return self.fields.get("implementation_status")

    @property
    def uncertainty(self) -> str | None:
        """The contract's statement for the status; a response lacking its fields is uncertain."""
        absent = self.honesty.missing_response_fields(self.fields)
        if absent:
            return (
                f"honesty metadata missing ({', '.join(absent)}): nothing is known "
                "about this model's accuracy; treat its predictions as unvalidated."
            )
        return self.honesty.contract["statuses"][self.status].get("uncertainty")


def metadata_from(
    values: Mapping[str, str],
    honesty: Honesty,
    *,
    model_name: str,
    model_version: str | None,
    source: str,
    version_tags: bool,
) -> Metadata:
    """Read the contract's response fields from tags or params; note what is absent."""
    fields: dict[str, str | None] = {
        name: values.get(name) or None for name in honesty.response_fields
    }
    # Runs log `honesty_warning` (same values); it stands in when `validation_status` is absent.
    fields["validation_status"] = values.get("validation_status") or values.get("honesty_warning")
    status = fields.get("implementation_status")
    if status:  # an unknown word is kept as written: missing_response_fields reports it
        with contextlib.suppress(HonestyError):
            fields["implementation_status"] = honesty.plain_status(status)
    missing = honesty.missing_response_fields(fields)
    if version_tags:
        missing += [
            f"{name} (model version tag)"
            for name, spec in honesty.contract["fields"].items()
            if spec.get("model_version_tag") and not values.get(name) and name not in missing
        ]
    recorded = {key: values[key] for key in RECORDED_KEYS if values.get(key)}
    return Metadata(model_name, model_version, source, fields, tuple(missing), recorded, honesty)


def resolve(client: MlflowClient, uri: str, package: Package) -> tuple[str, Metadata]:
    """The concrete URI to load and its metadata, read together so an alias cannot move between.

    A registry URI's metadata is its version's tags; a run or a path falls back to the params
    of the run that logged it, when that run is known to this tracking store.
    """
    match = _REGISTRY_URI.match(uri)
    if match and not match["name"].startswith("m-"):
        name = match["name"]
        if match["alias"]:
            version = client.get_model_version_by_alias(name, match["alias"])
        elif match["version"] == "latest":
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise MlflowException(f"registered model {name!r} has no versions")
            version = max(versions, key=lambda v: int(v.version))
        else:
            version = client.get_model_version(name, match["version"])
        metadata = metadata_from(
            version.tags,
            package.honesty,
            model_name=name,
            model_version=str(version.version),
            source=f"tags of model version {name}/{version.version}",
            version_tags=True,
        )
        return f"models:/{name}/{version.version}", metadata
    run_id = get_model_info(uri).run_id
    params: Mapping[str, str] = {}
    source = "none: the model is not registered and its run is unknown"
    if run_id:
        try:
            params = client.get_run(run_id).data.params
            source = f"params of run {run_id}"
        except MlflowException as error:
            log.warning("run %s of %s is not in the tracking store: %s", run_id, uri, error)
    metadata = metadata_from(
        params,
        package.honesty,
        model_name=package.model_name,
        model_version=None,
        source=source,
        version_tags=False,
    )
    return uri, metadata


@dataclass
class Served:
    """The loaded model, or why there is none."""

    uri: str
    model: Any = None
    inputs: ModelInputs | None = None
    metadata: Metadata | None = None
    error: str | None = None
    run_id: str | None = None  # the run that logged the model: its reference profile
    concrete: str | None = None  # the version the URI named when it was loaded

    @property
    def version(self) -> str | None:
        return self.metadata.model_version if self.metadata else None

    def not_ready(self) -> str | None:
        if self.model is None or self.metadata is None:
            return f"model {self.uri} is not loaded: {self.error}"
        if self.metadata.missing:
            return (
                f"model {self.uri} lacks honesty metadata ({', '.join(self.metadata.missing)}) "
                f"in {self.metadata.source}"
            )
        return None


def load(uri: str, package: Package) -> Served:
    """Load once; keep the error instead of raising, so the process stays up to report it.

    A scikit-learn model is loaded as itself, not wrapped in a pyfunc: its ``predict`` is then
    called on the input it needs (an array, or a frame when it reads columns by name), with
    no schema conversion per request.
    """
    served = Served(uri)
    try:
        concrete, served.metadata = resolve(MlflowClient(), uri, package)
        served.concrete = concrete
        info = get_model_info(concrete)
        served.run_id = info.run_id
        schema = info.signature.inputs if info.signature else None
        served.model, needs_names = answering_model(concrete, info)
        served.inputs = model_inputs(schema, by_name=needs_names)
    except Exception as error:
        served.model = None
        served.error = server_problem(error) or f"{type(error).__name__}: {error}"
        log.error("could not load %s: %s", uri, served.error)
    return served


def answering_model(uri: str, info: ModelInfo) -> tuple[Any, bool]:
    """The logged model as the service predicts with it, and whether it takes a frame of named
    columns. Training profiles the model's answers through this too, so the reference is what
    the service would answer."""
    schema = info.signature.inputs if info.signature else None
    column = (info.metadata or {}).get(ONE_COLUMN)
    keras_io.prepare_backend(info.metadata or {})  # a network inside an estimator, too
    categories = (info.metadata or {}).get(CATEGORIES)
    if categories and any(name in info.flavors for name in NATIVE):
        return Categorised(load_native(uri, info.flavors), categories), True
    if "sklearn" in info.flavors and column is not None:
        _skops_ready(info.flavors["sklearn"])
        return OneColumn(mlflow.sklearn.load_model(uri)), True
    if "sklearn" in info.flavors:
        _skops_ready(info.flavors["sklearn"])
        model = mlflow.sklearn.load_model(uri)
        return model, by_name(model, schema)
    if "keras" in info.flavors:
        return keras_io.load_network(uri, info.metadata or {}), True
    if "statsmodels" in info.flavors and is_forecaster(
        results := mlflow.statsmodels.load_model(uri)
    ):
        return Forecaster(results), True  # rows of start, end; a list for each
    return mlflow.pyfunc.load_model(uri), True


def alias_of(uri: str) -> str | None:
    """The alias a registry URI names (`models:/name@champion`), or None for a fixed one."""
    match = _REGISTRY_URI.match(uri)
    return match["alias"] if match else None


def answers_its_example(served: Served, max_batch: int) -> str | None:
    """None when the loaded model predicts on the serving example MLflow logged with it (what
    `/invocations` would take); else why not. A model logged without one is taken as loaded."""
    if served.model is None or served.inputs is None or served.concrete is None:
        return served.not_ready() or "not loaded"
    try:
        example = load_serving_example(served.concrete)
    except Exception:
        return None  # logged without a serving example: nothing to try it on
    try:
        model_input, _ = invocation_input(served.inputs, example.encode(), max_batch)
        served.model.predict(model_input)
    except Exception as error:
        lines = str(error).strip().splitlines()
        return f"it fails to predict its own input example: {type(error).__name__}" + (
            f": {lines[0]}" if lines else ""
        )
    return None


def _skops_ready(flavor: Mapping[str, Any]) -> None:
    """Import skops without PyTorch before MLflow imports it to load a skops file."""
    if flavor.get("serialization_format") == "skops":
        import_skops_io()


class OneColumn:
    """A model fitted on one column (a text pipeline fitted on ``df["review"]``): requests
    arrive as a frame of that column, and the model is handed the column, as it was fitted."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, frame: pd.DataFrame) -> Any:
        return self.model.predict(frame.iloc[:, 0])


def by_name(model: Any, schema: Schema | None) -> bool:
    """Whether a scikit-learn model must be given a frame rather than a plain array.

    A model fitted on a frame knows its columns' names; given an array in the same order it
    answers the same, only warning that the names are absent. A pipeline may instead select
    columns by name. One probe row at load time tells the two apart, so that requests skip
    building a frame when the model does not need one.
    """
    names = list(getattr(model, "feature_names_in_", []))
    if not names:
        # a pipeline whose first step is the notebook's own transformer may not say; the
        # signature's columns are what it was fitted on, so the probe asks it
        if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
            return False
        names = list(schema.input_names())
    elif schema is None or schema.is_tensor_spec() or schema.input_names() != names:
        return True
    row = np.ones((1, len(names)))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_UNNAMED_COLUMNS, category=UserWarning)
            same = np.array_equal(
                model.predict(pd.DataFrame(row, columns=names)), model.predict(row)
            )
    except Exception:
        return True
    if same:  # the service put the columns in the fitted order itself: the warning is moot
        warnings.filterwarnings("ignore", message=_UNNAMED_COLUMNS, category=UserWarning)
    return not same
