"""Roles, def-use, model, metrics and findings on small notebooks written for each case."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TRAINING_CELLS

from nb2prod.frontend.planner import KEPT_DRAW_REASON, build_plan
from nb2prod.plan import Plan


def plan(write_notebook, cells, **kwargs) -> Plan:
    return build_plan(write_notebook(cells, **kwargs))


def codes(result: Plan) -> list[tuple[str, int | None]]:
    return [(f.code, f.cell) for f in result.findings]


# roles ----------------------------------------------------------------------------------


def test_tag_beats_directive_beats_heuristic(write_notebook) -> None:
    cells = [
        *TRAINING_CELLS[:2],
        {"source": "# nb2prod: features\nX2 = X * 2", "tags": ["nb2prod:load"]},
        "# nb2prod: features\nX3 = X2 + 1",
        *TRAINING_CELLS[2:],
    ]
    result = plan(write_notebook, cells)
    assert (result.cells[2].role, result.cells[2].reason) == ("load", "tagged 'nb2prod:load'")
    assert result.cells[3].role == "features"
    assert result.cells[3].reason == "directive '# nb2prod: features'"
    assert result.cells[5].reason == "calls model.fit(...)"


def test_skip_tag_and_explore_cells_are_dropped(write_notebook) -> None:
    cells = [
        "import matplotlib.pyplot as plt",
        *TRAINING_CELLS,
        {"source": "print('debug')\nmodel.fit(X, y)", "tags": ["skip"]},
        "plt.plot([1, 2])\nplt.show()",
        "import seaborn as sns\nsns.histplot([1, 2])",
    ]
    result = plan(write_notebook, cells, name="x.ipynb")
    assert [(c.role, c.kept) for c in result.cells[-3:]] == [
        ("skip", False),
        ("explore", False),
        ("imports", False),  # its import serves only the plot, so nothing is left
    ]
    assert result.cells[-1].reason.endswith("nothing left to keep once display code is dropped")
    assert all(b.cell not in (1, 7, 8, 9) for s in result.steps for b in s.blocks)


def test_mixed_cell_keeps_code_and_drops_display(write_notebook) -> None:
    cells = [
        "import matplotlib.pyplot as plt\n" + TRAINING_CELLS[0],
        "X, y = load_iris(return_X_y=True)\nprint(X.shape)\nplt.hist(y)\nX[:5]",
        *TRAINING_CELLS[2:],
    ]
    result = plan(write_notebook, cells)
    (load,) = [s for s in result.steps if s.role == "load"]
    assert load.blocks[0].source == "X, y = load_iris(return_X_y=True)\n"
    dropped = [d.construct for d in result.cells[1].dropped]
    assert dropped == ["print(X.shape)", "plt.hist(y)", "X[:5]"]
    assert "matplotlib" not in result.steps[0].blocks[0].source
    assert "matplotlib" not in [r.name for r in result.requirements]


def test_papermill_parameters_with_types(write_notebook) -> None:
    cells = [
        {
            "source": "alpha = 0.5\nepochs = 3\nname = 'run'\nflags = [1, 2]\nuse_gpu = False",
            "tags": ["parameters"],
        },
        *TRAINING_CELLS,
    ]
    result = plan(write_notebook, cells)
    assert [(p.name, p.type, p.default) for p in result.parameters] == [
        ("alpha", "float", 0.5),
        ("epochs", "int", 3),
        ("name", "str", "run"),
        ("flags", "list", (1, 2)),
        ("use_gpu", "bool", False),
    ]


# def-use -------------------------------------------------------------------------------


def test_steps_get_explicit_inputs_and_outputs(write_notebook) -> None:
    result = plan(write_notebook, TRAINING_CELLS)
    train = next(s for s in result.steps if s.role == "train")
    assert train.inputs == ("LogisticRegression", "X_train", "y_train")
    assert train.outputs == ("model",)
    evaluate = next(s for s in result.steps if s.role == "evaluate")
    assert evaluate.outputs == ("accuracy",)


def test_use_before_definition_is_hidden_state(write_notebook) -> None:
    cells = [
        TRAINING_CELLS[0],
        "X, y = load_iris(return_X_y=True)\nX_scaled = X * scale",
        "scale = 2.0",
        "X_train, X_test, y_train, y_test = train_test_split(X_scaled, y, random_state=0)",
        *TRAINING_CELLS[3:],
    ]
    result = plan(write_notebook, cells)
    (finding,) = [f for f in result.findings if f.code == "use-before-definition"]
    assert (finding.cell, finding.line) == (2, 2)
    assert "'scale'" in finding.message and "cell 3" in finding.message


def test_function_bodies_read_names_when_called(write_notebook) -> None:
    cells = [
        TRAINING_CELLS[0],
        "def double(frame):\n    return frame * FACTOR",
        "FACTOR = 2",
        "X, y = load_iris(return_X_y=True)\nX = double(X)",
        *TRAINING_CELLS[2:],
    ]
    result = plan(write_notebook, cells)
    assert "use-before-definition" not in [code for code, _ in codes(result)]


def test_execution_order_findings(write_notebook) -> None:
    cells = [
        {"source": source, "execution_count": n}
        for source, n in zip(TRAINING_CELLS, [1, 2, 9, 3, 4], strict=True)
    ]
    result = plan(write_notebook, cells)
    assert codes(result).count(("hidden-state", 3)) == 1
    assert [c for c, cell in codes(result) if c == "hidden-state"] == ["hidden-state"]


# model and metrics -----------------------------------------------------------------------


def test_ambiguous_model_is_reported_not_silent(write_notebook) -> None:
    cells = [
        *TRAINING_CELLS[:3],
        "from sklearn.tree import DecisionTreeClassifier\n"
        "tree = DecisionTreeClassifier(random_state=0)\ntree.fit(X_train, y_train)\n"
        "forest = DecisionTreeClassifier(random_state=1)\nforest.fit(X_train, y_train)",
        "accuracy = accuracy_score(y_test, forest.predict(X_test))",
    ]
    result = plan(write_notebook, cells)
    assert result.model.name == "forest"
    (finding,) = [f for f in result.findings if f.code == "ambiguous-model"]
    assert "tree, forest" in finding.message and "nb2prod:model=NAME" in (finding.hint or "")


def test_explicit_model_tag_decides(write_notebook) -> None:
    cells = [
        *TRAINING_CELLS[:3],
        {
            "source": "from sklearn.tree import DecisionTreeClassifier\n"
            "tree = DecisionTreeClassifier(random_state=0)\ntree.fit(X_train, y_train)\n"
            "model = DecisionTreeClassifier(random_state=1)\nmodel.fit(X_train, y_train)",
            "tags": ["nb2prod:model=tree"],
        },
        "accuracy = accuracy_score(y_test, tree.predict(X_test))",
    ]
    result = plan(write_notebook, cells)
    assert result.model.name == "tree"
    assert result.model.reason == "named by cell 4 tag 'nb2prod:model=tree'"
    assert "ambiguous-model" not in [c for c, _ in codes(result)]


@pytest.mark.parametrize(
    "scaling",
    [
        "scaler = StandardScaler()\nscaler.fit(X_train)\nX_train_s = scaler.transform(X_train)",
        # fitted where it is built: the cell still prepares features, it trains no model
        "scaler = StandardScaler().fit(X_train)\nX_train_s = scaler.transform(X_train)",
        "X_train_s = StandardScaler().fit(X_train).transform(X_train)",
    ],
)
def test_scaler_fit_is_not_the_model(write_notebook, scaling: str) -> None:
    cells = [
        TRAINING_CELLS[0] + "\nfrom sklearn.preprocessing import StandardScaler",
        *TRAINING_CELLS[1:3],
        scaling,
        "clf = LogisticRegression()\nclf.fit(X_train_s, y_train)",
    ]
    result = plan(write_notebook, cells)
    assert result.model.name == "clf"
    assert result.cells[3].role == "features"


def test_metric_on_training_data_is_flagged_and_not_a_claim(write_notebook) -> None:
    cells = [*TRAINING_CELLS[:4], "train_acc = accuracy_score(y_train, model.predict(X_train))"]
    result = plan(write_notebook, cells)
    assert [(m.name, m.validation, m.held_out) for m in result.metrics] == [
        ("train_acc", "training data", False)
    ]
    assert ("metric-on-training-data", 5) in codes(result)
    assert result.honesty.implementation_status == "HEURISTIC"
    assert result.honesty.validation_method == "NONE - no held-out evaluation"
    assert result.honesty.validation_status == "UNVALIDATED"


def test_the_claim_is_measured_on_the_model_the_name_holds_last(write_notebook) -> None:
    """A cell fits one model after another under the same name and prints each one's score:
    the package serves the last, so the claim is the last score, not the first."""
    fit_and_print = (
        "clf = {}\nclf.fit(X_train, y_train)\npredicted = clf.predict(X_test)\n"
        "print('rate:', accuracy_score(y_test, predicted))\n"
    )
    cells = [
        TRAINING_CELLS[0] + "\nfrom sklearn.tree import DecisionTreeClassifier",
        *TRAINING_CELLS[1:3],
        fit_and_print.format("DecisionTreeClassifier(max_depth=1, random_state=0)")
        + fit_and_print.format("DecisionTreeClassifier(max_depth=2, random_state=0)")
        + fit_and_print.format("LogisticRegression(max_iter=200)"),
    ]
    result = plan(write_notebook, cells)
    assert result.model.estimator == "sklearn.linear_model.LogisticRegression"
    # named in the order the notebook prints them; the two trees' are not the model's
    assert [(m.name, m.line) for m in result.metrics] == [("accuracy_3", 12)]
    others = [(f.line, f.message) for f in result.findings if f.code == "metric-of-another-model"]
    assert [line for line, _ in others] == [4, 8]
    assert others[0][1].startswith("'accuracy' measures another model than clf")
    assert result.honesty.primary_metric == "accuracy_3"
    assert result.honesty.validation_status == "VALIDATED"


def test_the_claim_is_not_taken_from_another_model(write_notebook) -> None:
    cells = [
        TRAINING_CELLS[0] + "\nfrom sklearn.dummy import DummyClassifier",
        *TRAINING_CELLS[1:3],
        "baseline = DummyClassifier().fit(X_train, y_train)\n"
        "baseline_accuracy = accuracy_score(y_test, baseline.predict(X_test))",
        "model = LogisticRegression(max_iter=200)\nmodel.fit(X_train, y_train)\n"
        "y_pred = model.predict(X_test)",
        "accuracy = accuracy_score(y_test, y_pred)",
        {"source": "", "tags": ["nb2prod:model=model"]},
    ]
    result = plan(write_notebook, cells)
    assert result.model.name == "model"
    assert result.honesty.primary_metric == "accuracy"


def test_a_model_only_other_models_were_measured_for_is_unvalidated(write_notebook) -> None:
    """Ridge models are scored on the test split, then the name is bound to a model fitted on
    all the data and never scored: no number describes the model the package serves."""
    cells = [
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import LassoCV, Ridge\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_diabetes(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "model = Ridge()\nmodel.fit(X_train, y_train)\nmodel.score(X_test, y_test)",
        "model = LassoCV(cv=3)\nmodel.fit(X, y)",
    ]
    result = plan(write_notebook, cells)
    assert result.metrics == ()  # the run logs no number of another model
    assert result.honesty.implementation_status == "HEURISTIC"
    assert result.honesty.validation_status == "UNVALIDATED"
    assert result.honesty.primary_metric is None
    assert "model_score measures another model than model" in result.honesty.reason


def test_a_metric_of_the_served_model_counts_however_the_notebook_reaches_it(
    write_notebook,
) -> None:
    """Cross-validated before its fit, or refitted on all the data after its holdout score:
    each is still the model the package serves."""
    refitted = [*TRAINING_CELLS, "model.fit(X, y)"]
    result = plan(write_notebook, refitted, name="refitted.ipynb")
    assert result.honesty.primary_metric == "accuracy"
    assert "(accuracy, before it is fitted again)" in result.honesty.reason
    cross_validated = [
        TRAINING_CELLS[0] + "\nfrom sklearn.model_selection import cross_val_score",
        *TRAINING_CELLS[1:3],
        "old = LogisticRegression(C=0.01, max_iter=200)\nold.fit(X_train, y_train)\n"
        "old_accuracy = accuracy_score(y_test, old.predict(X_test))",
        "model = LogisticRegression(max_iter=200)\n"
        "scores = cross_val_score(model, X_train, y_train, cv=3)\n"
        "model.fit(X_train, y_train)",
        {"source": "", "tags": ["nb2prod:model=model"]},
    ]
    result = plan(write_notebook, cross_validated, name="cv.ipynb")
    assert result.honesty.primary_metric == "scores"


def test_declared_status_wins(write_notebook) -> None:
    metadata = {
        "kernelspec": {"name": "python3"},
        "nb2prod": {"implementation_status": "⚠️ HEURISTIC"},
    }
    result = plan(write_notebook, TRAINING_CELLS, metadata=metadata)
    assert result.honesty.implementation_status == "HEURISTIC"
    assert result.honesty.status_source == "notebook metadata nb2prod.implementation_status"
    tagged = [
        *TRAINING_CELLS[:-1],
        {"source": TRAINING_CELLS[-1], "tags": ["nb2prod:status=PLANNED"]},
    ]
    assert plan(write_notebook, tagged, name="t.ipynb").honesty.implementation_status == "PLANNED"


# findings -------------------------------------------------------------------------------


def test_unseeded_randomness(write_notebook) -> None:
    cells = [
        TRAINING_CELLS[0]
        + "\nimport numpy as np\nfrom sklearn.ensemble import RandomForestClassifier",
        "X, y = load_iris(return_X_y=True)\nnoise = np.random.rand(len(X))\nX = X + noise[:, None]",
        "X_train, X_test, y_train, y_test = train_test_split(X, y)",
        "model = RandomForestClassifier(n_estimators=10)\nmodel.fit(X_train, y_train)",
    ]
    result = plan(write_notebook, cells)
    found = [
        (f.cell, f.message.split(" ")[0]) for f in result.findings if f.code == "unseeded-random"
    ]
    assert found == [
        (2, "numpy.random.rand(...)"),
        (3, "train_test_split(...)"),
        (4, "RandomForestClassifier(...)"),
    ]


def test_scikit_learn_drawing_from_numpys_seeded_generator_is_not_unseeded(write_notebook) -> None:
    """`np.random.seed(42)` at the top, then a split, folds and a forest left without
    random_state: scikit-learn draws them from numpy's global generator, which the notebook
    seeded, so a re-run gives the same model (it said "each run trains a different model")."""
    cells = [
        TRAINING_CELLS[0]
        + "\nimport numpy as np\nfrom sklearn.ensemble import RandomForestClassifier"
        "\nfrom sklearn.model_selection import KFold, cross_val_score",
        "np.random.seed(42)",
        "X, y = load_iris(return_X_y=True)",
        "X_train, X_test, y_train, y_test = train_test_split(X, y)",
        "model = RandomForestClassifier(n_estimators=10)\nmodel.fit(X_train, y_train)\n"
        "scores = cross_val_score(model, X, y, cv=KFold(5, shuffle=True))",
    ]
    assert "unseeded-random" not in [c for c, _ in codes(plan(write_notebook, cells))]


def test_a_library_call_drawing_its_random_state_from_numpy_is_unseeded(write_notebook) -> None:
    """Any installed library's call whose random_state defaults to None draws it from numpy's
    global generator: a data generator, a third-party model. A random_state the library's docs
    say is used only in some settings (LogisticRegression's, for some solvers) is not noise."""
    cells = [
        "from sklearn.datasets import make_blobs\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score",
        "X, y = make_blobs(n_samples=90, centers=3)\nX_train, y_train = X[:60], y[:60]\n"
        "X_test, y_test = X[60:], y[60:]",
        "model = LogisticRegression().fit(X_train, y_train)\n"
        "acc = accuracy_score(y_test, model.predict(X_test))",
    ]
    result = plan(write_notebook, cells)
    found = [(f.cell, f.message) for f in result.findings if f.code == "unseeded-random"]
    assert found == [
        (
            2,
            "make_blobs(...) leaves random_state unset, so it draws from numpy's global "
            "generator, never seeded: each run gives a different result",
        )
    ]
    cells[1] = cells[1].replace("centers=3", "centers=3, random_state=0")
    assert "unseeded-random" not in [c for c, _ in codes(plan(write_notebook, cells))]


SEEDED_DRAWS = [
    "import numpy as np\nfrom sklearn.linear_model import LinearRegression",
    "np.random.seed(0)",
    "def noisy(n):\n    return np.random.normal(size=n)",
    "for size in (2, 3):\n    print(noisy(size))",
    "X = np.random.rand(50, 2)\ny = X @ [1.0, 2.0] + noisy(50)",
    "model = LinearRegression().fit(X, y)",
]


def test_a_dropped_draw_from_the_seeded_stream_is_named(write_notebook) -> None:
    """A cell the package drops (it only shows draws, in a loop no single statement can stand
    for) draws from numpy's seeded generator (through the notebook's own function) before the
    training data is drawn from it: the package's data are other numbers than the notebook's.
    Seeding again before the kept draws puts them back."""
    result = plan(write_notebook, SEEDED_DRAWS)
    assert not next(c for c in result.cells if c.cell == 4).kept
    found = [
        (f.cell, f.line, f.message) for f in result.findings if f.code == "dropped-random-draw"
    ]
    assert found == [
        (
            4,
            2,
            "noisy(...) draws from numpy's global generator, seeded in cell 2, and the package "
            "drops it: numpy.random.rand(...) in cell 5 then draws other numbers than in the "
            "notebook",
        )
    ]
    cells = [*SEEDED_DRAWS]
    cells[4] = "np.random.seed(1)\n" + cells[4]
    assert "dropped-random-draw" not in [c for c, _ in codes(plan(write_notebook, cells))]


@pytest.mark.parametrize(
    ("shown", "kept"),
    [
        ("print(noisy(5))", "noisy(5)"),  # the notebook's own drawing function
        ("plt.plot(np.random.normal(size=5), 'o')", "np.random.normal(size=5)"),
        # a library method that draws from numpy's generator, as its installed source reads
        (
            "plt.plot(ArmaProcess([1, -0.5], [1]).generate_sample(nsample=50))",
            "ArmaProcess([1, -0.5], [1]).generate_sample(nsample=50)",
        ),
        ("table.sample(3)", "table.sample(3)"),  # pandas, random_state left unset
    ],
)
def test_a_draw_only_shown_before_kept_draws_is_kept_without_its_display(
    write_notebook, shown: str, kept: str
) -> None:
    """A cell that only shows a draw from the seeded generator, before the training data is
    drawn from it: the package runs the draw alone, so its data are the notebook's numbers."""
    cells = [*SEEDED_DRAWS]
    cells[0] += (
        "\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
        "from statsmodels.tsa.arima_process import ArmaProcess"
    )
    cells[2] += "\n\ntable = pd.DataFrame({'a': range(10)})"
    cells[3] = shown
    result = plan(write_notebook, cells)
    assert "dropped-random-draw" not in [c for c, _ in codes(result)]
    cell = next(c for c in result.cells if c.cell == 4)
    assert cell.kept and cell.role != "explore"
    block = next(b for step in result.steps for b in step.blocks if b.cell == 4)
    assert block.source.split("  #")[0] == f"_ = {kept}"
    assert [d.reason for d in cell.dropped] == [KEPT_DRAW_REASON]


@pytest.mark.parametrize(
    "shown",
    [
        "print([noisy(2) for _ in range(3)])",  # runs three times: no one statement stands for it
        "print(noisy(2) if len(table) > 5 else None)",  # may not run at all
        "fig = plt.figure()\nfig.gca().plot(noisy(len(fig.axes) + 2))",  # reads a figure
        "a = 1; print(noisy(2))",  # shares its line with another statement
    ],
)
def test_a_shown_draw_no_statement_of_its_own_can_stand_for_stays_out_and_is_named(
    write_notebook, shown: str
) -> None:
    cells = [*SEEDED_DRAWS]
    cells[0] += "\nimport matplotlib.pyplot as plt\nimport pandas as pd"
    cells[2] += "\n\ntable = pd.DataFrame({'a': range(10)})"
    cells[3] = shown
    result = plan(write_notebook, cells)
    assert [(f.cell, f.code) for f in result.findings if f.code == "dropped-random-draw"] == [
        (4, "dropped-random-draw")
    ]
    block = [b for step in result.steps for b in step.blocks if b.cell == 4]
    assert "noisy" not in "".join(b.source for b in block)


def test_a_draw_nothing_reads_before_a_kept_draw_is_kept(write_notebook) -> None:
    """A draw bound to a name only shown (`demo = noisy(5)`) in a cell the package keeps: the
    seeded generator is state the training data's draw reads, so the draw is kept, its print
    is not, and the package's data are the notebook's (nothing to name)."""
    cells = [*SEEDED_DRAWS]
    cells[3] = "demo = noisy(5)\nprint(demo)"
    result = plan(write_notebook, cells)
    demo = next(c for c in result.cells if c.cell == 4)
    assert demo.kept and [d.line for d in demo.dropped] == [2]
    assert "dropped-random-draw" not in [c for c, _ in codes(result)]


def test_seeded_randomness_is_quiet(write_notebook) -> None:
    result = plan(write_notebook, TRAINING_CELLS)
    assert "unseeded-random" not in [c for c, _ in codes(result)]


def test_secrets_in_keywords_dicts_and_shell_lines_are_masked(write_notebook) -> None:
    token = "ghp_" + "a1B2c3D4" * 5
    cells = [
        *TRAINING_CELLS,
        f"!curl -H 'Authorization: token {token}' https://api.example.org",
        "import requests\nconfig = {'password': 'hunter2hunter2'}\n"
        "requests.get('https://example.org', headers={'api_key': 'k3y-v4lue-99'})",
        "print({'token': 'shown-only-0123'})",
    ]
    result = plan(write_notebook, cells)
    secrets = [f for f in result.findings if f.code == "secret"]
    assert [f.cell for f in secrets] == [6, 7, 7, 8]
    text = result.to_json()
    for value in (token, "hunter2hunter2", "k3y-v4lue-99", "shown-only-0123"):
        assert value not in text
    assert "ghp_********" in text


def test_placeholders_are_not_secrets(write_notebook) -> None:
    cells = [*TRAINING_CELLS, "API_KEY = '<your-api-key>'\nTOKEN = ''\nmax_tokens = 'abcdefgh'"]
    assert "secret" not in [c for c, _ in codes(plan(write_notebook, cells))]


def test_absolute_paths(write_notebook) -> None:
    cells = [
        "import pandas as pd\n" + TRAINING_CELLS[0],
        "X, y = load_iris(return_X_y=True)\n"
        "extra = pd.read_csv('/Users/ana/data/train.csv')\n"
        "other = pd.read_csv('C:\\\\data\\\\x.csv')\n"
        "X = X[: len(extra) + len(other)]",
        *TRAINING_CELLS[2:],
    ]
    result = plan(write_notebook, cells)
    assert [c for c in codes(result) if c[0] == "absolute-path"] == [("absolute-path", 2)] * 2


# requirements ------------------------------------------------------------------------------


def test_local_modules_and_unresolved_imports(write_notebook, tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("def clean(x):\n    return x\n")
    cells = [
        TRAINING_CELLS[0] + "\nfrom helpers import clean\nimport notinstalledpkg_xyz",
        "X, y = load_iris(return_X_y=True)\nX = clean(X)\nnotinstalledpkg_xyz.touch(X)",
        *TRAINING_CELLS[2:],
        "%pip install lightgbm==4.5.0",
    ]
    result = plan(write_notebook, cells)
    assert [(m.module, m.path, m.cell) for m in result.local_modules] == [
        ("helpers", "helpers.py", 1)
    ]
    requirements = {r.name: r.specifier for r in result.requirements}
    assert requirements["lightgbm"] == "==4.5.0"
    assert requirements["notinstalledpkg_xyz"] == ""
    assert ("unpinned-requirement", 1) in codes(result)
    assert ("local-module", 1) in codes(result)
    assert "helpers" not in requirements


def test_relative_data_files_are_listed(write_notebook, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    cells = [
        "import pandas as pd\n" + TRAINING_CELLS[0],
        "X, y = load_iris(return_X_y=True)\n"
        "extra = pd.read_csv('train.csv')\nmore = pd.read_parquet(path='missing.parquet')\n"
        "remote = pd.read_csv('https://example.org/x.csv')\n"
        "X = X[: len(extra) + len(more) + len(remote)]",
        *TRAINING_CELLS[2:],
    ]
    result = plan(write_notebook, cells)
    assert [(d.path, d.cell, d.size) for d in result.data_files] == [
        ("train.csv", 2, 8),
        ("missing.parquet", 2, None),
    ]
    assert ("missing-data-file", 2) in codes(result)
