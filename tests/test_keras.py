"""Keras 3 networks (issue 22): a `keras.Sequential` compiled and fitted is the model, run on
a backend installed here (PyTorch's CPU build), logged with MLflow's keras flavour, served
from records, and verified against the notebook run on the same backend."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from conftest import last_json_line, run_beside_package, run_cli, train_package

from nb2prod.backend.render import convert
from nb2prod.errors import InputError
from nb2prod.frontend.planner import build_plan
from nb2prod_runtime import drift

# found, not imported: importing Keras needs a backend chosen first, which each notebook does
if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("the corpus requirements install Keras 3 and torch", allow_module_level=True)

BACKEND = "import os\nos.environ['KERAS_BACKEND'] = 'torch'\n"
IMPORTS = (
    "import keras\n"
    "import numpy as np\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split"
)
DATA = (
    "X, y = load_iris(return_X_y=True)\n"
    "X = X.astype('float32')\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
)
NETWORK = (
    "keras.utils.set_random_seed(0)\n"
    "model = keras.Sequential([\n"
    "    keras.Input((4,)),\n"
    "    keras.layers.Dense(16, activation='relu'),\n"
    "    keras.layers.Dense(3, activation='softmax'),\n"
    "])\n"
    "model.compile(optimizer=keras.optimizers.Adam(0.05), loss='sparse_categorical_crossentropy')\n"
    "model.fit(X_train, y_train, epochs=40, verbose=0)"
)
MEASURE = "accuracy = accuracy_score(y_test, np.argmax(model.predict(X_test), axis=1))"
IRIS_NETWORK = [BACKEND + IMPORTS, DATA, NETWORK, MEASURE]


def test_a_fitted_network_is_the_model_on_the_backend_the_notebook_chose(
    write_notebook: Callable[..., Path],
) -> None:
    plan = build_plan(write_notebook(IRIS_NETWORK))
    assert (plan.model.name, plan.model.estimator) == ("model", "keras.Sequential")
    assert (plan.model.backend, plan.model.fit_inputs) == ("torch", ("X_train", "y_train"))
    found = {f.code: f for f in plan.findings}
    assert found["keras-backend"].message.startswith("the notebook runs Keras on torch")
    assert "unseeded-random" not in found  # keras.utils.set_random_seed seeds its weights
    # verbose=0 silences the fit: dropped, training printed a progress bar for every epoch
    assert "display-argument" not in found


def test_a_network_a_notebook_function_builds_is_a_network(
    write_notebook: Callable[..., Path],
) -> None:
    """`def build_model(): ... return model`, then `net = build_model()`: the network keeps
    its backend as a requirement (the image could not load it without one) and answers with
    the class the claim's argmax picks, not its last layer."""
    builder = (
        "def build_model(units=16):\n"
        "    model = keras.Sequential([\n"
        "        keras.Input((4,)),\n"
        "        keras.layers.Dense(units, activation='relu'),\n"
        "        keras.layers.Dense(3, activation='softmax'),\n"
        "    ])\n"
        "    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
        "    return model"
    )
    fit = "keras.utils.set_random_seed(0)\nnet = build_model()\nnet.fit(X_train, y_train, epochs=5)"
    measure = "accuracy = accuracy_score(y_test, np.argmax(net.predict(X_test), axis=1))"
    plan = build_plan(write_notebook([BACKEND + IMPORTS, DATA, builder, fit, measure]))
    assert (plan.model.name, plan.model.backend) == ("net", "torch")
    assert "torch" in {r.name for r in plan.requirements}
    assert plan.model.served_output == "np.argmax(model.predict(inputs), axis=1)"


def test_a_network_fitted_on_several_inputs_is_refused_at_plan(
    write_notebook: Callable[..., Path],
) -> None:
    """An embedding for a categorical column beside the numeric ones, two `keras.Input`s:
    records of one table cannot feed it, so plan says so instead of training failing on
    "setting an array element with a sequence"."""
    two_inputs = (
        "codes, numbers = keras.Input((1,)), keras.Input((3,))\n"
        "embedded = keras.layers.Flatten()(keras.layers.Embedding(8, 2)(codes))\n"
        "joined = keras.layers.Concatenate()([embedded, numbers])\n"
        "answer = keras.layers.Dense(3, activation='softmax')(joined)\n"
        "model = keras.Model([codes, numbers], answer)\n"
        "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
        "inputs = [(X_train[:, 0] > 5).astype(int), X_train[:, 1:]]\n"
        "model.fit(inputs, y_train, epochs=2)"
    )
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook([BACKEND + IMPORTS, DATA, two_inputs]))
    assert refused.value.cell == 3
    assert "model is a network fitted on 2 inputs (inputs)" in refused.value.message


