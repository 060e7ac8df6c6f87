# {{ cookiecutter._code.header }}
"""The model over HTTP, with its honesty metadata on every response.

Run it with ``uvicorn {{ cookiecutter.package_name }}.serve:app``. The model is loaded once, when the app is
created, from ``MODEL_URI`` (default: the registered model's ``champion`` alias) in the
store at ``MLFLOW_TRACKING_URI`` (default ``sqlite:///mlflow.db``). What the model may claim
is read from the registry (the model version's tags), never from this code, so the service
cannot claim more than the version that was promoted. A model that fails to load, or whose
metadata is incomplete, is reported by ``/ready`` instead of crashing the process.
"""

import contextlib
import keyword
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import mlflow
import numpy as np
import pandas as pd
from fastapi import Body, FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mlflow.exceptions import MlflowException
from mlflow.models import get_model_info
from mlflow.tracking import MlflowClient
from mlflow.types import DataType, Schema
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import honesty

log = logging.getLogger(__name__)

MODEL_NAME: str = honesty.MODEL["model_name"]
DEFAULT_MODEL_URI = f"models:/{MODEL_NAME}@champion"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MAX_BATCH = int(os.environ.get("PREDICT_MAX_BATCH", "10000"))
UNKNOWN = "unknown"  # metric label value when the registry does not say

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
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))/?$")
_SCALARS: dict[DataType, type] = {
    DataType.double: float,
    DataType.float: float,
    DataType.long: int,
    DataType.integer: int,
    DataType.boolean: bool,
    DataType.string: str,
    DataType.datetime: datetime,
}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PredictResponse(BaseModel):
    """Predictions plus what the model honestly is; extra contract fields pass through."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    predictions: list[Any]
    implementation_status: str | None
    accuracy_claim: str | None
    validation_status: str | None
    model_version: str | None
    uncertainty: str | None


@dataclass(frozen=True)
class Metadata:
    """What the registry (or the training run) says about the loaded model."""

    model_name: str
    model_version: str | None
    source: str
    fields: Mapping[str, str | None]  # every response field of the contract
    missing: tuple[str, ...]  # what the contract requires and the record lacks
    recorded: Mapping[str, str]  # what training recorded: claim, data and code digests...

    @property
    def status(self) -> str | None:
        return self.fields.get("implementation_status")

    @property
    def uncertainty(self) -> str | None:
        """The contract's statement for the status; a response lacking its fields is uncertain."""
        absent = honesty.missing_response_fields(self.fields)
        if absent:
            return (
                f"honesty metadata missing ({', '.join(absent)}): nothing is known "
                "about this model's accuracy; treat its predictions as unvalidated."
            )
        return honesty.CONTRACT["statuses"][self.status].get("uncertainty")


def metadata_from(
    values: Mapping[str, str],
    *,
    model_name: str,
    model_version: str | None,
    source: str,
    version_tags: bool,
) -> Metadata:
    """Read the contract's response fields from tags or params; note what is absent."""
    fields: dict[str, str | None] = {
        name: values.get(name) or None for name in honesty.RESPONSE_FIELDS
    }
    # Runs log `honesty_warning` (same values); it stands in when `validation_status` is absent.
    fields["validation_status"] = values.get("validation_status") or values.get("honesty_warning")
    status = fields.get("implementation_status")
    if status:  # an unknown word is kept as written: missing_response_fields reports it
        with contextlib.suppress(honesty.HonestyError):
            fields["implementation_status"] = honesty.plain_status(status)
    missing = honesty.missing_response_fields(fields)
    if version_tags:
        missing += [
            f"{name} (model version tag)"
            for name, spec in honesty.CONTRACT["fields"].items()
            if spec.get("model_version_tag") and not values.get(name) and name not in missing
        ]
    recorded = {key: values[key] for key in RECORDED_KEYS if values.get(key)}
    return Metadata(model_name, model_version, source, fields, tuple(missing), recorded)


def resolve(client: MlflowClient, uri: str) -> tuple[str, Metadata]:
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
        params, model_name=MODEL_NAME, model_version=None, source=source, version_tags=False
    )
    return uri, metadata


def _safe_names(columns: list[str]) -> list[str]:
    """Python identifiers for column names such as 'mean radius' (kept as aliases)."""
    names: list[str] = []
    for column in columns:
        name = re.sub(r"\W+", "_", column, flags=re.ASCII).strip("_") or "field"
        if name[0].isdigit():
            name = f"f_{name}"
        if keyword.iskeyword(name) or hasattr(BaseModel, name):
            name += "_"
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


