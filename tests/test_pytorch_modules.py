"""PyTorch modules trained by a loop (issue 22): the module the optimizer steps is the model, the
loop is its training step, and the service answers with what the notebook measured (labels
made from logits), so the claim is a claim about what is served."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from conftest import run, run_cli
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from nb2prod.backend.render import convert
from nb2prod.errors import InputError, UnservableModel
from nb2prod.frontend.planner import build_plan

pytest.importorskip("torch", reason="the corpus requirements install torch's CPU build")

IMPORTS = (
    "import torch\n"
    "from torch import nn\n"
    "from sklearn.datasets import load_breast_cancer, load_iris\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.preprocessing import StandardScaler"
)
TUMOR_DATA = (
    "torch.manual_seed(0)\n"
    "data = load_breast_cancer(as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(data.data, data.target,"
    " test_size=0.25, random_state=0)\n"
    "scaler = StandardScaler().fit(X_train)\n"
    "X_train_t = torch.tensor(scaler.transform(X_train), dtype=torch.float32)\n"
    "X_test_t = torch.tensor(scaler.transform(X_test), dtype=torch.float32)\n"
    "y_train_t = torch.tensor(y_train.values, dtype=torch.float32)"
)
NET = (
    "class Net(nn.Module):\n"
    "    def __init__(self, n_features: int) -> None:\n"
    "        super().__init__()\n"
    "        self.layers = nn.Sequential(nn.Linear(n_features, 16), nn.ReLU(), nn.Linear(16, 1))\n"
    "\n"
    "    def forward(self, x):\n"
    "        return self.layers(x).squeeze(-1)"
)
FULL_BATCH_LOOP = (
    "model = Net(X_train_t.shape[1])\n"
    "optimizer = torch.optim.Adam(model.parameters(), lr=0.01)\n"
    "loss_fn = nn.BCEWithLogitsLoss()\n"
    "for epoch in range(100):\n"
    "    optimizer.zero_grad()\n"
    "    loss = loss_fn(model(X_train_t), y_train_t)\n"
    "    loss.backward()\n"
    "    optimizer.step()"
)
TUMOR_NET = [
    IMPORTS,
    TUMOR_DATA,
    NET,
    FULL_BATCH_LOOP,
    "model.eval()\n"
    "with torch.no_grad():\n"
    "    predicted = (torch.sigmoid(model(X_test_t)) > 0.5).int().numpy()\n"
    "print('accuracy', accuracy_score(y_test, predicted))",
]
IRIS_BATCHES = [
    IMPORTS + "\nfrom torch.utils.data import DataLoader, TensorDataset",
    "torch.manual_seed(0)\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "features = torch.tensor(X_train, dtype=torch.float32)\n"
    "labels = torch.tensor(y_train)\n"
    "loader = DataLoader(TensorDataset(features, labels), batch_size=16, shuffle=True)",
    "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))\n"
    "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
    "for epoch in range(20):\n"
    "    for xb, yb in loader:\n"
    "        opt.zero_grad()\n"
    "        nn.functional.cross_entropy(net(xb), yb).backward()\n"
    "        opt.step()",
    "outputs = net(torch.tensor(X_test, dtype=torch.float32))\n"
    "predicted = outputs.argmax(dim=1)\n"
    "accuracy = accuracy_score(y_test, predicted)",
]


def test_the_module_the_optimizer_steps_is_the_model_and_its_loop_is_kept(
    write_notebook: Callable[..., Path],
) -> None:
    plan = build_plan(write_notebook(TUMOR_NET))
    assert (plan.model.name, plan.model.estimator, plan.model.fitted_in) == ("model", "Net", 4)
    assert plan.model.fit_inputs == ("X_train_t",)
    training = next(cell for cell in plan.cells if cell.cell == 4)
    assert not training.dropped  # the loop, its loss and its optimizer all stay
    assert plan.model.served_output == "(torch.sigmoid(model(inputs)) > 0.5).int()"
    (said,) = [f for f in plan.findings if f.code == "module-output-served"]
    assert (said.cell, said.line) == (5, 3)
    assert "torch==2.13.0" in {f"{r.name}{r.specifier}" for r in plan.requirements}


def test_a_module_built_before_torch_is_seeded_is_unseeded_randomness(
    write_notebook: Callable[..., Path],
) -> None:
    """A module's first weights, like torch.randn, come from torch's global generator: without
    torch.manual_seed before them each run trains another model, and verify cannot agree."""
    seeded = build_plan(write_notebook(TUMOR_NET))
    assert not [f for f in seeded.findings if f.code == "unseeded-random"]
    noisy = "\nX_train_t = X_train_t + 0.01 * torch.randn(X_train_t.shape)"
    data = TUMOR_DATA.replace("torch.manual_seed(0)\n", "") + noisy
    plan = build_plan(write_notebook([IMPORTS, data, *TUMOR_NET[2:]], name="unseeded.ipynb"))
    said = [(f.cell, f.line, f.message) for f in plan.findings if f.code == "unseeded-random"]
    assert said == [
        (2, 7, "torch.randn(...) draws from torch's global generator, never seeded"),
        (
            4,
            1,
            "model = Net(...) starts from parameters drawn from torch's global generator, "
            "never seeded: each run trains a different model",
        ),
    ]


def test_a_module_trained_on_batches_was_trained_on_the_tensor_its_loader_draws_from(
    write_notebook: Callable[..., Path],
) -> None:
    """`for xb, yb in loader:` over `DataLoader(TensorDataset(features, labels))`: the model
    takes what `features` holds, and answers with the class the notebook's argmax picks."""
    plan = build_plan(write_notebook(IRIS_BATCHES))
    assert (plan.model.name, plan.model.fit_inputs) == ("net", ("features",))
    assert plan.model.served_output == "model(inputs).argmax(dim=1)"


