"""Live performance against the claim: prediction ids, and outcomes fed back against them.

Every prediction a response carries has an id: the model version, the prediction and when it was
made, signed with keyed BLAKE2b, a MAC (``PREDICTION_ID_KEY``; HMAC-SHA256 cost four times as
much, a fifth of a 100-row response's CPU). ``POST /feedback`` takes an id and the outcome
that was observed, checks the signature, and counts the outcome against the prediction the id
carries: whether the label was right, or the error of a value. Nothing is stored, so any worker
or replica holding the key can take the feedback for a prediction another one made, and an id
cannot be forged or altered without the key. Prometheus turns the counts into
``live_metric{metric=...}`` beside ``claim_value`` and ``claim_lower_bound`` (the recording
rules in monitoring/alerts.yml), and ``ClaimNotHolding`` fires when reality falls below the claim.

The same id fed back twice is counted twice: telling that apart needs state shared between
workers, which this design avoids; a client sends each outcome once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

KEY_VARIABLE = "PREDICTION_ID_KEY"
MAX_AGE_VARIABLE = "FEEDBACK_MAX_AGE_SECONDS"
DEFAULT_MAX_AGE = 30 * 86400.0  # an outcome observed a month later is still feedback
MAX_OUTCOMES = 1000  # per request, like a prediction batch
ERROR_METRICS = ("rmse", "mse", "mae")  # live metrics of a regressor, comparable to its claim
# a regressor claiming one of these is measured live by its RMSE, beside a claim it cannot meet
OTHER_REGRESSION_METRICS = ("r2", "explained_variance", "median_absolute_error", "max_error")


class FeedbackRefused(Exception):
    """An outcome that is not counted: the HTTP status and why, in one line."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def key_from_environment() -> bytes:
    """The signing key. Without one, a random key for this process: ids then verify only where
    they were made (the entrypoint sets one key for all its workers)."""
    key = os.environ.get(KEY_VARIABLE)
    if key:
        return key.encode()
    log.warning(
        "%s is not set: prediction ids verify only in the process that made them; set one key "
        "for every worker and replica (a Secret)",
        KEY_VARIABLE,
    )
    return secrets.token_bytes(32)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Issued:
    """What an id says: which version predicted what, when."""

    version: str
    prediction: Any
    at: float


NONCE_BYTES = 6


class PredictionIds:
    """Signs and reads prediction ids: ``<payload>.<mac>``, both base64url; the payload is
    the version, the prediction, the second it was made and a nonce."""

    def __init__(self, key: bytes, version: str, max_age: float = DEFAULT_MAX_AGE) -> None:
        # BLAKE2b takes keys of up to 64 bytes; a longer one is hashed down, as HMAC does
        self.key = key if len(key) <= hashlib.blake2b.MAX_KEY_SIZE else hashlib.sha256(key).digest()
        self.version = version
        self.max_age = max_age

    def _mac(self, payload: bytes) -> str:
        return _encode(hashlib.blake2b(payload, key=self.key, digest_size=16).digest())

    def issue(self, predictions: list[Any]) -> list[str]:
        """One id per prediction; a batch's nonces come from one read of the system's random
        source (a read per id cost more than its signature)."""
        now = int(time.time())
        randomness = os.urandom(NONCE_BYTES * len(predictions))
        ids = []
        for index, prediction in enumerate(predictions):  # two equal answers: two ids
            nonce = _encode(randomness[index * NONCE_BYTES : (index + 1) * NONCE_BYTES])
            payload = _encode(orjson.dumps([self.version, prediction, now, nonce])).encode()
            ids.append(f"{payload.decode()}.{self._mac(payload)}")
        return ids

    def read(self, token: Any) -> Issued:
        if not isinstance(token, str) or token.count(".") != 1:
            raise FeedbackRefused(400, "prediction_id is not an id this service issues")
        payload, mac = token.split(".")
        if not hmac.compare_digest(self._mac(payload.encode()), mac):
            raise FeedbackRefused(403, "prediction_id was not signed by this service's key")
        version, prediction, at, _ = orjson.loads(_decode(payload))
        if time.time() - at > self.max_age:
            raise FeedbackRefused(410, f"prediction_id expired: made over {self.max_age:.0f} s ago")
        return Issued(str(version), prediction, float(at))


