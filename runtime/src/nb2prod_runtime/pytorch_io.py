"""PyTorch modules as served models: found without importing torch, fed float arrays.

torch is imported only when the model is a module, so a package that trains a scikit-learn
model never pays for it. A module is served through MLflow's pytorch flavour, which turns the
request's array into a tensor and runs the module under ``torch.no_grad()``; this file gives
training the same view of the module, so the signature logged is what serving answers.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np


def is_module(model: Any) -> bool:
    """Whether the model is a ``torch.nn.Module`` (torch is loaded when one exists)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def is_tensor(value: Any) -> bool:
    """Whether the value is a ``torch.Tensor`` (torch is loaded when one exists)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def servable(model: Any) -> Any:
    """A skorch net as the module that answers what its predict answers; any other model as
    it is. skorch pickles whole nets (optimizer, callbacks, history); its fitted module alone
    is what predicts."""
    if type(model).__module__.startswith("skorch.") and hasattr(model, "module_"):
        from nb2prod_runtime.torch_output import SkorchPredicting

        return SkorchPredicting(model)
    return model


def holds_module(model: Any) -> bool:
    """A scikit-learn estimator holding a skorch net or a module (a Pipeline whose last step
    is a NeuralNetClassifier): skops cannot save torch's objects."""
    torch = sys.modules.get("torch")
    if torch is None or is_module(model):
        return False
    parts = [step for _, step, *_ in getattr(model, "steps", [])]
    parts += list(getattr(model, "__dict__", {}).values())
    return any(
        isinstance(part, torch.nn.Module) or type(part).__module__.startswith("skorch.")
        for part in parts
    )


def log_pickled_estimator(model: Any, common: Mapping[str, Any]) -> Any:
    """Log such an estimator with the scikit-learn flavour as a cloudpickle, and say so on the
    run: loading it runs that pickle, so load only models this package trained."""
    import mlflow
    import mlflow.sklearn

    mlflow.set_tag(
        "model_format", "cloudpickle: a scikit-learn-style estimator holding a PyTorch network"
    )
    return mlflow.sklearn.log_model(model, serialization_format="cloudpickle", **common)


def as_array(value: Any) -> Any:
    """What the module was trained on, as the array a request becomes: a tensor leaves the
    graph and the device it was on; a frame or an array keeps its values."""
    if is_tensor(value):
        return value.detach().cpu().numpy()
    if hasattr(value, "to_numpy"):
        return value.to_numpy(dtype=np.float32)
    return np.asarray(value)


def forward(model: Any, example: Any) -> np.ndarray:
    """The module's answer for `example`, as MLflow's pytorch flavour computes it."""
    import torch

    with torch.no_grad():
        answer = model(torch.from_numpy(np.ascontiguousarray(example)))
    if not isinstance(answer, torch.Tensor):
        raise TypeError(
            f"the module answers with a {type(answer).__name__}, not a tensor, and MLflow's "
            "pytorch flavour serves a module's tensor output only"
        )
    return answer.detach().cpu().numpy()


def log_module(model: Any, common: Mapping[str, Any]) -> Any:
    """Log the module as a torch.export program (pt2: loading it runs no pickle); one that
    torch.export cannot trace is pickled, and its run's `model_format` tag says why."""
    import mlflow
    import mlflow.pytorch

    _without_weak_references(model)
    try:
        return mlflow.pytorch.log_model(model, serialization_format="pt2", **common)
    except Exception as error:  # torch.export's errors have no common base class
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        mlflow.set_tag("model_format", f"pickle: torch.export cannot trace the module ({reason})")
        return mlflow.pytorch.log_model(model, serialization_format="pickle", **common)


def _without_weak_references(model: Any) -> None:
    """Drop what training left on the module's tensors as weak references: Pyro's parameter
    store marks each parameter it trained with one (`param.unconstrained`), which no pickle can
    hold, and serving never reads it."""
    import weakref

    for tensor in [*model.parameters(), *model.buffers()]:
        for name, value in list(vars(tensor).items()):
            if isinstance(value, weakref.ReferenceType):
                delattr(tensor, name)