def test_output_made_with_a_notebook_value_is_not_served_and_the_plan_says_so(
    write_notebook: Callable[..., Path],
) -> None:
    """A threshold the notebook computed would have to travel with the model: the service
    answers with the module's own output, and the plan says it."""
    cells = [
        *TUMOR_NET[:4],
        "threshold = 0.5\npredicted = model(X_test_t) > threshold\n"
        "accuracy = accuracy_score(y_test, predicted)",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.model.served_output is None
    (said,) = [f for f in plan.findings if f.code == "module-output-served"]
    assert "answers with what model(inputs) returns" in said.message


def test_a_module_that_answers_with_a_distribution_is_refused_in_one_true_line(
    write_notebook: Callable[..., Path],
) -> None:
    cells = [
        IMPORTS,
        "x = torch.linspace(0, 1, 50)\ny = 2 * x + 0.1 * torch.randn(50)",
        "class Gaussian(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.slope = nn.Parameter(torch.zeros(1))\n"
        "\n"
        "    def forward(self, x):\n"
        "        return torch.distributions.Normal(self.slope * x, 1.0)",
        "model = Gaussian()\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=0.1)\n"
        "for step in range(50):\n"
        "    optimizer.zero_grad()\n"
        "    loss = -model(x).log_prob(y).mean()\n"
        "    loss.backward()\n"
        "    optimizer.step()",
    ]
    with pytest.raises(UnservableModel) as refused:
        build_plan(write_notebook(cells))
    assert refused.value.cell == 4
    assert refused.value.message.startswith(
        "Gaussian answers with a distribution, not a tensor (its forward pass returns a Normal)"
    )


@pytest.mark.parametrize(
    ("library", "cells", "says"),
    [
        (
            "botorch",
            [
                "import torch\n"
                "from botorch.fit import fit_gpytorch_mll\n"
                "from botorch.models import SingleTaskGP\n"
                "from gpytorch.mlls import ExactMarginalLogLikelihood",
                "train_X = torch.rand(10, 2, dtype=torch.double)\n"
                "train_Y = train_X.sum(dim=1, keepdim=True)\n"
                "gp = SingleTaskGP(train_X, train_Y)\n"
                "fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))",
            ],
            "cell 2: trains with BoTorch's fit_gpytorch_mll(...), a Gaussian process",
        ),
        (
            "pyro",
            [
                "import pyro\nimport torch\nfrom pyro.infer.mcmc import MCMC, NUTS",
                "def model():\n    pyro.sample('x', pyro.distributions.Normal(0.0, 1.0))",
                "mcmc = MCMC(NUTS(model), num_samples=5, warmup_steps=5)\nmcmc.run()",
            ],
            "cell 3: trains with pyro's MCMC.run(...) (mcmc)",
        ),
    ],
)
def test_a_librarys_own_training_is_refused_as_training_not_as_no_training_code(
    write_notebook: Callable[..., Path], library: str, cells: list[str], says: str
) -> None:
    """BoTorch and Pyro train through their own routines: the notebook does train, so the
    refusal says what trains, never "no training code"."""
    pytest.importorskip(library, reason="the corpus requirements install it")
    done = run_cli("plan", write_notebook(cells))
    assert done.code == 2 and says in done.stderr, done.stderr
    assert "no training code" not in done.stderr


def test_a_loop_inside_a_function_is_refused_naming_what_to_change(
    write_notebook: Callable[..., Path],
) -> None:
    cells = [
        *TUMOR_NET[:3],
        "def fit(model):\n"
        "    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)\n"
        "    for epoch in range(10):\n"
        "        optimizer.zero_grad()\n"
        "        nn.BCEWithLogitsLoss()(model(X_train_t), y_train_t).backward()\n"
        "        optimizer.step()\n"
        "model = Net(30)\n"
        "fit(model)",
    ]
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook(cells))
    assert "no optimizer built in a cell over a module's parameters()" in str(refused.value)
    assert refused.value.cell == 4


