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
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from nb2prod_runtime import drift

log = logging.getLogger(__name__)

FEW_ROWS = 16  # up to this many rows, values are binned one by one in Python, not by numpy
FLUSH_SECONDS = 1.0  # how long counts wait in the process before they reach the series


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


@dataclass
class Pending:
    """Counts not yet added to the Prometheus series, one plain int per series."""

    bins: list[list[int]]  # what lies outside training is counted from these on flushing
    missing: list[int]
    predictions: list[int]


class DriftCounters:
    """Counts requests' values and predictions into one profile's bins.

    A request adds to plain ints under one lock; `flush` adds them to the Prometheus series about
    once a second (and before every scrape of this process). A Prometheus child's ``inc`` takes a
    lock and, in multiprocess mode, writes a memory-mapped file: one per feature on every request
    cost more than the binning itself, and a seventh of a one-row request.
    """

    def __init__(self, metrics: DriftMetrics, profile: Mapping[str, Any]) -> None:
        self.features = [drift.Binned.of(entry) for entry in profile.get("features", [])]
        # the model's own columns come first; columns of the loaded data only /predict/raw's
        # requests carry (profiled `raw`) follow, and an array (by position) has none of them
        self.model_width = sum(not e.get("raw") for e in profile.get("features", []))
        raw: list[int | None] = [None] * (len(self.features) - self.model_width)
        self.by_position: list[int | None] = [*range(self.model_width), *raw]
        predictions = profile.get("predictions")
        self.predictions = drift.Binned.of(predictions) if predictions else None
        # children labelled once: a flush only increments
        self.feature_bins = [
            [metrics.feature_bins.labels(f.name, label) for label in f.bins] for f in self.features
        ]
        self.missing = [metrics.missing.labels(f.name) for f in self.features]
        self.outside = [metrics.outside.labels(f.name) for f in self.features]
        self.prediction_bins = []
        if self.predictions is not None:
            self.prediction_bins = [
                metrics.prediction_bins.labels(label) for label in self.predictions.bins
            ]
        # the reference's shares, each series with the share it shows while this version serves
        self.reference = [
            (metrics.feature_reference.labels(feature.name, label), share)
            for feature in self.features
            for label, share in zip(feature.bins, feature.shares, strict=True)
        ]
        if self.predictions is not None:
            self.reference += [
                (metrics.prediction_reference.labels(label), share)
                for label, share in zip(self.predictions.bins, self.predictions.shares, strict=True)
            ]
        self.publish()
        self.binning = [feature.index_of for feature in self.features]  # looked up once
        self.every_binning = list(enumerate(self.binning))
        # the features a request's table holds, worked out once per column layout
        self.laid_out: list[int | None] | None = None
        self.layout: tuple[list[int], list[int | None]] | None = None
        self.numeric = drift.NumericBatch(self.features)
        self.lock = threading.Lock()
        self.pending = self._nothing_pending()
        self.columns: Any = None  # the last frame's column index, and each feature's position
        self.positions: list[int | None] = []
        self.failed = False
        metrics.profiled.set(1)
        FLUSHER.watch(self)

    def publish(self) -> None:
        """Show this profile's shares (the reference the recording rules compare with)."""
        for series, share in self.reference:
            series.set(share)

    def withdraw(self) -> None:
        """Show 0 for this profile's shares, once another version serves: the recording rules
        skip bins whose reference is 0, so a bin the next profile lacks stops counting in PSI
        (the next profile publishes its own shares after this)."""
        self.flush()
        for series, _ in self.reference:
            series.set(0)

    def _nothing_pending(self) -> Pending:
        return Pending(
            [[0] * len(feature.bins) for feature in self.features],
            [0] * len(self.features),
            [0] * len(self.prediction_bins),
        )

    def flush(self) -> None:
        """Add what requests counted since the last flush to the Prometheus series."""
        with self.lock:
            pending, self.pending = self.pending, self._nothing_pending()
        for index, (children, counts) in enumerate(
            zip(self.feature_bins, pending.bins, strict=True)
        ):
            _add(children, counts)
            outside = sum(counts[found] for found in self.features[index].outside_bins)
            if outside:
                self.outside[index].inc(outside)
        _add(self.missing, pending.missing)
        _add(self.prediction_bins, pending.predictions)

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
        table = self._table(model_input)
        few = self._few_rows(table)
        if few is not None:
            self._observe_rows(*few, predictions)
            return
        counted = self._nothing_pending()
        if table is not None:
            values, positions = table
            done = self._count_numeric(values, positions, counted)
            for index, feature in enumerate(self.features):
                if positions[index] is None or index in done:
                    continue
                found, missing = feature.indices(values[:, positions[index]])
                counted.missing[index] = int(missing.sum())
                counted.bins[index] = np.bincount(found, minlength=len(feature.bins)).tolist()
        if self.predictions is not None:
            answered = np.asarray(predictions, dtype=object)
            if answered.ndim == 2 and answered.shape[1] == 1:
                answered = answered[:, 0]
            if answered.ndim == 1:
                found, _ = self.predictions.indices(answered)
                counted.predictions = np.bincount(
                    found, minlength=len(self.prediction_bins)
                ).tolist()
        with self.lock:
            pending = self.pending
            for totals, counts in zip(pending.bins, counted.bins, strict=True):
                _sum_into(totals, counts)
            _sum_into(pending.missing, counted.missing)
            _sum_into(pending.predictions, counted.predictions)

    def _count_numeric(
        self, values: np.ndarray, positions: list[int | None], counted: Pending
    ) -> set[int]:
        """Count the numeric features of a batch at once, when all are present as numbers;
        the features counted (none: each is counted on its own)."""
        members = self.numeric.members
        columns = [positions[index] for index in members]
        if not members or any(column is None for column in columns):
            return set()
        try:
            numbers = np.asarray(values[:, columns], dtype=float)
        except (TypeError, ValueError):  # text where a number was profiled
            return set()
        bins, missing = self.numeric.count(numbers)
        for member, index in enumerate(members):
            counted.bins[index] = bins[member]
            counted.missing[index] = missing[member]
        return set(members)

    def _few_rows(
        self, table: tuple[np.ndarray, list[int | None]] | None
    ) -> tuple[list[list[Any]], list[int]] | None:
        """A small request's rows as Python values of the profiled features it has, and which
        those are; None for a large batch (numpy counts it faster), a request lacking one of the
        model's features, or no table. Only /predict/raw's requests have the raw columns."""
        if table is None or len(table[0]) > FEW_ROWS:
            return None
        values, positions = table
        if positions is not self.laid_out:  # the service's frames share one column index
            present = [index for index, position in enumerate(positions) if position is not None]
            complete = all(position is not None for position in positions[: self.model_width])
            self.layout = (present, [positions[i] for i in present]) if complete else None
            self.laid_out = positions
        if self.layout is None:
            return None
        present, taken = self.layout
        return [[row[position] for position in taken] for row in values.tolist()], present

    def _table(self, model_input: Any) -> tuple[np.ndarray, list[int | None]] | None:
        """The request as one 2-D array, and where each profiled feature is in it (None for a
        feature it lacks): a frame by column name, an array by position."""
        if hasattr(model_input, "columns"):
            # The service's frames share one column index; reading its names costs ~15 µs.
            if model_input.columns is not self.columns:
                present = {str(name): index for index, name in enumerate(model_input.columns)}
                self.columns = model_input.columns
                self.positions = [present.get(feature.name) for feature in self.features]
            return model_input.to_numpy(), self.positions
        if isinstance(model_input, np.ndarray) and model_input.ndim == 2:
            if model_input.shape[1] != self.model_width:
                return None
            return model_input, self.by_position
        return None

    def _observe_rows(
        self, rows: list[list[Any]], present: list[int], predictions: list[Any]
    ) -> None:
        answers = []
        if self.predictions is not None:
            for answer in predictions:
                if isinstance(answer, list):  # several outputs per row: not profiled
                    if len(answer) != 1:
                        answers = []
                        break
                    answer = answer[0]
                answers.append(self.predictions.index_of(answer))
        binning = (
            self.every_binning
            if len(present) == len(self.binning)
            else [(index, self.binning[index]) for index in present]
        )
        with self.lock:
            pending = self.pending
            for row in rows:
                for column, (index, bin_of) in enumerate(binning):
                    found = bin_of(row[column])
                    if found is None:
                        pending.missing[index] += 1
                    else:
                        pending.bins[index][found] += 1
            for found in answers:
                if found is not None:
                    pending.predictions[found] += 1


def _add(children: list[Any], counts: list[int]) -> None:
    for child, count in zip(children, counts, strict=True):
        if count:
            child.inc(count)


def _sum_into(totals: list[int], counts: list[int]) -> None:
    for index, count in enumerate(counts):
        totals[index] += count


class Flusher:
    """One daemon thread per process flushing every service's counts about once a second."""

    def __init__(self) -> None:
        self.counters: weakref.WeakSet[DriftCounters] = weakref.WeakSet()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def watch(self, counters: DriftCounters) -> None:
        with self.lock:
            self.counters.add(counters)
            if self.thread is None or not self.thread.is_alive():  # a forked worker has none
                self.thread = threading.Thread(target=self._run, name="drift-flush", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            for counters in list(self.counters):
                try:
                    counters.flush()
                except Exception as error:  # a metric that cannot be written: said, not raised
                    log.warning("drift counts not flushed: %s: %s", type(error).__name__, error)


FLUSHER = Flusher()


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
