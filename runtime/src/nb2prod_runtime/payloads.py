"""Request bodies in, model input out: the rules are compiled once, from the model's signature.

``/predict`` takes one record (a JSON object) or a batch (an array of them), and refuses a
column the model does not know. ``/invocations`` takes what ``mlflow models serve`` takes: JSON
(``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``), CSV with a header row,
or Parquet, and ignores unknown columns as MLflow does, so its clients switch without change.
Every format ends as the one input the model was fitted on: a float array when every column
is a number and the model does not read columns by name, otherwise a frame in the signature's
column order.

Numbers go straight into one array; only a batch that does not fit that mould (a missing or
extra column, a value that is not a number) is checked field by field, so the error can name
the record and the field at fault.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NotRequired, Protocol, TypeAlias

import numpy as np
import orjson
import pandas as pd
from mlflow.types import DataType, Schema
from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

ModelInput: TypeAlias = np.ndarray | pd.DataFrame
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_SCALARS: dict[DataType, type] = {
    DataType.double: float,
    DataType.float: float,
    DataType.long: int,
    DataType.integer: int,
    DataType.boolean: bool,
    DataType.string: str,
    DataType.datetime: datetime,
}
_FLOATS = (DataType.double, DataType.float)


class InvalidInput(Exception):
    """A body the model cannot take; ``errors`` are FastAPI-style entries for the 422."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def invalid(message: str, *where: str | int) -> InvalidInput:
    return InvalidInput([{"type": "invalid_payload", "loc": ["body", *where], "msg": message}])


class ModelInputs(Protocol):
    """Turns request records, tables or columns into the model's input."""

    def record_schema(self) -> dict[str, Any]: ...

    def one_or_many(self, document: Any) -> list[Any]: ...

    def from_records(self, records: list[Any], *, lenient: bool = False) -> ModelInput: ...

    def from_table(
        self, columns: list[str] | None, rows: list[Any], *, lenient: bool = False
    ) -> ModelInput: ...

    def from_columns(self, columns: Mapping[str, Any], *, lenient: bool = False) -> ModelInput: ...


class ColumnInputs:
    """A signature of named columns (the usual one for tabular models).

    ``lenient`` is MLflow's rule for ``/invocations``: columns the signature does not name are
    dropped, not refused.
    """

    def __init__(self, schema: Schema, *, by_name: bool) -> None:
        # A record's keys are text; a model fitted on a frame whose columns are numbers (a
        # ColumnTransformer's output, say) is handed them under those numbers again.
        labels = [
            column.name if column.name is not None else i for i, column in enumerate(schema.inputs)
        ]
        self.names = tuple(str(label) for label in labels)
        self.index = pd.Index(labels)  # built once: a frame then costs microseconds
        self.numeric = all(c.type in _FLOATS and c.required for c in schema.inputs)
        self.by_name = by_name or not self.numeric  # mixed types only fit in a frame
        fields = {}
        for name, column in zip(self.names, schema.inputs, strict=True):
            kind = _SCALARS.get(column.type, Any) if isinstance(column.type, DataType) else Any
            fields[name] = kind if column.required else NotRequired[kind | None]
        record: Any = TypedDict("Record", fields)  # type: ignore[operator]
        record.__pydantic_config__ = ConfigDict(extra="forbid")
        known: Any = TypedDict("KnownColumns", fields)  # type: ignore[operator]
        known.__pydantic_config__ = ConfigDict(extra="ignore")
        self._record = TypeAdapter(record)
        self._records = TypeAdapter(list[record])
        self._known_columns = TypeAdapter(list[known])

    def record_schema(self) -> dict[str, Any]:
        return self._record.json_schema()

    def one_or_many(self, document: Any) -> list[Any]:
        if isinstance(document, dict):
            return [document]
        if isinstance(document, list):
            return document
        raise invalid("expected a JSON object (one record) or an array of them")

    def from_records(self, records: list[Any], *, lenient: bool = False) -> ModelInput:
        width = len(self.names)
        try:
            if lenient or all(len(record) == width for record in records):
                array = self._floats([[record[name] for name in self.names] for record in records])
                if array is not None:
                    return self._model_input(array)
        except (KeyError, TypeError):  # a missing column, or a record that is not an object
            pass
        return self._checked(records, lenient=lenient)

    def from_table(
        self, columns: list[str] | None, rows: list[Any], *, lenient: bool = False
    ) -> ModelInput:
        if columns is None or list(columns) == list(self.names):
            array = self._floats(rows)
            if array is not None:
                return self._model_input(array)
            columns = list(self.names)
        records = []
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                raise invalid(f"row {i} does not have one value per column ({len(columns)})", i)
            records.append(dict(zip(columns, row, strict=True)))
        return self._checked(records, lenient=lenient)

    def from_columns(self, columns: Mapping[str, Any], *, lenient: bool = False) -> ModelInput:
        if len({len(values) for values in columns.values()}) > 1:
            raise invalid("every column must have the same number of values")
        if set(columns) == set(self.names) or (lenient and set(self.names) <= set(columns)):
            array = self._floats([columns[name] for name in self.names])
            if array is not None:
                return self._model_input(np.ascontiguousarray(array.T))
        rows = zip(*columns.values(), strict=True)
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        return self._checked(records, lenient=lenient)

    def _floats(self, rows: list[Any]) -> np.ndarray | None:
        """The rows as one float array, or None when they need a field-by-field check.

        NaN cannot come from JSON numbers, so one means a null (or a "nan" string) that the
        check must judge.
        """
        if not self.numeric:
            return None
        try:
            array = np.array(rows, dtype=np.float64)
        except (ValueError, TypeError):
            return None
        if array.ndim != 2 or np.isnan(array).any():
            return None
        return array

    def _checked(self, records: list[Any], *, lenient: bool) -> ModelInput:
        """Every field checked against the signature; the errors name record and field.

        Text is read as the signature's type ("1.5" is a number), which CSV needs.
        """
        adapter = self._known_columns if lenient else self._records
        try:
            checked = adapter.validate_python(records)
        except ValidationError as error:
            raise InvalidInput(validation_errors(error)) from None
        if self.numeric:
            rows = [[record[name] for name in self.names] for record in checked]
            return self._model_input(np.array(rows, dtype=np.float64))
        frame = pd.DataFrame(checked, columns=list(self.names))
        frame.columns = self.index
        return frame

    def _model_input(self, array: np.ndarray) -> ModelInput:
        if array.shape[1] != len(self.names):
            raise invalid(f"expected {len(self.names)} columns, got {array.shape[1]}")
        if self.by_name:
            return pd.DataFrame(array, columns=self.index, copy=False)
        return array


