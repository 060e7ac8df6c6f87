# {{ cookiecutter._code.header }}
"""Serving a time-series model (statsmodels' ARIMA, SARIMAX, AutoReg, ExponentialSmoothing...).

Such a model does not answer rows of features: it forecasts a stretch of its series. A request
row names that stretch as MLflow's statsmodels flavour does, with ``start`` and ``end``
(positions counted from the first fitted observation, both included), and the answer for the
row is the list of values from start to end: one list per row, so a batch asks for several
stretches at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .payloads import invalid

TIME_SERIES_MODEL = "statsmodels.tsa.base.tsa_model.TimeSeriesModel"
MAX_STEPS = 10_000  # the longest stretch one row may ask for: a forecast costs what it spans


def is_forecaster(model: Any) -> bool:
    """A statsmodels time-series result, told by its model's class (no statsmodels import)."""
    inner = getattr(model, "model", None)
    return any(
        f"{base.__module__}.{base.__name__}" == TIME_SERIES_MODEL for base in type(inner).__mro__
    )


def forecast_request(model: Any, horizon: int) -> pd.DataFrame:
    """The request for the `horizon` steps right after the fitted series."""
    observed = len(model.model.endog)
    return pd.DataFrame({"start": [observed], "end": [observed + horizon - 1]})


class Forecaster:
    """The service's model for a time-series result: ``predict`` takes rows of start, end."""

    def __init__(self, results: Any) -> None:
        self.results = results

    def predict(self, frame: pd.DataFrame) -> list[list[float]]:
        return [self.stretch(start, end) for start, end in zip(frame["start"], frame["end"])]

    def stretch(self, start: Any, end: Any) -> list[float]:
        if start < 0:
            raise invalid(f"start must be 0 or more, got {start}", "start")
        if end < start:
            raise invalid(f"end ({end}) is before start ({start})", "end")
        if end - start + 1 > MAX_STEPS:
            raise invalid(f"at most {MAX_STEPS} steps per row, asked for {end - start + 1}", "end")
        values = self.results.predict(start=int(start), end=int(end))
        return np.asarray(values, dtype=float).tolist()
