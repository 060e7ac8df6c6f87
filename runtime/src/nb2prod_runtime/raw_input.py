"""Records of the data the notebook loaded, through the notebook's own feature code.

A package whose model's input is computed from a loaded table carries that code as one function,
``features.features_from_raw``: training runs it on the table, and the service's ``/predict/raw``
runs it on a client's records, then takes the model's columns from what it returns. That gives
the notebook's answer for a record only when the function is row-wise: each output row depends
on its own input row alone, and not on the label columns a client does not have. Nothing
static can prove that of arbitrary code, so training shows it on rows of the loaded data
(`check`) and records the outcome on the model version: the route serves a version whose check
passed and that ran the feature code the service holds, and says why not (409) otherwise.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

SPEC_PATH = "nb2prod/raw_input.json"  # in the run that logged the model
TAG = "raw_input"  # on the run and the version: ROW_WISE, or "not served: <why>"
ROW_WISE = "row-wise"
SAMPLE_ROWS = 20  # loaded rows the check computes one at a time, at random
MISSING_ROWS = 2  # and rows where each column is missing
MAX_COLUMNS = 200  # columns tested one by one for whether the features read them
SEED = 0
EXAMPLE_ROWS = 5


class NotRowWise(Exception):
    """The feature code cannot serve one record at a time; the message says why, in a line."""


@dataclass(frozen=True)
class RawFeatures:
    """The feature code a package's ``/predict/raw`` runs, as its ``features.py`` declares it."""

    function: Callable[[Any], Any]
    loaded: str  # the loaded table's name in the notebook
    cells: tuple[int, ...]  # the notebook cells the function's code comes from

    @property
    def where(self) -> str:
        cells = ", ".join(map(str, self.cells))
        return f"the feature code of cell{'s' if len(self.cells) > 1 else ''} {cells}"

    @cached_property
    def fingerprint(self) -> str:
        """The function's source and that of the package's own functions it calls: a version
        trained with other feature code must not be served through this code."""
        function = inspect.unwrap(self.function)  # under features.py's registering wrapper
        module = inspect.getmodule(function)
        package = (module.__name__ if module else "").split(".")[0]
        sources = [inspect.getsource(function)]
        for name in function.__code__.co_names:
            called = function.__globals__.get(name)
            if not inspect.isfunction(called):
                continue
            called = inspect.unwrap(called)
            if called.__module__.split(".")[0] == package:
                sources.append(inspect.getsource(called))
        return hashlib.sha256("\n".join(sources).encode()).hexdigest()

    def table(self, frame: Any) -> Any:
        """The function's output for `frame`, which must be a table."""
        import pandas as pd

        output = self.function(frame)
        if not isinstance(output, pd.DataFrame):
            raise NotRowWise(f"{self.where} returns {type(output).__name__}, not a table")
        return output


