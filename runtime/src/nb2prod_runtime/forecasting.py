"""Serving a time-series model (statsmodels' ARIMA, SARIMAX, AutoReg, ExponentialSmoothing...).

Such a model does not answer rows of features: it forecasts a stretch of its series. A request
row names that stretch as MLflow's statsmodels flavour does, with ``start`` and ``end``
(positions counted from the first fitted observation, both included), and the answer for the
row is the list of values from start to end: one list per row, so a batch asks for several
stretches at once.

A model fitted with exogenous data (``SARIMAX(y, exog=X)``) cannot forecast past its series
without the future values of that data: the row then brings them as ``exog``, one row of
numbers per step after the fitted series, in the columns' fitted order. Steps inside the
fitted series need none.

A result that forecasts through another model (STLForecast's) has neither ``predict`` nor the
``save`` MLflow's statsmodels flavour calls; it is logged and served through
``ForecastThrough``, which gives it both.
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nb2prod_runtime.payloads import invalid

TIME_SERIES_MODEL = "statsmodels.tsa.base.tsa_model.TimeSeriesModel"
MAX_STEPS = 10_000  # the longest stretch one row may ask for: a forecast costs what it spans


def is_forecaster(model: Any) -> bool:
    """A statsmodels time-series result, told by its model's class (no statsmodels import)."""
    inner = getattr(model, "model", None)
    return any(
        f"{base.__module__}.{base.__name__}" == TIME_SERIES_MODEL for base in type(inner).__mro__
    )


class ForecastThrough:
    """A forecast result without ``predict`` or ``save`` (STLForecast's), made to answer and
    to be saved as statsmodels' time-series results are. It is pickled with this package's
    class, so it loads where this package is installed, as the service is."""

    def __init__(self, results: Any) -> None:
        self.results = results

    @property
    def model(self) -> Any:
        """The time-series model the forecast goes through, fitted on the whole series."""
        return self.results.model

    def predict(self, start: int, end: int, **exog: Any) -> Any:
        return self.results.get_prediction(start=start, end=end, **exog).predicted_mean

    def save(self, fname: str | Path, remove_data: bool = False) -> None:
        """What MLflow's statsmodels flavour calls; statsmodels' own save pickles too."""
        with open(fname, "wb") as file:
            pickle.dump(self, file)


def loggable(model: Any) -> Any:
    """The model as MLflow's statsmodels flavour can save and serve it."""
    if is_forecaster(model) and not hasattr(model, "predict"):
        return ForecastThrough(model)
    return model


def exog_columns(model: Any) -> list[str]:
    """The exogenous columns a forecast past the series needs, in fitted order (none for a
    model of its series alone). ARIMA keeps its trend among them; only the user's count."""
    fitted = getattr(model.model.data, "orig_exog", None)
    if fitted is None:
        return []
    width = getattr(model.model, "k_exog", None)
    if not isinstance(width, int):
        width = 1 if np.ndim(fitted) == 1 else np.shape(fitted)[1]
    if width == 0:
        return []
    names = list(getattr(fitted, "columns", []))[-width:]
    return [str(name) for name in names] if names else [f"x{i}" for i in range(1, width + 1)]


def forecast_request(model: Any, horizon: int) -> pd.DataFrame:
    """The request for the `horizon` steps right after the fitted series. For a model with
    exog, the last fitted rows of that data stand in for its future values: an example of
    the shape a request takes, not a forecast anyone should trust."""
    observed = len(model.model.endog)
    request = pd.DataFrame({"start": [observed], "end": [observed + horizon - 1]})
    width = len(exog_columns(model))
    if width:
        fitted = np.asarray(model.model.data.orig_exog, dtype=float).reshape(observed, -1)
        request["exog"] = [fitted[-horizon:, -width:].tolist()]
    return request


class Forecaster:
    """The service's model for a time-series result: ``predict`` takes rows of start, end
    (and exog, when the model was fitted with it)."""

    def __init__(self, results: Any) -> None:
        self.results = results
        self.observed = len(results.model.endog)
        self.exog = exog_columns(results)
        parameters = inspect.signature(results.predict).parameters
        self.exog_argument = "exog_oos" if "exog_oos" in parameters else "exog"  # AutoReg's

    def predict(self, frame: pd.DataFrame) -> list[list[float]]:
        exog = frame["exog"] if "exog" in frame else [None] * len(frame)
        return [
            self.stretch(start, end, future)
            for start, end, future in zip(frame["start"], frame["end"], exog, strict=True)
        ]

    def stretch(self, start: Any, end: Any, exog: Any = None) -> list[float]:
        if start < 0:
            raise invalid(f"start must be 0 or more, got {start}", "start")
        if end < start:
            raise invalid(f"end ({end}) is before start ({start})", "end")
        if end - start + 1 > MAX_STEPS:
            raise invalid(f"at most {MAX_STEPS} steps per row, asked for {end - start + 1}", "end")
        future = self.future_exog(int(start), int(end), exog)
        extra = {} if future is None else {self.exog_argument: future}
        values = self.results.predict(start=int(start), end=int(end), **extra)
        return np.asarray(values, dtype=float).tolist()

    def future_exog(self, start: int, end: int, exog: Any) -> np.ndarray | None:
        """The rows of exog for the steps past the fitted series, checked against the model."""
        given = exog is not None and not (np.isscalar(exog) and pd.isna(exog))
        if not self.exog:
            if given:
                raise invalid("the model was fitted without exog; leave exog out", "exog")
            return None
        ahead = max(0, end - max(start, self.observed) + 1)
        if ahead == 0:
            return None
        wanted = f"{ahead} rows of {len(self.exog)} numbers ({', '.join(self.exog)})"
        if not given:
            raise invalid(
                f"steps after position {self.observed - 1} need the model's exogenous data: "
                f"give exog, {wanted}, one row per step",
                "exog",
            )
        try:
            rows = np.asarray(exog, dtype=float)
        except (TypeError, ValueError):
            raise invalid(f"exog must be {wanted}", "exog") from None
        if rows.ndim == 1 and len(self.exog) == 1:
            rows = rows.reshape(-1, 1)  # one column may come as a plain list
        if rows.shape != (ahead, len(self.exog)) or not np.isfinite(rows).all():
            raise invalid(f"exog must be {wanted}, got shape {list(rows.shape)}", "exog")
        return rows