class TensorInputs:
    """A single unnamed tensor (a model fitted on an array): each record is a nested list."""

    def __init__(self, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.dtype = dtype
        self.shape = shape
        self._kinds = {"f": "biuf", "i": "biu", "u": "bu", "b": "b"}[dtype.kind]

    def record_schema(self) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "number" if self.dtype.kind == "f" else "integer"}
        for size in reversed(self.shape[1:]):
            item = {"type": "array", "items": item}
            if size >= 0:
                item |= {"minItems": size, "maxItems": size}
        return item

    def one_or_many(self, document: Any) -> list[Any]:
        """One record or a batch, told apart by how deeply the arrays nest."""
        if len(self.shape) == 1 and not isinstance(document, list):
            if isinstance(document, int | float) and not isinstance(document, bool):
                return [document]  # a model of one unnamed value: a record is a bare number
            raise invalid("expected a number or a batch (list) of numbers")
        if not isinstance(document, list):
            raise invalid(f"expected an array of shape {list(self.shape[1:])} or a batch of them")
        depth, value = 0, document
        while isinstance(value, list) and value:
            value, depth = value[0], depth + 1
        return document if depth >= len(self.shape) else [document]

    def from_records(self, records: list[Any], *, lenient: bool = False) -> ModelInput:
        try:
            array = np.array(records)
        except ValueError:
            raise invalid("records of a batch must all have the same shape") from None
        if array.dtype.kind not in self._kinds:
            raise invalid(f"expected {self.dtype} numbers, got {array.dtype.name} values")
        fixed = all(
            want in (-1, got) for want, got in zip(self.shape[1:], array.shape[1:], strict=False)
        )
        if array.ndim != len(self.shape) or not fixed:
            raise invalid(f"each record must have shape {list(self.shape[1:])} (-1: any size)")
        return array.astype(self.dtype, copy=False)

    def from_table(
        self, columns: list[str] | None, rows: list[Any], *, lenient: bool = False
    ) -> ModelInput:
        return self.from_records(rows)

    def from_columns(self, columns: Mapping[str, Any], *, lenient: bool = False) -> ModelInput:
        raise invalid("this model takes an unnamed tensor: send its rows as a list")


def model_inputs(schema: Schema | None, *, by_name: bool) -> ModelInputs:
    """The request rules, generated from the model's signature: nothing is guessed."""
    if schema is None:
        raise ValueError(
            "the model has no input signature; log it with one so requests can be validated"
        )
    if not schema.is_tensor_spec():
        return ColumnInputs(schema, by_name=by_name)
    if len(schema.inputs) != 1:
        raise ValueError("only a single unnamed tensor input can be served")
    spec = schema.inputs[0]
    if spec.type.kind not in "fiub":
        raise ValueError(f"tensor dtype {spec.type} cannot be read from JSON")
    return TensorInputs(spec.type, tuple(spec.shape))