def check(raw: RawFeatures, loaded: Any, columns: list[str], label: str | None) -> dict[str, Any]:
    """The record schema of `/predict/raw`, once rows of the loaded table show the feature code
    row-wise: computed from its record alone (the columns it does not read left empty), each
    sampled row gets the model's input that training computed for it from the whole table.
    Raises NotRowWise with the reason otherwise. `label` is the label column's name, if known."""
    import pandas as pd
    from mlflow.models import infer_signature

    if not isinstance(loaded, pd.DataFrame):
        raise NotRowWise(f"the loaded {raw.loaded} is a {type(loaded).__name__}, not a table")
    if not loaded.index.is_unique:
        raise NotRowWise(f"the loaded {raw.loaded}'s index repeats, so rows cannot be told apart")
    whole = _computed(raw, loaded.copy(), "the loaded table")
    absent = [c for c in columns if c not in whole.columns]
    if absent:
        raise NotRowWise(f"{raw.where} does not compute the model's column {absent[0]}")
    kept = loaded.index.intersection(whole.index)
    if kept.empty:
        raise NotRowWise(f"{raw.where} keeps none of the loaded rows")
    rows = _sample(loaded.loc[kept])
    expected = whole.loc[rows, columns]
    sample = loaded.loc[rows]
    if not _same(_computed(raw, sample.copy(), "the sampled rows"), expected, columns):
        raise NotRowWise(
            f"the model's input differs when {raw.where} computes it from {len(rows)} of the "
            "loaded rows: it reads other rows (an aggregate over the data set)"
        )
    tested = list(loaded.columns[:MAX_COLUMNS])
    unread = [c for c in tested if _same(_quietly(raw, _blank(sample, [c])), expected, columns)]
    read = [c for c in loaded.columns if c not in unread]
    if label is not None and label in read:
        raise NotRowWise(f"{raw.where} reads the label {label}, which a record does not have")
    blanked = _blank(sample, unread)
    for row in rows:
        alone = _computed(raw, blanked.loc[[row]], f"row {row} alone")
        if not _same(alone, expected.loc[[row]], columns):
            raise NotRowWise(
                f"row {row}'s model input differs when {raw.where} computes it from that record "
                "alone: it reads other rows (an aggregate over the data set)"
            )
    schema = infer_signature(sample).inputs  # the columns it does not read are optional
    example = json.loads(sample[read].head(EXAMPLE_ROWS).to_json(orient="records"))
    return {
        "loaded": raw.loaded,
        "cells": list(raw.cells),
        "columns": schema.to_dict(),
        "unread": [str(c) for c in unread],
        "order": [str(c) for c in loaded.columns],
        "sha256": raw.fingerprint,
        "checked_rows": len(rows),
        "example": example,  # loaded rows as a client sends them: the package's tests post them
    }


def read_columns_beside(
    spec: Mapping[str, Any], features: Any, loaded: Mapping[str, Any]
) -> tuple[Any, list[str]] | None:
    """The model's features with the loaded columns the feature code reads and the model does
    not, from the same rows, and those columns' names; None when there are none (or the rows
    cannot be matched)."""
    import pandas as pd

    table = loaded.get(spec["loaded"])
    if not isinstance(features, pd.DataFrame) or not isinstance(table, pd.DataFrame):
        return None
    unread = set(spec.get("unread", ()))
    names = [str(c) for c in features.columns]
    beside = [c for c in spec["order"] if c not in unread and c not in names]
    if not beside or not features.index.isin(table.index).all():
        return None
    return pd.concat([features, table.loc[features.index, beside]], axis=1), beside


def _sample(loaded: Any) -> Any:
    """Rows to check: SAMPLE_ROWS at random, and for each column with missing values
    MISSING_ROWS rows where it is missing, since a fill from the whole column (`fillna(median)`)
    shows only on them."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    picked = set(rng.choice(len(loaded), size=min(SAMPLE_ROWS, len(loaded)), replace=False))
    missing = loaded.isna().to_numpy()
    for column in range(missing.shape[1])[:MAX_COLUMNS]:
        picked.update(np.flatnonzero(missing[:, column])[:MISSING_ROWS].tolist())
    return loaded.index[sorted(picked)]


def _computed(raw: RawFeatures, frame: Any, what: str) -> Any:
    try:
        return raw.table(frame)
    except NotRowWise:
        raise
    except Exception as error:
        text = str(error).strip().splitlines()
        line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
        raise NotRowWise(f"{raw.where} fails on {what}: {line}") from None


def _quietly(raw: RawFeatures, frame: Any) -> Any:
    try:
        return raw.table(frame)
    except Exception:
        return None


def _blank(frame: Any, columns: list[Any]) -> Any:
    """The frame with `columns` empty, as a record without them reaches the feature code."""
    import numpy as np

    blanked = frame.copy()
    for column in columns:
        blanked[column] = np.nan
    return blanked


def _same(got: Any, expected: Any, columns: list[str]) -> bool:
    import pandas as pd

    if got is None or any(c not in got.columns for c in columns):
        return False
    try:
        pd.testing.assert_frame_equal(
            got.loc[:, columns], expected, check_dtype=False, check_exact=False, rtol=1e-9
        )
    except (AssertionError, KeyError, TypeError, ValueError):
        return False
    return True