@pytest.mark.parametrize(
    ("moved", "line"),
    [
        ("X_train_t = X_train_t.cuda()", "X_train_t.cuda()"),
        ("X_train_t = X_train_t.to('cuda')", "X_train_t.to('cuda')"),
        ("X_train_t = torch.zeros(3, 30, device='cuda:0')", "torch.zeros(3, 30, device='cuda:0')"),
    ],
)
def test_code_that_needs_a_gpu_is_refused_at_plan_naming_the_line(
    write_notebook: Callable[..., Path], moved: str, line: str
) -> None:
    cells = [IMPORTS, TUMOR_DATA + "\n" + moved, *TUMOR_NET[2:]]
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook(cells))
    assert (refused.value.cell, refused.value.line) == (2, 8)
    assert str(refused.value.message).startswith(f"{line} needs a GPU")


def test_code_that_chooses_its_device_runs_on_the_cpu_as_written(
    write_notebook: Callable[..., Path],
) -> None:
    chooses = (
        "device = 'cuda' if torch.cuda.is_available() else 'cpu'\n"
        "X_train_t = X_train_t.to(device)\n"
        "if torch.cuda.is_available():\n"
        "    X_train_t = X_train_t.cuda()"
    )
    plan = build_plan(write_notebook([IMPORTS, TUMOR_DATA + "\n" + chooses, *TUMOR_NET[2:]]))
    assert plan.model.name == "model"


