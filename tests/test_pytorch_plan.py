"""PyTorch modules trained by a loop, as plan reads them (issue 22): the module the optimizer
steps is the model, its loop is its training step, what the service answers with is what the
notebook measures, and what cannot be served is refused in one true line."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli
from pytorch_notebooks import (
    BATCH_OF_PROCESSES,
    BEST_EPOCH_RESTORED,
    GAUSSIAN_PROCESS,
    GP_CLASSIFIER,
    IMPORTS,
    IRIS_BATCHES,
    IRIS_ROWS_OF_A_DATASET_CLASS,
    NET,
    PYRO_GP,
    TUMOR_DATA,
    TUMOR_NET,
)

from nb2prod.errors import InputError, UnservableModel
from nb2prod.frontend.planner import build_plan

pytest.importorskip("torch", reason="the corpus requirements install torch's CPU build")


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
    assert said.hint is not None and "argmax(1)" in said.hint


def test_a_regression_module_is_not_told_to_take_an_argmax(
    write_notebook: Callable[..., Path],
) -> None:
    """A regressor measured on its output turned back with the notebook's scaler: the hint
    names a regressor's value, not a classifier's argmax."""
    cells = [
        IMPORTS + "\nfrom sklearn.datasets import load_diabetes\n"
        "from sklearn.metrics import mean_absolute_error",
        "torch.manual_seed(0)\n"
        "X, y = load_diabetes(return_X_y=True)\n"
        "X_t = torch.tensor(X, dtype=torch.float32)\n"
        "scale = float(y.std())\n"
        "y_t = torch.tensor(y / scale, dtype=torch.float32)",
        "model = nn.Linear(10, 1)\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=0.05)\n"
        "for epoch in range(50):\n"
        "    optimizer.zero_grad()\n"
        "    nn.functional.mse_loss(model(X_t).squeeze(-1), y_t).backward()\n"
        "    optimizer.step()",
        "with torch.no_grad():\n"
        "    predicted = model(X_t).squeeze(-1).numpy() * scale\n"
        "mae = mean_absolute_error(y, predicted)",
    ]
    plan = build_plan(write_notebook(cells))
    (said,) = [f for f in plan.findings if f.code == "module-output-served"]
    assert said.hint is not None and "argmax" not in said.hint


GAUSSIAN_LOOP = (
    "model = Gaussian()\n"
    "optimizer = torch.optim.Adam(model.parameters(), lr=0.1)\n"
    "for step in range(50):\n"
    "    optimizer.zero_grad()\n"
    "    loss = -model(x).log_prob(y).mean()\n"
    "    loss.backward()\n"
    "    optimizer.step()"
)


@pytest.mark.parametrize(
    "training",
    [
        GAUSSIAN_LOOP,
        # built, trained and returned by a notebook function: the class is the one it builds
        "def fit(x, y):\n"
        + "".join(f"    {line}\n" for line in GAUSSIAN_LOOP.splitlines())
        + "    return model\n\n\nmodel = fit(x, y)",
    ],
)
def test_a_module_that_answers_with_a_distribution_is_refused_in_one_true_line(
    write_notebook: Callable[..., Path], training: str
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
        training,
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


FIT_FUNCTION = (
    "def fit(model):\n"
    "    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)\n"
    "    for epoch in range(10):\n"
    "        optimizer.zero_grad()\n"
    "        nn.BCEWithLogitsLoss()(model(X_train_t), y_train_t).backward()\n"
    "        optimizer.step()\n"
)


def test_a_module_handed_to_a_function_that_trains_it_is_the_model(
    write_notebook: Callable[..., Path],
) -> None:
    cells = [*TUMOR_NET[:3], FIT_FUNCTION + "net = Net(30)\nfit(model=net)"]
    plan = build_plan(write_notebook(cells))
    assert (plan.model.name, plan.model.fitted_in) == ("net", 4)
    assert plan.model.fit_inputs == ("X_train_t",)


def test_a_training_step_that_returns_its_loss_is_called_for_what_it_changes(
    write_notebook: Callable[..., Path],
) -> None:
    """`train_step(...)` called bare in a loop is not there to show the loss it returns: its
    optimizer steps the global module, so the loop is the training and stays."""
    step = (
        "model = Net(30)\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=0.01)\n"
        "loss_fn = nn.BCEWithLogitsLoss()\n"
        "\n\n"
        "def train_step(x, y):\n"
        "    optimizer.zero_grad()\n"
        "    loss = loss_fn(model(x), y)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    return loss.item()\n"
        "\n\n"
        "for epoch in range(100):\n"
        "    train_step(X_train_t, y_train_t)"
    )
    plan = build_plan(write_notebook([*TUMOR_NET[:3], step, TUMOR_NET[4]]))
    assert (plan.model.name, plan.model.fitted_in) == ("model", 4)
    assert plan.model.fit_inputs == ("X_train_t",)
    training = next(cell for cell in plan.cells if cell.cell == 4)
    assert not training.dropped


ENDLESS_LOOP = (
    "model = Net(30)\n"
    "optimizer = torch.optim.Adam(model.parameters(), lr=0.01)\n"
    "loss_fn = nn.BCEWithLogitsLoss()\n"
    "converged = False\n"
    "while {condition}:\n"
    "    optimizer.zero_grad()\n"
    "    loss = loss_fn(model(X_train_t), y_train_t)\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
    "{ending}"
)


@pytest.mark.parametrize(
    ("condition", "ending"),
    [("True", ""), ("not converged", ""), ("1", "    print(loss.item())\n")],
)
def test_a_training_loop_that_never_ends_is_refused_naming_its_line(
    write_notebook: Callable[..., Path], condition: str, ending: str
) -> None:
    """A notebook stops such a loop by hand; the package's training has no one to: plan
    refuses it rather than cap it (a capped loop trains a model the notebook never did)."""
    loop = ENDLESS_LOOP.format(condition=condition, ending=ending)
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook([*TUMOR_NET[:3], loop, TUMOR_NET[4]]))
    assert (refused.value.cell, refused.value.line) == (4, 5)
    assert str(refused.value.message).startswith(f"`while {condition}:` never ends")


@pytest.mark.parametrize(
    ("condition", "ending"),
    [
        ("True", "    if loss.item() < 0.3:\n        break\n"),
        ("not converged", "    converged = loss.item() < 0.3\n"),
    ],
)
def test_a_training_loop_that_ends_on_its_loss_is_the_training(
    write_notebook: Callable[..., Path], condition: str, ending: str
) -> None:
    loop = ENDLESS_LOOP.format(condition=condition, ending=ending)
    plan = build_plan(write_notebook([*TUMOR_NET[:3], loop, TUMOR_NET[4]]))
    assert (plan.model.name, plan.model.fitted_in) == ("model", 4)


BUILD_AND_FIT = FIT_FUNCTION.replace(
    "def fit(model):\n", "def fit(hidden):\n    model = Net(hidden)\n"
)


def test_a_module_built_and_left_inside_a_function_is_refused_naming_what_to_change(
    write_notebook: Callable[..., Path],
) -> None:
    cells = [*TUMOR_NET[:3], BUILD_AND_FIT + "fit(30)"]
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook(cells))
    assert "no optimizer over a module the notebook keeps is stepped" in str(refused.value)
    assert refused.value.cell == 4


@pytest.mark.parametrize(
    ("returned", "assigned"),
    [
        ("    return model\n", "net = fit(30)"),
        ("    return model, epoch\n", "net, epochs = fit(hidden=30)"),
        ("    return epoch, model\n", "(epochs, net) = fit(30)"),
        # a class of its own inside the function: its methods' returns are not the function's
        (
            "    class Scaled(nn.Module):\n"
            "        def forward(self, x):\n"
            "            return x * 2\n"
            "    return model\n",
            "net = fit(30)",
        ),
    ],
)
def test_a_module_a_function_builds_trains_and_returns_is_the_model(
    write_notebook: Callable[..., Path], returned: str, assigned: str
) -> None:
    """`net = fit(30)` over `def fit(hidden): model = Net(hidden) ... return model`: the
    module the call hands back is the model, trained on what the function feeds it."""
    cells = [*TUMOR_NET[:3], BUILD_AND_FIT + returned + assigned]
    plan = build_plan(write_notebook(cells))
    assert (plan.model.name, plan.model.fitted_in) == ("net", 4)
    assert plan.model.fit_inputs == ("X_train_t",)
    assert plan.model.estimator == "Net"


def test_a_module_a_function_builds_before_torch_is_seeded_is_unseeded_randomness(
    write_notebook: Callable[..., Path],
) -> None:
    data = TUMOR_DATA.replace("torch.manual_seed(0)\n", "")
    cells = [IMPORTS, data, NET, BUILD_AND_FIT + "    return model\n\n\nnet = fit(30)"]
    plan = build_plan(write_notebook(cells))
    said = [(f.cell, f.message) for f in plan.findings if f.code == "unseeded-random"]
    assert said == [
        (
            4,
            "net = fit(...) starts from parameters drawn from torch's global generator, "
            "never seeded: each run trains a different model",
        )
    ]


@pytest.mark.parametrize(
    ("moved", "written"),
    [
        ("X_train_t = X_train_t.cuda()", "X_train_t.cpu()"),
        ("X_train_t = X_train_t.cuda(0).float()", "X_train_t.cpu()"),
        ("X_train_t = X_train_t.to('cuda')", "X_train_t.to('cpu')"),
        ("X_train_t = X_train_t.to(device='cuda:1')", "X_train_t.to(device='cpu')"),
        (
            "device = torch.device('cuda:0'); X_train_t = X_train_t.to(device)",
            "torch.device('cpu')",
        ),
        ('device: str = "cuda"\nX_train_t = X_train_t.to(device)', 'device: str = "cpu"'),
        ("X_train_t = torch.zeros(3, 30, device='cuda:0')", "torch.zeros(3, 30, device='cpu')"),
    ],
)
def test_a_move_to_a_gpu_is_written_as_a_move_to_the_cpu_and_said(
    write_notebook: Callable[..., Path], moved: str, written: str
) -> None:
    """The package trains and serves on CPU wheels, where a move to "cuda" raises; the same
    computation runs on the CPU, so the move is rewritten there, on the notebook's line."""
    cells = [IMPORTS, TUMOR_DATA + "\n" + moved, *TUMOR_NET[2:]]
    plan = build_plan(write_notebook(cells))
    (said,) = [f for f in plan.findings if f.code == "device-cpu"]
    assert (said.severity, said.cell, said.line) == ("warning", 2, 8)
    assert said.message.endswith(f"is written {written}: the package trains and serves on the CPU")
    (data,) = [b.source for step in plan.steps for b in step.blocks if b.cell == 2]
    assert written in data and "cuda" not in data


