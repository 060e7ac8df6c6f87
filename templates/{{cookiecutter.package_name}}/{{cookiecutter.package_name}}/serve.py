# {{ cookiecutter._code.header }}
"""The model over HTTP, with its honesty metadata on every response.

Run it with ``uvicorn {{ cookiecutter.package_name }}.serve:app`` (one worker), or as the
container does, ``python -m {{ cookiecutter.package_name }}.entrypoint``, which starts
``WEB_CONCURRENCY`` workers whose metrics add up. The model is loaded once per worker, when the
app is created, from ``MODEL_URI`` (default: the registered model's ``champion`` alias) in the
store at ``MLFLOW_TRACKING_URI`` (default ``sqlite:///mlflow.db``); what it may claim comes
from the registry (see ``loading``). A model that fails to load, or whose metadata is
incomplete, is reported by ``/ready`` instead of crashing the process.
"""

import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import mlflow
import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from mlflow.exceptions import MlflowException
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pydantic import BaseModel, ConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import honesty, payloads
{%- if cookiecutter._code.feature_store %}
from .feature_store import JOIN_KEY, FeatureStoreError, OnlineFeatures, UntaggedFeatureView
{%- endif %}
from .limits import LimitBodySize, Limits, PredictionThreads
from .loading import MODEL_NAME, Served, load
from .tracking import tracking_uri

log = logging.getLogger(__name__)

DEFAULT_MODEL_URI = f"models:/{MODEL_NAME}@champion"
UNKNOWN = "unknown"  # metric label value when the registry does not say
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Parse = Callable[[payloads.ModelInputs, bytes, int], tuple[payloads.ModelInput, int]]
PREDICTION_PATHS = ("/predict", "/invocations"{% if cookiecutter._code.feature_store %}, "/predict/by-key"{% endif %})
# Each route's parser per media type; a request without a Content-Type is taken as JSON.
PREDICT_PARSERS: dict[str, Parse] = {
    "application/json": payloads.predict_input,
    "text/json": payloads.predict_input,
}
INVOCATIONS_PARSERS: dict[str, Parse] = {  # what `mlflow models serve` takes
    "application/json": payloads.invocation_input,
    "text/csv": payloads.csv_input,
    "application/vnd.apache.parquet": payloads.parquet_input,
}


class PredictResponse(BaseModel):
    """Predictions plus what the model honestly is; extra contract fields pass through."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    predictions: list[Any]
    implementation_status: str | None
    accuracy_claim: str | None
    validation_status: str | None
    model_version: str | None
    uncertainty: str | None


class HonestBody:
    """Renders prediction responses as ``PredictResponse`` would, field for field, for less.

    What the model honestly is stays fixed while it is loaded, so that part is validated
    against ``PredictResponse`` and encoded once; each response then encodes only its
    predictions (orjson: numpy values too, NaN as null) and joins the two. Every response
    carries the fields, because no other path writes a prediction body.
    """

    def __init__(self, honest: dict[str, Any]) -> None:
        declared = {name: None for name in PredictResponse.model_fields if name != "predictions"}
        document = PredictResponse(predictions=[], **(declared | honest)).model_dump(mode="json")
        del document["predictions"]
        self.fields = orjson.dumps(document)[1:]  # '"implementation_status":...}'

    def render(self, predictions: list[Any]) -> Response:
        encoded = orjson.dumps(
            predictions, default=jsonable_encoder, option=orjson.OPT_SERIALIZE_NUMPY
        )
        content = b'{"predictions":' + encoded + b"," + self.fields
        return Response(content, media_type="application/json")


class InvalidInvocation(payloads.InvalidInput):
    """An /invocations body the model cannot take: answered as ``mlflow models serve`` does."""


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app).

    With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker process writes its values to files
    there and ``/metrics`` adds them up, so any worker's answer covers them all.
    """

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
        # A gauge with labels, not an Info (which multiprocess mode cannot add up); of the
        # live workers' values the highest is shown, and a stopped worker's is forgotten.
        self.model_info = Gauge(
            "model_info",
            "The model being served (value 1), with its registry version and honesty status.",
            ["model_name", "model_version", "implementation_status", "validation_status"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def exposition(self) -> bytes:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not folder:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker, path=folder)
        return generate_latest(every_worker)


def forget_dead_workers(folder: Path) -> None:
    """Drop the live gauges of worker processes that are gone (one that crashed never says)."""
    for path in folder.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))
        except PermissionError:  # alive, under another user
            pass