def test_the_served_module_answers_what_the_claim_measured(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Trained by the package, logged in torch.export's format (no pickle), served through
    MLflow's pytorch flavour: its answers for the notebook's held-out rows score exactly the
    accuracy the run claims."""
    package = convert(write_notebook(TUMOR_NET, name="tumor_net.ipynb"), tmp_path / "pkg")
    dockerfile = (package.target / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile
    assert "--import mlflow.pytorch" in dockerfile  # compiled in the image, not skops
    environment = {"PYTHONPATH": str(package.target), "MLFLOW_TRACKING_URI": ""}
    trained = run(Path(sys.executable), "-m", "tumor_net.train", cwd=tmp_path, env=environment)
    assert trained.returncode == 0, trained.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (logged,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    claimed = logged.data.metrics["accuracy"]
    version = client.get_model_version("tumor_net", "1")
    assert list((tmp_path / "mlruns").rglob("model.pt2")), "logged as a pt2 program"
    rows, labels = _held_out_rows()
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    served = run(
        Path(sys.executable),
        "-c",
        "import json\n"
        "from fastapi.testclient import TestClient\n"
        "from tumor_net import serve\n"
        "rows = json.load(open('rows.json'))\n"
        "with TestClient(serve.app) as client:\n"
        "    print(json.dumps(client.post('/predict', json=rows).json()))",
        cwd=tmp_path,
        env={**environment, "MODEL_URI": f"models:/tumor_net/{version.version}"},
    )
    assert served.returncode == 0, served.stderr[-3000:]
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    assert set(answer["predictions"]) <= {0, 1}
    hits = sum(int(p == y) for p, y in zip(answer["predictions"], labels, strict=True))
    assert hits / len(labels) == pytest.approx(claimed)
    assert answer["accuracy_claim"].startswith(f"{claimed:.3f} accuracy")


def test_verify_finds_the_served_module_answering_as_the_notebooks(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """The notebook's module, fed the rows it was trained on and read as the notebook reads it,
    answers what the package's logged model answers, and both measure the same accuracy."""
    source = write_notebook(TUMOR_NET, name="tumor_net.ipynb")
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stderr[-3000:]
    assert "predictions: the same on all 20 rows" in done.stdout
    assert re.search(r"^accuracy\s+(\S+)\s+\1\s", done.stdout, re.M), done.stdout


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
    environment = {"PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": ""}
    trained = run(Path(sys.executable), "-m", "branchy.train", cwd=tmp_path, env=environment)
    assert trained.returncode == 0, trained.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (logged,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert logged.data.tags["model_format"].startswith("pickle: torch.export cannot trace")
    assert list((tmp_path / "mlruns").rglob("model.pth"))
    own_tests = run(
        Path(sys.executable),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=package,
        env=environment,
    )
    assert own_tests.returncode == 0, own_tests.stdout[-3000:]


SKORCH_IRIS = [
    "import numpy as np\n" + IMPORTS + "\nfrom skorch import NeuralNetClassifier",
    "torch.manual_seed(0)\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X = X.astype(np.float32)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "class Classifier(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.layers = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))\n"
    "\n"
    "    def forward(self, x):\n"
    "        return self.layers(x)",
    "net = NeuralNetClassifier(Classifier, criterion=nn.CrossEntropyLoss, max_epochs=20,"
    " lr=0.1, verbose=0)\n"
    "net.fit(X_train, y_train)\n"
    "accuracy = accuracy_score(y_test, net.predict(X_test))",
]


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


GAUSSIAN_PROCESS = [
    "import math\nimport torch\nimport gpytorch",
    "torch.manual_seed(0)\n"
    "train_x = torch.linspace(0, 1, 60)\n"
    "train_y = torch.sin(train_x * (2 * math.pi)) + 0.1 * torch.randn(train_x.size())",
    "class ExactGPModel(gpytorch.models.ExactGP):\n"
    "    def __init__(self, train_x, train_y, likelihood):\n"
    "        super().__init__(train_x, train_y, likelihood)\n"
    "        self.mean_module = gpytorch.means.ConstantMean()\n"
    "        self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel())\n"
    "\n"
    "    def forward(self, x):\n"
    "        return gpytorch.distributions.MultivariateNormal(\n"
    "            self.mean_module(x), self.covar_module(x)\n"
    "        )",
    "likelihood = gpytorch.likelihoods.GaussianLikelihood()\n"
    "model = ExactGPModel(train_x, train_y, likelihood)\n"
    "model.train()\n"
    "likelihood.train()\n"
    "optimizer = torch.optim.Adam(model.parameters(), lr=0.1)\n"
    "mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)\n"
    "for i in range(30):\n"
    "    optimizer.zero_grad()\n"
    "    loss = -mll(model(train_x), train_y)\n"
    "    loss.backward()\n"
    "    optimizer.step()",
    "model.eval()\n"
    "likelihood.eval()\n"
    "with torch.no_grad():\n"
    "    test_x = torch.linspace(0, 1, 11)\n"
    "    observed_pred = likelihood(model(test_x))",
]


def test_a_gaussian_process_answers_with_its_predictive_mean(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """A GPyTorch model answers with a distribution; the notebook predicts through its
    likelihood, so the service answers with that prediction's mean, saved with the likelihood
    it reads, and verify finds the notebook's model answering the same."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    source = write_notebook(GAUSSIAN_PROCESS, name="gp.ipynb")
    plan = build_plan(source)
    assert (plan.model.name, plan.model.fit_inputs) == ("model", ("train_x",))
    assert plan.model.served_output == "likelihood(model(inputs)).mean"
    assert plan.model.served_with == ("likelihood",)
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stderr[-3000:]
    assert "predictions: the same on all 20 rows" in done.stdout


def test_one_optimizer_over_a_model_and_its_likelihood_trains_the_one_fed_data(
    write_notebook: Callable[..., Path],
) -> None:
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    both = "[{'params': gp.parameters()}, {'params': likelihood.parameters()}]"
    cells = [re.sub(r"\bmodel\b", "gp", cell) for cell in GAUSSIAN_PROCESS]
    cells[3] = cells[3].replace("gp.parameters()", both)
    plan = build_plan(write_notebook(cells))
    assert (plan.model.name, plan.model.served_with) == ("gp", ("likelihood",))
    assert not [f for f in plan.findings if f.code in ("ambiguous-model", "model-unservable")]


def test_a_gaussian_process_is_unseeded_only_where_its_initialisation_draws(
    write_notebook: Callable[..., Path],
) -> None:
    """An RBF kernel starts from constants; a spectral mixture kernel initialised from the data
    draws its first parameters from torch's generator, so verify's mismatch has that cause."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    constant = [cell.replace("torch.manual_seed(0)\n", "") for cell in GAUSSIAN_PROCESS]
    constant[1] = constant[1].replace(" + 0.1 * torch.randn(train_x.size())", "")
    plan = build_plan(write_notebook(constant))
    assert not [f for f in plan.findings if f.code == "unseeded-random"]
    drawn = [*constant]
    drawn[2] = drawn[2].replace(
        "self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel())",
        "self.covar_module = gpytorch.kernels.SpectralMixtureKernel(num_mixtures=2)\n"
        "        self.covar_module.initialize_from_data(train_x, train_y)",
    )
    plan = build_plan(write_notebook(drawn, name="drawn.ipynb"))
    (said,) = [f for f in plan.findings if f.code == "unseeded-random"]
    assert said.message.startswith("model = ExactGPModel(...) starts from parameters drawn")


def test_a_distribution_the_notebook_never_predicts_from_is_refused(
    write_notebook: Callable[..., Path],
) -> None:
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    with pytest.raises(UnservableModel) as refused:
        build_plan(write_notebook(GAUSSIAN_PROCESS[:4]))
    assert refused.value.message.startswith(
        "ExactGPModel answers with a distribution, not a tensor (it is built on "
        "gpytorch.models.ExactGP), and no cell predicts from it"
    )


def _held_out_rows() -> tuple[list[list[float]], list[int]]:
    """The notebook's held-out rows, as the module takes them (scaled), and their labels."""
    data = load_breast_cancer(as_frame=True)
    X_train, X_test, _, y_test = train_test_split(
        data.data, data.target, test_size=0.25, random_state=0
    )
    scaled = StandardScaler().fit(X_train).transform(X_test)
    return scaled.astype("float32").tolist(), y_test.tolist()
