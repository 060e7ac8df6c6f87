"""TensorFlow's own training (issue 22): a Keras network trained by a `tf.GradientTape` loop,
in a cell or in a `@tf.function` training step over a `tf.data` pipeline, is the model; the
package trains it as the notebook does, on TensorFlow, logs it with MLflow's keras flavour,
serves it from records, and verify finds it answering as the notebook's."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli, train_package

from nb2prod.backend.render import convert
from nb2prod.frontend.planner import build_plan

# found, not imported: importing TensorFlow costs seconds, which only the trained tests pay
if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("the corpus requirements install tensorflow-cpu", allow_module_level=True)

IMPORTS = (
    "import tensorflow as tf\n"
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.preprocessing import StandardScaler"
)
DATA = (
    "tf.keras.utils.set_random_seed(0)\n"
    "data = load_breast_cancer()\n"
    "X_train, X_test, y_train, y_test = train_test_split(\n"
    "    data.data, data.target, test_size=0.25, random_state=0\n"
    ")\n"
    "scaler = StandardScaler().fit(X_train)\n"
    "X_train = scaler.transform(X_train).astype('float32')\n"
    "X_test = scaler.transform(X_test).astype('float32')"
)
NETWORK = (
    "model = tf.keras.Sequential([\n"
    "    tf.keras.Input(shape=(30,)),\n"
    "    tf.keras.layers.Dense(16, activation='relu'),\n"
    "    tf.keras.layers.Dense(1, activation='sigmoid'),\n"
    "])\n"
    "optimizer = tf.keras.optimizers.Adam(learning_rate=0.01)\n"
    "loss_fn = tf.keras.losses.BinaryCrossentropy()"
)
TAPE_LOOP = (
    "for epoch in range(30):\n"
    "    with tf.GradientTape() as tape:\n"
    "        predicted = model(X_train, training=True)\n"
    "        loss = loss_fn(y_train, predicted)\n"
    "    gradients = tape.gradient(loss, model.trainable_variables)\n"
    "    optimizer.apply_gradients(zip(gradients, model.trainable_variables))"
)
# the training step returns its loss: called bare, it is still there for what it changes
STEP_FUNCTION = (
    "dataset = tf.data.Dataset.from_tensor_slices((X_train, y_train)).shuffle(512).batch(64)\n"
    "\n\n"
    "@tf.function\n"
    "def train_step(x, y):\n"
    "    with tf.GradientTape() as tape:\n"
    "        loss = loss_fn(y, model(x, training=True))\n"
    "    gradients = tape.gradient(loss, model.trainable_variables)\n"
    "    optimizer.apply_gradients(zip(gradients, model.trainable_variables))\n"
    "    return loss\n"
    "\n\n"
    "for epoch in range(10):\n"
    "    for x_batch, y_batch in dataset:\n"
    "        train_step(x_batch, y_batch)"
)
MEASURE = "accuracy = accuracy_score(y_test, model.predict(X_test, verbose=0).ravel() > 0.5)"


@pytest.mark.parametrize("training", [TAPE_LOOP, STEP_FUNCTION], ids=["loop", "step-function"])
def test_the_network_a_gradient_tape_trains_is_the_model_on_tensorflow(
    write_notebook: Callable[..., Path], training: str
) -> None:
    """The optimizer names the network where it applies the gradients to its variables; what
    the network is called on in the loop, or in the step the loop hands its batches, is what
    it was trained on."""
    plan = build_plan(write_notebook([IMPORTS, DATA, NETWORK, training, MEASURE]))
    model = plan.model
    assert (model.name, model.estimator, model.fitted_in) == (
        "model",
        "tensorflow.keras.Sequential",
        4,
    )
    assert (model.backend, model.fit_inputs) == ("tensorflow", ("X_train",))
    # the service answers with the labels the notebook measured, not the network's last layer
    assert model.served_output == "model.predict(inputs).ravel() > 0.5"
    kept = {cell.cell for cell in plan.cells if cell.kept}
    assert kept == {1, 2, 3, 4, 5}
    found = {f.code: f for f in plan.findings}
    assert found["keras-backend"].message == (
        "the notebook runs Keras through TensorFlow, and so does the package"
    )
    assert (found["module-output-served"].cell, found["module-output-served"].line) == (5, 1)
    assert "unseeded-random" not in found  # tf.keras.utils.set_random_seed seeds the weights


def test_a_tf_keras_network_fitted_is_a_keras_3_model_on_tensorflow(
    write_notebook: Callable[..., Path],
) -> None:
    """`from tensorflow import keras` is Keras 3 since TensorFlow 2.16: its fitted network is
    the model, as keras's is, on TensorFlow (before TensorFlow was installed here, plan refused
    it as 'a tensorflow model')."""
    cells = [
        "import numpy as np\nfrom tensorflow import keras",
        "X = np.zeros((8, 2))\ny = np.zeros(8)\n"
        "model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "model.compile(loss='mse')\nmodel.fit(X, y, epochs=1)",
    ]
    plan = build_plan(write_notebook(cells))
    assert (plan.model.name, plan.model.backend, plan.model.fit_inputs) == (
        "model",
        "tensorflow",
        ("X", "y"),
    )


def test_a_network_trained_without_keras_seed_is_unseeded(
    write_notebook: Callable[..., Path],
) -> None:
    data = DATA.replace("tf.keras.utils.set_random_seed(0)\n", "")
    plan = build_plan(write_notebook([IMPORTS, data, NETWORK, TAPE_LOOP, MEASURE]))
    (unseeded,) = [f for f in plan.findings if f.code == "unseeded-random"]
    assert (unseeded.cell, unseeded.line) == (3, 1)


def test_the_step_function_trains_and_verifies(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """The package runs the notebook's tf.function over its tf.data batches and logs the
    network with its TensorFlow backend; verify (both sides seeded alike) finds the same
    accuracy, and the logged network, loaded as a client loads it, answering the notebook's
    rows as the notebook's network does. (Serving a Keras network from records is
    test_keras.py's.)"""
    source = write_notebook([IMPORTS, DATA, NETWORK, STEP_FUNCTION, MEASURE], name="tape.ipynb")
    package = convert(source, tmp_path / "pkg").target
    trained = train_package(package, tmp_path, "--cross-validation-folds", "0")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "accuracy (holdout 25%), VALIDATED" in trained.stdout
    assert "ms/step" not in trained.stdout  # no Keras progress bar while the network is logged
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "predictions: the same on all 20 rows" in done.stdout
    assert "Keras's global random generators from seed 0" in done.stdout
