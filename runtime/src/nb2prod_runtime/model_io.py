"""Log the model to MLflow knowingly: its library's own flavour, a signature, an input example.

The flavour is chosen from the fitted object's type when training runs:

- scikit-learn estimators and pipelines: ``mlflow.sklearn``, saved with skops (no pickle). skops
  refuses to load types it cannot vouch for; scikit-learn's, numpy's, scipy's, this package's
  own (the notebook's helpers) and those of the libraries the notebook imports (its pinned
  requirements) are trusted here, any other type only when named with ``--trust-type`` or
  ``NB2PROD_TRUSTED_TYPES`` (see "Trusted types" in README.md).
- a fitted ``GridSearchCV``/``RandomizedSearchCV``: its ``best_estimator_`` is the model; the
  search's best parameters and score are logged on the run.
- xgboost (``xgb.train`` boosters and ``XGBClassifier``...): ``mlflow.xgboost``, in xgboost's own
  UBJSON format.
- LightGBM: ``mlflow.lightgbm``; a booster in LightGBM's text format, an ``LGBMClassifier``...
  with skops and the LightGBM types MLflow vouches for.
- statsmodels results: ``mlflow.statsmodels``, which pickles them (statsmodels has no other
  format): loading runs that pickle, so load only models this package trained. MLflow refuses
  it when ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``.
  A time-series model (ARIMA, SARIMAX, AutoReg, ExponentialSmoothing, ETSModel...) takes
  what MLflow's statsmodels flavour takes, rows of ``start`` and ``end`` (see forecasting.py),
  and is logged with the request for the steps right after its series as its example (with
  ``exog``, optional in the signature, when it was fitted with exogenous data). A result that
  forecasts through another model (STLForecast's) is logged through forecasting.ForecastThrough.
- a PyTorch module (``torch.nn.Module``, trained by the notebook's loop): ``mlflow.pytorch``,
  in eval mode. Its example is what it was trained on, as a float array, so the signature is a
  tensor of that shape and serving turns records into that tensor; it answers with the
  module's output (see pytorch_io.py). It is saved as a torch.export program (pt2: a graph, no
  pickle); a module torch.export cannot trace (control flow on its input's values) is pickled
  instead, which imports its class from this package when loaded, and the run says so.
  A skorch net is served as its fitted module answering as the net's predict does
  (torch_output.SkorchPredicting), the same way.
- a Keras 3 model (``keras.Model``, on any backend): ``mlflow.keras``, in Keras's ``.keras``
  format, with the backend it was trained on in its metadata (see keras_io.py). Like a module,
  its example is a float array and serving turns records into that tensor; it answers with
  ``model.predict``. A scikit-learn-style estimator holding a Keras network (tslearn's
  LearningShapelets), which skops cannot save, is logged with the scikit-learn flavour as a
  cloudpickle, and the run's ``model_format`` tag says so; so is any estimator skops cannot
  save (a notebook transformer keeping pandas objects as fitted state), the tag saying why.
- a rule-based model: its code, as an MLflow model-from-code, plus its settings.

A scikit-learn model fitted on one column (a text pipeline fitted on ``df["review"]``, a
Series or a 1-D array) takes that column itself, which MLflow cannot use as an example. It is
logged with a one-column frame as its example and signature, named after the Series, and
with ``ONE_COLUMN`` in its metadata, so that serving hands it the column again
(loading.OneColumn).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import mlflow
import numpy as np
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema, TensorSpec

from nb2prod_runtime import keras_io, pytorch_io
from nb2prod_runtime.categories import CATEGORIES, categories_of
from nb2prod_runtime.forecasting import (
    Forecaster,
    forecast_request,
    is_forecaster,
    loggable,
)
from nb2prod_runtime.package import Package
from nb2prod_runtime.skops_import import import_skops_io

# Plain containers from the standard library that models carry (LightGBM keeps an OrderedDict).
TRUSTED_CONTAINERS = ("collections.OrderedDict", "collections.defaultdict")
# Python's own value types, held as types, not instances: `make_column_selector(dtype_include=
# object)` keeps `object`, a `dtype=float` keeps `float`. Loading one imports nothing.
TRUSTED_BUILTIN_TYPES = tuple(
    f"builtins.{name}" for name in ("object", "int", "float", "complex", "bool", "str", "bytes")
)
# A partial calls only the function it wraps, which skops lists and is vetted on its own
# (scikit-learn's HistGradientBoosting on category columns keeps `partial(check_array, ...)`).
TRUSTED_WRAPPERS = ("functools.partial",)
TRUSTED_TYPES_VARIABLE = "NB2PROD_TRUSTED_TYPES"
NATIVE_FLAVOURS = ("xgboost", "lightgbm", "statsmodels")
FORECAST_EXAMPLE_STEPS = 12  # how far ahead the logged example of a forecaster reaches
ONE_COLUMN = "nb2prod_one_column"  # model metadata: the name of the one column it was fitted on


def request_rows(package: Package, model: Any, model_input: Any, rows: int) -> Any:
    """The first `rows` rows of the model's input as a request becomes them for the logged
    model (float32 arrays for a network's tensor signature), so what is predicted on them
    passes the signature as a request does."""
    kind = flavour(package, pytorch_io.servable(loggable(unwrap_search(model))))
    requested = first_rows(_as_requested(kind, model_input), rows)
    column = one_column(model_input) if kind == "sklearn" else None
    return example_frame(requested, column) if column is not None else requested


def _as_requested(kind: str, model_input: Any) -> Any:
    if kind == "pytorch":
        return pytorch_io.as_array(model_input)
    if kind == "keras":
        return keras_io.as_array(model_input)
    return model_input


class ModelLoggingError(Exception):
    """The model cannot be logged safely; the message says what to change."""


def log_model(
    package: Package, model: Any, model_input: Any, trusted_types: Iterable[str] = ()
) -> str:
    """Log `model` with its flavour on the active run; return its URI, for training to register
    together with its tags."""
    model = pytorch_io.servable(loggable(unwrap_search(model)))
    kind = flavour(package, model)
    column = one_column(model_input) if kind == "sklearn" else None
    model_input = _as_requested(kind, model_input)
    if kind == "pytorch":
        model.eval()  # served as the notebook predicts: no dropout, batch norm's running stats
    try:
        if is_forecaster(model):
            example = forecast_request(model, FORECAST_EXAMPLE_STEPS)
        else:
            example = _formula_inputs(model, first_rows(model_input, 5))
        predicted = predict(model, example)
        if not is_forecaster(model):
            _one_answer_per_row(example, predicted)
            _one_answer_per_row(first_rows(example, 1), predict(model, first_rows(example, 1)))
        if column is not None:  # what a request carries: a frame of that one column
            example = example_frame(example, column)
        signature = infer_signature(example, predicted)
        if is_forecaster(model):
            signature = _exog_optional(signature)
        else:
            signature = _optional_where_missing(signature, model_input)
    except ModelLoggingError:
        raise
    except Exception as error:
        raise ModelLoggingError(
            f"the model cannot predict on an example of its own input, so no signature can be "
            f"inferred ({type(error).__name__}: {_first_line(error)})"
        ) from error
    common: dict[str, Any] = {
        "name": "model",
        "signature": signature,
        "input_example": first_rows(example, 2),
        "pip_requirements": package.requirements,
    }
    if column is not None:
        common["metadata"] = {ONE_COLUMN: column}
    if categories := categories_of(example):  # given back to the model as categories
        common["metadata"] = {**common.get("metadata", {}), CATEGORIES: categories}
    if kind == "rule-based":
        info = mlflow.pyfunc.log_model(
            python_model=str(package.directory / "rule_model.py"),
            model_config={"state": rule_state(model)},
            **common,
        )
    elif kind == "xgboost":
        info = mlflow.xgboost.log_model(model, **common)
    elif kind == "lightgbm":
        info = mlflow.lightgbm.log_model(model, **common)
    elif kind == "statsmodels":
        info = mlflow.statsmodels.log_model(model, **common)
    elif kind == "pytorch":
        info = pytorch_io.log_module(model, common)
    elif kind == "keras":
        info = keras_io.log_network(model, common)
    elif keras_io.holds_network(model):
        info = keras_io.log_pickled_estimator(model, common)
    elif pytorch_io.holds_module(model):
        info = pytorch_io.log_pickled_estimator(model, common)
    else:
        info = _log_estimator(package, model, common, trusted_types)
    return info.model_uri


def _log_estimator(
    package: Package, model: Any, common: Mapping[str, Any], trusted_types: Iterable[str]
) -> Any:
    """With skops, which loads no code it cannot vouch for; a model skops cannot save at all
    (a notebook transformer keeping a pandas Series as fitted state) as a cloudpickle, which
    the run's model_format tag says, with why: loading it runs that pickle."""
    skops_io = import_skops_io()
    try:
        saved = skops_io.dumps(model)
    except Exception as error:  # skops raises what the object it cannot save raises
        mlflow.set_tag(
            "model_format",
            f"cloudpickle: skops cannot save the model ({type(error).__name__}: "
            f"{_first_line(error)})",
        )
        return mlflow.sklearn.log_model(model, serialization_format="cloudpickle", **common)
    try:  # this process made it: loading it back here trusts nothing it did not run
        skops_io.loads(saved, trusted=skops_io.get_untrusted_types(data=saved))
    except Exception as error:  # a class defined inside a step (it reads the step's values)
        mlflow.set_tag(
            "model_format",
            f"cloudpickle: skops cannot load the model back by name, as a class defined inside "
            f"a pipeline step ({type(error).__name__}: {_first_line(error)})",
        )
        return mlflow.sklearn.log_model(model, serialization_format="cloudpickle", **common)
    trusted = skops_trusted_types(model, package.trusted_modules, trusted_types, saved)
    return mlflow.sklearn.log_model(
        model, serialization_format="skops", skops_trusted_types=trusted or None, **common
    )


def flavour(package: Package, model: Any) -> str:
    """The MLflow flavour made for the model, read from the module its type comes from."""
    if package.model["model_kind"] == "rule-based":
        return "rule-based"
    if is_forecaster(model):
        return "statsmodels"
    if keras_io.is_keras_model(model):
        return "keras"
    if pytorch_io.is_module(model):
        return "pytorch"
    library = type(model).__module__.partition(".")[0]
    return library if library in NATIVE_FLAVOURS else "sklearn"


def unwrap_search(model: Any) -> Any:
    """A fitted hyperparameter search's best estimator, its findings logged on the run."""
    if not (hasattr(model, "best_params_") and hasattr(model, "cv_results_")):
        return model
    search = type(model).__name__
    if not hasattr(model, "best_estimator_"):
        raise ModelLoggingError(
            f"the {search} was fitted with refit=False, so it has no best estimator to serve; "
            "fit it with refit=True"
        )
    mlflow.set_tag("search", search)
    mlflow.log_params({f"search.best.{key}": value for key, value in model.best_params_.items()})
    if getattr(model, "best_score_", None) is not None:
        mlflow.log_metric("search_best_score", float(model.best_score_))
    return model.best_estimator_


def predict(model: Any, example: Any) -> Any:
    """What the model's pyfunc flavour answers for `example`: a booster reads a DMatrix, a
    forecaster the stretch from the first row's start to its end."""
    if type(model).__module__.startswith("xgboost.") and type(model).__name__ == "Booster":
        import xgboost

        return model.predict(xgboost.DMatrix(example))
    if is_forecaster(model):
        return np.asarray(Forecaster(model).predict(example.iloc[:1])[0])
    if keras_io.is_keras_model(model):
        return keras_io.predict(model, example)
    if pytorch_io.is_module(model):
        return pytorch_io.forward(model, example)
    return model.predict(example)


def _one_answer_per_row(example: Any, predicted: Any) -> None:
    """A service answers each record with one prediction; a model that answers a number of
    rows of its own (a batch-mode Gaussian process whose batch is part of the model, a module
    that sums over its input) would answer a request with someone else's count."""
    rows, answers = len(example), len(np.asarray(predicted))
    if rows and answers != rows:
        of_input = f"{rows} rows" if rows > 1 else "1 row"
        raise ModelLoggingError(
            f"the model answers {answers} rows for {of_input} of its input, so a request's "
            "records would not get one prediction each; serve a model whose output has a row "
            "per input row"
        )


def _optional_where_missing(signature: ModelSignature, model_input: Any) -> ModelSignature:
    """A column with missing values anywhere in what the model was fitted on may be null in a
    request (the model, an imputer's pipeline say, takes them), though the few rows the
    signature is inferred from have none there."""
    inputs = signature.inputs
    if inputs is None or not inputs.has_input_names() or not hasattr(model_input, "isna"):
        return signature
    frame = model_input.to_frame() if getattr(model_input, "ndim", 2) == 1 else model_input
    missing = {str(name) for name, gaps in frame.isna().any().items() if gaps}
    return _with_optional(signature, missing)


def _exog_optional(signature: ModelSignature) -> ModelSignature:
    """A forecaster's exog is needed only for steps past its series, so a request may omit it."""
    return _with_optional(signature, {"exog"})


def _with_optional(signature: ModelSignature, optional: set[str]) -> ModelSignature:
    """The signature with the named columns no longer required (unchanged when it has none)."""
    inputs = signature.inputs
    if inputs is None or not optional & set(inputs.input_names()):
        return signature
    columns: list[ColSpec | TensorSpec] = [
        ColSpec(column.type, column.name, required=column.required and column.name not in optional)
        for column in inputs.inputs
    ]
    return ModelSignature(Schema(columns), signature.outputs, signature.params)


def configured_trusted_types(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Types named in NB2PROD_TRUSTED_TYPES (separated by commas or spaces)."""
    return environ.get(TRUSTED_TYPES_VARIABLE, "").replace(",", " ").split()


def skops_trusted_types(
    model: Any,
    trusted_modules: tuple[str, ...],
    trusted_types: Iterable[str] = (),
    saved: bytes | None = None,
) -> list[str]:
    """Types skops must be told to trust to load this model: vetted modules, or named ones.

    skops refuses to load types it cannot vouch for (the tree storage of forests, for one).
    Trusting scikit-learn's, numpy's and this package's own types is a decision made here, in
    code a reviewer reads; any other type must be named by whoever trains, or the run stops
    instead of falling back to pickle.
    """
    skops_io = import_skops_io()
    named = {*trusted_types, *configured_trusted_types()}
    saved = saved if saved is not None else skops_io.dumps(model)
    untrusted = skops_io.get_untrusted_types(data=saved)
    foreign = [
        name
        for name in untrusted
        if not name.startswith(trusted_modules)
        and name not in (*TRUSTED_CONTAINERS, *TRUSTED_BUILTIN_TYPES, *TRUSTED_WRAPPERS)
    ]
    unnamed = [name for name in foreign if name not in named]
    if unnamed:
        options = " ".join(f"--trust-type {name}" for name in unnamed)
        raise ModelLoggingError(
            f"skops cannot vouch for {', '.join(unnamed)} in the model, and would import and "
            f"construct them when it is loaded; if that code is yours or you trust it, train "
            f"again with {options} (or set {TRUSTED_TYPES_VARIABLE}={','.join(unnamed)}); see "
            "'Trusted types' in README.md"
        )
    return untrusted


def rule_state(model: Any) -> dict[str, Any]:
    """A rule-based model's settings, as JSON: the model is its code plus these values."""
    state = dict(vars(model))
    try:
        json.dumps(state)
    except TypeError as error:
        raise ModelLoggingError(
            f"the rule-based model's attributes are not plain values ({error}); keep its "
            "settings to numbers, strings and lists"
        ) from None
    return state


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def one_column(model_input: Any) -> str | None:
    """The column's name when the model was fitted on one column (a Series, a 1-D array or a
    list of values), else None."""
    if hasattr(model_input, "iloc") and getattr(model_input, "ndim", 2) == 1:
        name = getattr(model_input, "name", None)
        return str(name) if name is not None else "input"
    is_sequence = isinstance(model_input, list | tuple) and model_input
    if is_sequence and not isinstance(model_input[0], list | tuple | dict | np.ndarray):
        return "input"
    if isinstance(model_input, np.ndarray) and model_input.ndim == 1:
        return "input"
    return None


def example_frame(values: Any, column: str) -> Any:
    import pandas

    return pandas.DataFrame({column: list(values)})


def _formula_inputs(model: Any, example: Any) -> Any:
    """A statsmodels formula is fitted on a frame that holds its target, and often more (an
    id, the log of the target): serving asks callers only for the columns the formula's right
    side names, never for the value it predicts."""
    formula_model = getattr(model, "model", None)
    formula = getattr(formula_model, "formula", None)
    columns = list(getattr(example, "columns", ()))
    if not (isinstance(formula, str) and "~" in formula and columns):
        return example
    target = getattr(formula_model, "endog_names", None)
    without_target = example.drop(columns=[target]) if target in columns else example
    right = formula.split("~", 1)[1]
    named = {*re.findall(r"[A-Za-z_]\w*", right), *re.findall(r"Q\(\s*[\"'](.+?)[\"']", right)}
    read = [column for column in columns if str(column) in named and column != target]
    try:
        model.predict(example[read])
    except Exception:  # a name the formula reads that the pattern missed: ask for them all
        return without_target
    return example[read]


def first_rows(value: Any, rows: int) -> Any:
    """The first `rows` rows, as a request would hold them (a frame's, a sparse matrix's dense)."""
    if isinstance(value, Mapping):  # a formula fitted on a dict of columns reads a frame too
        import pandas

        value = pandas.DataFrame(value)
    if hasattr(value, "iloc"):
        return value.iloc[:rows]
    if hasattr(value, "tocsr"):  # a scipy sparse matrix (TF-IDF's): dense, as a request holds it
        return value[:rows].toarray()
    if pytorch_io.is_tensor(value):  # a module's input: the array a request becomes
        return pytorch_io.as_array(value[:rows])
    return value[:rows]
