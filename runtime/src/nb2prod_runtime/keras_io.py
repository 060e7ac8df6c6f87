"""Keras 3 models as served models: found without importing Keras, logged with its flavour.

Keras 3 runs on a backend (TensorFlow, JAX or PyTorch) chosen by ``KERAS_BACKEND`` before
``import keras``; the generated package sets it where it is imported first (its
``__init__``), so training, promotion and serving run the network on the backend it was
trained on. MLflow's keras flavour saves the network in Keras's own ``.keras`` format and
serves ``model.predict`` on a float tensor of the shape it was trained on.

A notebook measures what it makes of the network's output (labels from probabilities, say),
not the output itself: wrapped in `Answering` with the package's `answer` function, the network
is logged as a pyfunc model (keras_answering.py) that keeps it in Keras's format as an artifact
and answers through that function, so that the service, verify and any client of the registry
get what the claim was measured on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

BACKEND = "keras_backend"  # model metadata: the backend the network was trained on


class Answering:
    """`network`, answering with `answer(network, inputs)`: what the notebook makes of its
    output before it measures it."""

    def __init__(self, network: Any, answer: Callable[[Any, Any], Any]) -> None:
        self.network = network
        self.answer = answer

    def predict(self, inputs: Any) -> np.ndarray:
        return np.asarray(self.answer(Silent(self.network), as_array(inputs)))


class Silent:
    """The network as the answer function sees it: its ``predict`` never prints Keras's
    progress bar into the service's output, whatever ``verbose`` the notebook passed."""

    def __init__(self, network: Any) -> None:
        self._network = network

    def predict(self, inputs: Any, **options: Any) -> Any:
        return self._network.predict(inputs, **{**options, "verbose": 0})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._network(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._network, name)


def is_keras_model(model: Any) -> bool:
    """Whether the model is a ``keras.Model`` (Keras is loaded when one exists), or one
    wrapped in `Answering`. Checked before torch: on the PyTorch backend a Keras model is a
    ``torch.nn.Module`` too."""
    if isinstance(model, Answering):
        return True
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.Model)


def as_array(value: Any) -> np.ndarray:
    """What the network was fitted on, as the float array a request becomes."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype.kind in "fiub" else array


def predict(model: Any, example: Any) -> np.ndarray:
    """What the served model answers: ``model.predict`` without its progress bar, or what
    `Answering` makes of the network's output."""
    if isinstance(model, Answering):
        return model.predict(example)
    return np.asarray(model.predict(example, verbose=0))


def log_network(model: Any, common: Mapping[str, Any]) -> Any:
    """Log the network with MLflow's keras flavour, the backend it ran on in its metadata, and
    the function its answer is made with, if any."""
    import keras
    from mlflow.models import Model

    backend = keras.backend.backend()
    logged = {**common, "metadata": {**common.get("metadata", {}), BACKEND: backend}}
    # MLflow checks the logged model by predicting on the example through the flavour, which
    # calls predict with Keras's progress bar: not the output of the user's training
    with _quiet():
        if not isinstance(model, Answering):
            return Model.log(artifact_path=None, flavor=_KerasFlavour, model=model, **logged)
        import mlflow

        from nb2prod_runtime.keras_answering import NETWORK, AnsweringNetwork

        mlflow.set_tag(
            "model_format",
            "pyfunc: the Keras network in Keras's format, answering through the package's "
            "answer function (held by reference in a cloudpickle)",
        )
        with tempfile.TemporaryDirectory() as folder:
            saved = os.path.join(folder, "network.keras")
            model.network.save(saved)
            return mlflow.pyfunc.log_model(
                python_model=AnsweringNetwork(model.answer, backend),
                artifacts={NETWORK: saved},
                **logged,
            )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keras's progress bars off (an answer may call ``model.predict``), as they were after."""
    import keras

    interactive = keras.utils.is_interactive_logging_enabled()
    keras.utils.disable_interactive_logging()
    try:
        yield
    finally:
        if interactive:
            keras.utils.enable_interactive_logging()


def holds_network(model: Any) -> bool:
    """A scikit-learn-style estimator whose fitted state holds a Keras network (tslearn's
    LearningShapelets keeps one in `model_`): skops cannot save it."""
    return any(is_keras_model(value) for value in getattr(model, "__dict__", {}).values())


def log_pickled_estimator(model: Any, common: Mapping[str, Any]) -> Any:
    """Log such an estimator with the scikit-learn flavour as a cloudpickle (Keras 3 networks
    pickle through their own `.keras` bytes), its backend in the metadata, and say so on the
    run: loading it runs that pickle, so load only models this package trained."""
    import keras
    import mlflow
    import mlflow.sklearn

    mlflow.set_tag(
        "model_format", "cloudpickle: a scikit-learn-style estimator holding a Keras network"
    )
    metadata = {**common.get("metadata", {}), BACKEND: keras.backend.backend()}
    return mlflow.sklearn.log_model(
        model, serialization_format="cloudpickle", **{**common, "metadata": metadata}
    )


def prepare_backend(metadata: Mapping[str, Any]) -> None:
    """Before Keras is imported (by loading a model): the backend the model was trained on,
    unless KERAS_BACKEND already says otherwise."""
    import os

    backend = metadata.get(BACKEND)
    if backend:
        os.environ.setdefault("KERAS_BACKEND", str(backend))


class _KerasFlavour:
    """MLflow's keras flavour, saving into a folder that exists: MLflow 3.17's
    ``mlflow.keras.save_model`` writes the input example before it creates the model's folder,
    and fails on any example; the folder made first, it saves as it means to."""

    @staticmethod
    def save_model(model: Any, path: str, **kwargs: Any) -> None:
        import os

        import mlflow.keras

        os.makedirs(path, exist_ok=True)
        mlflow.keras.save_model(model, path, **kwargs)


def load_network(uri: str, metadata: Mapping[str, Any]) -> Any:
    """The logged network, on the backend it was trained on (unless KERAS_BACKEND says
    otherwise), answering without the progress bar Keras prints for every predict."""
    prepare_backend(metadata)
    import mlflow.keras

    return _Predicting(mlflow.keras.load_model(uri))


class _Predicting:
    def __init__(self, network: Any) -> None:
        self.network = network

    def predict(self, inputs: Any) -> np.ndarray:
        return predict(self.network, inputs)
