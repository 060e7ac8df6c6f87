{%- if cookiecutter._code.feature_store -%}
{%- set store = cookiecutter._code.feature_store -%}
# {{ cookiecutter._code.header }}
"""The model's features in a Feast repository (``feature_repo/``) that carries their honesty.

Training writes what the notebook's feature step computed to the repository's offline store (a
Parquet file: the FileSource), registers the definitions (``feast apply``) and reads the
features back with ``get_historical_features``, so the model is fitted on exactly what the
store holds. Serving reads the same features by entity key from the online store, once
``materialize`` has copied them there. Each feature view's tags say how trustworthy it is, and
a prediction says so for the weakest one it read: a model is no more validated than its inputs.

Feast is the optional extra ``.[feast]``: it is imported only when one of these functions runs,
and its absence is told in one line.
"""

from __future__ import annotations

import importlib.util
import time
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from nb2prod_runtime import payloads
from nb2prod_runtime.serving import HonestBody, Service, Version

from . import honesty

# The view the pipeline writes, the service the model reads, and the entity's key column.
VIEW = "{{ store.view.name }}"
SERVICE = "{{ store.service }}"
JOIN_KEY = "{{ store.entity.join_key }}"
KEY_FROM_NOTEBOOK = {{ "True" if store.entity.from_notebook else "False" }}  # else the pipeline adds it
TIMESTAMP = "event_timestamp"
HONESTY_TAGS = ("implementation_status", "validation_method")
INSTALL = "pip install '.[feast]'"
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


class FeatureStoreError(Exception):
    """The feature store cannot do what was asked; the message says why and what to do."""


class UntaggedFeatureView(FeatureStoreError):
    """A feature view lacks its honesty tags: nothing may read it, the service included."""


@dataclass(frozen=True)
class FeatureHonesty:
    """What a feature view says about itself, read from its tags."""

    view: str
    implementation_status: str
    validation_method: str
    reason: str  # names the cells the view's hand-made choices came from

    def response_fields(self, model_status: str | None) -> dict[str, Any]:
        """The fields a prediction carries about its weakest input."""
        fields: dict[str, Any] = {
            "feature_view": self.view,
            "feature_implementation_status": self.implementation_status,
            "feature_validation_method": self.validation_method,
        }
        if model_status and rank(self.implementation_status) > rank(model_status):
            fields["feature_warning"] = (
                f"the model is {model_status} but reads feature view {self.view}, which is "
                f"{self.implementation_status} ({self.reason}): the prediction is no more "
                "validated than that input"
            )
        return fields


def rank(status: str) -> int:
    """Weakness by the contract's order of statuses (IMPLEMENTED first): higher is weaker."""
    plain = status.split()[-1] if status.strip() else status
    statuses = honesty.HONESTY.statuses
    return statuses.index(plain) if plain in statuses else len(statuses)


def repository() -> Path:
    """FEATURE_REPO, else the feature_repo folder beside this package."""
    configured = os.environ.get("FEATURE_REPO")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "feature_repo"


def feast() -> ModuleType:
    """Feast itself, or a one-line error naming the extra that installs it.

    Importing Feast points PROMETHEUS_MULTIPROC_DIR at a folder of its own; the service's
    /metrics reads that variable, so it is put back as it was.
    """
    metrics_folder = os.environ.get(MULTIPROCESS)
    try:
        import feast as module
    except ImportError:
        raise FeatureStoreError(
            f"this package reads its features through Feast, which is not installed: {INSTALL}"
        ) from None
    finally:
        if metrics_folder is None:
            os.environ.pop(MULTIPROCESS, None)
        else:
            os.environ[MULTIPROCESS] = metrics_folder
    return module


