"""PyTorch modules, skorch nets and Gaussian processes trained, logged and served (issue 22):
the service answers with what the notebook measured, so the claim is a claim about what is
served, and verify finds the package's model answering as the notebook's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import (
    last_json_line,
    run_beside_package,
    run_cli,
    run_code,
    run_module,
    train_package,
)
from pytorch_notebooks import (
    BATCH_OF_PROCESSES,
    BEST_EPOCH_RESTORED,
    GAUSSIAN_PROCESS,
    GAUSSIAN_PROCESS_BY_FUNCTIONS,
    GP_CLASSIFIER,
    IMPORTS,
    IRIS_ROWS_OF_A_DATASET_CLASS,
    NET,
    PYRO_GP,
    SKORCH_IRIS,
    TUMOR_DATA,
    TUMOR_NET,
)
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from nb2prod.backend.render import convert
from nb2prod.frontend.planner import build_plan
from nb2prod_runtime import drift

pytest.importorskip("torch", reason="the corpus requirements install torch's CPU build")


def test_the_served_module_answers_what_the_claim_measured(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Trained by the package, logged in torch.export's format (no pickle), served through
    MLflow's pytorch flavour: its answers for the notebook's held-out rows score exactly the
    accuracy the run claims, which the notebook counts by hand."""
    by_hand = (
        "model.eval()\n"
        "with torch.no_grad():\n"
        "    predicted = (torch.sigmoid(model(X_test_t)) > 0.5).int()\n"
        "correct = (predicted == torch.tensor(y_test.values)).sum().item()\n"
        "accuracy = correct / len(y_test)\n"
        "print(f'accuracy: {accuracy:.3f}')"
    )
    cells = [*TUMOR_NET[:4], by_hand]
    package = convert(write_notebook(cells, name="tumor_net.ipynb"), tmp_path / "pkg")
    dockerfile = (package.target / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile
    assert "--import mlflow.pytorch" in dockerfile  # compiled in the image, not skops
    claimed, answer, labels = _train_and_serve_held_out_rows(package.target, "tumor_net", tmp_path)
    assert list((tmp_path / "mlruns").rglob("model.pt2")), "logged as a pt2 program"
    assert set(answer["predictions"]) <= {0, 1}
    hits = sum(int(p == y) for p, y in zip(answer["predictions"], labels, strict=True))
    assert hits / len(labels) == pytest.approx(claimed)
    assert answer["accuracy_claim"].startswith(f"{claimed:.3f} accuracy")


@pytest.mark.parametrize(
    ("made", "called"),
    [
        ("", "model, losses = train_model(X_train_t, y_train_t)"),
        # the function makes its tensors from the arrays it is handed
        (
            "    xt = torch.tensor(features, dtype=torch.float32)\n"
            "    yt = torch.tensor(labels, dtype=torch.float32)\n",
            "X_train_s = scaler.transform(X_train)\n"
            "y_train_a = y_train.to_numpy()\n"
            "model, losses = train_model(X_train_s, y_train_a)",
        ),
    ],
)
def test_a_module_a_function_builds_and_returns_trains_and_answers_what_it_claimed(
    write_notebook: Callable[..., Path], tmp_path: Path, made: str, called: str
) -> None:
    """`model, losses = train_model(X_train_t, y_train_t)`: the package builds and trains the
    module as the notebook's function does, and serves the one the call hands back."""
    train_model = (
        "def train_model(features, labels, epochs=100):\n"
        + made
        + "    net = Net(features.shape[1])\n"
        "    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)\n"
        "    losses = []\n"
        "    for epoch in range(epochs):\n"
        "        optimizer.zero_grad()\n"
        "        loss = nn.BCEWithLogitsLoss()(net(features), labels)\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        "        losses.append(loss.item())\n"
        "    return net, losses\n"
        "\n\n" + called
    )
    if made:
        train_model = train_model.replace("(net(features), labels)", "(net(xt), yt)")
    cells = [*TUMOR_NET[:3], train_model, TUMOR_NET[4]]
    package = convert(write_notebook(cells, name="tumor_fn.ipynb"), tmp_path / "pkg")
    claimed, answer, labels = _train_and_serve_held_out_rows(package.target, "tumor_fn", tmp_path)
    hits = sum(int(p == y) for p, y in zip(answer["predictions"], labels, strict=True))
    assert hits / len(labels) == pytest.approx(claimed)
    assert claimed > 0.9


# the tumor network written for a GPU: every device move there is
ON_GPU = [
    TUMOR_NET[0],
    TUMOR_NET[1] + "\ndevice = 'cuda'\nX_train_t, y_train_t = X_train_t.to(device), "
    "y_train_t.cuda()",
    TUMOR_NET[2],
    TUMOR_NET[3].replace("model = Net(X_train_t.shape[1])", "model = Net(30).cuda()"),
    TUMOR_NET[4]
    .replace("model(X_test_t)", "model(X_test_t.to('cuda:0'))")
    .replace(".int().numpy()", ".int().cpu().numpy()"),
]


def test_a_notebook_written_for_a_gpu_trains_and_serves_on_the_cpu(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Every device move of a notebook written for a GPU becomes a move to the CPU, where the
    package runs (a CPU build of torch here raises "Torch not compiled with CUDA enabled"):
    it trains, and its service answers the held-out rows as its claim says."""
    notebook = write_notebook(ON_GPU, name="gpu_net.ipynb")
    moved = [f for f in build_plan(notebook).findings if f.code == "device-cpu"]
    assert [(f.cell, f.line) for f in moved] == [(2, 8), (2, 9), (4, 1), (5, 3)]
    assert "y_train_t.cuda()" in moved[1].message
    package = convert(notebook, tmp_path / "pkg")
    claimed, answer, labels = _train_and_serve_held_out_rows(package.target, "gpu_net", tmp_path)
    hits = sum(int(p == y) for p, y in zip(answer["predictions"], labels, strict=True))
    assert hits / len(labels) == pytest.approx(claimed)


def test_verify_runs_a_notebook_written_for_a_gpu_on_the_cpu_as_its_package_does(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Run as written here, the notebook fails at its first `.cuda()`, and verify compared
    nothing; its moves stay on the CPU in verify's kernel, also in a cell the package leaves
    out (a grid moved to the GPU to be printed), and both sides agree."""
    cells = [*ON_GPU, "grid = torch.zeros(2, 30).cuda()\nprint(model(grid))"]
    notebook = write_notebook(cells, name="gpu_net.ipynb")
    package = convert(notebook, tmp_path / "pkg").target
    done = run_cli("verify", notebook, package, timeout=600)
    assert done.code == 0, done.stdout + done.stderr[-3000:]
    assert "devices: the notebook's moves to a GPU ran on the CPU, as the package's do" in (
        done.stdout
    )
    assert "parity: every metric and prediction agrees" in done.stdout


def _train_and_serve_held_out_rows(
    target: Path, name: str, tmp_path: Path, metric: str = "accuracy"
) -> tuple[float, dict[str, Any], list[int]]:
    """Train the package, then post the tumor notebook's held-out rows to its service: the
    accuracy its run claims (`metric`), the service's answer and the rows' labels. The run
    holds a reference profile, so the service measures drift."""
    environment = {"PYTHONPATH": str(target), "MLFLOW_TRACKING_URI": ""}
    trained = run_module(f"{name}.train", cwd=tmp_path, env=environment)
    assert trained.returncode == 0, trained.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (logged,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    # drift is measured for a module fitted on tensors, against the arrays requests become
    assert logged.data.tags["drift_profile"] == drift.PROFILE_PATH
    version = client.get_model_version(name, "1")
    rows, labels = _held_out_rows()
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    served = run_code(
        "import json\n"
        "from fastapi.testclient import TestClient\n"
        f"from {name} import serve\n"
        "rows = json.load(open('rows.json'))\n"
        "with TestClient(serve.app) as client:\n"
        "    print(json.dumps(client.post('/predict', json=rows).json()))",
        cwd=tmp_path,
        env={**environment, "MODEL_URI": f"models:/{name}/{version.version}"},
    )
    assert served.returncode == 0, served.stderr[-3000:]
    return logged.data.metrics[metric], last_json_line(served.stdout), labels


def test_a_module_torch_export_cannot_trace_is_pickled_and_the_run_says_why(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """A forward pass that branches on its input's values cannot become a pt2 program: the
    module is saved with pickle instead (its class imported from the package when loaded),
    and the run's model_format tag says so."""
    cells = [
        IMPORTS,
        TUMOR_DATA,
        NET.replace(
            "        return self.layers(x).squeeze(-1)",
            "        out = self.layers(x).squeeze(-1)\n"
            "        if out.sum() > 1e9:\n"
            "            return out * 0\n"
            "        return out",
        ),
        *TUMOR_NET[3:],
    ]
    package = convert(write_notebook(cells, name="branchy.ipynb"), tmp_path / "pkg").target
    trained = train_package(package, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (logged,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert logged.data.tags["model_format"].startswith("pickle: torch.export cannot trace")
    assert list((tmp_path / "mlruns").rglob("model.pth"))
    loaded = run_beside_package(
        package,
        tmp_path,
        "import mlflow, numpy\n"
        "model = mlflow.pyfunc.load_model('models:/branchy/1')\n"
        "print(model.predict(numpy.zeros((3, 30), dtype='float32')).tolist())",
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert len(last_json_line(loaded.stdout)) == 3


def test_a_gaussian_process_trained_by_pyro_is_saved_and_answers_from_records(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Pyro's parameter store leaves weak references on the parameters it trained, which no
    pickle holds: the package saves the module without them, and the saved model answers."""
    pytest.importorskip("pyro", reason="the corpus requirements install pyro-ppl")
    package = convert(write_notebook(PYRO_GP, name="pyro_gp.ipynb"), tmp_path / "pkg").target
    trained = train_package(package, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    loaded = run_beside_package(
        package,
        tmp_path,
        "import mlflow, numpy\n"
        "model = mlflow.pyfunc.load_model('models:/pyro_gp/1')\n"
        "print(model.predict(numpy.linspace(0, 1, 4, dtype='float32')).tolist())",
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    answers = last_json_line(loaded.stdout)
    assert len(answers) == 4 and answers[-1] > answers[0]  # 3.7 x**2 grows


def test_a_skorch_net_is_served_as_its_module_answering_what_predict_answers(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """skorch's scikit-learn API over a torch module: the package serves the fitted module,
    answering the class its predict picks, and verify finds both agree row for row."""
    pytest.importorskip("skorch", reason="the corpus requirements install skorch")
    source = write_notebook(SKORCH_IRIS, name="iris_net.ipynb")
    plan = build_plan(source)
    assert (plan.model.name, plan.model.estimator) == ("net", "skorch.NeuralNetClassifier")
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stderr[-3000:]
    assert "predictions: the same on all 20 rows" in done.stdout


# after the prediction the package serves, the notebook shows another likelihood's marginal
# under the same name (as GPyTorch's likelihood tutorial does); the package keeps the first
LIKELIHOOD_REBOUND = (
    "likelihood = gpytorch.likelihoods.BernoulliLikelihood()\nprint(likelihood(model(test_x)).mean)"
)


@pytest.mark.parametrize(
    "cells",
    [[*GAUSSIAN_PROCESS, LIKELIHOOD_REBOUND], GAUSSIAN_PROCESS_BY_FUNCTIONS],
    ids=["loop-in-a-cell-then-another-likelihood", "train-and-predict-functions"],
)
def test_a_gaussian_process_answers_with_its_predictive_mean(
    write_notebook: Callable[..., Path], tmp_path: Path, cells: list[str]
) -> None:
    """A GPyTorch model answers with a distribution; the notebook predicts through its
    likelihood, so the service answers with that prediction's mean, saved with the likelihood
    it reads, and verify finds the notebook's model answering the same. A notebook function
    handed the model trains it where it is called, and one that returns a prediction says what
    the service answers. verify reads the likelihood as it was where the notebook predicted,
    not as a later cell rebinds the name."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    source = write_notebook(cells, name="gp.ipynb")
    plan = build_plan(source)
    assert (plan.model.name, plan.model.fit_inputs) == ("model", ("train_x",))
    assert plan.model.served_output == "likelihood(model(inputs)).mean"
    assert plan.model.served_with == ("likelihood",)
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stderr[-3000:]
    assert "predictions: the same on all 20 rows" in done.stdout


def _held_out_rows() -> tuple[list[list[float]], list[int]]:
    """The notebook's held-out rows, as the module takes them (scaled), and their labels."""
    data = load_breast_cancer(as_frame=True)
    X_train, X_test, _, y_test = train_test_split(
        data.data, data.target, test_size=0.25, random_state=0
    )
    scaled = StandardScaler().fit(X_train).transform(X_test)
    return scaled.astype("float32").tolist(), y_test.tolist()


def test_a_module_without_an_answer_per_row_fails_training_in_one_line(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """A module that answers for its whole input at once (a sum over the rows, a batch-mode
    Gaussian process whose batch is part of the model) would answer a request's records
    with another count: training refuses to log it and says why, so no such version exists."""
    cells = [
        IMPORTS,
        TUMOR_DATA,
        "class Total(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.linear = nn.Linear(30, 1)\n"
        "\n"
        "    def forward(self, x):\n"
        "        return self.linear(x).sum(dim=0)",
        "model = Total()\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)\n"
        "for step in range(5):\n"
        "    optimizer.zero_grad()\n"
        "    loss = ((model(X_train_t) - y_train_t.sum()) ** 2).mean()\n"
        "    loss.backward()\n"
        "    optimizer.step()",
    ]
    package = convert(write_notebook(cells, name="total.ipynb"), tmp_path / "pkg").target
    trained = train_package(package, tmp_path)
    assert trained.returncode == 1
    assert trained.stderr.strip().splitlines()[-1] == (
        "train: cannot log the model: the model answers 1 rows for 5 rows of its input, so a "
        "request's records would not get one prediction each; serve a model whose output has "
        "a row per input row"
    )


def test_a_gaussian_process_classifier_answers_the_classes_its_accuracy_counts(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """The notebook counts its accuracy on `likelihood(model(x)).probs.gt(0.5)`: the service
    answers with those classes, and verify reads the notebook's accuracy, a torch tensor, as
    the number it holds (it was missing, and the mismatch blamed on unseeded draws)."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    source = write_notebook(GP_CLASSIFIER, name="gp_classifier.ipynb")
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (row,) = [line.split() for line in done.stdout.splitlines() if line.startswith("acc ")]
    assert row[1] == row[2] and row[-1] == "yes"
    assert "predictions: the same on all 20 rows" in done.stdout


def test_a_best_epoch_put_back_answers_at_the_accuracy_it_claims(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """The loop keeps its best epoch's weights and puts them back: the service answers with
    them, and its answers for the held-out rows score the claimed `best_acc` (the run claimed
    the last epoch's `val_acc`, 0.951, for a model that scores 0.972)."""
    cells = ["import copy\n" + IMPORTS, TUMOR_DATA, NET, BEST_EPOCH_RESTORED]
    package = convert(write_notebook(cells, name="best_epoch.ipynb"), tmp_path / "pkg")
    claimed, answer, labels = _train_and_serve_held_out_rows(
        package.target, "best_epoch", tmp_path, metric="best_acc"
    )
    hits = sum(int(p == y) for p, y in zip(answer["predictions"], labels, strict=True))
    assert hits / len(labels) == pytest.approx(claimed)
    assert answer["accuracy_claim"].startswith(f"{claimed:.3f} best_acc")


def test_a_batch_of_gaussian_processes_answers_each_row_with_a_mean_per_process(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Two processes over copies of one input answer (processes, rows): the package takes
    rows of the input's features and answers each with both processes' means, as the
    notebook's model answers at the same rows. Training had refused to log it ('answers 2
    rows for 60 rows of its input')."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    source = write_notebook(BATCH_OF_PROCESSES, name="batch_gp.ipynb")
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "predictions: the same on all 20 rows" in done.stdout


def test_a_module_trained_on_rows_of_a_notebook_dataset_class_trains_and_agrees(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Batches drawn as dicts from the notebook's own Dataset class, through a training
    function: the package trains on the tensor the class holds, and verify finds its model
    answering and scoring as the notebook's (plan refused it)."""
    source = write_notebook(IRIS_ROWS_OF_A_DATASET_CLASS, name="iris_rows.ipynb")
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "predictions: the same on all 20 rows" in done.stdout
