"""The corpus tools (benchmarks/corpus.py, benchmarks/funnel.py) without the network.

The set-aside rules decide which public notebooks the funnel runs, and the sha256 checks are
what make the corpus reproducible, so both are tested on small inputs built here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str):
    """Import a benchmark script by path: benchmarks/ is not a package."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


corpus = load("corpus")
funnel = load("funnel")


# --------------------------------------------------------------------------- set-aside rules


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (
            "from sklearn.datasets import fetch_openml\nX, y = fetch_openml('adult')",
            "network",
        ),
        ("from imblearn.datasets import fetch_datasets\nd = fetch_datasets()", "network"),
        ("import pandas as pd\ndf = pd.read_csv('https://example.org/train.csv')", "network"),
        ("import pandas as pd\nURL = 'http://example.org/x.csv'\ndf = pd.read_csv(URL)", "network"),
        ("import requests\nr = requests.get(u)", "network"),
        ("from yellowbrick.datasets import load_concrete\nX, y = load_concrete()", "network"),
        (
            "import statsmodels.api as sm\nd = sm.datasets.get_rdataset('Guerry', 'HistData')",
            "network",
        ),
        ("import seaborn as sns\ndf = sns.load_dataset('titanic')", "network"),
        ("from torchvision import datasets\nd = datasets.MNIST('.', download=True)", "network"),
        ("import tensorflow_datasets as tfds\nds = tfds.load('mnist')", "network"),
        ("from pyspark.sql import SparkSession\ns = SparkSession.builder", "heavy-framework"),
        ("import jax.numpy as jnp\nx = jnp.zeros(3)", "heavy-framework"),
        ("import nb2prod_no_such_module_xyz\n", "missing-import"),
        ("if x:\n    pass\n  bad", "unparsable"),
    ],
)
def test_set_aside_rules(code: str, rule: str) -> None:
    assert corpus.classify_source(code)[0] == rule


@pytest.mark.parametrize(
    "code",
    [
        "from sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)",
        "from tslearn.datasets import CachedDatasets\n"
        "X, y, _, _ = CachedDatasets().load_dataset('Trace')",
        "import pandas as pd\ndf = pd.read_csv('train.csv')  # from https://example.org",
        'def f():\n    """Docs at https://example.org are not a download."""\n',
    ],
)
def test_local_sources_are_kept(code: str) -> None:
    assert corpus.classify_source(code) == (None, "")


@pytest.mark.parametrize(
    "code",
    [
        "import torch\nnet = torch.nn.Linear(2, 1)",
        "from tensorflow import keras\nm = keras.Sequential()",
        "import keras\nm = keras.Sequential()",
        "from skorch import NeuralNetClassifier",
    ],
)
def test_deep_learning_is_run_not_set_aside(code: str) -> None:
    """The funnel measures deep-learning notebooks like any other; only a framework that is
    not installed sets one aside, and then by the rule that says so."""
    assert corpus.classify_source(code)[0] in (None, "missing-import")
    assert corpus.classify_source(code, check_installed=False) == (None, "")


def test_magics_do_not_make_code_unparsable() -> None:
    nb = {
        "cells": [
            {"cell_type": "code", "source": ["if IN_COLAB:\n", "    !pip install mapie\n"]},
            {"cell_type": "markdown", "source": "# fetch_openml( in prose is not code"},
            {"cell_type": "code", "source": "%matplotlib inline\nimport numpy as np"},
        ]
    }
    code = corpus.code_of_notebook(nb)
    assert corpus.classify_source(code) == (None, "")


def test_trains_model_rule() -> None:
    assert corpus.trains_model("clf = LogisticRegression().fit(X, y)")
    assert corpus.trains_model("res = sm.OLS(y, X).fit()")
    assert corpus.trains_model("bst = xgb.train(params, dtrain)")
    assert not corpus.trains_model("X = scaler.transform(X)\nprint(X.shape)")
    loop = "for xb, yb in loader:\n    loss = loss_fn(net(xb), yb)\n    loss.backward()\n"
    assert corpus.trains_model(loop + "    optimizer.step()")
    assert corpus.trains_model("optimizer.apply_gradients(zip(grads, model.trainable_weights))")
    assert corpus.trains_model("for step in range(100):\n    loss = svi.step(data)")
    assert corpus.trains_model("fit_gpytorch_mll(mll)")


