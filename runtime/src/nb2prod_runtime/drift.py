"""What the model saw at training, per feature and for its predictions, to measure drift against.

Training logs a *reference profile* with the model version: for each input feature, bins from
the training quantiles (plus one below the smallest and one above the largest value seen) or the
most frequent categories (plus "other"), each with its share of the training rows, and the
missing rate; and the same for the model's predictions. The service counts each request's
values into the same bins (`DriftCounters`); Prometheus turns the counts of a window and the
reference shares into PSI and Hellinger distances (the recording rules in monitoring/alerts.yml),
so the numbers are right however many workers or replicas serve.

The profile is bounded whatever the data, so that the metrics' label sets are too: at most
`MAX_FEATURES` features (the first ones, in the model's column order; the rest are named under
``capped``), `MAX_CATEGORIES` categories per feature, `QUANTILE_BINS` quantile bins.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROFILE_PATH = "monitoring/reference_profile.json"  # in the run that logged the model
FORMAT = 1
MAX_FEATURES = 50
MAX_CATEGORIES = 20
QUANTILE_BINS = 10
SEEN = 1000  # categorical values whose bin a profile remembers
FLOOR = 1e-4  # no share is taken below this: PSI's logarithm stays finite
BELOW, ABOVE, OTHER = "below_range", "above_range", "other"
MAX_LABEL = 60  # characters of a category kept as a label value


def _label(value: Any) -> str:
    return str(value)[:MAX_LABEL]


def _is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "iuf" and values.dtype.kind != "b"


def _numeric_bins(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return {"kind": "numeric", "edges": [], "bins": [BELOW, ABOVE], "shares": [0.5, 0.5]}
    quantiles = np.quantile(present, np.linspace(0, 1, QUANTILE_BINS + 1))
    edges = [float(edge) for edge in np.unique(quantiles)]
    inner = [f"q{index}" for index in range(max(len(edges) - 1, 1))]
    counts = np.bincount(numeric_bin_indices(present, edges), minlength=len(inner) + 2)
    return {
        "kind": "numeric",
        "edges": edges,
        "bins": [BELOW, *inner, ABOVE],
        "shares": _shares(counts),
    }


def numeric_bin_indices(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Each value's bin: 0 below the training range, len(edges) above it (or 2 for a constant
    feature), the quantile bin between; the largest training value falls in the last bin."""
    values = np.asarray(values, dtype=float)
    found = np.searchsorted(edges, values, side="right")  # 0 below, len(edges) above the range
    if len(edges) == 1:  # a constant at training: below, equal, above
        found[values > edges[0]] = 2
    else:
        found[(found == len(edges)) & (values == edges[-1])] -= 1
    return found