def test_a_network_left_on_kerass_default_backend_runs_on_one_installed_here(
    write_notebook: Callable[..., Path],
) -> None:
    """Keras's own order of backends is TensorFlow, JAX, PyTorch: the package runs Keras on
    the first installed here, requires it though the notebook never imports it, and says so."""
    unseeded = NETWORK.replace("keras.utils.set_random_seed(0)\n", "")
    plan = build_plan(write_notebook([IMPORTS, DATA, unseeded, MEASURE]))
    installed = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]
    assert plan.model.backend == installed[0]
    backend = next(r for r in plan.requirements if installed[0] in r.modules)
    assert backend.source == f"Keras's backend (KERAS_BACKEND={installed[0]})"
    found = {f.code: f for f in plan.findings}
    assert "leaves Keras's backend to its default" in found["keras-backend"].message
    assert found["unseeded-random"].message == (
        "model = Sequential(...) starts from weights Keras draws, never seeded: each run "
        "trains a different model"
    )


def test_a_network_answers_with_what_the_claims_metric_reads(
    write_notebook: Callable[..., Path],
) -> None:
    """`probabilities = model.predict(X_test)`, then `predicted = probabilities.argmax(1)`:
    the claim is the accuracy of `predicted`, so the service answers with the class, followed
    through the names it is made from; the probabilities another metric reads are not it."""
    measure = (
        "probabilities = model.predict(X_test)\n"
        "predicted = probabilities.argmax(axis=1)\n"
        "accuracy = accuracy_score(y_test, predicted)\n"
        "confidence = float(np.mean(np.max(probabilities, axis=1)))"
    )
    plan = build_plan(write_notebook([BACKEND + IMPORTS, DATA, NETWORK, measure]))
    assert plan.honesty.primary_metric == "accuracy"
    assert plan.model.served_output == "model.predict(inputs).argmax(axis=1)"
    (said,) = [f for f in plan.findings if f.code == "module-output-served"]
    assert (said.cell, said.line) == (4, 2)
    assert said.message == (
        "the service answers with predicted as the notebook makes it from model's output: "
        "model.predict(inputs).argmax(axis=1)"
    )


def test_what_kerass_evaluate_returns_is_the_metric_its_name_says(
    write_notebook: Callable[..., Path],
) -> None:
    """`test_loss, test_acc = model.evaluate(X_test, y_test)`: Keras measured the accuracy
    the network was compiled with, on held-out rows; the loss is no claim."""
    network = NETWORK.replace(
        "loss='sparse_categorical_crossentropy')",
        "loss='sparse_categorical_crossentropy', metrics=['accuracy'])",
    )
    measure = "test_loss, test_acc = model.evaluate(X_test, y_test, verbose=0)"
    plan = build_plan(write_notebook([BACKEND + IMPORTS, DATA, network, measure]))
    (metric,) = plan.metrics
    assert (metric.name, metric.function, metric.validation) == ("test_acc", "accuracy", "holdout")
    assert metric.expression == "model.evaluate(X_test, y_test, verbose=0)[1]"
    assert plan.honesty.primary_metric == "test_acc"


def test_a_backend_that_is_not_installed_is_refused_naming_the_line(
    write_notebook: Callable[..., Path],
) -> None:
    if importlib.util.find_spec("jax") is not None:  # not among the test requirements
        pytest.skip("jax is installed here")
    cells = [IRIS_NETWORK[0].replace("'torch'", "'jax'"), *IRIS_NETWORK[1:]]
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook(cells))
    assert (refused.value.cell, refused.value.line) == (1, 2)
    assert "runs Keras on jax (KERAS_BACKEND), which is not installed here" in str(refused.value)