def definitions() -> ModuleType:
    """The repository's definitions.py, loaded as ``feast apply`` loads it."""
    path = repository() / "definitions.py"
    if not path.is_file():
        raise FeatureStoreError(f"{path} is missing: set FEATURE_REPO to the feature repository")
    feast()
    spec = importlib.util.spec_from_file_location("feature_repo_definitions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def feast_objects(module: ModuleType) -> list[Any]:
    """Every Feast object the definitions bind, as `feast apply` collects them."""
    module_of_feast = feast()
    from feast.data_source import DataSource

    kinds = (
        DataSource,
        module_of_feast.Entity,
        module_of_feast.FeatureView,
        module_of_feast.OnDemandFeatureView,
        module_of_feast.FeatureService,
    )
    return [value for value in vars(module).values() if isinstance(value, kinds)]


def untagged(views: Iterable[Any]) -> list[str]:
    """'view (no validation_method)' for each view whose tags lack an honesty key: its
    implementation_status, and how it was validated (a key starting with 'validation', as
    nb2prod lint's NBH109 reads it)."""
    missing = []
    for view in views:
        tags = view.tags or {}
        lacking = [] if tags.get("implementation_status") else ["implementation_status"]
        if validation_of(tags) is None:
            lacking.append("validation_method")
        if lacking:
            missing.append(f"{view.name} (no {' or '.join(lacking)})")
    return missing


def validation_of(tags: Mapping[str, str]) -> str | None:
    """validation_method, else any tag saying how the view was validated."""
    named = [key for key in tags if key.startswith("validation") and tags[key]]
    return tags[min(named, key=lambda key: key != "validation_method")] if named else None


def check_definitions(module: ModuleType) -> list[Any]:
    """The definitions' feature views, or a one-line refusal naming any without honesty tags."""
    views = [v for v in feast_objects(module) if isinstance(v, feast().FeatureView)]
    missing = untagged(views)
    if missing:
        raise UntaggedFeatureView(
            f"feature view {', '.join(missing)} in {repository() / 'definitions.py'} lacks its "
            f"honesty tags: tag it with {' and '.join(HONESTY_TAGS)}, then run "
            f"python -m {__package__}.features apply"
        )
    return views


def open_store() -> Any:
    """The repository's FeatureStore (feature_store.yaml says where its stores are)."""
    if not (repository() / "feature_store.yaml").is_file():
        raise FeatureStoreError(
            f"{repository()} has no feature_store.yaml: set FEATURE_REPO to the feature repository"
        )
    return feast().FeatureStore(repo_path=str(repository()))


def source_path(module: ModuleType) -> Path:
    """Where the pipeline writes the view's rows: its FileSource's path, in the repository."""
    view = next((v for v in feast_objects(module) if getattr(v, "name", None) == VIEW), None)
    if view is None or not hasattr(view.batch_source, "path"):
        raise FeatureStoreError(
            f"definitions.py has no feature view {VIEW} over a FileSource: the pipeline writes "
            "that view; restore it"
        )
    path = Path(view.batch_source.path)
    return path if path.is_absolute() else repository() / path


def apply() -> list[str]:
    """`feast apply`: register the definitions; refused when a view lacks its honesty tags."""
    module = definitions()
    check_definitions(module)
    if not source_path(module).is_file():
        raise FeatureStoreError(
            f"{source_path(module)} does not exist yet: run python -m {__package__}.train, which "
            "writes it, before apply"
        )
    objects = feast_objects(module)
    open_store().apply(objects)
    return sorted(getattr(o, "name", "") for o in objects)


def materialize() -> tuple[datetime, datetime, int]:
    """Copy the offline store's latest values per key to the online store. Returns the time
    range and the number of keys."""
    module = definitions()
    check_definitions(module)
    path = source_path(module)
    if not path.is_file():
        raise FeatureStoreError(f"{path} does not exist: run python -m {__package__}.train first")
    written = pd.read_parquet(path, columns=[JOIN_KEY, TIMESTAMP])
    start = written[TIMESTAMP].min().to_pydatetime()
    end = written[TIMESTAMP].max().to_pydatetime() + timedelta(seconds=1)
    open_store().materialize(start_date=start, end_date=end)
    return start, end, int(written[JOIN_KEY].nunique())


def through_store(values: Mapping[str, Any], *, loaded: Mapping[str, Any]) -> tuple[Any, ...]:
    """The model's inputs as the store holds them: written to the offline store, registered,
    and read back with get_historical_features, in the same rows, order, index and types.

    The first value is what the model is fitted on; every value with its columns (a frame) or
    its width (an array) is a feature table of the same view. Other values pass unchanged.
    """
    fitted = next(iter(values.values()))
    if not isinstance(fitted, pd.DataFrame | np.ndarray):
        as_frame(fitted)  # raises, naming what the model takes instead
    tables = {n: as_frame(v) for n, v in values.items() if same_shape(v, fitted)}
    rows, stamped_by = feature_rows(tables, loaded)
    module = definitions()
    check_definitions(module)
    check_key_type(rows[JOIN_KEY], module)
    path = source_path(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    rows.to_parquet(partial, index=False)
    partial.replace(path)  # a reader never sees half a file
    write_layout(path, next(iter(tables.values())), fitted, stamped_by)
    read = read_back(rows[[JOIN_KEY, TIMESTAMP]], module)
    result, start = [], 0
    for name, value in values.items():
        if name not in tables:
            result.append(value)
            continue
        frame = tables[name]
        result.append(restored(value, frame, read.iloc[start : start + len(frame)]))
        start += len(frame)
    return tuple(result)


def feature_rows(
    tables: Mapping[str, pd.DataFrame], loaded: Mapping[str, Any]
) -> tuple[pd.DataFrame, str]:
    """The rows of the FileSource: each table's features with its key and time, in order."""
    keys = entity_keys(tables, loaded)
    rows = pd.concat(
        [frame.reset_index(drop=True).assign(**{JOIN_KEY: keys[n]}) for n, frame in tables.items()],
        ignore_index=True,
    )
    for column in rows.columns:  # Feast reads plain Parquet types: a category by its values
        if isinstance(rows[column].dtype, pd.CategoricalDtype):
            rows[column] = rows[column].astype(rows[column].cat.categories.dtype)
    rows[TIMESTAMP], stamped_by = event_timestamps(tables, loaded)
    if rows.duplicated([JOIN_KEY, TIMESTAMP]).any():
        raise FeatureStoreError(
            f"two rows share {JOIN_KEY} and {TIMESTAMP} in the features of {VIEW}: the store "
            "cannot tell them apart; give each row its own key"
        )
    return rows, stamped_by


def read_back(entities: pd.DataFrame, module: ModuleType) -> pd.DataFrame:
    """Apply the definitions, then get_historical_features for these keys and times, in their
    order (the file offline store returns its rows in an order of its own)."""
    store = open_store()
    store.apply(feast_objects(module))
    read = store.get_historical_features(
        entity_df=entities, features=store.get_feature_service(SERVICE)
    ).to_df()
    return entities.merge(read, on=[JOIN_KEY, TIMESTAMP], how="left", validate="one_to_one")


def same_shape(value: Any, fitted: Any) -> bool:
    """Whether `value` is a table of the same features as what the model is fitted on."""
    if isinstance(fitted, pd.DataFrame):
        return isinstance(value, pd.DataFrame) and list(value.columns) == list(fitted.columns)
    return (
        isinstance(value, np.ndarray)
        and isinstance(fitted, np.ndarray)
        and value.ndim >= 2
        and value.shape[1:] == fitted.shape[1:]
    )


def as_frame(value: Any) -> pd.DataFrame:
    """A frame with string column names; an array's columns are named x0, x1... (an array of
    more dimensions, time series say, is stored a row per sample, its values in C order)."""
    if isinstance(value, pd.DataFrame):
        frame = value.copy()
        frame.columns = [str(c) for c in frame.columns]
        if JOIN_KEY in frame.columns or TIMESTAMP in frame.columns:
            raise FeatureStoreError(
                f"a feature is named {JOIN_KEY} or {TIMESTAMP}, which the store uses for its key "
                "and time: rename it in the notebook"
            )
        return frame
    if isinstance(value, np.ndarray) and value.ndim >= 2:
        flat = value.reshape(len(value), -1)
        return pd.DataFrame(flat, columns=[f"x{i}" for i in range(flat.shape[1])])
    raise FeatureStoreError(
        f"the model's input is a {type(value).__name__}: the feature store holds tables, a "
        "DataFrame or an array of two or more dimensions"
    )


def entity_keys(tables: Mapping[str, pd.DataFrame], loaded: Mapping[str, Any]) -> dict[str, Any]:
    """Each table's key per row: the notebook's id (its index, or a loaded column by index),
    else the row's label in the notebook's data, else its position."""
    keys: dict[str, Any] = {}
    for name, frame in tables.items():
        if frame.index.name == JOIN_KEY:
            keys[name] = frame.index.to_numpy()
            continue
        column = next(
            (
                data[JOIN_KEY]
                for data in loaded.values()
                if isinstance(data, pd.DataFrame)
                and JOIN_KEY in data.columns
                and frame.index.isin(data.index).all()
            ),
            None,
        )
        if column is not None:
            keys[name] = column.loc[frame.index].to_numpy()
        elif KEY_FROM_NOTEBOOK:
            raise FeatureStoreError(
                f"the features in {name} carry no {JOIN_KEY}: keep it as their index or as a "
                "column of the loaded data"
            )
    if len(keys) == len(tables):
        return keys
    labels = [frame.index for frame in tables.values()]
    every = labels[0].append(labels[1:]) if len(labels) > 1 else labels[0]
    usable = every.is_unique and not isinstance(every, pd.MultiIndex) and every.dtype.kind in "iu"
    start = 0
    for name, frame in tables.items():
        if usable:
            keys[name] = frame.index.to_numpy()
        else:  # no labels to keep (an array, or repeated ones): positions, in this order
            keys[name] = np.arange(start, start + len(frame))
        start += len(frame)
    return keys


def check_key_type(keys: pd.Series, module: ModuleType) -> None:
    """Keys of another type than the entity declares are refused in one line, where Feast would
    fail on them in the middle of a read."""
    entity = next(
        (
            o
            for o in feast_objects(module)
            if isinstance(o, feast().Entity) and o.join_key == JOIN_KEY
        ),
        None,
    )
    declared = getattr(getattr(entity, "value_type", None), "name", "UNKNOWN")
    expected = {"INT64": "iu", "INT32": "iu", "STRING": "OUS"}.get(declared)
    if expected is not None and keys.dtype.kind not in expected:
        raise FeatureStoreError(
            f"{JOIN_KEY} holds {keys.dtype} values, but definitions.py declares the entity's key "
            f"as ValueType.{declared}: change it there (STRING for text keys)"
        )


def event_timestamps(
    tables: Mapping[str, pd.DataFrame], loaded: Mapping[str, Any]
) -> tuple[pd.Series, str]:
    """When each row's values held: the loaded data's one datetime column, read by each row's
    index, so reads are point-in-time correct; else the time of this write for every row (the
    data says no time: a read gets each row's values as written)."""
    for name, data in loaded.items():
        if not isinstance(data, pd.DataFrame):
            continue
        moments = [c for c in data.columns if pd.api.types.is_datetime64_any_dtype(data[c])]
        if len(moments) != 1:
            continue
        column = data[moments[0]]
        if JOIN_KEY in data.columns:
            column = pd.Series(column.to_numpy(), index=data[JOIN_KEY])
        stamps = []
        for frame in tables.values():
            if not frame.index.isin(column.index).all():
                break
            stamps.append(column.loc[frame.index])
        else:
            joined = pd.concat(stamps, ignore_index=True)
            if joined.dt.tz is None:
                joined = joined.dt.tz_localize(UTC)
            return joined, f"{name}[{moments[0]!r}]"
    now = pd.Timestamp(datetime.now(UTC).replace(microsecond=0))
    total = sum(len(frame) for frame in tables.values())
    return pd.Series([now] * total, dtype="datetime64[ns, UTC]"), "the time train wrote them"


def write_layout(path: Path, frame: pd.DataFrame, fitted: Any, stamped_by: str) -> None:
    """What serving needs to rebuild the model's input from online rows, the columns in order;
    and for a reader, what the model takes and where the times came from."""
    layout = {
        "columns": list(frame.columns),
        "input": type(fitted).__name__,
        "shape": list(fitted.shape[1:]) if isinstance(fitted, np.ndarray) else None,
        "timestamps": stamped_by,
    }
    path.with_suffix(".json").write_text(json.dumps(layout, indent=2) + "\n", encoding="utf-8")


def restored(original: Any, frame: pd.DataFrame, part: pd.DataFrame) -> Any:
    """The rows read from the store, shaped as the notebook's value was."""
    values = part[list(frame.columns)]
    if values.isna().to_numpy().sum() > frame.isna().to_numpy().sum():
        raise FeatureStoreError(
            f"get_historical_features returned no values for some rows of {VIEW}: the "
            "registry and the written source disagree; run python -m "
            f"{__package__}.features apply"
        )
    if isinstance(original, np.ndarray):
        return values.to_numpy(dtype=original.dtype).reshape((-1, *original.shape[1:]))
    values = values.astype(frame.dtypes.to_dict())  # categories too, as the notebook had them
    values.index = original.index
    values.columns = original.columns
    return values


@dataclass
class OnlineFeatures:
    """The online store, opened once per service: keys in, the model's input rows out."""

    store: Any
    service: Any  # the model's FeatureService, read from the registry once
    columns: list[str]
    shape: list[int] | None  # of one sample, when the model takes an array
    weakest: FeatureHonesty

    @classmethod
    def open(cls) -> OnlineFeatures:
        """Refuses (FeatureStoreError) when a view lacks its honesty tags, in the definitions
        or in the registry the service reads."""
        module = definitions()
        check_definitions(module)
        store = open_store()
        try:
            service = store.get_feature_service(SERVICE)
            views = [store.get_feature_view(p.name) for p in service.feature_view_projections]
        except Exception as error:
            raise FeatureStoreError(
                f"the registry has no feature service {SERVICE} ({type(error).__name__}): run "
                f"python -m {__package__}.train, then python -m {__package__}.features materialize"
            ) from None
        missing = untagged(views)
        if missing:
            raise UntaggedFeatureView(
                f"feature view {', '.join(missing)} in the registry lacks its honesty tags: tag "
                f"it in definitions.py and run python -m {__package__}.features apply"
            )
        layout = json.loads(source_path(module).with_suffix(".json").read_text(encoding="utf-8"))
        return cls(store, service, layout["columns"], layout.get("shape"), weakest_of(views))

    def rows(self, keys: list[Any]) -> tuple[list[str], list[list[Any]]]:
        """The features of each key, in the model's column order; a key the online store does
        not hold raises KeyError naming it."""
        read = self.store.get_online_features(
            features=self.service, entity_rows=[{JOIN_KEY: key} for key in keys]
        ).to_dict()
        absent = [
            key
            for i, key in enumerate(keys)
            if all(read[column][i] is None for column in self.columns)
        ]
        if absent:
            raise KeyError(
                f"no features for {JOIN_KEY}={', '.join(map(repr, absent))} in the online store: "
                "a key training never saw, or one written since the last "
                f"python -m {__package__}.features materialize"
            )
        return self.columns, [[read[c][i] for c in self.columns] for i in range(len(keys))]


    def samples(self, rows: list[list[Any]]) -> np.ndarray | None:
        """Rows of an array of more than two dimensions, shaped as the model takes them; None
        for a table, which the model's signature reads."""
        if not self.shape or len(self.shape) < 2:
            return None
        return np.asarray(rows, dtype=float).reshape((-1, *self.shape))


def weakest_of(views: Iterable[Any]) -> FeatureHonesty:
    """The view the model can trust least, by the contract's order of statuses."""
    described = [
        FeatureHonesty(
            view=view.name,
            implementation_status=view.tags["implementation_status"],
            validation_method=validation_of(view.tags) or "",
            reason=view.tags.get("reason", ""),
        )
        for view in views
    ]
    return max(described, key=lambda h: rank(h.implementation_status))


def run_tags() -> dict[str, str]:
    """What the training run and the model version record of the features the model read."""
    views = check_definitions(definitions())
    weakest = weakest_of(views)
    return {
        "feature_store": f"feast {repository().name}",
        "feature_service": SERVICE,
        "feature_views": ", ".join(v.name for v in views),
        "feature_implementation_status": weakest.implementation_status,
        "feature_validation_method": weakest.validation_method,
    }


def by_key_route(service: Service) -> Callable[[Request], Awaitable[Response]]:
    """/predict/by-key: the features of entity keys come from the online store (Feast's
    get_online_features), and the response says how trustworthy the weakest of them is.

    A feature view without its honesty tags stops the service from starting; Feast missing or
    nothing materialized yet only makes this route answer 503, saying why.
    """
    try:
        features: OnlineFeatures | None = OnlineFeatures.open()
        unavailable = None
    except UntaggedFeatureView:
        raise
    except FeatureStoreError as error:
        features, unavailable = None, str(error)
    rendered: list[tuple[Version, HonestBody]] = []  # for the version served (the alias moves)

    def honest_body(current: Version) -> HonestBody:
        if not rendered or rendered[0][0] is not current:
            model_status = current.honest.get("implementation_status")
            weakest = features.weakest.response_fields(model_status) if features else {}
            rendered[:] = [(current, HonestBody(service.response_model, current.honest | weakest))]
        return rendered[0][1]

    async def answer(request: Request) -> Response:
        current = service.current  # the version this request is answered and counted by
        served, limits = current.served, service.limits
        if features is None:
            raise HTTPException(503, f"no online features: {unavailable}")
        if served.model is None or served.inputs is None:
            raise HTTPException(503, served.not_ready())
        started = time.perf_counter()
        raw = await request.body()
        model, inputs, online = served.model, served.inputs, features

        def predict() -> tuple[list[Any], int]:
            keys = requested_keys(raw, JOIN_KEY, limits.max_batch)
            columns, rows = online.rows(keys)
            model_input = online.samples(rows)
            if model_input is None:
                model_input = inputs.from_table(columns, rows, lenient=True)
            return payloads.to_list(model.predict(model_input)), len(keys)

        try:
            predictions, rows = await service.in_thread(predict)
        except payloads.InvalidInput as error:
            raise RequestValidationError(error.errors) from None
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None
        body = honest_body(current)
        return service.counted("/predict/by-key", started, rows, body, predictions, current)

    return answer


def requested_keys(body: bytes, key: str, max_batch: int) -> list[Any]:
    """An object whose one field is the key: one value or a list of them; anything else is a 422
    naming the key."""
    document = payloads.read_json(body)
    if not isinstance(document, dict) or set(document) != {key}:
        raise payloads.invalid(f"send an object with one field, {key}: a key or a list of keys")
    keys = document[key] if isinstance(document[key], list) else [document[key]]
    if not keys or not all(isinstance(k, int | str) and not isinstance(k, bool) for k in keys):
        raise payloads.invalid(f"{key} must be a key or a non-empty list of keys", key)
    payloads.check_batch(len(keys), max_batch)
    return keys
{%- endif %}