def _categorical_bins(values: np.ndarray) -> dict[str, Any]:
    present = [_label(value) for value in values if not _missing(value)]
    labels, counts = np.unique(np.asarray(present, dtype=object).astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
    kept = [str(labels[index]) for index in order]
    kept_counts = [int(counts[index]) for index in order]
    other = int(counts.sum()) - sum(kept_counts)
    return {
        "kind": "categorical",
        "bins": [*kept, OTHER],
        "shares": _shares(np.asarray([*kept_counts, other])),
        "categories_capped": len(labels) > MAX_CATEGORIES,
    }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    if total == 0:
        return [1 / len(counts)] * len(counts)
    return [round(max(float(count) / total, FLOOR), 6) for count in counts]


def _column_profile(name: str, values: np.ndarray, categorical: bool) -> dict[str, Any]:
    if categorical:
        missing = np.fromiter((_missing(value) for value in values), bool, len(values))
        bins = _categorical_bins(values)
    else:
        values = values.astype(float)
        missing = np.isnan(values)
        bins = _numeric_bins(values)
    rate = float(missing.mean()) if len(values) else 0.0
    return {"name": name, "missing_rate": round(rate, 6), **bins}


def _columns(features: Any) -> tuple[list[str], list[np.ndarray], list[bool]] | None:
    """A frame's or a 2-D array's columns, with whether each holds categories; None for input
    that is not a table (images, sequences, text), which is not profiled per feature."""
    if hasattr(features, "columns") and hasattr(features, "dtypes"):
        names = [str(name) for name in features.columns]
        columns = [features[name].to_numpy() for name in features.columns]
        kinds = [
            str(dtype) in ("category", "object", "string", "bool") or dtype.kind in "OUSb"
            for dtype in features.dtypes
        ]
        return names, columns, kinds
    array = np.asarray(features) if not hasattr(features, "numpy") else None
    if array is None or array.ndim != 2:
        return None
    names = [str(index) for index in range(array.shape[1])]
    return (
        names,
        [array[:, index] for index in range(array.shape[1])],
        [not _is_numeric(array)] * array.shape[1],
    )


def _predictions_profile(predictions: Any) -> dict[str, Any] | None:
    """One value per row (a label, a number) is profiled; other answers (a forecast's series,
    several outputs per row) are not."""
    try:
        values = np.asarray(predictions)
    except ValueError:  # rows of different lengths
        return None
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.size == 0:
        return None
    discrete = not _is_numeric(values) or (
        values.dtype.kind in "iu" and np.unique(values).size <= MAX_CATEGORIES
    )
    return _column_profile("prediction", values, categorical=discrete)


def build(
    features: Any, predictions: Any, predicted_on: str, raw_columns: Sequence[str] = ()
) -> dict[str, Any]:
    """The reference profile of what the model was fitted on and what it answers.

    `predicted_on` says which rows the predictions come from, for the reader of the profile.
    `raw_columns`, last in `features`, are columns of the loaded data the feature code reads
    and the model does not: marked `raw`, they are counted on /predict/raw's requests only.
    """
    profile: dict[str, Any] = {
        "format": FORMAT,
        "features": [],
        "capped": [],
        "predictions": None,
        "predicted_on": predicted_on,
        "limits": {
            "max_features": MAX_FEATURES,
            "max_categories": MAX_CATEGORIES,
            "quantile_bins": QUANTILE_BINS,
        },
    }
    columns = _columns(features)
    if columns is None:
        profile["not_profiled"] = "the model's input is not a table of named columns"
    else:
        names, values, categorical = columns
        for index, name in enumerate(names):
            if index >= MAX_FEATURES:
                profile["capped"].append(name)
                continue
            entry = _column_profile(name, values[index], categorical[index])
            profile["features"].append(entry | ({"raw": True} if name in raw_columns else {}))
    profile["predictions"] = _predictions_profile(predictions)
    return profile


@dataclass(frozen=True)
class Binned:
    """One profiled value's bins, ready to count a request's values into."""

    name: str
    kind: str
    bins: tuple[str, ...]
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories_capped: bool = False  # "other" then also holds categories training saw
    position: Mapping[str, int] = field(default_factory=dict)  # a category's bin
    seen: dict[tuple[type, Any], int | None] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Binned:
        bins = tuple(entry["bins"])
        return cls(
            str(entry["name"]),
            str(entry["kind"]),
            bins,
            tuple(entry["shares"]),
            tuple(entry.get("edges") or ()),
            bool(entry.get("categories_capped")),
            {label: index for index, label in enumerate(bins[:-1])},
        )

    def index_of(self, value: Any) -> int | None:
        """One value's bin, None when it is missing: `indices` for one value, in plain Python,
        since numpy's per-call cost on a one-row request is many times this."""
        if self.kind != "numeric":
            return self.category_of(value)
        if type(value) is not float:
            try:
                value = float(value)
            except (TypeError, ValueError):
                return None
        edges = self.edges
        if value != value or not edges:  # NaN
            return None
        found = bisect.bisect_right(edges, value)  # 0 below the range, len(edges) above it
        if len(edges) == 1:
            return found + 1 if value > edges[0] else found
        if found == len(edges) and value == edges[-1]:  # the largest training value: in range
            return found - 1
        return found

    def category_of(self, value: Any) -> int | None:
        """A categorical value's bin, None when it is missing. Requests repeat a few values
        (labels, categories), so each value's bin is remembered, up to SEEN values: making its
        label costs more than the lookup."""
        key = (type(value), value)  # 1, 1.0 and True are equal, but their labels differ
        try:
            return self.seen[key]
        except KeyError:
            pass
        except TypeError:  # unhashable: never remembered
            return self._category(value)
        found = self.seen[key] = self._category(value)
        if len(self.seen) > SEEN:
            self.seen.clear()
        return found

    def _category(self, value: Any) -> int | None:
        return None if _missing(value) else self.position.get(_label(value), len(self.bins) - 1)

    def outside(self, index: int) -> bool:
        """Whether a bin lies outside what training saw: beyond its range, or a category it
        never held (known only when every category it held has a bin of its own)."""
        last = len(self.bins) - 1
        if self.kind == "numeric":
            return index in (0, last)
        return not self.categories_capped and index == last

    @functools.cached_property
    def outside_bins(self) -> frozenset[int]:
        """The bins `outside` names, looked up once per value instead of decided again."""
        return frozenset(index for index in range(len(self.bins)) if self.outside(index))

    def indices(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each present value's bin index, and which values were missing."""
        if self.kind == "numeric":
            try:
                numbers = np.asarray(values, dtype=float)
            except (TypeError, ValueError):
                numbers = np.full(len(values), np.nan)
            missing = np.isnan(numbers)
            if not self.edges:
                return np.zeros(0, dtype=int), missing
            return numeric_bin_indices(numbers[~missing], self.edges), missing
        bins = [self.category_of(value) for value in values]
        missing = np.fromiter((found is None for found in bins), bool, len(bins))
        return np.asarray([found for found in bins if found is not None], dtype=int), missing


class NumericBatch:
    """Every numeric feature's edges in one matrix, so a batch is binned by a few numpy calls
    instead of several per feature (numpy's per-call cost dominates at a few hundred rows).
    Bins as `numeric_bin_indices` bins one feature."""

    def __init__(self, features: Sequence[Binned]) -> None:
        self.members = [i for i, f in enumerate(features) if f.kind == "numeric" and f.edges]
        edges = [features[index].edges for index in self.members]
        width = max((len(each) for each in edges), default=0)
        self.edges = np.full((len(edges), width), np.inf)
        for row, each in enumerate(edges):
            self.edges[row, : len(each)] = each
        self.counts = np.array([len(each) for each in edges], dtype=int)
        self.first = self.edges[:, 0] if width else np.zeros(0)
        self.last = self.edges[np.arange(len(edges)), self.counts - 1] if width else np.zeros(0)
        self.sizes = [len(features[index].bins) for index in self.members]
        self.offsets = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(int)

    def count(self, values: np.ndarray) -> tuple[list[list[int]], list[int]]:
        """For a rows-by-members array of numbers: each member's count per bin, and its
        missing values."""
        missing = np.isnan(values)
        found = (values[:, :, None] >= self.edges[None, :, :]).sum(axis=2)  # bisect_right
        found = np.minimum(found, self.counts)  # the padding is +inf: an infinite value is above
        found -= (found == self.counts) & (values == self.last) & (self.counts > 1)
        found += (self.counts == 1) & (values > self.first)  # a constant: below, equal, above
        totals = np.bincount((found + self.offsets)[~missing], minlength=sum(self.sizes))
        bins = [
            totals[offset : offset + size].tolist()
            for offset, size in zip(self.offsets.tolist(), self.sizes, strict=True)
        ]
        return bins, missing.sum(axis=0).tolist()


def loads(text: str) -> dict[str, Any]:
    """A logged profile, checked for the format this runtime reads."""
    profile = json.loads(text)
    if not isinstance(profile, dict) or profile.get("format") != FORMAT:
        raise ValueError(f"not a reference profile of format {FORMAT}")
    return profile