def test_the_network_trains_serves_records_and_verifies(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Logged with its backend and the package's answer function; loaded by the service
    without KERAS_BACKEND set, it answers each record with the class the notebook's argmax
    picks, what the claim measured, not the network's last layer; verify runs the notebook on
    the same backend and finds the same answers. Fitted on float64 rows (as a scaler returns
    them), it is profiled on the float32 arrays its signature takes, so drift is measured."""
    float64_rows = DATA.replace("X = X.astype('float32')\n", "")
    source = write_notebook(
        [BACKEND + IMPORTS, float64_rows, NETWORK, MEASURE], name="iris_net.ipynb"
    )
    package = convert(source, tmp_path / "pkg").target
    trained = train_package(package, tmp_path, "--cross-validation-folds", "0")
    assert trained.returncode == 0, trained.stderr[-3000:]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        logged = mlflow.models.get_model_info("models:/iris_net/1")
        run = mlflow.get_run(logged.run_id)
    finally:
        mlflow.set_tracking_uri(previous)
    assert logged.metadata["keras_backend"] == "torch"
    assert run.data.tags["drift_profile"] == drift.PROFILE_PATH
    # a pyfunc model holding the network in Keras's format and the package's answer function
    assert logged.flavors["python_function"]["loader_module"] == "mlflow.pyfunc.model"
    served = run_beside_package(
        package,
        tmp_path,
        "import os, json\n"
        "os.environ.pop('KERAS_BACKEND', None)\n"
        "from fastapi.testclient import TestClient\n"
        "from iris_net import serve\n"
        "client = TestClient(serve.create_app('models:/iris_net/1'))\n"
        "rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]\n"
        "print(json.dumps(client.post('/predict', json=rows).json()))",
    )
    assert served.returncode == 0, served.stderr[-3000:]
    assert "step" not in served.stdout  # no progress bar of Keras's predict
    body = last_json_line(served.stdout)
    assert body["predictions"] == [0, 2]
    assert body["implementation_status"] == "IMPLEMENTED"
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "predictions: the same on all 20 rows" in done.stdout


SHAPELETS = [
    BACKEND + "import numpy as np\n"
    "from sklearn.metrics import accuracy_score\n"
    "from tslearn.shapelets import LearningShapelets",
    "rng = np.random.default_rng(0)\n"
    "X = rng.normal(size=(40, 20, 1))\n"
    "y = (X[:, 5:10, 0].mean(axis=1) > 0).astype(int)\n"
    "X_train, X_test, y_train, y_test = X[:30], X[30:], y[:30], y[30:]",
    "clf = LearningShapelets(n_shapelets_per_size={5: 2}, max_iter=10, random_state=0, verbose=0)\n"
    "clf.fit(X_train, y_train)\n"
    "accuracy = accuracy_score(y_test, clf.predict(X_test))",
]


def test_a_scikit_learn_style_estimator_holding_a_keras_network_is_pickled_and_served(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """tslearn's LearningShapelets keeps a Keras network, which skops cannot save: it is
    logged as a cloudpickle, the run says so, and the service loads it on its backend."""
    pytest.importorskip("tslearn", reason="the corpus requirements install tslearn")
    source = write_notebook(SHAPELETS, name="shapelets.ipynb")
    plan = build_plan(source)
    assert (plan.model.estimator, plan.model.backend) == (
        "tslearn.shapelets.LearningShapelets",
        "torch",
    )
    package = convert(source, tmp_path / "pkg").target
    trained = train_package(package, tmp_path, "--cross-validation-folds", "0")
    assert trained.returncode == 0, trained.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (logged,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert logged.data.tags["model_format"].startswith("cloudpickle: a scikit-learn-style")
    served = run_beside_package(
        package,
        tmp_path,
        "import os, json\n"
        "os.environ.pop('KERAS_BACKEND', None)\n"
        "from fastapi.testclient import TestClient\n"
        "from shapelets import serve\n"
        "client = TestClient(serve.create_app('models:/shapelets/1'))\n"
        "series = [[[0.1]] * 20, [[-0.1]] * 20]\n"
        "print(json.dumps(client.post('/predict', json=series).json()))",
    )
    assert served.returncode == 0, served.stderr[-3000:]
    assert len(last_json_line(served.stdout)["predictions"]) == 2
