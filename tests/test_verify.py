"""`nb2prod verify`: a real kernel (nbclient, ipykernel) runs the notebook, the package trains
into a real MLflow store, and each metric is compared; the promotion gate reads the verdict."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLES, TRAINING_CELLS, Run, run_cli

REGRESSION = [
    "from sklearn.datasets import load_diabetes\nfrom sklearn.linear_model import Ridge\n"
    "from sklearn.metrics import r2_score\nfrom sklearn.model_selection import train_test_split",
    "X, y = load_diabetes(return_X_y=True, as_frame=True)",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "model = Ridge(alpha=0.5).fit(X_train, y_train)\nr2 = r2_score(y_test, model.predict(X_test))",
]


def nb2prod(*args: str | Path) -> Run:
    return run_cli(*args, timeout=600)  # a notebook run and a training


def converted(write_notebook, tmp_path: Path, cells: list) -> tuple[Path, Path]:
    notebook = write_notebook(cells)
    package = tmp_path / "pkg"
    done = nb2prod("convert", notebook, "-o", package)
    assert done.code == 0, done.stderr
    return notebook, package


@pytest.mark.parametrize("sample", sorted(p.stem for p in SAMPLES.glob("*.ipynb")))
def test_every_sample_verifies_green(tmp_path: Path, sample: str) -> None:
    notebook = tmp_path / f"{sample}.ipynb"
    shutil.copy(SAMPLES / f"{sample}.ipynb", notebook)
    for data in SAMPLES.iterdir():
        if data.is_file() and data.suffix != ".ipynb":
            shutil.copy(data, tmp_path / data.name)
    done = nb2prod("convert", notebook, "--verify")
    assert done.code == 0, done.stdout[-2000:] + done.stderr[-2000:]
    agreed = "parity: every metric and prediction agrees" in done.stdout
    assert agreed or "parity: nothing to compare" in done.stdout  # a rule that measures nothing
    assert "NO" not in done.stdout.split("parity:")[0].split()
    said = "predictions: the same on all 20 rows" in done.stdout
    assert said or "predictions: not compared (a rule-based model" in done.stdout
    # every sample was saved from an out-of-order run: verify says so, and re-ran it in order
    assert "note: hidden-state (cell " in done.stdout


def test_an_unseeded_notebook_agrees_from_one_seed_and_differs_as_written(write_notebook, tmp_path):
    """Both sides start numpy's generator from verify's seed, so the split is the same split
    and the package is shown to compute what the notebook computes; run as written, the two
    draw different splits, and the unseeded line is named as the cause."""
    cells = [*REGRESSION]
    cells[2] = "X_train, X_test, y_train, y_test = train_test_split(X, y)"  # no random_state
    notebook, package = converted(write_notebook, tmp_path, cells)
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    done = nb2prod("verify", notebook, package, "--tracking-uri", uri)
    assert done.code == 0, done.stdout + done.stderr
    assert "seed: both sides started Python's, numpy's global random generators from seed 0" in (
        done.stdout
    )
    assert "parity: every metric and prediction agrees" in done.stdout
    assert "note: unseeded-random (cell 3, line 1)" in done.stdout
    assert "note: the two agree from seed 0; as written, each training" in done.stdout
    from mlflow import MlflowClient

    run_id = done.stdout.split("recorded on run ")[1].split()[0]
    recorded = MlflowClient(uri).get_run(run_id).data
    assert recorded.tags["parity_seed"] == "0"
    # a run kept in the team's store is a whole training: its claim from the package's folds
    assert recorded.tags["claim_metric"].endswith("_cv"), recorded.tags

    done = nb2prod("verify", notebook, package, "--seed", "none")
    assert done.code == 1, done.stdout + done.stderr
    assert "parity: NOT verified" in done.stdout
    assert "cause: unseeded-random (cell 3, line 1)" in done.stdout


SHOWN_DRAW = [
    "import numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
    "from sklearn.metrics import r2_score",
    "np.random.seed(0)",
    "print(np.random.normal(size=5))",
    "X = np.random.rand(60, 2)\ny = X @ [1.0, 2.0] + np.random.normal(size=60)\n"
    "model = LinearRegression().fit(X[:40], y[:40])\n"
    "r2 = r2_score(y[40:], model.predict(X[40:]))",
]


def test_a_draw_only_shown_before_the_training_data_is_kept_and_both_sides_agree(
    write_notebook, tmp_path
):
    """The notebook shows a demo sample from the seeded generator, then draws the training
    data: the package draws the demo too (without showing it), so its data are the notebook's."""
    notebook, package = converted(write_notebook, tmp_path, SHOWN_DRAW)
    code = (package / "nb" / "features.py").read_text()
    assert "_ = np.random.normal(size=5)  # drawn to be shown" in code
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "parity: every metric and prediction agrees" in done.stdout