def test_frameworks_are_the_deep_learning_and_booster_imports() -> None:
    code = "import torch.nn as nn\nfrom catboost import Pool\nimport numpy as np\nimport sklearn"
    assert corpus.frameworks_of(code) == ["catboost", "torch"]
    assert corpus.frameworks_of("import pandas as pd") == []


def test_the_halves_are_drawn_once_and_never_move() -> None:
    first = {"a": [f"a/{i}.ipynb" for i in range(9)], "b": [f"b/{i}.ipynb" for i in range(4)]}
    halves = corpus.split_halves(first, {})
    assert halves == corpus.split_halves(first, {})  # a fixed seed: the same draw every time
    for package, ids in first.items():
        sizes = sorted(Counter(halves[i] for i in ids).values())
        assert sizes[-1] - sizes[0] <= 1, package  # each package is halved
    assert len({halves[i] for i in first["a"][:4]}) == 2  # drawn, not alphabetical runs
    grown = {**first, "a": [*first["a"], "a/9.ipynb", "a/10.ipynb"], "c": ["c/0.ipynb"]}
    later = corpus.split_halves(grown, halves)
    assert {i: later[i] for i in halves} == halves  # adding notebooks moves none already split
    assert Counter(later[i] for i in grown["a"]) == Counter({"development": 6, "evaluation": 5})


# --------------------------------------------------------------------------- manifest checks


def make_sdist(tmp_path: Path, files: dict[str, str]) -> Path:
    """A tiny sdist: one top folder holding ``files``."""
    archive = tmp_path / "sdists" / "demo-1.0.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"demo-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


