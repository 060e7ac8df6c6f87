# {{ cookiecutter._code.header }}
"""The model service: its prediction routes, what every answer says, and what is counted.

Run it with ``uvicorn {{ cookiecutter.package_name }}.serve:app`` (one worker), or as the
container does, ``python -m {{ cookiecutter.package_name }}.entrypoint``, which starts
``WEB_CONCURRENCY`` workers whose metrics add up. Loading the model by alias, the request
limits, the parsers and /health, /ready, /ping, /version, /metrics are nb2prod-runtime's
``Service``; what a reviewer must see is here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from nb2prod_runtime.compat import require_runtime
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel, ConfigDict

from {{ cookiecutter.package_name }} import RUNTIME_VERSION

require_runtime(RUNTIME_VERSION, "serve")  # before the rest of the runtime is imported

from nb2prod_runtime.drift_counters import DriftMetrics
from nb2prod_runtime.feedback import LiveMetrics
from nb2prod_runtime.serving import (
    INVOCATIONS_PARSERS,
    LATENCY_BUCKETS,
    PREDICT_PARSERS,
    InvalidInvocation,
    Service,
    app_or_exit,
)

{%- if cookiecutter._code.raw_route %}
from {{ cookiecutter.package_name }}.features import RAW_FEATURES
{%- endif %}
from {{ cookiecutter.package_name }}.honesty import PACKAGE
{%- if cookiecutter._code.feature_store %}
from {{ cookiecutter.package_name }}.feature_store import by_key_route
{%- endif %}

PREDICTION_PATHS = ("/predict", "/invocations"{% if cookiecutter._code.feature_store %}, "/predict/by-key"{% endif %}{% if cookiecutter._code.raw_route %}, "/predict/raw"{% endif %})


class PredictResponse(BaseModel):
    """Predictions plus what the model honestly is; extra contract fields pass through."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    predictions: list[Any]
    # one per prediction: POST /feedback takes it with the observed outcome
    prediction_ids: list[str] | None = None
    implementation_status: str | None
    accuracy_claim: str | None
    validation_status: str | None
    model_version: str | None
    uncertainty: str | None


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app). With
    ``PROMETHEUS_MULTIPROC_DIR`` set, /metrics adds up every worker's values."""

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
        # Request values and predictions per bin of the training profile, beside the profile's
        # own shares: Prometheus computes feature_drift_psi and prediction_drift_psi from them.
        self.drift = DriftMetrics(self.registry)
        # Outcomes fed back against predictions (POST /feedback), beside the claim's value and
        # bound: Prometheus computes live_metric from them.
        self.live = LiveMetrics(self.registry)
        # A version the alias moved to that did not load or answer its input example: the
        # previous one keeps serving (MODEL_REFRESH_SECONDS).
        self.refresh_failures = Counter(
            "model_refresh_failures_total",
            "Model versions the alias named that failed to load or predict, so were not served.",
            ["model_version"],
            registry=self.registry,
        )


def create_app(model_uri: str | None = None) -> FastAPI:
    """Build the service around one model; each app has its own metrics registry."""
{%- if cookiecutter._code.raw_route %}
    service = Service(
        PACKAGE, Metrics(), PredictResponse, model_uri, PREDICTION_PATHS, RAW_FEATURES
    )
{%- else %}
    service = Service(PACKAGE, Metrics(), PredictResponse, model_uri, PREDICTION_PATHS)
{%- endif %}
    name = PACKAGE.model_name
    app = FastAPI(
        title=f"{name} model service",
        description=f"Serves {name}; every response states what the model honestly is.",
        lifespan=service.lifespan(),
    )
    service.install(app)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        openapi_extra=service.request_body(),
    )
    async def predict(request: Request) -> Response:
        """One record (a JSON object) or a batch (an array of them); JSON only. A record the
        model cannot take gets a 422 naming the record and the field."""
        return await service.answer(request, PREDICT_PARSERS, "/predict", RequestValidationError)

    @app.post(
        "/invocations",
        response_model=PredictResponse,
        responses={400: {"description": "a body the model cannot take (MLflow's error body)"}},
    )
    async def invocations(request: Request) -> Response:
        """What ``mlflow models serve`` takes (JSON: dataframe_split, dataframe_records,
        instances, inputs; CSV; Parquet) and answers, plus the honesty fields: its clients
        switch unchanged."""
        return await service.answer(
            request, INVOCATIONS_PARSERS, "/invocations", InvalidInvocation
        )
{%- if cookiecutter._code.raw_route %}

    @app.post(
        "/predict/raw",
        response_model=PredictResponse,
        openapi_extra=service.raw_request_body(),
        responses={409: {"description": "the model version served takes no such records"}},
    )
    async def predict_raw(request: Request) -> Response:
        """Records of `{{ cookiecutter._code.raw_route.loaded }}` as the notebook loads it (cell {{ cookiecutter._code.raw_route.loaded_in }}): the notebook's own feature code
        computes the model's input from them, as training did."""
        return await service.answer_raw(request, "/predict/raw")
{%- endif %}
{%- if cookiecutter._code.feature_store %}

    answer_by_key = by_key_route(service)

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
        return await answer_by_key(request)
{%- endif %}

    return service.finish(app)


def __getattr__(name: str) -> FastAPI:
    """``serve.app``, created on first use (by uvicorn): importing the module loads nothing."""
    if name == "app":
        application = app_or_exit(create_app)
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
