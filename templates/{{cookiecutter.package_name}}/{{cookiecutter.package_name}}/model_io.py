# {{ cookiecutter._code.header }}
"""Log the model to MLflow knowingly: with a signature, an input example, and no blind pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow.models import infer_signature

from {{ cookiecutter.package_name }} import honesty

MODEL_NAME: str = honesty.MODEL["model_name"]
SAFE_MODULES = ("sklearn.", "numpy.", "scipy.")


class ModelLoggingError(Exception):
    """The model cannot be logged safely; the message says what to change."""


def log_model(model: Any, model_input: Any) -> str:
    """Log and register `model`; return the new registered version."""
    example = _head(model_input, 5)
    signature = infer_signature(example, model.predict(example))
    if honesty.MODEL["model_kind"] == "rule-based":
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("rule_model.py")),
            model_config={"state": rule_state(model)},
            signature=signature,
            input_example=_head(example, 2),
            registered_model_name=MODEL_NAME,
        )
    else:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            skops_trusted_types=skops_trusted_types(model) or None,
            signature=signature,
            input_example=_head(example, 2),
            registered_model_name=MODEL_NAME,
        )
    return str(info.registered_model_version)


def skops_trusted_types(model: Any) -> list[str]:
    """Types skops must be told to trust to load this model, limited to vetted libraries.

    skops refuses to load types it cannot vouch for (the tree storage of forests, for one).
    Trusting scikit-learn's and numpy's own types is a decision made here, in code a reviewer
    reads; any other type stops the run instead of falling back to pickle.
    """
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    foreign = [name for name in untrusted if not name.startswith(SAFE_MODULES)]
    if foreign:
        raise ModelLoggingError(
            f"the model holds types skops cannot vouch for: {', '.join(foreign)}; review them "
            "and add their modules to SAFE_MODULES in model_io.py if they are safe to load"
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


def _head(value: Any, rows: int) -> Any:
    if hasattr(value, "iloc"):
        return value.iloc[:rows]
    return value[:rows]
