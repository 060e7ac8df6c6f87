"""A Keras network that answers as the notebook reads its output, as an MLflow pyfunc model.

The network is an artifact in Keras's own `.keras` format; the package's `answer` function is
held by reference (cloudpickle pickles a function of an importable module by its name), so
loading imports it from the installed package. Keras's backend is chosen from the one the
network was trained on before Keras is imported, unless KERAS_BACKEND says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import mlflow.pyfunc
import numpy as np

from nb2prod_runtime.keras_io import Silent, as_array

NETWORK = "network"  # the artifact holding the network


class AnsweringNetwork(mlflow.pyfunc.PythonModel):
    """`answer(network, inputs)` for each request; the network is loaded with the model."""

    def __init__(self, answer: Callable[[Any, Any], Any], backend: str) -> None:
        self.answer = answer
        self.backend = backend
        self.network: Any = None  # loaded from the artifact, never pickled

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        os.environ.setdefault("KERAS_BACKEND", self.backend)
        import keras

        self.network = keras.saving.load_model(context.artifacts[NETWORK])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: Any,
        params: dict[str, Any] | None = None,
    ) -> np.ndarray:
        return np.asarray(self.answer(Silent(self.network), as_array(model_input)))
