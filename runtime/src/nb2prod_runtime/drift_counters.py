"""The service's side of drift: each request's values counted into the reference profile's bins.

Only counters and the reference's own shares leave the process; the distances are computed by
Prometheus over a window (monitoring/alerts.yml's recording rules: `feature_drift_psi`,
`prediction_drift_psi` and their Hellinger twins). Counters add up across workers in multiprocess
mode and across replicas in a `sum`, which a distance computed inside one worker never could.
Every series exists at 0 from the start, so the first requests of a window are an increase.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import mlflow
import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from nb2prod_runtime import drift

log = logging.getLogger(__name__)

FEW_ROWS = 16  # up to this many rows, values are binned one by one in Python, not by numpy


class DriftMetrics:
    """The drift series of one service, in its registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.feature_bins = Counter(
            "feature_bin_observations_total",
            "Request values per feature and reference bin (the bins of the training profile).",
            ["feature", "bin"],
            registry=registry,
        )
        self.feature_reference = Gauge(
            "feature_reference_share",
            "Share of the training rows in each bin of each feature (the reference profile).",
            ["feature", "bin"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.prediction_bins = Counter(
            "prediction_bin_observations_total",
            "Predictions per reference bin of the model's answers at training.",
            ["bin"],
            registry=registry,
        )
        self.prediction_reference = Gauge(
            "prediction_reference_share",
            "Share of the model's answers at training in each bin (the reference profile).",
            ["bin"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.missing = Counter(
            "feature_missing_values_total",
            "Request values that were missing (null, NaN), per feature.",
            ["feature"],
            registry=registry,
        )
        self.outside = Counter(
            "feature_values_outside_training_total",
            "Request values beyond the training range, or of a category training never held.",
            ["feature"],
            registry=registry,
        )
        self.profiled = Gauge(
            "drift_reference_loaded",
            "1 when the served version has a reference profile to measure drift against.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.trained_at = Gauge(
            "model_trained_timestamp_seconds",
            "When the served version's training run started (Unix time): its age is staleness.",
            registry=registry,
            multiprocess_mode="livemax",
        )


class DriftCounters:
    """Counts requests' values and predictions into one profile's bins."""

    def __init__(self, metrics: DriftMetrics, profile: Mapping[str, Any]) -> None:
        self.features = [drift.Binned.of(entry) for entry in profile.get("features", [])]
        predictions = profile.get("predictions")
        self.predictions = drift.Binned.of(predictions) if predictions else None
        # children labelled once: a request only increments
        self.feature_bins = [
            [metrics.feature_bins.labels(f.name, label) for label in f.bins] for f in self.features
        ]
        self.missing = [metrics.missing.labels(f.name) for f in self.features]
        self.outside = [metrics.outside.labels(f.name) for f in self.features]
        for feature in self.features:
            for label, share in zip(feature.bins, feature.shares, strict=True):
                metrics.feature_reference.labels(feature.name, label).set(share)
        self.prediction_bins = []
        if self.predictions is not None:
            self.prediction_bins = [
                metrics.prediction_bins.labels(label) for label in self.predictions.bins
            ]
            for label, share in zip(self.predictions.bins, self.predictions.shares, strict=True):
                metrics.prediction_reference.labels(label).set(share)
        self.failed = False
        metrics.profiled.set(1)

    def observe(self, model_input: Any, predictions: list[Any]) -> None:
        """Count one request: its features (a frame by name, a 2-D array by position) and what
        the model answered. Input that is not such a table counts its predictions only. Counting
        never fails a request: a value it cannot bin is said once in the log."""
        try:
            self._observe(model_input, predictions)
        except Exception as error:
            if not self.failed:
                self.failed = True
                log.warning("drift counting skipped a request: %s: %s", type(error).__name__, error)

    def _observe(self, model_input: Any, predictions: list[Any]) -> None:
        rows = self._few_rows(model_input)
        if rows is not None:
            self._observe_rows(rows, predictions)
            return
        columns = self._columns(model_input)
        for index, feature in enumerate(self.features):
            if columns is None:
                break
            values = columns(index, feature.name)
            if values is None:
                continue
            found, missing = feature.indices(values)
            if missing.any():
                self.missing[index].inc(int(missing.sum()))
            self._count(self.feature_bins[index], found)
            outside = feature.out_of_range(found)
            if outside:
                self.outside[index].inc(outside)
        if self.predictions is not None:
            answered = np.asarray(predictions, dtype=object)
            if answered.ndim == 2 and answered.shape[1] == 1:
                answered = answered[:, 0]
            if answered.ndim == 1:
                found, _ = self.predictions.indices(answered)
                self._count(self.prediction_bins, found)

    def _few_rows(self, model_input: Any) -> list[list[Any]] | None:
        """A small request's rows as Python values in the profile's feature order, or None
        (a large batch, which numpy counts faster; input that is not a table)."""
        if not hasattr(model_input, "__len__") or len(model_input) > FEW_ROWS:
            return None
        if hasattr(model_input, "columns"):
            present = {str(name): index for index, name in enumerate(model_input.columns)}
            if any(feature.name not in present for feature in self.features):
                return None
            order = [present[feature.name] for feature in self.features]
            return [[row[index] for index in order] for row in model_input.to_numpy().tolist()]
        if isinstance(model_input, np.ndarray) and model_input.ndim == 2:
            if model_input.shape[1] != len(self.features):
                return None
            return model_input.tolist()
        return None

    def _observe_rows(self, rows: list[list[Any]], predictions: list[Any]) -> None:
        for row in rows:
            for index, feature in enumerate(self.features):
                found = feature.index_of(row[index])
                if found is None:
                    self.missing[index].inc()
                    continue
                self.feature_bins[index][found].inc()
                if feature.outside(found):
                    self.outside[index].inc()
        if self.predictions is None:
            return
        for answer in predictions:
            if isinstance(answer, list):  # several outputs per row: not profiled
                if len(answer) != 1:
                    return
                answer = answer[0]
            found = self.predictions.index_of(answer)
            if found is not None:
                self.prediction_bins[found].inc()

    @staticmethod
    def _count(children: list[Any], found: np.ndarray) -> None:
        if found.size == 1:  # one row: the common case, without bincount's allocation
            children[int(found[0])].inc()
            return
        for index, count in enumerate(np.bincount(found, minlength=len(children))):
            if count:
                children[index].inc(int(count))

    def _columns(self, model_input: Any) -> Any:
        if hasattr(model_input, "columns"):
            present = {str(name): name for name in model_input.columns}

            def by_name(index: int, name: str) -> np.ndarray | None:
                return model_input[present[name]].to_numpy() if name in present else None

            return by_name
        array = model_input if isinstance(model_input, np.ndarray) else None
        if array is None or array.ndim != 2 or array.shape[1] != len(self.features):
            return None
        return lambda index, name: array[:, index]


def counters_for(
    metrics: DriftMetrics | None, run_id: str | None, version: str | None
) -> DriftCounters | None:
    """The served version's counters, or None (said once in the log) when it has no profile:
    a version trained before profiles existed serves all the same, unmeasured. DRIFT_MONITORING=off
    turns counting off (serve_bench measures what it costs)."""
    if metrics is None:
        return None
    metrics.profiled.set(0)
    if os.environ.get("DRIFT_MONITORING", "on").lower() in ("off", "0", "false"):
        log.warning("drift is not measured: DRIFT_MONITORING=off")
        return None
    if not run_id:
        log.warning("drift is not measured for model version %s: its run is unknown", version)
        return None
    try:
        run = mlflow.get_run(run_id)
        metrics.trained_at.set(run.info.start_time / 1000)
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{drift.PROFILE_PATH}")
        return DriftCounters(metrics, drift.loads(text))
    except Exception as error:
        log.warning(
            "drift is not measured for model version %s: no reference profile (%s)",
            version,
            str(error).splitlines()[0] if str(error) else type(error).__name__,
        )
        return None
