"""Columns a model was fitted on as pandas categories, given back to it as categories.

LightGBM, XGBoost and CatBoost read a frame's `category` columns natively and check that a
frame they predict on has the same categorical columns. A request carries those values as
strings (MLflow's signature has no category type, and its schema enforcement refuses one), so
the categories each column was fitted with are logged in the model's metadata, and the service
loads the model with its own flavour and casts those columns back before it predicts: a value
outside them becomes missing, as pandas makes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

CATEGORIES = "nb2prod_categories"  # model metadata: column -> the categories it was fitted with
NATIVE = ("lightgbm", "xgboost", "catboost", "sklearn")


def categories_of(model_input: Any) -> dict[str, list[Any]]:
    """Each `category` column of the frame the model was fitted on, with its categories."""
    if not isinstance(model_input, pd.DataFrame):
        return {}
    return {
        str(column): model_input[column].cat.categories.tolist()
        for column in model_input.columns
        if isinstance(model_input[column].dtype, pd.CategoricalDtype)
    }


class Categorised:
    """`model`, predicting on frames whose category columns are cast back to categories."""

    def __init__(self, model: Any, categories: Mapping[str, Sequence[Any]]) -> None:
        self.model = model
        self.types = {c: pd.CategoricalDtype(list(values)) for c, values in categories.items()}

    def predict(self, frame: pd.DataFrame) -> Any:
        cast = frame.astype({c: t for c, t in self.types.items() if c in frame.columns})
        return self.model.predict(cast)


def load_native(uri: str, flavors: Mapping[str, Any]) -> Any:
    """The model as its own library's object (not MLflow's pyfunc, whose schema enforcement
    turns categories into strings)."""
    import importlib

    flavour = next(name for name in NATIVE if name in flavors)
    return importlib.import_module(f"mlflow.{flavour}").load_model(uri)