@dataclass(frozen=True)
class InputSpec:
    """How a request becomes model input: one record's pydantic type, then a frame or array."""

    record: Any
    columns: tuple[str, ...] | None  # None for a tensor signature
    dtype: np.dtype | None = None
    shape: tuple[int, ...] = ()

    def tag(self, value: Any) -> str | None:
        """'record' or 'batch', from the JSON's shape, so a 422 names the right one."""
        if self.columns is not None:
            if isinstance(value, list):
                return "batch"
            return "record" if isinstance(value, dict | BaseModel) else None
        depth = 0
        while isinstance(value, list) and value:
            value, depth = value[0], depth + 1
        return "batch" if depth >= len(self.shape) else "record"

    def to_model_input(self, records: list[Any]) -> pd.DataFrame | np.ndarray:
        """Columns in the signature's order (a frame), or an array of the tensor's dtype."""
        if self.columns is not None:
            rows = [record.model_dump(by_alias=True) for record in records]
            return pd.DataFrame(rows, columns=list(self.columns))
        try:  # fixed dimensions were checked by the record type; free ones must still agree
            return np.asarray(records, dtype=self.dtype)
        except ValueError:
            raise HTTPException(422, "records of a batch must all have the same shape") from None


def input_spec(schema: Schema | None) -> InputSpec:
    """The request schema, generated from the model's signature: nothing is guessed."""
    if schema is None:
        raise ValueError(
            "the model has no input signature; log it with one so requests can be validated"
        )
    if schema.is_tensor_spec():
        if len(schema.inputs) != 1:
            raise ValueError("only a single unnamed tensor input can be served")
        spec = schema.inputs[0]
        kind = {"f": float, "i": int, "u": int, "b": bool}.get(spec.type.kind)
        if kind is None:
            raise ValueError(f"tensor dtype {spec.type} cannot be read from JSON")
        record: Any = kind
        for size in reversed(spec.shape[1:]):  # -1 is a free dimension
            size_limits = Field(min_length=size, max_length=size) if size >= 0 else Field()
            record = Annotated[list[record], size_limits]
        return InputSpec(record, None, spec.type, tuple(spec.shape))
    columns = [column.name or str(i) for i, column in enumerate(schema.inputs)]
    definitions: dict[str, Any] = {}
    for name, column, spec in zip(_safe_names(columns), columns, schema.inputs, strict=True):
        kind = _SCALARS.get(spec.type, Any) if isinstance(spec.type, DataType) else Any
        if spec.required:
            definitions[name] = (kind, Field(alias=column))
        else:
            definitions[name] = (kind | None, Field(default=None, alias=column))
    record = create_model(
        "Record",
        __config__=ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=()),
        **definitions,
    )
    return InputSpec(record, tuple(columns))


def _to_list(predictions: Any) -> list[Any]:
    """Model outputs (arrays, frames, series, lists) as JSON-ready lists."""
    if isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if isinstance(predictions, pd.Series | np.ndarray):
        return predictions.tolist()
    if isinstance(predictions, dict):
        return [predictions]
    return list(predictions)


@dataclass
class Served:
    """The loaded model, or why there is none."""

    uri: str
    model: Any = None
    inputs: InputSpec | None = None
    metadata: Metadata | None = None
    error: str | None = None

    def not_ready(self) -> str | None:
        if self.model is None or self.metadata is None:
            return f"model {self.uri} is not loaded: {self.error}"
        if self.metadata.missing:
            return (
                f"model {self.uri} lacks honesty metadata ({', '.join(self.metadata.missing)}) "
                f"in {self.metadata.source}"
            )
        return None


def load(uri: str) -> Served:
    """Load once; keep the error instead of raising, so the process stays up to report it."""
    served = Served(uri)
    try:
        concrete, served.metadata = resolve(MlflowClient(), uri)
        info = get_model_info(concrete)
        served.inputs = input_spec(info.signature.inputs if info.signature else None)
        if "sklearn" in info.flavors:
            served.model = mlflow.sklearn.load_model(concrete)
        else:
            served.model = mlflow.pyfunc.load_model(concrete)
    except Exception as error:  # noqa: BLE001 - reported by /ready, never raised
        served.model = None
        served.error = f"{type(error).__name__}: {error}"
        log.error("could not load %s: %s", uri, served.error)
    return served


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.predictions = Counter(
            "predictions_total",
            "Predictions served (rows), by the model's honesty status and version.",
            ["implementation_status", "model_version"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "prediction_latency_seconds",
            "Time to build the model input and predict, per request.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.compliant = Counter(
            "honesty_compliant_responses_total",
            "Prediction responses carrying every honesty field the contract requires.",
            ["status_value"],
            registry=self.registry,
        )
        self.missing = Counter(
            "missing_honesty_labels_total",
            "Prediction responses lacking a honesty field the contract requires.",
            ["endpoint"],
            registry=self.registry,
        )
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "model_info",
            "The model being served (value 1), with its registry version and honesty status.",
            ["model_name", "model_version", "implementation_status", "validation_status"],
            registry=self.registry,
        )