class LiveMetrics:
    """Outcomes counted against predictions, and the claim they are compared with."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "live_outcomes_total",
            "Outcomes fed back (POST /feedback) against this service's predictions.",
            ["metric", "model_version"],
            registry=registry,
        )
        self.correct = Counter(
            "live_correct_total",
            "Fed-back outcomes the prediction got right (a classifier's accuracy).",
            ["metric", "model_version"],
            registry=registry,
        )
        self.absolute_error = Counter(
            "live_absolute_error_total",
            "Sum of |outcome - prediction| over the fed-back outcomes (a regressor's MAE).",
            ["metric", "model_version"],
            registry=registry,
        )
        self.squared_error = Counter(
            "live_squared_error_total",
            "Sum of (outcome - prediction)^2 over the fed-back outcomes (a regressor's RMSE).",
            ["metric", "model_version"],
            registry=registry,
        )
        self.claim = Gauge(
            "claim_value",
            "The served version's accuracy claim, as its registry tags state it.",
            ["metric", "model_version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.claim_bound = Gauge(
            "claim_lower_bound",
            "The claim less twice its cross-validated spread (for an error: plus): the live "
            "metric beyond it means the claim does not hold.",
            ["metric", "model_version"],
            registry=registry,
            multiprocess_mode="livemax",
        )


def claimed(recorded: Mapping[str, str]) -> tuple[str, float, float] | None:
    """The claim's metric, value and bound, read from the version's tags: the accuracy claim
    reads ``0.953 ±0.021 accuracy (5-fold cross-validation)``; without a spread the bound is
    the value."""
    words = (recorded.get("accuracy_claim") or "").split()
    if len(words) < 2:
        return None
    try:
        value = float(words[0])
    except ValueError:
        return None
    spread, metric = 0.0, words[1]
    if words[1].startswith("±") and len(words) > 2:
        spread, metric = float(words[1][1:]), words[2]
    metric = metric.lower()
    bound = value + 2 * spread if metric in ERROR_METRICS else value - 2 * spread
    return metric, value, bound


class Feedback:
    """Counts fed-back outcomes for the served version."""

    def __init__(
        self, metrics: LiveMetrics, ids: PredictionIds, recorded: Mapping[str, str]
    ) -> None:
        self.ids = ids
        claim = claimed(recorded)
        claimed_metric = claim[0] if claim else ""
        self.regression = claimed_metric in ERROR_METRICS + OTHER_REGRESSION_METRICS
        # What an outcome can measure: a label's accuracy, a value's error. A claim about
        # another metric (f1, r2) is shown beside it, but ClaimNotHolding cannot compare them.
        if claimed_metric in ERROR_METRICS:
            self.metric = claimed_metric
        else:
            self.metric = "rmse" if self.regression else "accuracy"
        labels = (self.metric, ids.version)
        if claim:
            metrics.claim.labels(claimed_metric, ids.version).set(claim[1])
            metrics.claim_bound.labels(claimed_metric, ids.version).set(claim[2])
        self.outcomes = metrics.outcomes.labels(*labels)
        self.correct = metrics.correct.labels(*labels)
        self.absolute_error = metrics.absolute_error.labels(*labels)
        self.squared_error = metrics.squared_error.labels(*labels)

    def count(self, body: Any) -> int:
        """Check every outcome of the body, then count them all: a body with one bad outcome
        counts none."""
        items = body if isinstance(body, list) else [body]
        if not items or len(items) > MAX_OUTCOMES:
            raise FeedbackRefused(400, f"send 1 to {MAX_OUTCOMES} outcomes")
        checked = [self._checked(item) for item in items]
        for prediction, outcome in checked:
            self.outcomes.inc()
            if self.regression:
                error = float(outcome) - float(prediction)
                self.absolute_error.inc(abs(error))
                self.squared_error.inc(error * error)
            elif outcome == prediction:
                self.correct.inc()
        return len(checked)

    def _checked(self, item: Any) -> tuple[Any, Any]:
        if not isinstance(item, dict) or set(item) != {"prediction_id", "outcome"}:
            raise FeedbackRefused(400, 'send {"prediction_id": ..., "outcome": ...}')
        issued = self.ids.read(item["prediction_id"])
        if issued.version != self.ids.version:
            raise FeedbackRefused(
                409,
                f"the prediction was made by version {issued.version}; this service serves "
                f"version {self.ids.version}",
            )
        outcome = item["outcome"]
        if self.regression:
            if not _number(outcome) or not math.isfinite(outcome):
                raise FeedbackRefused(
                    422, f"the model is measured by {self.metric}: the outcome must be a number"
                )
        elif not _same_kind(outcome, issued.prediction):
            raise FeedbackRefused(
                422,
                f"the model answers labels like {issued.prediction!r}: the outcome "
                f"{outcome!r} is not one",
            )
        return issued.prediction, outcome


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_kind(outcome: Any, prediction: Any) -> bool:
    """A label of the kind the model answers: 1 and 1.0 are one label, "1" and 1 are not."""
    if _number(outcome) and _number(prediction):
        return True
    return type(outcome) is type(prediction)