@contextlib.asynccontextmanager
async def worker_lifetime(app: FastAPI) -> AsyncIterator[None]:
    """In multiprocess mode, a worker clears its dead siblings' gauges and, leaving, its own."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        forget_dead_workers(Path(folder))
    elif int(os.environ.get("WEB_CONCURRENCY", "1")) > 1:
        log.warning(
            "WEB_CONCURRENCY > 1 without PROMETHEUS_MULTIPROC_DIR: each worker's /metrics "
            "counts only itself; start through %s.entrypoint",
            __package__,
        )
    yield
    if folder:
        multiprocess.mark_process_dead(os.getpid(), folder)


class CountRequests:
    """ASGI middleware counting every response by route template (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.counters: dict[tuple[str, str, str], Any] = {}  # labelled once, then reused

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
            key = (scope["method"], getattr(scope.get("route"), "path", "unmatched"), str(status))
            counter = self.counters.get(key)
            if counter is None:
                counter = self.counters[key] = self.metrics.requests.labels(*key)
            counter.inc()


def parser_for(request: Request, parsers: Mapping[str, Parse]) -> Parse:
    """The route's parser for the body's media type; 415 for another type or a charset other
    than UTF-8."""
    media_type, *parameters = request.headers.get("content-type", "application/json").split(";")
    parse = parsers.get(media_type.strip().lower())
    if parse is None:
        raise HTTPException(415, f"send {' or '.join(parsers)}, not {media_type or 'nothing'}")
    for parameter in parameters:
        name, _, value = parameter.strip().lower().partition("=")
        if name == "charset" and value.strip('"') not in ("utf-8", "utf8"):
            raise HTTPException(415, f"send UTF-8, not {value}")
    return parse


async def predictions_for(
    served: Served,
    parsers: Mapping[str, Parse],
    request: Request,
    limits: Limits,
    threads: PredictionThreads,
) -> tuple[list[Any], int]:
    """The prediction path: body, model input, one ``predict`` call, JSON-ready lists.

    Parsing and predicting run in a worker thread under the time limit, so a slow request
    neither blocks the others nor outlives its timeout. Returns predictions and rows; a body
    the model cannot take raises ``payloads.InvalidInput``.
    """
    if served.model is None or served.inputs is None:
        raise HTTPException(503, served.not_ready())
    parse = parser_for(request, parsers)
    body = await request.body()
    model, inputs = served.model, served.inputs

    def predict() -> tuple[list[Any], int]:
        model_input, rows = parse(inputs, body, limits.max_batch)
        try:
            return payloads.to_list(model.predict(model_input)), rows
        except MlflowException as error:  # the pyfunc's own schema check
            if error.error_code != "INVALID_PARAMETER_VALUE":
                raise
            raise payloads.invalid(error.message) from None

    try:
        return await threads.run(predict)
    except TimeoutError:
        raise HTTPException(
            504, f"no prediction within {limits.timeout_seconds:g} s (PREDICT_TIMEOUT_SECONDS)"
        ) from None

{% if cookiecutter._code.feature_store %}
def online_features() -> tuple[OnlineFeatures | None, str | None]:
    """The online store, or why /predict/by-key cannot answer (Feast missing, nothing
    materialized yet). A feature view without its honesty tags is not a reason to answer less:
    UntaggedFeatureView stops the service from starting."""
    try:
        return OnlineFeatures.open(), None
    except UntaggedFeatureView:
        raise
    except FeatureStoreError as error:
        return None, str(error)


def requested_keys(body: bytes, key: str, max_batch: int) -> list[Any]:
    """An object whose one field is the key: one value or a list of them; anything else is a 422
    naming the key."""
    document = payloads.read_json(body)
    if not isinstance(document, dict) or set(document) != {key}:
        raise payloads.invalid(f"send an object with one field, {key}: a key or a list of keys")
    keys = document[key] if isinstance(document[key], list) else [document[key]]
    if not keys or not all(isinstance(k, int | str) and not isinstance(k, bool) for k in keys):
        raise payloads.invalid(f"{key} must be a key or a non-empty list of keys", key)
    payloads.check_batch(len(keys), max_batch)
    return keys

{% endif %}

def request_body(inputs: payloads.ModelInputs | None, max_batch: int) -> dict[str, Any]:
    """The /predict body for the OpenAPI docs, from the signature (the route reads raw JSON)."""
    if inputs is None:
        return {}
    record = inputs.record_schema()
    batch = {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}
    schema = {"anyOf": [record, batch]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def create_app(model_uri: str | None = None) -> FastAPI:
    """Build the service around one model; each app has its own metrics registry."""
    mlflow.set_tracking_uri(tracking_uri())
    served = load(model_uri or os.environ.get("MODEL_URI", DEFAULT_MODEL_URI))
    limits = Limits.from_environment()
    threads = PredictionThreads(limits)
    metrics = Metrics()
    meta = served.metadata
    version_label = (meta and meta.model_version) or UNKNOWN
    status_label = (meta and meta.status) or UNKNOWN
    # Series exist at 0 from the start, so the first missing field or the first error is an
    # increase to alert on: Prometheus cannot see what a series counted before its first scrape.
    for endpoint in PREDICTION_PATHS:
        metrics.missing.labels(endpoint)
        for status in ("200", "500", "503", "504"):
            metrics.requests.labels("POST", endpoint, status)
    count_rows = metrics.predictions.labels(status_label, version_label)
    if served.model is not None and meta is not None:
        validation = meta.fields["validation_status"] or UNKNOWN
        metrics.model_info.labels(meta.model_name, version_label, status_label, validation).set(1)
    # What every prediction response says about the model: fixed while the model is loaded.
    honest: dict[str, Any] = {}
    if meta is not None:
        honest = {"model_version": meta.model_version, "uncertainty": meta.uncertainty}
        honest |= meta.fields
    compliant = not honesty.missing_response_fields(honest)
    body = HonestBody(honest)
{%- if cookiecutter._code.feature_store %}
    features, features_unavailable = online_features()
    model_status = honest.get("implementation_status")
    by_key_body = HonestBody(honest | (features.weakest.response_fields(model_status) if features else {}))
{%- endif %}
    count_compliant = metrics.compliant.labels(status_label) if compliant else None  # 0 from start

    app = FastAPI(
        title=f"{MODEL_NAME} model service",
        description=f"Serves {MODEL_NAME}; every response states what the model honestly is.",
        lifespan=worker_lifetime,
    )
    app.add_middleware(LimitBodySize, max_bytes=limits.max_body_bytes)
    app.add_middleware(CountRequests, metrics=metrics)
    app.state.served = served
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        """422 naming the field at fault; raw bytes (a non-JSON body) are never echoed back."""
        errors = [{k: v for k, v in e.items() if not isinstance(v, bytes)} for e in error.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(InvalidInvocation)
    async def invalid_invocation(request: Request, error: InvalidInvocation) -> JSONResponse:
        """400 with MLflow's error body, so its clients read it unchanged; the fields at fault
        are listed under ``detail`` as for /predict."""
        body = {
            "error_code": "BAD_REQUEST",
            "message": payloads.summary(error.errors),
            "detail": jsonable_encoder(error.errors),
        }
        return JSONResponse(body, status_code=400)

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

    @app.get("/ping", responses={404: {"description": "model not loaded"}})
    def ping() -> Response:
        """``mlflow models serve``'s health check (SageMaker's too): 200 once the model is
        loaded. It says nothing of honesty metadata; ``/ready`` does."""
        status = 200 if served.model is not None else 404
        return Response("\n", status_code=status, media_type="application/json")

    @app.get("/version", response_class=PlainTextResponse)
    def version() -> str:
        """The MLflow version serving the model, as ``mlflow models serve`` answers."""
        return mlflow.__version__

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def answer(
        request: Request,
        parsers: Mapping[str, Parse],
        endpoint: str,
        refuse: Callable[[list[dict[str, Any]]], Exception],
    ) -> Response:
        started = time.perf_counter()
        try:
            predictions, rows = await predictions_for(served, parsers, request, limits, threads)
        except payloads.InvalidInput as error:
            raise refuse(error.errors) from None
        metrics.latency.observe(time.perf_counter() - started)
        count_rows.inc(rows)
        if count_compliant is not None:
            count_compliant.inc()
        else:
            metrics.missing.labels(endpoint).inc()
        return body.render(predictions)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        openapi_extra=request_body(served.inputs, limits.max_batch),
    )
    async def predict(request: Request) -> Response:
        """One record (a JSON object) or a batch (an array of them); JSON only. A record the
        model cannot take gets a 422 naming the record and the field."""
        return await answer(request, PREDICT_PARSERS, "/predict", RequestValidationError)

    @app.post(
        "/invocations",
        response_model=PredictResponse,
        responses={400: {"description": "a body the model cannot take (MLflow's error body)"}},
    )
    async def invocations(request: Request) -> Response:
        """What ``mlflow models serve`` takes (JSON: dataframe_split, dataframe_records,
        instances, inputs; CSV; Parquet) and answers, plus the honesty fields: its clients
        switch unchanged."""
        return await answer(request, INVOCATIONS_PARSERS, "/invocations", InvalidInvocation)
{%- if cookiecutter._code.feature_store %}

    @app.post(
        "/predict/by-key",
        response_model=PredictResponse,
        responses={
            404: {"description": "a key the online store does not hold"},
            503: {"description": "no model, or no online store to read features from"},
        },
    )
    async def predict_by_key(request: Request) -> Response:
        """Predict for entity keys: the features come from the online store (Feast's
        get_online_features), and the response says how trustworthy the weakest of them is."""
        if features is None:
            raise HTTPException(503, f"no online features: {features_unavailable}")
        if served.model is None or served.inputs is None:
            raise HTTPException(503, served.not_ready())
        started = time.perf_counter()
        raw = await request.body()
        model, inputs, online = served.model, served.inputs, features

        def predict() -> tuple[list[Any], int]:
            keys = requested_keys(raw, JOIN_KEY, limits.max_batch)
            columns, rows = online.rows(keys)
            model_input = online.samples(rows)
            if model_input is None:
                model_input = inputs.from_table(columns, rows, lenient=True)
            return payloads.to_list(model.predict(model_input)), len(keys)

        try:
            predictions, rows = await threads.run(predict)
        except payloads.InvalidInput as error:
            raise RequestValidationError(error.errors) from None
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None
        except TimeoutError:
            raise HTTPException(
                504, f"no prediction within {limits.timeout_seconds:g} s (PREDICT_TIMEOUT_SECONDS)"
            ) from None
        metrics.latency.observe(time.perf_counter() - started)
        count_rows.inc(rows)
        if count_compliant is not None:
            count_compliant.inc()
        else:
            metrics.missing.labels("/predict/by-key").inc()
        return by_key_body.render(predictions)
{%- endif %}

    # Starlette tries the routes in order, and FastAPI registers its docs routes first: the
    # prediction routes go to the front, where a request finds them at the first or second try
    # (each miss costs microseconds on every prediction).
    app.router.routes.sort(key=lambda route: getattr(route, "path", "") not in PREDICTION_PATHS)
    return app


def __getattr__(name: str) -> FastAPI:
    """``serve.app``, created on first use (by uvicorn): importing the module loads nothing."""
    if name == "app":
        try:
            application = create_app()
        except Exception as error:  # a setting that cannot work: one line, then exit
            lines = str(error).strip().splitlines()
            detail = f": {lines[0]}" if lines else ""
            print(f"serve: cannot start: {type(error).__name__}{detail}", file=sys.stderr)
            raise SystemExit(2) from None
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
