"""The service machinery around one model: loading, limits, parsing, honest bodies, metrics.

A generated package's ``serve.py`` declares what a reviewer must see (the app, its prediction
routes, the response model with the honesty fields, the Prometheus counters) and hands each
request to a `Service`, which answers it the same way in every package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import mlflow
import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nb2prod_runtime import payloads
from nb2prod_runtime.alert_rollback import AlertRollback, RollbackRefused
from nb2prod_runtime.drift_counters import DriftCounters, counters_for
from nb2prod_runtime.feedback import (
    DEFAULT_MAX_AGE,
    MAX_AGE_VARIABLE,
    Feedback,
    FeedbackRefused,
    PredictionIds,
    key_from_environment,
)
from nb2prod_runtime.limits import LimitBodySize, Limits, PredictionThreads
from nb2prod_runtime.loading import Served, alias_of, answers_its_example, load
from nb2prod_runtime.package import Package
from nb2prod_runtime.raw_input import RawFeatures
from nb2prod_runtime.raw_serving import RawRecords, raw_records_for
from nb2prod_runtime.tracking import server_problem, tracking_uri

log = logging.getLogger(__name__)

UNKNOWN = "unknown"  # metric label value when the registry does not say
REFRESH_VARIABLE = "MODEL_REFRESH_SECONDS"  # how often the alias is checked; 0: never
DEFAULT_REFRESH_SECONDS = 30.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Parse = Callable[[payloads.ModelInputs, bytes, int], tuple[payloads.ModelInput, int]]
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


class ServiceMetrics(Protocol):
    """The Prometheus metrics a package's serve.py declares, in a registry of their own."""

    registry: CollectorRegistry
    predictions: Any  # Counter by implementation_status, model_version
    latency: Any  # Histogram
    compliant: Any  # Counter by status_value
    missing: Any  # Counter by endpoint
    requests: Any  # Counter by method, endpoint, status
    model_info: Any  # Gauge by model_name, model_version, implementation_status, validation_status
    drift: Any  # DriftMetrics: request values per reference bin, the reference's shares
    live: Any  # LiveMetrics: fed-back outcomes against predictions, beside the claim
    refresh_failures: Any  # Counter by model_version: versions the alias named, not swapped in


class HonestBody:
    """Renders prediction responses as the response model would, field for field, for less.

    What the model honestly is stays fixed while it is loaded, so that part is validated
    against the response model and encoded once; each response then encodes only its
    predictions (orjson: numpy values too, NaN as null) and joins the two. Every response
    carries the fields, because no other path writes a prediction body.
    """

    def __init__(self, response_model: type[BaseModel], honest: dict[str, Any]) -> None:
        per_response = ("predictions", "prediction_ids")
        declared = {name: None for name in response_model.model_fields if name not in per_response}
        document = response_model(predictions=[], **(declared | honest)).model_dump(mode="json")
        for name in per_response:
            document.pop(name, None)
        self.fields = orjson.dumps(document)[1:]  # '"implementation_status":...}'

    def render(self, predictions: list[Any], ids: list[str] | None = None) -> Response:
        encoded = orjson.dumps(
            predictions, default=jsonable_encoder, option=orjson.OPT_SERIALIZE_NUMPY
        )
        content = b'{"predictions":' + encoded + b","
        if ids is not None:
            content += b'"prediction_ids":' + orjson.dumps(ids) + b","
        return Response(content + self.fields, media_type="application/json")


class InvalidInvocation(payloads.InvalidInput):
    """An /invocations body the model cannot take: answered as ``mlflow models serve`` does."""


