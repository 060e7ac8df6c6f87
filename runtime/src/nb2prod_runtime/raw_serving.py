"""``/predict/raw`` in the service: a client's records, the notebook's feature code, the model.

Each loaded version brings its own record schema (what training's check found the feature code
reads, `raw_input.SPEC_PATH`) or the reason it has none; the route answers 409 with that reason
rather than a prediction the notebook would not have made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
from mlflow.types import ColSpec, Schema

from nb2prod_runtime import payloads
from nb2prod_runtime.raw_input import SPEC_PATH, TAG, RawFeatures


@dataclass(frozen=True)
class RawRecords:
    """One version's raw route: its record rules and the feature code it runs."""

    raw: RawFeatures
    records: payloads.ColumnInputs  # the loaded table's columns; those it does not read optional
    order: tuple[str, ...]  # the loaded table's columns, in its order
    read: tuple[str, ...]  # the columns the feature code reads

    def record_schema(self) -> dict[str, Any]:
        return self.records.record_schema()

    def model_input(
        self, inputs: payloads.ModelInputs, body: bytes, max_batch: int
    ) -> tuple[Any, int, Any]:
        """The model's input for a body of records of the loaded table, its rows, and what
        drift counts: the model's input beside the columns read that the model does not get."""
        records = self.records.one_or_many(payloads.read_json(body))
        payloads.check_batch(len(records), max_batch)
        frame = self.records.from_records(records, lenient=True)  # other columns: ignored
        if not isinstance(frame, pd.DataFrame):  # every column a required number
            frame = pd.DataFrame(frame, columns=list(self.records.names))
        frame = frame.reindex(columns=list(self.order))
        try:
            output = self.raw.table(frame)
        except Exception as error:
            text = str(error).strip().splitlines()
            line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
            raise payloads.invalid(f"{self.raw.where} fails on these records: {line}") from None
        dropped = [i for i in range(len(records)) if i not in output.index]
        if dropped:
            raise payloads.invalid(f"{self.raw.where} keeps no row for this record", dropped[0])
        names = list(getattr(inputs, "names", ()))
        selected = output.loc[range(len(records)), names]
        rows = selected.astype(object).where(selected.notna(), None).to_numpy().tolist()
        model_input = inputs.from_table(names, rows)
        beside = [name for name in self.read if name not in selected.columns]
        observed = pd.concat([selected, frame[beside]], axis=1) if beside else model_input
        return model_input, len(records), observed


def raw_records_for(raw: RawFeatures, run_id: str | None) -> RawRecords | str:
    """The version's raw route, or why it has none (one line, logged once by the caller)."""
    if not run_id:
        return "its training run is unknown"
    try:
        spec = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/{SPEC_PATH}"))
    except Exception:
        try:
            said = mlflow.get_run(run_id).data.tags.get(TAG)
        except Exception as error:
            return f"its training run cannot be read ({type(error).__name__})"
        return said or "it was trained before records of the loaded data were served"
    if spec.get("sha256") != raw.fingerprint:
        return f"it was trained with other feature code than {raw.where} holds now"
    # A column the feature code does not read (the label, an id) a record may leave out, and
    # one with missing values in the loaded rows may be null, as the schema training found says.
    unread = set(spec.get("unread", ()))
    rules = Schema(
        [
            ColSpec(
                column.type, column.name, required=column.required and column.name not in unread
            )
            for column in Schema.from_json(json.dumps(spec["columns"])).inputs
        ]
    )
    read = tuple(c.name for c in rules.inputs if c.required and c.name is not None)
    return RawRecords(raw, payloads.ColumnInputs(rules, by_name=True), tuple(spec["order"]), read)
