"""The request rules compiled from a model's signature, on signatures training can log."""

from __future__ import annotations

import pandas as pd
from mlflow.models import infer_signature

from nb2prod_runtime import model_io, payloads


def test_a_model_fitted_on_numbered_columns_takes_records_keyed_by_their_text() -> None:
    """A ColumnTransformer's output is a frame whose columns are 0, 1, ...: the signature keeps
    those numbers, JSON keys are text, and the model is handed its own column labels back."""
    fitted_on = pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]})
    inputs = payloads.model_inputs(infer_signature(fitted_on).inputs, by_name=True)
    frame = inputs.from_records([{"0": 3.0, "1": "c"}])
    assert list(frame.columns) == [0, 1]
    assert frame.iloc[0].tolist() == [3.0, "c"]
    assert "0" in inputs.record_schema()["properties"]


def test_a_column_missing_somewhere_in_the_fit_may_be_null_though_the_example_has_it() -> None:
    """The signature is inferred from a few rows; a column with a gap only further down (an
    imputer's pipeline takes it) must still take a null, or the service refuses records of the
    very data the model was fitted on. A column with no gap stays required."""
    fitted_on = pd.DataFrame(
        {"age": [30.0, 41.0, 25.0, 52.0, 38.0, None], "city": ["a", "b", "a", "b", "a", None]}
    )
    inferred = infer_signature(fitted_on.head(5), [0, 1, 0, 1, 0])
    assert all(column.required for column in inferred.inputs.inputs)
    signature = model_io._optional_where_missing(inferred, fitted_on.assign(area=1.0))
    assert [c.required for c in signature.inputs.inputs] == [False, False]
    inputs = payloads.model_inputs(signature.inputs, by_name=True)
    frame = inputs.from_records([{"age": None, "city": None}, {"age": 33.0, "city": "b"}])
    assert frame["age"].isna().tolist() == [True, False]
    kept = model_io._optional_where_missing(inferred, fitted_on.dropna())
    assert all(column.required for column in kept.inputs.inputs)


def add_one_year(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(age=frame["age"] + 1)


def test_a_raw_record_may_be_null_where_the_loaded_rows_had_gaps(tmp_path) -> None:
    """Training's record schema marks a loaded column with missing values optional; the raw
    route takes a null there, as the package's own test posts the loaded rows it logged."""
    import json

    import mlflow
    from mlflow.types import ColSpec, Schema

    from nb2prod_runtime.raw_input import SPEC_PATH, RawFeatures
    from nb2prod_runtime.raw_serving import raw_records_for

    raw = RawFeatures(add_one_year, loaded="df", cells=(2,))
    columns = Schema([ColSpec("double", "age", required=False), ColSpec("string", "city")])
    spec = {
        "columns": json.loads(columns.to_json()),
        "order": ["age", "city"],
        "unread": [],
        "sha256": raw.fingerprint,
    }
    # a store of its own, through the client: no experiment or run of another test is active
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(store)
    experiment = client.create_experiment("raw", (tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment)
    client.log_dict(run.info.run_id, spec, SPEC_PATH)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store)  # where the service reads the run's artifacts from
    try:
        route = raw_records_for(raw, run.info.run_id)
    finally:
        mlflow.set_tracking_uri(before)
    assert not isinstance(route, str), route
    frame = route.records.from_records([{"age": None, "city": "a"}], lenient=True)
    assert frame["age"].isna().tolist() == [True]