NOTEBOOK = json.dumps(
    {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": "from sklearn.datasets import load_iris\nX, y = load_iris()",
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
)


def manifest_for(archive: Path, path: str, text: str) -> dict:
    return {
        "packages": [
            {
                "name": "demo",
                "version": "1.0",
                "sdist": archive.name,
                "sha256": corpus.sha256_file(archive),
                "notebooks": [
                    {
                        "path": path,
                        "sha256": hashlib.sha256(text.encode()).hexdigest(),
                        "half": "evaluation",
                    }
                ],
            }
        ],
        "subsets": {"ci": ["demo/examples/a.ipynb"]},
    }


def test_fetch_extracts_and_indexes_a_verified_sdist(tmp_path: Path) -> None:
    archive = make_sdist(tmp_path, {"examples/a.ipynb": NOTEBOOK, "setup.py": ""})
    entries = corpus.fetch(tmp_path, manifest_for(archive, "examples/a.ipynb", NOTEBOOK))
    assert [(e.id, e.set_aside, e.subsets, e.half) for e in entries] == [
        ("demo/examples/a.ipynb", None, ["ci"], "evaluation")
    ]
    index = corpus.read_index(tmp_path)
    assert (tmp_path / index[0]["notebook"]).exists()


def test_fetch_refuses_a_tampered_sdist(tmp_path: Path) -> None:
    archive = make_sdist(tmp_path, {"examples/a.ipynb": NOTEBOOK})
    manifest = manifest_for(archive, "examples/a.ipynb", NOTEBOOK)
    manifest["packages"][0]["sha256"] = "0" * 64
    with pytest.raises(corpus.CorpusError, match=re.escape("demo-1.0.tar.gz: sha256 mismatch")):
        corpus.fetch(tmp_path, manifest)


def test_fetch_refuses_a_tampered_notebook(tmp_path: Path) -> None:
    archive = make_sdist(tmp_path, {"examples/a.ipynb": NOTEBOOK})
    manifest = manifest_for(archive, "examples/a.ipynb", NOTEBOOK + " ")
    with pytest.raises(corpus.CorpusError, match=re.escape("examples/a.ipynb: sha256 mismatch")):
        corpus.fetch(tmp_path, manifest)


def test_cli_refusal_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert corpus.main(["list", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("corpus.py: error:")


# --------------------------------------------------------------------------- formats


SPHINX_SCRIPT = '''"""
A tiny example
==============

Fit a model.
"""

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

# %%
# Train it
# --------
X, y = load_iris(return_X_y=True)
clf = LogisticRegression(max_iter=200).fit(X, y)
'''


def test_sphinx_gallery_script_becomes_a_notebook() -> None:
    pytest.importorskip("jupytext")
    nb = corpus.sphinx_to_notebook(SPHINX_SCRIPT)
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert "markdown" in kinds and kinds.count("code") >= 2
    code = corpus.code_of_notebook(nb)
    assert "LogisticRegression(max_iter=200).fit(X, y)" in code
    assert corpus.trains_model(code)


def test_glob_double_star_also_matches_the_top_folder() -> None:
    assert corpus.glob_match("examples/plot_a.py", "examples/**/plot*.py")
    assert corpus.glob_match("examples/x/y/plot_a.py", "examples/**/plot*.py")
    assert not corpus.glob_match("docs/plot_a.py", "examples/**/plot*.py")


# --------------------------------------------------------------------------- funnel


def test_funnel_classifies_stage_outcomes() -> None:
    refused = funnel.classify("plan", 2, "", "nb2prod plan: error: a.ipynb: no model\n", 0.1)
    assert (refused.status, refused.failure_class) == ("refused", "refused")
    crash = "Traceback (most recent call last):\n  File x\nValueError: bad\n"
    tb = funnel.classify("train", 1, "", crash, 1.0)
    assert (tb.status, tb.failure_class, tb.reason) == ("failed", "traceback", "ValueError: bad")
    assert funnel.classify("lint", 0, "", "", 0.2).status == "ok"


def test_funnel_normalises_messages_into_one_class() -> None:
    a = funnel.normalise("/tmp/x/a.ipynb: cell 4, line 2: 'features' is used but never defined")
    b = funnel.normalise("/tmp/y/b.ipynb: cell 12, line 9: 'X_tr' is used but never defined")
    assert a == b
    assert "xgboost/lightgbm" in funnel.normalise("fits a model (xgboost/lightgbm train)")


def test_funnel_report_from_partial_results(tmp_path: Path) -> None:
    stages = [
        funnel.StageResult("plan", "ok", 0, 1.0),
        funnel.StageResult("convert", "ok", 0, 2.0),
        funnel.StageResult("train", "failed", 1, 3.0, "ValueError: bad", "traceback"),
        funnel.StageResult("lint", "ok", 0, 1.0),
    ]
    result = funnel.NotebookResult(
        "demo/a.ipynb", "a.ipynb", True, "evaluation", ["torch"], "a", stages
    )
    result.outcome = funnel.outcome(result)
    partial = tmp_path / "out.json.partial.jsonl"
    partial.write_text(json.dumps(funnel.asdict(result)) + "\n")
    text = funnel.report(funnel.load_partial(partial), [])
    assert result.outcome == "converted-but-failed"
    assert "CONVERTED BUT FAILED TO TRAIN/TEST (worst outcome): 1" in text
    assert "train/traceback: ValueError: bad" in text
    assert (
        "evaluation half: 1 train a model, 0 pass (0%), 0 refused, 1 converted but failed, "
        "1 with a traceback" in text
    )
    assert "development half: 0 train a model, 0 pass, 0 refused" in text
    assert "deep learning and boosters: 1 train a model, 0 pass (0%)" in text


def test_funnel_names_a_failed_test_not_the_tally() -> None:
    out = "..F\nFAILED tests/test_train.py::test_metric - AssertionError: low\n1 failed, 2 passed\n"
    failed = funnel.classify("tests", 1, out, "", 5.0)
    assert failed.reason == "FAILED tests/test_train.py::test_metric - AssertionError: low"


def test_funnel_tells_an_internal_error_from_a_refusal() -> None:
    err = "nb2prod convert: internal error: IndentationError: expected an indented block\n"
    result = funnel.classify("convert", 2, "", err, 1.0)
    assert (result.status, result.failure_class) == ("failed", "internal-error")
    a = funnel.normalise(
        "cell 5: the notebook never gives the model kde any data (no kde.fit(X, ...) or kde."
    )
    b = funnel.normalise(
        "cell 9: the notebook never gives the model res any data (no res.fit(X, ...) or res."
    )
    assert a == b


def test_funnel_mismatch_names_only_what_differs() -> None:
    """Predictions that agree are not listed among what differs in a mismatch."""
    out = (
        "metric  notebook  package  delta  ok\nacc     0.5       1        0.5    NO\n"
        "f1      0.5       0.5      0      yes\n\n"
        "predictions: the same on all 20 rows (largest delta 0)\n\n"
        "parity: NOT verified (rtol 1e-06, atol 1e-09)\n  cause: none known: ...\n"
    )
    assert funnel.mismatch_reason(out) == "cause: none known: ...; acc"
    differing = out.replace("the same on all 20 rows", "3 of 20 rows differ")
    assert funnel.mismatch_reason(differing) == "cause: none known: ...; acc; predictions:"
    forecast = "forecast: 20 of 20 steps differ (positions 1 to 20 of the series)\n"
    assert funnel.mismatch_reason(forecast) == "forecast:"