def test_the_rows_the_notebook_sends_reach_the_package_with_every_digit() -> None:
    """A rolling mean rounded to pandas' default 10 decimals crossed a gradient-boosting
    threshold: 4 of 20 predictions differed with no cause known, though both models were
    the same. The rows must arrive as the notebook had them."""
    import numpy as np
    import pandas as pd

    from nb2prod.verify.kernel import _SETUP
    from nb2prod.verify.package_side import rows_sent

    kernel: dict = {}
    exec(_SETUP, kernel)  # the code verify runs in the notebook's kernel
    rows = pd.DataFrame(
        {
            "roll_mean": np.arange(1, 21) / 7 + 123.0,
            "tiny": np.arange(1, 21) / 3e7,
            "store": ["S1", "S2"] * 10,
        }
    )

    class Model:
        def predict(self, given: pd.DataFrame) -> np.ndarray:
            return np.zeros(len(given))

    sent = kernel["_nb2prod_sample"](lambda: Model(), lambda: rows, 20)
    received = rows_sent(sent["frame"], sent["exact"])
    pd.testing.assert_frame_equal(received, rows, check_exact=True)


def test_a_dropped_draw_from_the_seeded_stream_is_named_as_the_cause(write_notebook, tmp_path):
    """The notebook draws demo samples in a loop, then the training data: the package drops
    the loop (no statement of its own stands for its draws), so its data come from earlier in
    the stream. A draw after the last code the package keeps is not a cause."""
    cells = [
        "import numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
        "from sklearn.metrics import r2_score",
        "np.random.seed(0)",
        "for size in (2, 3):\n    print(np.random.normal(size=size))",
        "X = np.random.rand(60, 2)\ny = X @ [1.0, 2.0] + np.random.normal(size=60)\n"
        "model = LinearRegression().fit(X[:40], y[:40])\n"
        "r2 = r2_score(y[40:], model.predict(X[40:]))",
        "print(np.random.rand(3))",  # after everything the package keeps: shifts nothing
    ]
    notebook, package = converted(write_notebook, tmp_path, cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 1, done.stdout + done.stderr
    assert "cause: dropped-random-draw (cell 3, line 2)" in done.stdout
    assert "(cell 5)" not in done.stdout


def test_a_draw_nothing_reads_before_a_kept_unseeded_draw_is_kept(write_notebook, tmp_path):
    """The notebook shuffles row numbers to show a few rows, then splits without a seed: both
    draw from numpy's global generator. The package keeps the shuffle (and what it reads), so
    from verify's seed its split is the notebook's, and both sides agree."""
    cells = [
        REGRESSION[0] + "\nimport numpy as np",
        "X, y = load_diabetes(return_X_y=True, as_frame=True)\n"
        "order = np.arange(len(y))\n"
        "np.random.shuffle(order)\n"
        "print(y.iloc[order[:5]])",
        "X_train, X_test, y_train, y_test = train_test_split(X, y)",
        REGRESSION[3],
    ]
    notebook, package = converted(write_notebook, tmp_path, cells)
    assert "np.random.shuffle(order)" in (package / "nb" / "pipeline.py").read_text()
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "parity: every metric and prediction agrees" in done.stdout


def test_the_run_sees_a_dropped_cell_draw_from_torchs_generator(write_notebook) -> None:
    """A demo tensor drawn between the seed and the training data shifts torch's stream as
    numpy's would: the run says which generator the left-out cell drew from."""
    pytest.importorskip("torch", reason="the corpus requirements install torch's CPU build")
    from nb2prod.verify.kernel import run_notebook

    notebook = write_notebook(
        ["import torch\ntorch.manual_seed(0)", "demo = torch.randn(3)\nprint(demo)", "x = 1"]
    )
    ran = run_notebook(notebook, [], 120, dropped=[2, 3])
    assert ran.drew == {2: ["torch's"]}


def test_a_dropped_cell_that_mattered_is_a_mismatch_without_a_known_cause(
    write_notebook, tmp_path
) -> None:
    cells = [*REGRESSION]
    cells.insert(2, {"source": "X = X * 2\ny = y / 10", "tags": ["skip"]})
    notebook = write_notebook(cells)
    package = tmp_path / "pkg"
    assert nb2prod("convert", notebook, "-o", package).code == 0
    cells[2] = "X = X * 2\ny = y / 10"  # the notebook as run: the cell counts
    write_notebook(cells)
    # Without its record the package cannot say it was made from another notebook.
    shutil.copytree(package, tmp_path / "recorded")
    shutil.rmtree(package / ".nb2prod")
    done = nb2prod("verify", notebook, package)
    assert done.code == 1, done.stdout + done.stderr
    assert "cause: none known" in done.stdout
    assert "predictions: 20 of 20 rows differ" in done.stdout  # fitted on other data
    # With it, the change of notebook is the cause named.
    done = nb2prod("verify", notebook, tmp_path / "recorded")
    assert done.code == 1, done.stdout + done.stderr
    assert "cause: the notebook changed since the package was made (sha256 " in done.stdout
    assert "run 'nb2prod update recorded'" in done.stdout


def test_rows_a_later_cell_binds_to_other_data_are_probed_as_the_model_saw_them(
    write_notebook, tmp_path
) -> None:
    """A tutorial fits its model, then shows another idea on other data under the same names
    (`X_train` of five columns): the model's rows are read once its fitting cell has run, not
    once the notebook has, so the predictions are compared."""
    second_example = (
        "from sklearn.datasets import make_classification\n\n"
        "X, y = make_classification(n_features=5, random_state=42)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=42)\n"
        "print(X_train.shape)"
    )
    notebook, package = converted(write_notebook, tmp_path, [*REGRESSION, second_example])
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "predictions: the same on all 20 rows" in done.stdout


@pytest.mark.parametrize(
    ("cell", "options", "says"),
    [
        ("raise ValueError('bad input\\nfrom the data')", (), "cell 3, line 1: fails when the"),
        ("import time\ntime.sleep(60)", ("--cell-timeout", "5"), "cell 1: ran longer than 5 s"),
    ],
)
def test_a_cell_that_fails_or_hangs_stops_verify_in_one_line(
    write_notebook, tmp_path, cell: str, options: tuple[str, ...], says: str
) -> None:
    at = 2 if "raise" in cell else 0  # a sleep comes first: imports may take seconds here
    notebook, package = converted(
        write_notebook, tmp_path, [*REGRESSION[:at], cell, *REGRESSION[at:]]
    )
    done = nb2prod("verify", notebook, package, *options)
    assert done.code == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert says in lines[0]
    if "raise" in cell:
        assert "ValueError: from the data" in lines[0]  # the error's last line
    assert not kernels_in(tmp_path), "the kernel was left running"


def test_a_metric_the_notebook_only_prints_is_compared(write_notebook, tmp_path) -> None:
    """Real notebooks print their scores; the package names such a metric, and verify computes
    the same expression in the notebook's kernel instead of finding no such name there."""
    cells = [
        *REGRESSION[:3],
        "model = Ridge(alpha=0.5).fit(X_train, y_train)\n"
        "print('R2 on the test set:', r2_score(y_test, model.predict(X_test)))",
    ]
    notebook, package = converted(write_notebook, tmp_path, cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "missing" not in done.stdout
    table = done.stdout.split("metric ")[1].split("\n\n")[0].splitlines()[1:]
    assert len(table) == 1 and table[0].endswith("yes"), done.stdout


def test_a_printed_metric_is_computed_where_the_cell_prints_it(write_notebook, tmp_path) -> None:
    """A cell prints the model's score, then rebinds the predictions to a baseline's and prints
    that: the model's score is computed from its own predictions, as the notebook printed it,
    not from what the names hold once the cell has run (the baseline's is not logged)."""
    cells = [
        *REGRESSION[:3],
        "model = Ridge(alpha=0.5).fit(X_train, y_train)\n"
        "predicted = model.predict(X_test)\n"
        "print('R2, model:', r2_score(y_test, predicted))\n"
        "baseline = Ridge(alpha=500.0).fit(X_train, y_train)\n"
        "predicted = baseline.predict(X_test)\n"
        "print('R2, baseline:', r2_score(y_test, predicted))",
    ]
    notebook, package = converted(write_notebook, tmp_path, cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    table = done.stdout.split("metric ")[1].split("\n\n")[0].splitlines()[1:]
    assert len(table) == 1 and table[0].endswith("yes"), done.stdout


PLOT_THAT_FAILS = "import matplotlib.pyplot as plt\nplt.plot([1, 2], [1, 2, 3])"  # x and y differ


def test_display_code_that_fails_here_is_passed_with_a_note(write_notebook, tmp_path) -> None:
    """Plotting written for another matplotlib fails in many real notebooks: the package
    leaves it out, so verify notes the error and compares what the notebook computed."""
    # IPython drops a cell's leading blank lines: its line numbers are not the cell's
    cells = [*REGRESSION, "\n\n" + PLOT_THAT_FAILS]
    notebook, package = converted(write_notebook, tmp_path, cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "parity: every metric and prediction agrees" in done.stdout
    assert (
        "note: cell 5 line 4: code the package leaves out (only displays or plots) raised "
        "ValueError: " in done.stdout
    )


def test_a_statistic_the_package_leaves_out_that_fails_here_is_passed_with_a_note(
    write_notebook, tmp_path
) -> None:
    """A statistic nothing reads (a test a newer library no longer computes, here a singular
    matrix) raises when the notebook runs: the package leaves it out, so verify notes the
    error and compares what the notebook computed, as it does for a failing plot."""
    statistic = "import numpy as np\n\nspread = np.linalg.inv(np.zeros((2, 2)))"
    notebook, package = converted(write_notebook, tmp_path, [*REGRESSION, statistic])
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "parity: every metric and prediction agrees" in done.stdout
    assert (
        "note: cell 5 line 3: code the package leaves out (computes spread, which nothing the "
        "model, its metrics or its input reads) raised LinAlgError: Singular matrix" in done.stdout
    )


def test_a_failing_plot_before_code_the_package_keeps_still_stops_verify(
    write_notebook, tmp_path
) -> None:
    cells = [*REGRESSION[:3], f"{PLOT_THAT_FAILS}\n{REGRESSION[3]}"]  # the fit never ran
    notebook, package = converted(write_notebook, tmp_path, cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 2, done.stdout + done.stderr
    assert "cell 4, line 2: fails when the notebook is run top to bottom: ValueError" in done.stderr
    assert not kernels_in(tmp_path), "the kernel was left running"


def kernels_in(folder: Path) -> list[str]:
    """Processes still working in `folder` (the kernel runs in the notebook's folder)."""
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == folder.resolve():
                left.append((proc / "cmdline").read_text().replace("\0", " "))
        except OSError:
            continue
    return left


def test_a_folder_that_is_not_the_package_is_said_before_the_notebook_runs(
    write_notebook, tmp_path: Path
) -> None:
    notebook = write_notebook(["import time\ntime.sleep(120)", *TRAINING_CELLS])
    done = nb2prod("verify", notebook, tmp_path / "elsewhere")
    assert done.code == 2 and "elsewhere: is not the package convert writes" in done.stderr
    assert not kernels_in(tmp_path)


def test_the_notebooks_installs_do_not_run_and_are_said(
    write_notebook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook's `!pip install` would change the environment both sides are compared in
    (and reach the network): verify leaves it out and says so. A `pip` first on PATH records
    any call."""
    tripwire = tmp_path / "bin"
    tripwire.mkdir()
    (tripwire / "pip").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "pip-ran"}\n')
    (tripwire / "pip").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tripwire}{os.pathsep}{os.environ['PATH']}")
    cells = ["!pip install -q scikit-learn", *REGRESSION]
    notebook, package = converted(write_notebook, tmp_path, cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "parity: every metric and prediction agrees" in done.stdout
    assert not (tmp_path / "pip-ran").exists()
    assert "note: cell 1 line 1: its !pip line did not run" in done.stdout


def test_a_package_whose_training_fails_is_said_in_one_line_and_leaves_nothing_running(
    write_notebook, tmp_path: Path
) -> None:
    """The training process also answers verify's questions once it has trained: when it
    fails instead, verify ends it and says its last line, rather than waiting on it."""
    notebook, package = converted(write_notebook, tmp_path, REGRESSION)
    pipeline = package / "nb" / "pipeline.py"
    edited = pipeline.read_text().replace(
        "    # From cell 4\n", "    # From cell 4\n    raise RuntimeError('broken by hand')\n", 1
    )
    assert edited != pipeline.read_text()
    pipeline.write_text(edited)
    done = nb2prod("verify", notebook, package)
    assert done.code == 2, done.stdout + done.stderr
    [said] = done.stderr.strip().splitlines()
    assert said.startswith(f"nb2prod verify: error: {package}: the package's training failed: ")
    assert "notebook cell 4" in said and said.endswith("RuntimeError: broken by hand")
    assert not kernels_in(tmp_path) and not kernels_in(package)  # the training runs in there


def test_the_gate_can_require_parity(write_notebook, tmp_path: Path) -> None:
    notebook, package = converted(write_notebook, tmp_path, TRAINING_CELLS)
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(package)}
    train = [sys.executable, "-m", "nb.train"]
    promote = [sys.executable, "-m", "nb.promote", "--allow-heuristic", "--require-parity"]

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=package, env={**os.environ, **env}, capture_output=True, text=True
        )

    assert run(train).returncode == 0
    unverified = run(promote)
    assert unverified.returncode == 1 and "nb2prod verify has not checked" in unverified.stderr
    done = nb2prod("verify", notebook, package, "--tracking-uri", uri)
    assert done.code == 0, done.stdout + done.stderr
    assert "parity_verified=true" in done.stdout
    verified = run(promote)
    assert verified.returncode == 0, verified.stderr
    assert "promoted nb version 2" in verified.stdout  # the version verify trained


def test_ctrl_c_stops_verify_and_its_kernel(write_notebook, tmp_path: Path) -> None:
    notebook, package = converted(
        write_notebook, tmp_path, ["import time\ntime.sleep(120)", *TRAINING_CELLS]
    )
    verify = subprocess.Popen(
        [sys.executable, "-m", "nb2prod", "verify", str(notebook), str(package)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    deadline = time.monotonic() + 120
    while not kernels_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kernels_in(tmp_path), "the kernel never started"
    time.sleep(2)  # inside the sleeping cell
    os.killpg(verify.pid, signal.SIGINT)  # what Ctrl-C sends
    _, stderr = verify.communicate(timeout=60)
    assert verify.returncode == 130
    assert stderr.strip() == "nb2prod verify: interrupted"
    assert not kernels_in(tmp_path), "the kernel was left running"


def test_a_value_that_is_a_number_on_neither_side_is_no_mismatch() -> None:
    """A "metric" that holds no number in the notebook nor in the package (a dict of scores,
    a plotting function's None) is said and not compared; one side missing is a mismatch."""
    from nb2prod.verify.compare import Row, numbers_only

    compared, none = numbers_only(
        [
            Row("scores", None, None),
            Row("plot_loss_value", None, float("nan")),
            Row("rmse", 2.3, 2.3),
            Row("auc", None, 0.9),
        ]
    )
    assert [row.metric for row in compared] == ["rmse", "auc"]
    assert none == ["scores", "plot_loss_value"]
    assert not compared[1].agrees(1e-6, 1e-9)
