"""The Plan: one immutable, JSON-serialisable description of the package to build.

The frontend produces it; the backend (templates) sees nothing else. Everything a reviewer
needs to trust the conversion is here: where each line came from, what was dropped and why,
and the findings.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any

JsonValue = Any  # str | int | float | bool | None | tuple | mapping, frozen

ROLES = (
    "imports",
    "parameters",
    "functions",
    "load",
    "features",
    "train",
    "evaluate",
    "inference",
    "explore",
    "skip",
)
# The reason given for display code the package leaves out (a whole cell's reason starts so);
# verify lets an error there pass.
DISPLAY_REASON = "only displays or plots"

ROLE_TITLES = {
    "imports": "imports",
    "parameters": "parameters",
    "functions": "helper functions",
    "load": "data loading",
    "features": "feature engineering",
    "train": "training",
    "evaluate": "evaluation",
    "inference": "inference",
    "explore": "display/exploration",
    "skip": "skipped",
}
DROPPED_ROLES = frozenset({"explore", "skip"})


@dataclass(frozen=True)
class NotebookSource:
    path: str
    sha256: str
    nbformat: str
    upgraded_from: int | None
    kernel: str | None
    language: str
    code_cells: int


@dataclass(frozen=True)
class DroppedCode:
    """Code the package will not contain: IPython syntax or display statements."""

    line: int
    construct: str
    reason: str


@dataclass(frozen=True)
class CellDecision:
    cell: int
    execution_count: int | None
    tags: tuple[str, ...]
    role: str
    reason: str
    kept: bool
    step: str | None
    defines: tuple[str, ...]
    uses: tuple[str, ...]
    dropped: tuple[DroppedCode, ...]


@dataclass(frozen=True)
class Block:
    """Code taken from one cell, with the cell it came from."""

    cell: int
    first_line: int
    source: str
    last_line: int = 0  # the cell's line of its last kept code (blank runs are squeezed)


@dataclass(frozen=True)
class Step:
    name: str
    role: str
    blocks: tuple[Block, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    after: tuple[str, ...]  # Kale's prev:NAME dependencies


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: JsonValue
    cell: int
    line: int


@dataclass(frozen=True)
class Model:
    name: str
    kind: str  # "fitted" | "rule-based"
    estimator: str
    library: str | None
    task: str  # "classification" | "regression" | "unknown"
    defined_in: int
    fitted_in: int | None
    fit_inputs: tuple[str, ...]
    predict_inputs: tuple[str, ...]  # what the notebook passes to model.predict(...)
    reason: str
    candidates: tuple[str, ...]
    # a PyTorch module's: what the notebook makes of its output, as `def answer(model, inputs)`
    # returns it (`(torch.sigmoid(model(inputs)) > 0.5).int()`); None: its output as it is
    served_output: str | None = None
    served_with: tuple[str, ...] = ()  # other modules `answer` reads (a GP's likelihood)
    backend: str | None = None  # a Keras network's: what it runs on ("torch"), KERAS_BACKEND
    # an XGBoost booster's: the trees the notebook predicts with, as an expression of it
    # (`bst[0 : bst.best_iteration + 1]`); None: every tree
    served_trees: str | None = None
    # a batch of Gaussian processes: every process answers at each row of the inputs, so the
    # service answers a value per process for each row (its inputs as rows of their features)
    batch_of_processes: bool = False


@dataclass(frozen=True)
class Scorer:
    """How the package can measure the notebook's metric again, by cross-validation: the
    scikit-learn metric function ('' for the estimator's own `score`), its literal keyword
    arguments, and which of the model's methods gives what the metric reads."""

    function: str
    keywords: JsonValue
    response_method: str  # "predict" | "predict_proba" | "decision_function"


@dataclass(frozen=True)
class Metric:
    name: str
    function: str
    cell: int
    line: int
    held_out: bool
    validation: str  # "holdout" | "cross-validation" | "training data" | "unknown"
    folds: int | None
    greater_is_better: bool | None
    scorer: Scorer | None = None  # None: the package cannot re-measure it by itself
    # the notebook's own expression, when it computes the metric without a metric function
    expression: str | None = None
    # why its held-out rows come after the rows the model learned from (a split by date)
    ordered: str | None = None


@dataclass(frozen=True)
class Requirement:
    name: str
    specifier: str
    source: str
    modules: tuple[str, ...]


@dataclass(frozen=True)
class LocalModule:
    module: str
    path: str | None
    cell: int


@dataclass(frozen=True)
class DataFile:
    """A file the notebook reads by a relative path; convert ships it with the package."""

    path: str  # as the notebook writes it, relative to the notebook's folder
    cell: int
    line: int
    size: int | None  # bytes; None when the file is not beside the notebook
    expression: str | None = None  # the code that builds the path, when it is not a literal


@dataclass(frozen=True)
class EnvironmentVariable:
    """A value moved out of the code, e.g. a secret found in a cell."""

    name: str
    cell: int
    reason: str


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    cell: int | None
    line: int | None
    hint: str | None


@dataclass(frozen=True)
class Honesty:
    implementation_status: str
    status_source: str  # "notebook metadata" | "cell tag" | "--status" | "derived"
    reason: str
    validation_method: str
    validation_status: str
    primary_metric: str | None
    threshold: float | None
    uncertainty: str | None


@dataclass(frozen=True)
class Plan:
    nb2prod_version: str
    notebook: NotebookSource
    package_name: str
    cells: tuple[CellDecision, ...]
    steps: tuple[Step, ...]
    parameters: tuple[Parameter, ...]
    model: Model
    metrics: tuple[Metric, ...]
    requirements: tuple[Requirement, ...]
    local_modules: tuple[LocalModule, ...]
    data_files: tuple[DataFile, ...]
    environment: tuple[EnvironmentVariable, ...]
    findings: tuple[Finding, ...]
    honesty: Honesty
    contract: JsonValue

    def to_dict(self) -> dict[str, Any]:
        return _thaw(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return _build(cls, data)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))


def freeze(value: Any) -> JsonValue:
    """Make a JSON value immutable: lists become tuples, dicts read-only mappings."""
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    if isinstance(value, dict):
        return types.MappingProxyType({key: freeze(item) for key, item in value.items()})
    return value


def _thaw(value: Any) -> Any:
    """Plain JSON data from frozen Plan values (dataclasses, tuples, read-only mappings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _thaw(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_thaw(item) for item in value]
    if isinstance(value, dict | types.MappingProxyType):
        return {key: _thaw(item) for key, item in value.items()}
    return value


def _build(kind: Any, data: Any) -> Any:
    """Rebuild a typed value (dataclass, tuple, optional) from its JSON form."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = [f for f in dataclasses.fields(kind) if f.name in data]  # newer ones default
        return kind(**{f.name: _build(hints[f.name], data[f.name]) for f in fields})
    origin = typing.get_origin(kind)
    if origin is tuple:
        (item_kind, _ellipsis) = typing.get_args(kind)
        return tuple(_build(item_kind, item) for item in data)
    if origin in (types.UnionType, typing.Union):
        options = [option for option in typing.get_args(kind) if option is not type(None)]
        return None if data is None else _build(options[0], data)
    return freeze(data)