def read_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(
            [{"type": "json_invalid", "loc": ["body"], "msg": f"JSON decode error: {error}"}]
        ) from None


def predict_input(inputs: ModelInputs, body: bytes, max_batch: int) -> tuple[ModelInput, int]:
    """``/predict``: one record or an array of them. Returns the model input and its rows."""
    records = inputs.one_or_many(read_json(body))
    check_batch(len(records), max_batch)
    return inputs.from_records(records), len(records)


def invocation_input(inputs: ModelInputs, body: bytes, max_batch: int) -> tuple[ModelInput, int]:
    """``/invocations``: exactly one of MLflow's four formats (``params`` is ignored, as MLflow
    ignores it for models that take none)."""
    document = read_json(body)
    if not isinstance(document, dict):
        raise invalid(f"expected a JSON object with one of the keys {', '.join(MLFLOW_FORMATS)}")
    given = [key for key in MLFLOW_FORMATS if key in document]
    if len(given) != 1:
        raise invalid(f"expected exactly one of {', '.join(MLFLOW_FORMATS)}; got {given or 'none'}")
    (key,) = given
    value = document[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise invalid('dataframe_split needs "data": a list of rows', key)
        columns = value.get("columns")
        if columns is not None and not (
            isinstance(columns, list) and all(isinstance(c, str) for c in columns)
        ):
            raise invalid('dataframe_split "columns" must be a list of names', key)
        check_batch(len(value["data"]), max_batch)
        return inputs.from_table(columns, value["data"], lenient=True), len(value["data"])
    if key == "inputs" and isinstance(value, dict):
        if not all(isinstance(values, list) for values in value.values()):
            return inputs.from_records([value], lenient=True), 1  # one record, as an object
        rows = len(next(iter(value.values()), []))
        check_batch(rows, max_batch)
        return inputs.from_columns(value, lenient=True), rows
    if not isinstance(value, list):
        raise invalid(f"{key} must be a list of records", key)
    check_batch(len(value), max_batch)
    return inputs.from_records(value, lenient=True), len(value)


def csv_input(inputs: ModelInputs, body: bytes, max_batch: int) -> tuple[ModelInput, int]:
    """``/invocations`` with ``text/csv``: a header row, then one row per record, as
    ``DataFrame.to_csv`` writes it (its unnamed index column is dropped like any unknown one).
    An empty field is a missing value."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise invalid(f"CSV must be UTF-8: {error}") from None
    try:
        header, *lines = csv.reader(io.StringIO(text))
    except ValueError:
        raise invalid("CSV needs a header row naming the columns") from None
    except csv.Error as error:
        raise invalid(f"not valid CSV: {error}") from None
    rows: list[Any] = [[value if value != "" else None for value in line] for line in lines if line]
    check_batch(len(rows), max_batch)
    return inputs.from_table(header, rows, lenient=True), len(rows)


def parquet_input(inputs: ModelInputs, body: bytes, max_batch: int) -> tuple[ModelInput, int]:
    """``/invocations`` with ``application/vnd.apache.parquet``: a frame as ``to_parquet``
    writes it."""
    try:
        frame = pd.read_parquet(io.BytesIO(body))
    except Exception as error:  # pyarrow raises many kinds for a damaged file
        raise invalid(f"not a Parquet file pandas can read: {error}") from None
    check_batch(len(frame), max_batch)
    columns = [str(name) for name in frame.columns]
    rows = frame.to_numpy(dtype=object).tolist()
    return inputs.from_table(columns, rows, lenient=True), len(rows)


def check_batch(rows: int, max_batch: int) -> None:
    if rows < 1:
        raise invalid("a batch needs at least one record")
    if rows > max_batch:
        raise invalid(f"a batch holds at most {max_batch} records (PREDICT_MAX_BATCH); got {rows}")


def validation_errors(error: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI shows them, without echoing whole records back."""
    shown = []
    for entry in error.errors(include_url=False, include_context=False)[:20]:
        item: dict[str, Any] = {
            "type": entry["type"],
            "loc": ["body", *entry["loc"]],
            "msg": entry["msg"],
        }
        if not isinstance(entry.get("input"), dict | list):
            item["input"] = entry.get("input")
        shown.append(item)
    return shown


def summary(errors: list[dict[str, Any]]) -> str:
    """The errors in one line, the first in full: "body.0.radius: Input should be a number"."""
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def to_list(predictions: Any) -> list[Any]:
    """Model outputs (arrays, frames, series, lists) as JSON-ready lists."""
    if isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if isinstance(predictions, pd.Series | np.ndarray):
        return predictions.tolist()
    if isinstance(predictions, dict):
        return [predictions]
    return list(predictions)