@pytest.mark.parametrize(
    ("gpu_only", "line"),
    [
        ("X_train_t = X_train_t.to(torch.cuda.current_device())", "torch.cuda.current_device()"),
        ("X_train_t = X_train_t.type(torch.cuda.FloatTensor)", "torch.cuda.FloatTensor"),
        ("X_train_t = X_train_t.pin_memory()", "X_train_t.pin_memory()"),
    ],
)
def test_code_that_only_a_gpu_runs_is_refused_at_plan_naming_the_line(
    write_notebook: Callable[..., Path], gpu_only: str, line: str
) -> None:
    cells = [IMPORTS, TUMOR_DATA + "\n" + gpu_only, *TUMOR_NET[2:]]
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook(cells))
    assert (refused.value.cell, refused.value.line) == (2, 8)
    assert str(refused.value.message) == (
        f"{line} needs a GPU, and the package trains and serves on the CPU"
    )


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


def test_a_gaussian_process_predicted_from_without_its_likelihood_answers_its_own_mean(
    write_notebook: Callable[..., Path],
) -> None:
    """`pred = model(test_x)` in a cell the package does not need (it traces the model for
    TorchScript, say) still says what the service answers: the prediction's mean."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    cells = [
        *GAUSSIAN_PROCESS[:4],
        "model.eval()\n"
        "with torch.no_grad():\n"
        "    test_x = torch.linspace(0, 1, 11)\n"
        "    pred = model(test_x)\n"
        "    traced = torch.jit.trace(model.mean_module, test_x)",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.model.served_output == "model(inputs).mean"
    found = next(f for f in plan.findings if f.code == "module-output-served")
    assert (found.cell, found.line) == (5, 4)


@pytest.mark.parametrize(
    ("inputs", "prediction", "served"),
    [
        (
            "repeat(2, 1, 1)",
            "observed_pred = likelihood(model(test_x))",
            "likelihood(model(inputs)).mean.transpose(-1, -2)",
        ),
        (
            "view(-1, 1)",
            "test_dist = model(test_x)\n    pred_means = test_dist.loc",
            "model(inputs).mean.transpose(-1, -2)",
        ),
    ],
    ids=["copies-of-one-input-through-the-likelihood", "one-input-read-bare"],
)
def test_a_batch_of_gaussian_processes_answers_a_mean_per_process_for_each_row(
    write_notebook: Callable[..., Path], inputs: str, prediction: str, served: str
) -> None:
    """Processes batched by `batch_shape=` answer (processes, rows): the service answers each
    row with every process's mean at it, and says so; it was refused (GPyTorch's batch-mode
    regression and Dirichlet classification tutorials)."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    cells = [cell.replace("repeat(2, 1, 1)", inputs) for cell in BATCH_OF_PROCESSES]
    cells[4] = cells[4].replace("observed_pred = likelihood(model(test_x))", prediction)
    plan = build_plan(write_notebook(cells))
    assert plan.model.served_output == served
    assert plan.model.batch_of_processes
    found = next(f for f in plan.findings if f.code == "module-output-served")
    assert "a value per process of the batch for each row" in found.message