def exposition(registry: CollectorRegistry) -> bytes:
    """The metrics page: this process's registry, or every worker's (PROMETHEUS_MULTIPROC_DIR)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return generate_latest(registry)
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


def worker_lifetime(
    package: str, leaving: Callable[[], None] = lambda: None
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """In multiprocess mode, a worker clears its dead siblings' gauges and, leaving, its own;
    `leaving` runs first (what the worker still holds is counted)."""

    @contextlib.asynccontextmanager
    async def lifetime(app: FastAPI) -> AsyncIterator[None]:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            forget_dead_workers(Path(folder))
        elif int(os.environ.get("WEB_CONCURRENCY", "1")) > 1:
            log.warning(
                "WEB_CONCURRENCY > 1 without PROMETHEUS_MULTIPROC_DIR: each worker's /metrics "
                "counts only itself; start through %s.entrypoint",
                package,
            )
        yield
        leaving()
        if folder:
            multiprocess.mark_process_dead(os.getpid(), folder)

    return lifetime


class CountRequests:
    """ASGI middleware counting every response by route template (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
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


def request_body(inputs: payloads.ModelInputs | None, max_batch: int) -> dict[str, Any]:
    """The /predict body for the OpenAPI docs, from the signature (the route reads raw JSON)."""
    if inputs is None:
        return {}
    record = inputs.record_schema()
    batch = {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}
    schema = {"anyOf": [record, batch]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@dataclass
class Version:
    """One loaded model and what its responses and their counting need: swapped whole when the
    alias moves, so a request in flight finishes on the version it started with."""

    served: Served
    honest: dict[str, Any]
    body: HonestBody
    count_rows: Any
    count_compliant: Any | None  # None when the record lacks a field: counted as missing
    info: Any | None  # the model_info child set to 1 while this version serves
    drift: DriftCounters | None
    feedback: Feedback | None
    raw: RawRecords | str | None = None  # /predict/raw's rules, or why it has none


class Service:
    """One model, loaded once, behind the routes a package declares.

    The metrics and the response model are the package's (a reviewer and the linter see them
    there); everything else a prediction needs is here: the model loaded by alias, its honesty
    read from the registry, the request limits, the parsers, the honest response body. Served
    by alias, it checks every MODEL_REFRESH_SECONDS where the alias points, and swaps in a new
    version once it is loaded and answers its own input example (a rollback, a promotion).
    """

    def __init__(
        self,
        package: Package,
        metrics: ServiceMetrics,
        response_model: type[BaseModel],
        model_uri: str | None = None,
        prediction_paths: Sequence[str] = ("/predict", "/invocations"),
        raw_features: RawFeatures | None = None,
    ) -> None:
        mlflow.set_tracking_uri(tracking_uri())
        default_uri = f"models:/{package.model_name}@champion"
        self.package = package
        self.uri = model_uri or os.environ.get("MODEL_URI", default_uri)
        self.limits = Limits.from_environment()
        self.threads = PredictionThreads(self.limits)
        self.metrics = metrics
        self.response_model = response_model
        self.prediction_paths = tuple(prediction_paths)
        self.raw_features = raw_features  # the feature code /predict/raw runs, if any
        # Series exist at 0 from the start, so the first missing field or the first error is an
        # increase to alert on: Prometheus cannot see what a series counted before its first
        # scrape.
        for endpoint in self.prediction_paths:
            metrics.missing.labels(endpoint)
            for status in ("200", "500", "503", "504"):
                metrics.requests.labels("POST", endpoint, status)
        self.alias = alias_of(self.uri)
        self.refresh_seconds = float(os.environ.get(REFRESH_VARIABLE, DEFAULT_REFRESH_SECONDS))
        self.refresh_lock = threading.Lock()
        self.refused: str | None = None  # a version that failed to load: not tried again
        self.unreadable: str | None = None  # why the alias cannot be read, said once
        self.rollback = AlertRollback.from_environment(package.model_name, self.alias)
        self.current = self._version(load(self.uri, package))

    # What the version being served says; the feature store's route reads these too.
    @property
    def served(self) -> Served:
        return self.current.served

    @property
    def honest(self) -> dict[str, Any]:
        return self.current.honest

    @property
    def body(self) -> HonestBody:
        return self.current.body

    @property
    def drift(self) -> DriftCounters | None:
        return self.current.drift

    @property
    def feedback(self) -> Feedback | None:
        return self.current.feedback

    def _version(self, served: Served) -> Version:
        """Everything a loaded model's responses and counts need, labelled once."""
        metrics = self.metrics
        meta = served.metadata
        version_label = (meta and meta.model_version) or UNKNOWN
        status_label = (meta and meta.status) or UNKNOWN
        count_rows = metrics.predictions.labels(status_label, version_label)
        info = None
        if served.model is not None and meta is not None:
            validation = meta.fields["validation_status"] or UNKNOWN
            info = metrics.model_info.labels(
                meta.model_name, version_label, status_label, validation
            )
            info.set(1)
        # What every prediction response says about the model: fixed while it is loaded.
        honest: dict[str, Any] = {}
        if meta is not None:
            honest = {"model_version": meta.model_version, "uncertainty": meta.uncertainty}
            honest |= meta.fields
        # a package generated before drift was measured declares no drift metrics
        drift = None
        if served.model is not None:
            drift = counters_for(getattr(metrics, "drift", None), served.run_id, version_label)
        feedback = None
        live_metrics = getattr(metrics, "live", None)
        if live_metrics is not None and served.model is not None and meta is not None:
            max_age = float(os.environ.get(MAX_AGE_VARIABLE, DEFAULT_MAX_AGE))
            ids = PredictionIds(key_from_environment(), version_label, max_age)
            feedback = Feedback(live_metrics, ids, meta.recorded)
        compliant = not self.package.honesty.missing_response_fields(honest)
        raw = None
        if self.raw_features is not None and served.model is not None:
            raw = raw_records_for(self.raw_features, served.run_id)
            if isinstance(raw, str):
                log.warning("POST /predict/raw does not serve version %s: %s", version_label, raw)
        return Version(
            served,
            honest,
            HonestBody(self.response_model, honest),
            count_rows,
            metrics.compliant.labels(status_label) if compliant else None,  # 0 from the start
            info,
            drift,
            feedback,
            raw,
        )

    def refresh(self) -> bool:
        """Serve the version the alias names now, if it moved: loaded and answering its input
        example first, then swapped in; a version that fails is counted, said, and not tried
        again until the alias moves once more. True when a new version serves."""
        if self.alias is None:
            return False
        with self.refresh_lock:
            name = self.package.model_name
            try:
                named = MlflowClient().get_model_version_by_alias(name, self.alias).version
            except Exception as error:
                # Said when it starts or changes, not at every check: a registry down for an
                # hour would otherwise fill the log with one line every MODEL_REFRESH_SECONDS.
                problem = first_line(error)
                if problem != self.unreadable:
                    self.unreadable = problem
                    log.warning(
                        "cannot read @%s of %s, %s keeps serving: %s",
                        self.alias,
                        name,
                        self.served.version,
                        problem,
                    )
                return False
            if self.unreadable is not None:
                self.unreadable = None
                log.warning("@%s of %s reads again", self.alias, name)
            named = str(named)
            if named in (self.served.version, self.refused):
                return False
            candidate = load(f"models:/{name}/{named}", self.package)
            candidate.uri = self.uri
            problem = candidate.not_ready() or answers_its_example(candidate, self.limits.max_batch)
            if problem is not None:
                self.refused = named
                failures = getattr(self.metrics, "refresh_failures", None)
                if failures is not None:
                    failures.labels(named).inc()
                log.error(
                    "model version %s not swapped in, %s keeps serving: %s",
                    named,
                    self.served.version,
                    problem,
                )
                return False
            previous, self.current = self.current, self._version(candidate)
            self.refused = None
            self._retire(previous, self.current)
            log.warning(
                "now serving model version %s (@%s moved from %s)",
                named,
                self.alias,
                previous.served.version,
            )
            return True

    @staticmethod
    def _retire(previous: Version, current: Version) -> None:
        """The replaced version stops counting and showing: what it holds is flushed, its info
        and its reference's shares are 0, then the new version's shares are shown (the two
        profiles may share bins)."""
        if previous.drift is not None:
            previous.drift.withdraw()
        if current.drift is not None:
            current.drift.publish()
        if previous.info is not None:
            previous.info.set(0)
        if current.info is not None:
            current.info.set(1)

    async def _refreshing(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as error:  # never ends the loop: the next check may succeed
                log.error("refreshing the model failed: %s", first_line(error))

    def lifespan(self) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
        """The app's lifespan: multiprocess metrics bookkeeping of each worker, and the alias
        checked every MODEL_REFRESH_SECONDS (0: never) while it serves."""
        bookkeeping = worker_lifetime(self.package.name, self.flush)

        @contextlib.asynccontextmanager
        async def lifetime(app: FastAPI) -> AsyncIterator[None]:
            async with bookkeeping(app):
                task = None
                if self.alias is not None and self.refresh_seconds > 0:
                    task = asyncio.create_task(self._refreshing())
                try:
                    yield
                finally:
                    if task is not None:
                        task.cancel()

        return lifetime

    def flush(self) -> None:
        """Count what drift counting holds in the process (before a scrape, and on leaving)."""
        if self.drift is not None:
            self.drift.flush()

    def install(self, app: FastAPI) -> None:
        """Give the package's app the service's own routes (health, readiness, MLflow's ping
        and version, metrics), its limits and its error bodies; the package declares the
        prediction routes."""
        app.add_middleware(LimitBodySize, max_bytes=self.limits.max_body_bytes)
        app.add_middleware(CountRequests, metrics=self.metrics)
        app.state.service = self
        app.state.metrics = self.metrics
        app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
        app.add_exception_handler(InvalidInvocation, invalid_invocation)  # type: ignore[arg-type]
        self._status_routes(app)
        self._feedback_route(app)
        self._rollback_route(app)

    def _rollback_route(self, app: FastAPI) -> None:
        @app.post(
            "/rollback",
            responses={
                400: {"description": "not an Alertmanager webhook body"},
                401: {"description": "no ROLLBACK_TOKEN set, or not its bearer token"},
                409: {"description": "nothing earlier passed the gate, or no alias is served"},
                503: {"description": "the registry cannot be used"},
            },
        )
        async def roll_back(request: Request) -> JSONResponse:
            """Alertmanager's webhook: a firing alert labelled ``rollback="true"`` moves the
            alias back to the version the gate passed before (``promote --rollback``), once
            per alert; this worker serves it at once, the others within
            MODEL_REFRESH_SECONDS."""
            body = await request.body()
            authorization = request.headers.get("authorization")
            try:
                done = await asyncio.to_thread(self.rollback.handle, authorization, body)
            except RollbackRefused as refused:
                raise HTTPException(refused.status, str(refused)) from None
            except Exception as error:
                problem = server_problem(error) or first_line(error)
                raise HTTPException(503, f"the registry cannot be used: {problem}") from None
            if done.get("rolled_back"):
                await asyncio.to_thread(self.refresh)
            return JSONResponse(done)

    def _feedback_route(self, app: FastAPI) -> None:

        @app.post(
            "/feedback",
            responses={
                400: {"description": "not an outcome, or not an id this service issues"},
                403: {"description": "an id not signed with this service's key"},
                409: {"description": "an id of another model version"},
                410: {"description": "an id older than FEEDBACK_MAX_AGE_SECONDS"},
                422: {"description": "an outcome of the wrong type for the model"},
                503: {"description": "no model loaded"},
            },
        )
        async def take_feedback(request: Request) -> JSONResponse:
            """The observed outcome of a prediction: ``{"prediction_id": ..., "outcome": ...}``
            or a list of them. Counted against the prediction the id carries (live_metric); a
            body with one bad outcome counts none."""
            feedback = self.feedback
            if feedback is None:
                raise HTTPException(503, "no model is loaded to take feedback for")
            try:
                counted = feedback.count(orjson.loads(await request.body()))
            except orjson.JSONDecodeError:
                raise HTTPException(400, "the body is not JSON") from None
            except FeedbackRefused as refused:
                raise HTTPException(refused.status, str(refused)) from None
            return JSONResponse({"counted": counted, "metric": feedback.metric})

    def _status_routes(self, app: FastAPI) -> None:
        metrics, flush = self.metrics, self.flush
        required = list(self.package.honesty.response_fields)

        @app.get("/health")
        def health() -> dict[str, Any]:
            """Liveness: 200 while the process runs; says what is loaded and what it lacks."""
            served = self.served
            meta = served.metadata
            return {
                "status": "alive",
                "model_uri": served.uri,
                "model_loaded": served.model is not None,
                "model_version": meta.model_version if meta else None,
                "honesty_metadata_complete": meta is not None and not meta.missing,
                "missing_honesty_fields": list(meta.missing) if meta else required,
                "recorded": dict(meta.recorded) if meta else {},
                "error": served.error,
            }

        @app.get("/ready", responses={503: {"description": "model not loaded or metadata missing"}})
        def ready() -> JSONResponse:
            """Readiness: only a loaded model with complete honesty metadata takes traffic."""
            served = self.served
            meta = served.metadata
            reason = served.not_ready()
            if reason is not None:
                return JSONResponse({"ready": False, "reason": reason}, status_code=503)
            version = meta.model_version if meta else None
            return JSONResponse({"ready": True, "model_uri": served.uri, "model_version": version})

        @app.get("/ping", responses={404: {"description": "model not loaded"}})
        def ping() -> Response:
            """``mlflow models serve``'s health check (SageMaker's too): 200 once the model is
            loaded. It says nothing of honesty metadata; ``/ready`` does."""
            status = 200 if self.served.model is not None else 404
            return Response("\n", status_code=status, media_type="application/json")

        @app.get("/version", response_class=PlainTextResponse)
        def version() -> str:
            """The MLflow version serving the model, as ``mlflow models serve`` answers."""
            return mlflow.__version__

        @app.get("/metrics", include_in_schema=False)
        def prometheus_metrics() -> Response:
            flush()
            return Response(exposition(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def request_body(self) -> dict[str, Any]:
        """The OpenAPI request body of /predict, from the model's signature."""
        return request_body(self.served.inputs, self.limits.max_batch)

    async def answer(
        self,
        request: Request,
        parsers: Mapping[str, Parse],
        endpoint: str,
        refuse: Callable[[list[dict[str, Any]]], Exception],
    ) -> Response:
        """Parse, predict in a worker thread under the time limit, count, answer honestly."""
        started = time.perf_counter()
        current = self.current  # the version this request is answered and counted by
        try:
            predictions, rows = await self._predictions(current, parsers, request)
        except payloads.InvalidInput as error:
            raise refuse(error.errors) from None
        return self.counted(endpoint, started, rows, current.body, predictions, current)

    async def answer_raw(self, request: Request, endpoint: str) -> Response:
        """Records of the data the notebook loaded: its feature code, then the model; 409 when
        the version being served takes none (the reason said), 422 naming a record at fault."""
        started = time.perf_counter()
        current = self.current
        raw = current.raw
        if not isinstance(raw, RawRecords):
            version = current.served.version or UNKNOWN
            why = raw or "the package has no feature code for it"
            raise HTTPException(
                409,
                f"model version {version} takes no records of the loaded data: {why}; "
                "send the model's input to /predict",
            )
        _, body = await self._read(current, request, PREDICT_PARSERS)  # JSON only
        inputs, max_batch = current.served.inputs, self.limits.max_batch
        try:
            predictions, rows = await self._predicted(
                current, lambda: raw.model_input(inputs, body, max_batch)
            )
        except payloads.InvalidInput as error:
            raise RequestValidationError(error.errors) from None
        return self.counted(endpoint, started, rows, current.body, predictions, current)

    def raw_request_body(self) -> dict[str, Any]:
        """The OpenAPI request body of /predict/raw, from the version served at start."""
        raw = self.current.raw
        return (
            request_body(raw.records, self.limits.max_batch) if isinstance(raw, RawRecords) else {}
        )

    def counted(
        self,
        endpoint: str,
        started: float,
        rows: int,
        body: HonestBody,
        predictions: list[Any],
        version: Version | None = None,
    ) -> Response:
        """Count a prediction response (latency, rows, honesty) and render it."""
        current = version or self.current
        self.metrics.latency.observe(time.perf_counter() - started)
        current.count_rows.inc(rows)
        if current.count_compliant is not None:
            current.count_compliant.inc()
        else:
            self.metrics.missing.labels(endpoint).inc()
        feedback = current.feedback
        ids = feedback.ids.issue(predictions) if feedback is not None else None
        return body.render(predictions, ids)

    async def _predictions(
        self, current: Version, parsers: Mapping[str, Parse], request: Request
    ) -> tuple[list[Any], int]:
        """The prediction path: body, model input, one ``predict`` call, JSON-ready lists.
        A body the model cannot take raises ``payloads.InvalidInput``."""
        parse, body = await self._read(current, request, parsers)
        inputs, limits = current.served.inputs, self.limits

        def prepare() -> tuple[payloads.ModelInput, int, Any]:
            model_input, rows = parse(inputs, body, limits.max_batch)
            return model_input, rows, model_input

        return await self._predicted(current, prepare)

    async def _read(
        self, current: Version, request: Request, parsers: Mapping[str, Parse]
    ) -> tuple[Parse, bytes]:
        """The body and the parser for its media type, once the version can answer (503 while
        no model is loaded; 415 for another media type)."""
        served = current.served
        if served.model is None or served.inputs is None:
            raise HTTPException(503, served.not_ready())
        return parser_for(request, parsers), await request.body()

    async def _predicted(
        self, current: Version, prepare: Callable[[], tuple[payloads.ModelInput, int, Any]]
    ) -> tuple[list[Any], int]:
        """One ``predict`` call on what `prepare` makes of the request (the model's input, its
        rows, and what drift counts), in a worker thread."""
        model, drift = current.served.model, current.drift

        def predict() -> tuple[list[Any], int]:
            model_input, rows, observed = prepare()
            try:
                predictions = payloads.to_list(model.predict(model_input))
            except MlflowException as error:  # the pyfunc's own schema check
                if error.error_code != "INVALID_PARAMETER_VALUE":
                    raise
                raise payloads.invalid(error.message) from None
            if drift is not None:
                drift.observe(observed, predictions)
            return predictions, rows

        return await self.in_thread(predict)

    async def in_thread(self, work: Callable[[], tuple[list[Any], int]]) -> tuple[list[Any], int]:
        """Run a prediction in a worker thread; 504 past PREDICT_TIMEOUT_SECONDS."""
        try:
            return await self.threads.run(work)
        except TimeoutError:
            raise HTTPException(
                504,
                f"no prediction within {self.limits.timeout_seconds:g} s (PREDICT_TIMEOUT_SECONDS)",
            ) from None

    def finish(self, app: FastAPI) -> FastAPI:
        """Starlette tries the routes in order, and FastAPI registers its docs routes first: the
        prediction routes go to the front, where a request finds them at the first or second
        try (each miss costs microseconds on every prediction)."""
        paths = self.prediction_paths
        app.router.routes.sort(key=lambda route: getattr(route, "path", "") not in paths)
        return app


async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming the field at fault; raw bytes (a non-JSON body) are never echoed back."""
    errors = [{k: v for k, v in e.items() if not isinstance(v, bytes)} for e in error.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def invalid_invocation(request: Request, error: InvalidInvocation) -> JSONResponse:
    """400 with MLflow's error body, so its clients read it unchanged; the fields at fault are
    listed under ``detail`` as for /predict."""
    body = {
        "error_code": "BAD_REQUEST",
        "message": payloads.summary(error.errors),
        "detail": jsonable_encoder(error.errors),
    }
    return JSONResponse(body, status_code=400)


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def app_or_exit(create: Callable[[], FastAPI]) -> FastAPI:
    """The app, or one line on stderr and exit 2 when a setting cannot work (no traceback)."""
    try:
        return create()
    except Exception as error:
        print(f"serve: cannot start: {first_line(error)}", file=sys.stderr)
        raise SystemExit(2) from None
