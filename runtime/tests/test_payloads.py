"""The request rules compiled from a model's signature, on signatures training can log."""

from __future__ import annotations

import pandas as pd
from mlflow.models import infer_signature

from nb2prod_runtime import payloads


def test_a_model_fitted_on_numbered_columns_takes_records_keyed_by_their_text() -> None:
    """A ColumnTransformer's output is a frame whose columns are 0, 1, ...: the signature keeps
    those numbers, JSON keys are text, and the model is handed its own column labels back."""
    fitted_on = pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]})
    inputs = payloads.model_inputs(infer_signature(fitted_on).inputs, by_name=True)
    frame = inputs.from_records([{"0": 3.0, "1": "c"}])
    assert list(frame.columns) == [0, 1]
    assert frame.iloc[0].tolist() == [3.0, "c"]
    assert "0" in inputs.record_schema()["properties"]