def test_a_batch_read_as_something_else_than_its_mean_is_refused_naming_its_batch_shape(
    write_notebook: Callable[..., Path],
) -> None:
    """What the notebook makes of a batch's prediction has no known shape per row: plan says
    so, rather than training failing on 'answers 1 rows for 11 rows of its input'."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    cells = list(BATCH_OF_PROCESSES)
    cells[4] = cells[4].replace(
        "observed_pred = likelihood(model(test_x))",
        "test_y = torch.zeros(11)\n"
        "    accuracy = (likelihood(model(test_x)).mean.argmax(0) == test_y).float().mean()",
    )
    cells.append("print(accuracy)")
    with pytest.raises(UnservableModel) as refused:
        build_plan(write_notebook(cells))
    assert (refused.value.cell, refused.value.line) == (3, 4)
    assert refused.value.message == (
        "ExactGPModel is a batch of Gaussian processes (batch_shape=torch.Size([2])), and the "
        "notebook reads its prediction as likelihood(model(inputs)).mean.argmax(0), not as the "
        "mean each process answers at a row"
    )


def test_processes_batched_into_the_tasks_of_one_model_are_served(
    write_notebook: Callable[..., Path],
) -> None:
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    tasks = (
        GAUSSIAN_PROCESS[2]
        .replace("ConstantMean()", "ConstantMean(batch_shape=torch.Size([2]))")
        .replace(
            "return gpytorch.distributions.MultivariateNormal(\n",
            "return gpytorch.distributions.MultitaskMultivariateNormal.from_batch_mvn(\n"
            "            gpytorch.distributions.MultivariateNormal(\n",
        )
        .replace(
            "self.covar_module(x)\n        )", "self.covar_module(x)\n            )\n        )"
        )
    )
    cells = [*GAUSSIAN_PROCESS[:2], tasks, *GAUSSIAN_PROCESS[3:]]
    cells[1] += "\ntrain_y = torch.stack([train_y, -train_y], -1)"
    cells[3] = cells[3].replace("GaussianLikelihood()", "MultitaskGaussianLikelihood(num_tasks=2)")
    plan = build_plan(write_notebook(cells))
    assert plan.model.served_output == "likelihood(model(inputs)).mean"


def test_a_model_trained_by_pyros_variational_inference_is_the_module_svi_steps(
    write_notebook: Callable[..., Path],
) -> None:
    """`SVI(gp.model, gp.guide, ...)` stepped in a function the notebook calls trains `gp` on
    what the steps hand it, and `gp.likelihood(gp(x))` is what its service answers."""
    pytest.importorskip("pyro", reason="the corpus requirements install pyro-ppl")
    plan = build_plan(write_notebook(PYRO_GP))
    assert (plan.model.name, plan.model.fit_inputs) == ("gp", ("train_x",))
    assert plan.model.served_output == "model.likelihood(model(inputs)).mean"
    assert next(s for s in plan.steps if s.role == "train").outputs == ("gp",)


def test_a_prediction_made_before_the_model_is_trained_again_says_nothing_of_it(
    write_notebook: Callable[..., Path],
) -> None:
    """GPyTorch's tutorials train `model` twice: what the first one predicted does not say
    what the second, the one served, answers."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    again = GAUSSIAN_PROCESS[3].replace("model.train()\n", "model.train()\ntrain_x = train_x * 2\n")
    cells = [
        *GAUSSIAN_PROCESS,
        again,
        "model.eval()\nwith torch.no_grad():\n    pred = model(torch.linspace(0, 2, 5))",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.model.fitted_in == 6
    assert plan.model.served_output == "model(inputs).mean"
    found = next(f for f in plan.findings if f.code == "module-output-served")
    assert found.cell == 7


def test_a_sample_from_a_torch_or_pyro_distribution_is_unseeded_randomness(
    write_notebook: Callable[..., Path],
) -> None:
    """Pyro's distributions are torch's: `Poisson(rate).sample()` draws from torch's global
    generator, which is why GPyTorch's Cox process example differs on every run."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    data = (
        "import pyro\n"
        "train_x = torch.linspace(0, 1, 60)\n"
        "noise = pyro.distributions.Normal(0.0, 0.1).sample((60,))\n"
        "train_y = torch.sin(train_x * (2 * math.pi)) + noise"
    )
    cells = [GAUSSIAN_PROCESS[0], data, *GAUSSIAN_PROCESS[2:]]
    found = [f for f in build_plan(write_notebook(cells)).findings if f.code == "unseeded-random"]
    assert [(f.cell, f.line, f.message) for f in found] == [
        (2, 3, "Normal(...).sample() draws from torch's global generator, never seeded")
    ]


@pytest.mark.parametrize(
    "measured",
    [
        "accuracy = 100 * correct / total\nprint(f'accuracy: {accuracy:.1f}%')",
        "print('Accuracy of the network on the test rows: %d %%' % (100 * correct / total))",
    ],
    ids=["assigned", "only-printed"],
)
def test_accuracy_counted_by_hand_over_test_batches_is_the_claim_and_says_what_is_served(
    write_notebook: Callable[..., Path], measured: str
) -> None:
    """The tutorials' test loop: `_, predicted = torch.max(outputs, 1)`, `correct +=
    (predicted == labels).sum().item()`, then `accuracy = 100 * correct / total`, or that
    only printed under a label saying accuracy. It is a metric on held-out data, and the
    service answers with `predicted`, what it counted."""
    test_loop = (
        "test_loader = DataLoader(TensorDataset(torch.tensor(X_test, dtype=torch.float32),"
        " torch.tensor(y_test)), batch_size=16)\n"
        "correct, total = 0, 0\n"
        "with torch.no_grad():\n"
        "    for inputs, labels in test_loader:\n"
        "        outputs = net(inputs)\n"
        "        _, predicted = torch.max(outputs.data, 1)\n"
        "        total += labels.size(0)\n"
        "        correct += (predicted == labels).sum().item()\n" + measured
    )
    plan = build_plan(write_notebook([*IRIS_BATCHES[:3], test_loop]))
    (metric,) = plan.metrics
    assert (metric.name, metric.function, metric.validation) == ("accuracy", "accuracy", "holdout")
    assert metric.expression == "100 * correct / total"
    assert plan.honesty.primary_metric == "accuracy"
    assert plan.model.task == "classification"
    assert plan.model.served_output == "torch.max(model(inputs).data, 1)[1]"
    evaluation = next(cell for cell in plan.cells if cell.cell == 4)
    assert (evaluation.role, evaluation.reason) == ("evaluate", "computes accuracy by hand")


def test_a_module_a_function_trains_by_its_parameter_on_slices_of_a_batch_takes_their_tensor(
    write_notebook: Callable[..., Path],
) -> None:
    """`def train_epoch(model, X, y)` stepping the notebook's own optimizer over `net`, and
    feeding `model(X[idx])`: called as `train_epoch(net, features, labels)`, it trains `net`
    on `features` (the batches are slices of it)."""
    training = (
        "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))\n"
        "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "\n"
        "def train_epoch(model, X, y, batch_size=16):\n"
        "    order = torch.randperm(len(X))\n"
        "    for start in range(0, len(X), batch_size):\n"
        "        idx = order[start:start + batch_size]\n"
        "        opt.zero_grad()\n"
        "        nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()\n"
        "        opt.step()\n"
        "\n"
        "for epoch in range(20):\n"
        "    train_epoch(net, features, labels)"
    )
    plan = build_plan(write_notebook([*IRIS_BATCHES[:2], training, IRIS_BATCHES[3]]))
    assert (plan.model.name, plan.model.fit_inputs) == ("net", ("features",))


@pytest.mark.parametrize(
    "batches",
    [
        "    batches = tqdm.tqdm(train_loader, leave=False)\n    for x_batch, y_batch in batches:",
        "    for step, (x_batch, y_batch) in enumerate(tqdm.tqdm(train_loader)):",
    ],
    ids=["progress-bar-bound-in-the-loop", "enumerated"],
)
def test_a_gaussian_process_stepped_by_gpytorchs_own_optimizers_is_the_model(
    write_notebook: Callable[..., Path], batches: str
) -> None:
    """NGD over `model.variational_parameters()` and Adam over `model.hyperparameters()` and
    the likelihood step the GP: it is the model (it was the likelihood, refused as a
    distribution no cell predicts from), trained on the tensor the loader draws from through a
    progress bar. Its accuracy counts the classes the likelihood's probabilities give, so the
    service answers with those classes; printing the count measures nothing again."""
    pytest.importorskip("gpytorch", reason="the corpus requirements install gpytorch")
    cells = [*GP_CLASSIFIER]
    cells[3] = cells[3].replace(
        "    batches = tqdm.tqdm(train_loader, leave=False)\n    for x_batch, y_batch in batches:",
        batches,
    )
    plan = build_plan(write_notebook(cells))
    assert (plan.model.name, plan.model.estimator) == ("model", "GPClassifier")
    assert plan.model.fit_inputs == ("train_x",)
    assert plan.model.served_output == "likelihood(model(inputs)).probs.gt(0.5)"
    assert plan.model.served_with == ("likelihood",)
    assert [metric.name for metric in plan.metrics] == ["acc"]


@pytest.mark.parametrize(
    ("kept", "put_back"),
    [
        ("best_state = copy.deepcopy(model.state_dict())", "model.load_state_dict(best_state)"),
        (
            "torch.save(model.state_dict(), 'best.pt')",
            "model.load_state_dict(torch.load('best.pt'))",
        ),
    ],
    ids=["kept-in-a-variable", "kept-in-a-file"],
)
def test_a_best_epoch_put_back_after_the_loop_is_claimed_at_its_own_accuracy(
    write_notebook: Callable[..., Path], kept: str, put_back: str
) -> None:
    """The loop's last `val_acc` measured the last epoch's weights, which the restore replaced:
    not logged, said why. `best_acc`, kept beside the weights put back, is the claim."""
    loop = BEST_EPOCH_RESTORED.replace(
        "best_state = copy.deepcopy(model.state_dict())", kept
    ).replace("model.load_state_dict(best_state)", put_back)
    plan = build_plan(write_notebook(["import copy\n" + IMPORTS, TUMOR_DATA, NET, loop]))
    assert [metric.name for metric in plan.metrics] == ["best_acc"]
    assert plan.honesty.primary_metric == "best_acc"
    (other,) = [f for f in plan.findings if f.code == "metric-of-another-model"]
    assert (other.cell, other.line) == (4, 14)
    assert "weights put back over the ones it measured" in other.message


def test_weights_saved_and_loaded_again_after_the_loop_are_the_ones_it_measured_last(
    write_notebook: Callable[..., Path],
) -> None:
    """A save and reload once training is over puts back the last epoch's weights: the
    loop's last measurement still measures them."""
    loop = (
        BEST_EPOCH_RESTORED.replace("model.load_state_dict(best_state)", "")
        + "torch.save(model.state_dict(), 'final.pt')\n"
        "model.load_state_dict(torch.load('final.pt'))"
    )
    plan = build_plan(write_notebook(["import copy\n" + IMPORTS, TUMOR_DATA, NET, loop]))
    assert plan.honesty.primary_metric == "val_acc"
    assert not [f for f in plan.findings if f.code == "metric-of-another-model"]


def test_a_module_checked_on_validation_rows_each_epoch_was_trained_on_its_batches(
    write_notebook: Callable[..., Path],
) -> None:
    """`val_logits = net(X_val)` after the batch loop, in the epoch loop: the model was
    trained on what the loader draws from, not on the validation tensor (whose rows became
    the drift profile and the input example)."""
    cells = [*IRIS_BATCHES]
    cells[1] += "\nX_val = torch.tensor(X_test, dtype=torch.float32)"
    cells[2] += "\n    with torch.no_grad():\n        val_logits = net(X_val)"
    plan = build_plan(write_notebook(cells))
    assert (plan.model.name, plan.model.fit_inputs) == ("net", ("features",))


def test_batches_from_a_loader_a_notebook_function_makes_come_from_its_tensors(
    write_notebook: Callable[..., Path],
) -> None:
    """`loader = make_loader(features, labels)` over `def make_loader(X, y): ds =
    TensorDataset(X, y); return DataLoader(ds, ...)`: the model takes what `features` holds
    (convert refused it: "training needs xb", a name only the function's loop binds)."""
    cells = [*IRIS_BATCHES]
    cells[1] = cells[1].replace(
        "loader = DataLoader(TensorDataset(features, labels), batch_size=16, shuffle=True)",
        "def make_loader(X, y, batch_size=16, shuffle=False):\n"
        "    ds = TensorDataset(X, y)\n"
        "    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle)\n"
        "\n\n"
        "loader = make_loader(features, labels, shuffle=True)",
    )
    plan = build_plan(write_notebook(cells))
    assert (plan.model.name, plan.model.fit_inputs) == ("net", ("features",))


def test_a_module_fitted_on_a_name_only_a_function_binds_is_refused_at_plan(
    write_notebook: Callable[..., Path],
) -> None:
    """Batches a notebook generator yields to a training function: nothing a cell binds says
    what the model takes. Refused at plan in one true line (convert refused it with advice
    to tag the cell that defines `xb`, which no cell does)."""
    cells = [
        *IRIS_BATCHES[:2],
        "def batches(X, y, size=16):\n"
        "    for start in range(0, len(X), size):\n"
        "        yield X[start : start + size], y[start : start + size]\n"
        "\n\n"
        "def train(net, opt, epochs=5):\n"
        "    for epoch in range(epochs):\n"
        "        for xb, yb in batches(features, labels):\n"
        "            opt.zero_grad()\n"
        "            nn.functional.cross_entropy(net(xb), yb).backward()\n"
        "            opt.step()\n"
        "\n\n"
        "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))\n"
        "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "train(net, opt)",
    ]
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook(cells))
    assert refused.value.message == (
        "the model net is fitted on xb, a name only a notebook function binds, so the package "
        "cannot tell which of the notebook's data it takes"
    )


# a validation split watched every few epochs through the notebook's own predict helper, and a
# test split measured through it after training (a helper agent's wine notebook, in small)
WATCHED_BY_A_PREDICT_HELPER = [
    IMPORTS,
    "torch.manual_seed(0)\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=1)\n"
    "X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=0.2,"
    " random_state=1)\n"
    "X_train = torch.tensor(X_train, dtype=torch.float32)\n"
    "X_val = torch.tensor(X_val, dtype=torch.float32)\n"
    "X_test = torch.tensor(X_test, dtype=torch.float32)\n"
    "y_train = torch.tensor(y_train, dtype=torch.long)",
    "def predict(model, X):\n"
    "    model.eval()\n"
    "    with torch.no_grad():\n"
    "        return model(X).argmax(1)",
    "model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))\n"
    "optimizer = torch.optim.Adam(model.parameters(), lr=0.01)\n"
    "loss_fn = nn.CrossEntropyLoss()\n"
    "for epoch in range(1, 41):\n"
    "    model.train()\n"
    "    optimizer.zero_grad()\n"
    "    out = model(X_train)\n"
    "    loss = loss_fn(out, y_train)\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
    "    if epoch % 10 == 0:\n"
    "        val_acc = accuracy_score(y_val, predict(model, X_val))\n"
    "        print(epoch, val_acc)",
    "y_pred = predict(model, X_test).numpy()\n"
    "acc = accuracy_score(y_test, y_pred)\n"
    "print(f'Test accuracy: {acc:.4f}')",
]


def test_a_module_measured_through_a_predict_helper_answers_what_the_helper_returns(
    write_notebook: Callable[..., Path],
) -> None:
    """`y_pred = predict(model, X_test).numpy()` with `predict` returning
    `model(X).argmax(1)`: the service answers with the classes, not the logits. The epoch
    loop's `out = model(X_train)` shares a statement with `val_acc` (the loop): it was served
    instead, logits and all, under a claim measured on classes."""
    plan = build_plan(write_notebook(WATCHED_BY_A_PREDICT_HELPER))
    assert plan.model.served_output == "model(inputs).argmax(1)"


def test_the_claim_is_measured_after_training_not_during_it(
    write_notebook: Callable[..., Path],
) -> None:
    """The validation accuracy printed every ten epochs measures the module while it trains;
    the test accuracy after the loop measures it as it is served, and is the claim."""
    plan = build_plan(write_notebook(WATCHED_BY_A_PREDICT_HELPER))
    assert {m.name for m in plan.metrics} == {"val_acc", "acc"}
    assert plan.honesty.primary_metric == "acc"


@pytest.mark.parametrize(
    "rows",
    [
        "{'features': self.X[idx], 'label': self.y[idx]}",
        "self.X[idx], self.y[idx]",
        "torch.as_tensor(self.X[idx]), self.y[idx]",
    ],
    ids=["dict-through-a-function", "tuple", "tuple-converted"],
)
def test_batches_from_a_notebook_dataset_class_come_from_the_tensors_it_holds(
    write_notebook: Callable[..., Path], rows: str
) -> None:
    """`DataLoader(IrisRows(X_train, y_train))` over a Dataset whose `__getitem__` returns
    `self.X[idx]` (alone, in a tuple or a dict), with `self.X = torch.tensor(X)`: the model
    takes `torch.tensor(X_train, ...)`. It was refused with advice to build a
    DataLoader(TensorDataset(...)) in a cell, which the notebook already did."""
    cells = [*IRIS_ROWS_OF_A_DATASET_CLASS]
    cells[2] = cells[2].replace("{'features': self.X[idx], 'label': self.y[idx]}", rows)
    if "{" not in rows:
        cells[3] = cells[3].replace(
            "    for batch in loader:\n        xb = batch['features'].to('cpu')\n"
            "        yb = batch['label']\n",
            "    for xb, yb in loader:\n",
        )
    plan = build_plan(write_notebook(cells))
    expected = "torch.tensor(X_train, dtype=torch.float32)"
    if "as_tensor" in rows:
        expected = f"torch.as_tensor({expected})"
    assert (plan.model.name, plan.model.fit_inputs) == ("net", (expected,))


def test_a_dataset_class_whose_rows_nb2prod_cannot_follow_is_refused_with_advice_about_it(
    write_notebook: Callable[..., Path],
) -> None:
    """A row made by a reshape is not the tensor's row: plan refuses, and its advice is about
    the class, not to build a DataLoader the notebook already builds."""
    cells = [*IRIS_ROWS_OF_A_DATASET_CLASS]
    cells[2] = cells[2].replace("self.X[idx]", "self.X[idx].reshape(2, 2)")
    with pytest.raises(InputError) as refused:
        build_plan(write_notebook(cells))
    assert refused.value.message.startswith("the model net is fitted on xb, a name only")
    assert refused.value.hint == (
        "make IrisRows.__getitem__ return rows of tensors its __init__ holds (return "
        "self.X[idx], self.y[idx]), or draw the batches from DataLoader(TensorDataset(X_t, y_t))"
    )


def test_a_prediction_a_metric_reads_through_another_name_is_served(
    write_notebook: Callable[..., Path],
) -> None:
    """`rmse` reads `error = predicted - y_test_t`, which reads `predicted =
    model(X_test_t).squeeze(-1)`: the service answers with `predicted` (it said no value the
    notebook measures is made from the output alone, and answered as the module does)."""
    cells = [
        IMPORTS + "\nfrom sklearn.datasets import load_diabetes",
        "torch.manual_seed(0)\n"
        "X, y = load_diabetes(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "X_train_t = torch.tensor(X_train, dtype=torch.float32)\n"
        "X_test_t = torch.tensor(X_test, dtype=torch.float32)\n"
        "y_train_t = torch.tensor(y_train, dtype=torch.float32)\n"
        "y_test_t = torch.tensor(y_test, dtype=torch.float32)",
        "model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 1))\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=0.05)\n"
        "for epoch in range(50):\n"
        "    optimizer.zero_grad()\n"
        "    loss = ((model(X_train_t).squeeze(-1) - y_train_t) ** 2).mean()\n"
        "    loss.backward()\n"
        "    optimizer.step()",
        "with torch.no_grad():\n"
        "    predicted = model(X_test_t).squeeze(-1)\n"
        "error = predicted - y_test_t\n"
        "rmse = torch.sqrt((error ** 2).mean()).item()",
    ]
    plan = build_plan(write_notebook(cells))
    assert "rmse" in {metric.name for metric in plan.metrics}
    assert plan.model.served_output == "model(inputs).squeeze(-1)"


def test_the_value_a_metric_reads_is_served_before_what_it_was_made_from(
    write_notebook: Callable[..., Path],
) -> None:
    """`proba = torch.sigmoid(model(X))`, `predicted = (proba > 0.5).int()`, then accuracy
    on `predicted`: the service answers with the classes the accuracy counts, not with the
    probabilities they were made from."""
    cells = [*TUMOR_NET]
    cells[4] = (
        "model.eval()\n"
        "with torch.no_grad():\n"
        "    proba = torch.sigmoid(model(X_test_t))\n"
        "predicted = (proba > 0.5).int()\n"
        "print('accuracy', accuracy_score(y_test, predicted))"
    )
    plan = build_plan(write_notebook(cells))
    assert plan.model.served_output == "(torch.sigmoid(model(inputs)) > 0.5).int()"


def test_a_network_called_on_several_tensors_is_refused_at_plan(
    write_notebook: Callable[..., Path],
) -> None:
    """`net(x_num, x_cat)` (numbers beside an embedding's ids): a request is one table's
    records, one tensor. Convert passed it, and train failed on `forward() missing 1
    required positional argument`."""
    cells = [*IRIS_BATCHES]
    cells[2] = (
        "class TwoInputs(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.linear = nn.Linear(4, 3)\n"
        "\n"
        "    def forward(self, x, scale):\n"
        "        return self.linear(x) * scale\n"
        "\n\n"
        "net = TwoInputs()\n"
        "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "for epoch in range(5):\n"
        "    for xb, yb in loader:\n"
        "        opt.zero_grad()\n"
        "        nn.functional.cross_entropy(net(xb, torch.ones(1)), yb).backward()\n"
        "        opt.step()"
    )
    cells[3] = cells[3].replace("net(torch.tensor(X_test, dtype=torch.float32))", "net(X_t, 1.0)")
    cells[3] = "X_t = torch.tensor(X_test, dtype=torch.float32)\n" + cells[3]
    with pytest.raises(UnservableModel) as refused:
        build_plan(write_notebook(cells))
    assert (refused.value.cell, refused.value.line) == (3, 15)
    assert refused.value.message == (
        "net is called on several tensors (net(xb, torch.ones(1))), and the service "
        "answers records of one table, one tensor"
    )