class CountRequests:
    """ASGI middleware counting every response by route template (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception escaping the app becomes a 500 upstream

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], endpoint, str(status)).inc()


def create_app(model_uri: str | None = None) -> FastAPI:
    """Build the service around one model; each app has its own metrics registry."""
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    served = load(model_uri or os.environ.get("MODEL_URI", DEFAULT_MODEL_URI))
    metrics = Metrics()
    meta = served.metadata
    version_label = (meta and meta.model_version) or UNKNOWN
    status_label = (meta and meta.status) or UNKNOWN
    # Series exist at 0 from the start, so the first missing field is an increase to alert on.
    metrics.missing.labels("/predict")
    if served.model is not None and meta is not None:
        validation = meta.fields["validation_status"] or UNKNOWN
        metrics.model_info.labels(meta.model_name, version_label, status_label, validation).set(1)
        metrics.predictions.labels(status_label, version_label)
        if not meta.missing:
            metrics.compliant.labels(status_label)

    app = FastAPI(
        title=f"{MODEL_NAME} model service",
        description=f"Serves {MODEL_NAME}; every response states what the model honestly is.",
    )
    app.add_middleware(CountRequests, metrics=metrics)
    app.state.served = served
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        """422 naming the field at fault; raw bytes (a non-JSON body) are never echoed back."""
        errors = [{k: v for k, v in e.items() if not isinstance(v, bytes)} for e in error.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness: 200 while the process runs; says what is loaded and what it lacks."""
        return {
            "status": "alive",
            "model_uri": served.uri,
            "model_loaded": served.model is not None,
            "model_version": meta.model_version if meta else None,
            "honesty_metadata_complete": bool(meta) and not meta.missing,
            "missing_honesty_fields": list(meta.missing) if meta else list(honesty.RESPONSE_FIELDS),
            "recorded": dict(meta.recorded) if meta else {},
            "error": served.error,
        }

    @app.get("/ready", responses={503: {"description": "model not loaded or metadata missing"}})
    def ready() -> JSONResponse:
        """Readiness: only a loaded model with complete honesty metadata takes traffic."""
        reason = served.not_ready()
        if reason is not None:
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        version = meta.model_version if meta else None
        return JSONResponse({"ready": True, "model_uri": served.uri, "model_version": version})

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def answer(records: list[Any]) -> PredictResponse:
        if served.model is None or served.inputs is None or meta is None:
            raise HTTPException(503, served.not_ready())
        started = time.perf_counter()
        try:
            predictions = _to_list(served.model.predict(served.inputs.to_model_input(records)))
        except MlflowException as error:
            if error.error_code != "INVALID_PARAMETER_VALUE":
                raise
            raise HTTPException(422, error.message) from None
        metrics.latency.observe(time.perf_counter() - started)
        metrics.predictions.labels(status_label, version_label).inc(len(records))
        response = PredictResponse(
            predictions=predictions,
            model_version=meta.model_version,
            uncertainty=meta.uncertainty,
            **meta.fields,
        )
        missing = honesty.missing_response_fields(response.model_dump())
        if missing:
            metrics.missing.labels("/predict").inc()
        else:
            metrics.compliant.labels(response.implementation_status).inc()
        return response

    if served.inputs is None:

        @app.post("/predict", response_model=PredictResponse)
        def predict_unavailable(payload: Annotated[Any, Body()]) -> PredictResponse:
            """No model: answer 503 with the reason rather than guess a schema."""
            return answer([])

    else:
        inputs = served.inputs
        record = inputs.record
        batch = Annotated[list[record], Field(min_length=1, max_length=MAX_BATCH)]
        payload_type = Annotated[
            Annotated[record, Tag("record")] | Annotated[batch, Tag("batch")],
            Discriminator(
                inputs.tag,
                custom_error_type="invalid_payload",
                custom_error_message="expected a JSON object (one record) or an array of them",
            ),
        ]

        @app.post("/predict", response_model=PredictResponse)
        def predict(payload: Annotated[payload_type, Body()]) -> PredictResponse:
            """One record (a JSON object) or a batch (an array of them); JSON only."""
            one = inputs.tag(payload) == "record"  # after validation a record is a model or list
            return answer([payload] if one else payload)

    return app


def __getattr__(name: str) -> FastAPI:
    """``serve.app``, created on first use (by uvicorn): importing the module loads nothing."""
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
