"""The classes of real notebook that broke conversions, each as a small notebook of its own.

Every class here was seen on public notebooks nobody on this project wrote (see
benchmarks/funnel.py): plots woven into training, metrics that are only printed, boosters
and statsmodels, data paths built in code, several models, things that fit but do not
predict, the notebook's own lint debt. Each test states what a user must see.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, run_module, store_in

from nb2prod.backend.codegen import generate
from nb2prod.errors import InputError
from nb2prod.frontend.planner import build_plan

IRIS_SPLIT = [
    "import numpy as np\n"
    "import matplotlib.pyplot as plt\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.metrics import accuracy_score",
    "X, y = load_iris(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
]


def dropped(plan, cell: int) -> dict[int, str]:
    return {d.line: d.reason for d in plan.cells[cell - 1].dropped}


# 1. Plotting woven into modelling ---------------------------------------------------------


def test_plot_names_are_display_code_and_drop_with_it(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                *IRIS_SPLIT,
                "from sklearn.svm import SVC\n"
                "fig, ax = plt.subplots()\n"
                "cmap = plt.cm.coolwarm\n"
                "clf = SVC(random_state=0)\n"
                "clf.fit(X_train, y_train)\n"
                "xx, yy = np.meshgrid(np.arange(4, 8, 0.1), np.arange(2, 5, 0.1))\n"
                "Z = clf.predict(np.c_[xx.ravel(), yy.ravel(), xx.ravel(), yy.ravel()])\n"
                "contours = ax.contourf(xx, yy, Z.reshape(xx.shape), cmap=cmap)\n"
                "ticks = np.arange(4, 8)\n"
                "ax.set_xticks(ticks)",
            ]
        )
    )
    reasons = dropped(plan, 3)
    assert reasons[2] == reasons[3] == reasons[8] == reasons[10] == "only displays or plots"
    assert reasons[6].startswith("computes xx, yy, which nothing the model")
    assert reasons[7].startswith("computes Z, which nothing")
    assert reasons[9].startswith("computes ticks, which nothing")
    code = "".join(block.source for step in plan.steps for block in step.blocks)
    assert "meshgrid" not in code and "ticks" not in code and "clf.fit" in code


def test_subplots_in_a_training_loop_are_pruned_and_the_loop_kept(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                *IRIS_SPLIT,
                "from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.tree import DecisionTreeClassifier\n"
                "models = {'lr': LogisticRegression(max_iter=500), "
                "'tree': DecisionTreeClassifier(random_state=0)}\n"
                "fig, axes = plt.subplots(1, 2)\n"
                "for i, (name, model) in enumerate(models.items()):\n"
                "    model.fit(X_train, y_train)\n"
                "    acc = accuracy_score(y_test, model.predict(X_test))\n"
                "    axes[i].bar(range(3), [1, 2, 3])\n"
                "    axes[i].set_title(name)",
            ]
        )
    )
    code = next(b.source for s in plan.steps for b in s.blocks if b.cell == 3)
    assert "axes" not in code and "model.fit(X_train, y_train)" in code
    assert dropped(plan, 3)[8] == "only displays or plots"
    assert plan.model.name == "model" and plan.honesty.implementation_status == "IMPLEMENTED"


# 3. Evaluation that prints ----------------------------------------------------------------


def test_printed_metrics_are_measured_not_dropped(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                *IRIS_SPLIT,
                "from sklearn.ensemble import RandomForestClassifier\n"
                "from sklearn.metrics import classification_report, f1_score\n"
                "model = RandomForestClassifier(n_estimators=10, random_state=0)\n"
                "model.fit(X_train, y_train)\n"
                "y_pred = model.predict(X_test)",
                "print(classification_report(y_test, y_pred))\n"
                "print('accuracy:', accuracy_score(y_test, y_pred))\n"
                "print(f\"f1 {f1_score(y_test, y_pred, average='macro'):.3f}\")",
                "model.score(X_test, y_test)",
            ]
        )
    )
    metrics = {m.name: (m.function, m.validation) for m in plan.metrics}
    assert metrics == {
        "accuracy": ("accuracy_score", "holdout"),
        "f1": ("f1_score", "holdout"),
        "model_score": ("score", "holdout"),
    }
    assert plan.honesty.implementation_status == "IMPLEMENTED"
    reasons = dropped(plan, 4)
    assert reasons[1] == "only displays or plots"  # the report is only shown
    assert reasons[2] == "printing dropped; the metric it shows is kept as accuracy"


# 4. Training APIs other than .fit ----------------------------------------------------------


@pytest.mark.parametrize(
    ("train", "model", "estimator"),
    [
        (
            "import xgboost as xgb\n"
            "dtrain = xgb.DMatrix(X_train, label=y_train)\n"
            "bst = xgb.train({'max_depth': 2}, dtrain, num_boost_round=5)",
            "bst",
            "xgboost.Booster",
        ),
        (
            "import lightgbm as lgb\n"
            "train_set = lgb.Dataset(X_train, y_train)\n"
            "booster = lgb.train({'verbose': -1}, train_set=train_set)",
            "booster",
            "lightgbm.Booster",
        ),
    ],
)
def test_native_boosters_are_models_trained_on_the_frame(
    write_notebook, train: str, model: str, estimator: str
) -> None:
    plan = build_plan(write_notebook([*IRIS_SPLIT, train]))
    assert (plan.model.name, plan.model.estimator) == (model, estimator)
    assert plan.model.fit_inputs == ("X_train",)  # what the DMatrix/Dataset was built from


def test_statsmodels_results_are_the_model(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                "import numpy as np\nimport pandas as pd\nimport statsmodels.api as sm",
                "rng = np.random.default_rng(0)\n"
                "X = pd.DataFrame({'a': rng.normal(size=50), 'b': rng.normal(size=50)})\n"
                "y = 2 * X['a'] + rng.normal(size=50)",
                "Xc = sm.add_constant(X)\nresults = sm.OLS(y, Xc).fit()\nprint(results.summary())",
            ]
        )
    )
    assert plan.model.name == "results" and plan.model.fit_inputs == ("Xc",)
    assert plan.model.estimator == "statsmodels.api.OLS"


@pytest.mark.parametrize(
    ("cells", "says"),
    [
        (
            [
                "import torch",
                "net = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
                "for _ in range(3):\n"
                "    loss = net(torch.zeros(4, 2)).sum()\n"
                "    loss.backward()\n"
                "    opt.step()",
            ],
            "cell 2: the notebook never gives the model net any data (no net.fit(X, ...), "
            "net.predict(X) or net(X) on a variable)",
        ),
    ],
)
def test_deep_learning_is_refused_by_name(write_notebook, cells, says) -> None:
    result = run_cli("plan", write_notebook(cells))  # by plan, before convert
    assert result.code == 2 and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


# 5. Data paths built in code ---------------------------------------------------------------


def test_data_paths_built_in_code_are_resolved_and_shipped(write_notebook, tmp_path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x,y\n1,2\n2,4\n3,6\n4,8\n")
    notebook = write_notebook(
        [
            "import os\nfrom pathlib import Path\nimport pandas as pd\n"
            "from sklearn.linear_model import LinearRegression",
            "DATA = 'data/'\nname = 'train'\n"
            "a = pd.read_csv(DATA + 'train.csv')\n"
            "b = pd.read_csv(os.path.join('data', 'train.csv'))\n"
            "c = pd.read_csv(Path('data') / 'train.csv')\n"
            "d = pd.read_csv(f'data/{name}.csv')\n"
            "df = pd.concat([a, b, c, d])",
            "model = LinearRegression()\nmodel.fit(df[['x']], df['y'])",
        ]
    )
    plan = build_plan(notebook)
    assert {(d.path, d.size) for d in plan.data_files} == {("data/train.csv", 20)}
    result = run_cli("convert", notebook, "-o", tmp_path / "pkg")
    assert result.code == 0, result.stderr
    pipeline = (tmp_path / "pkg" / "nb" / "pipeline.py").read_text()
    assert pipeline.count('data_path("data/train.csv")') == 4
    assert (tmp_path / "pkg" / "nb" / "data" / "data" / "train.csv").is_file()


@pytest.mark.parametrize(
    ("load", "says"),
    [
        (
            "frames = [pd.read_csv(f'data/{part}.csv') for part in parts]",
            "cell 2, line 3: reads a file whose path is built by f'data/{part}.csv'",
        ),
        ("frames = [pd.read_csv(DATA + 'absent.csv')]", "cell 2, line 3: reads 'data/absent.csv'"),
    ],
)
def test_a_data_path_that_cannot_ship_is_refused_before_writing(
    write_notebook, tmp_path, load: str, says: str
) -> None:
    notebook = write_notebook(
        [
            "import pandas as pd\nfrom sklearn.linear_model import LinearRegression",
            f"DATA = 'data/'\nparts = ['a', 'b']\n{load}\ndf = pd.concat(frames)",
            "model = LinearRegression()\nmodel.fit(df[['x']], df['y'])",
        ]
    )
    result = run_cli("convert", notebook, "-o", tmp_path / "pkg")
    assert result.code == 2 and says in result.stderr, result.stderr
    assert not (tmp_path / "pkg").exists()


# 7. Several models --------------------------------------------------------------------------

SEVERAL = [
    *IRIS_SPLIT,
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.tree import DecisionTreeClassifier\n"
    "baseline = LogisticRegression(max_iter=500)\nbaseline.fit(X_train, y_train)\n"
    "tree = DecisionTreeClassifier(random_state=0)\ntree.fit(X_train, y_train)",
    "scores = {name: accuracy_score(y_test, m.predict(X_test)) "
    "for name, m in [('baseline', baseline), ('tree', tree)]}",
]


def test_the_notebooks_own_pick_of_several_models_is_the_model(write_notebook) -> None:
    cells = [
        *SEVERAL,
        "best_model = {'baseline': baseline, 'tree': tree}[max(scores, key=scores.get)]\n"
        "best_accuracy = accuracy_score(y_test, best_model.predict(X_test))",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.model.name == "best_model"
    assert plan.model.reason == "the notebook picks it as its best model (cell 5)"
    assert plan.model.fit_inputs[:1] == ("X_train",)
    assert [m.name for m in plan.metrics if m.held_out] == ["best_accuracy"]


def test_without_a_pick_the_last_fitted_and_model_flag_chooses_another(write_notebook) -> None:
    notebook = write_notebook(SEVERAL)
    plan = build_plan(notebook)
    assert plan.model.name == "tree"
    (finding,) = [f for f in plan.findings if f.code == "ambiguous-model"]
    assert "--model NAME" in (finding.hint or "")
    chosen = build_plan(notebook, model_name="baseline")
    assert chosen.model.name == "baseline" and chosen.model.reason == "named by --model"
    assert run_cli("plan", notebook, "--model", "baseline").code == 0


def test_an_import_in_a_later_cell_is_not_a_value_between_steps(write_notebook, tmp_path) -> None:
    notebook = write_notebook(
        [
            *IRIS_SPLIT,
            "def make():\n    return KNeighborsClassifier()",
            "from sklearn.neighbors import KNeighborsClassifier\n"
            "knn = make()\nknn.fit(X_train, y_train)",
            "acc = accuracy_score(y_test, knn.predict(X_test))",
        ]
    )
    result = run_cli("convert", notebook, "-o", tmp_path / "pkg")
    assert result.code == 0, result.stderr


# 8. The wrong object as the model, or none ---------------------------------------------------


def test_what_fits_but_does_not_predict_is_never_the_model(write_notebook) -> None:
    cells = [
        "from sklearn.datasets import load_iris\nfrom sklearn.decomposition import PCA\n"
        "from sklearn.covariance import EmpiricalCovariance\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler",
        "X, y = load_iris(return_X_y=True)",
        "pca = PCA(n_components=2)\npca.fit(X)\ncov = EmpiricalCovariance().fit(X)\n"
        "pipe = make_pipeline(StandardScaler(), PCA())\npipe.fit(X)",
    ]
    with pytest.raises(InputError) as error:
        build_plan(write_notebook(cells))
    assert (
        "no model nb2prod can serve: the notebook fits only PCA (cell 3), EmpiricalCovariance "
        "(cell 3), make_pipeline ending in PCA (cell 3), which transform, cluster or describe "
        "data rather than predict"
    ) in str(error.value)
    cells.append("from sklearn.svm import SVC\nsvc = SVC()\nsvc.fit(pca.transform(X), y)")
    assert build_plan(write_notebook(cells)).model.name == "svc"


def test_a_refusal_says_only_what_is_known_of_what_was_fitted(write_notebook) -> None:
    """A statsmodels class without predict (its results may predict) is not called a
    transformer: the refusal says what is true of it, and groups its cells."""
    cells = [
        "import numpy as np\nfrom statsmodels.nonparametric.kde import KDEUnivariate\n"
        "from sklearn.decomposition import PCA",
        "x = np.random.default_rng(0).normal(size=100)\nkde = KDEUnivariate(x)\nkde.fit()",
        "kde.fit(bw=0.5)\npca = PCA().fit(x.reshape(-1, 1))",
    ]
    with pytest.raises(InputError) as error:
        build_plan(write_notebook(cells))
    assert (
        "no model nb2prod can serve: the notebook fits only KDEUnivariate (cells 2, 3), whose "
        "class has no predict method; PCA (cell 3), which transform, cluster or describe data "
        "rather than predict"
    ) in str(error.value)


def test_a_model_fitted_only_inside_a_helper_is_not_the_global(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                *IRIS_SPLIT,
                "from sklearn.linear_model import LogisticRegression\n"
                "def evaluate(model):\n"
                "    model.fit(X_train, y_train)\n"
                "    return model.score(X_test, y_test)",
                "model = LogisticRegression(max_iter=500)\nclf = LogisticRegression()\n"
                "clf.fit(X_train, y_train)\nscore = evaluate(model)",
            ]
        )
    )
    assert plan.model.name == "clf"


# 2, 6, 8, 10. Conversions that say OK must train, and lint clean ---------------------------

TRAINS = {
    "input_rebound_after_the_fit": [  # the model is served what it was fitted on
        "import numpy as np\nfrom sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression",
        "X, y = load_iris(return_X_y=True)\nmodel = LogisticRegression(max_iter=500)\n"
        "model.fit(X, y)\nacc = model.score(X, y)",
        "X = np.array(['A', 'B', 'C'] * 4, dtype=object).reshape(-1, 1)\nprint(X.shape)",
    ],
    "plots_and_printing": [
        *IRIS_SPLIT,
        "from sklearn.svm import SVC\nfig, ax = plt.subplots()\nclf = SVC(random_state=0)\n"
        "clf.fit(X_train, y_train)\nxx, yy = np.meshgrid(np.arange(3), np.arange(3))\n"
        "contours = ax.contourf(xx, yy, xx * yy)",
        "print('accuracy', accuracy_score(y_test, clf.predict(X_test)))",
    ],
    "fit_on_a_slice_of_an_array": [
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression",
        "X, y = load_iris(return_X_y=True)\nn = 120",
        "model = LogisticRegression(max_iter=1000)\nmodel.fit(X[:n], y[:n])\n"
        "acc = model.score(X[n:], y[n:])",
    ],
    "lint_debt": [
        "import os\nimport numpy as np\nfrom sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import Ridge\nfrom sklearn.metrics import r2_score\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_diabetes(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "from os.path import *",
        "reg = Ridge(alpha=1.0)\nreg.fit(X_train, y_train)\n"
        "r2 = r2_score(y_test, reg.predict(X_test))\nif r2 == None:\n    reg.fit(X_test, y_test)",
    ],
}


OLDER_SCIKIT_LEARN = [
    "import numpy as np\nimport pandas as pd\nfrom sklearn.compose import make_column_transformer\n"
    "from sklearn.ensemble import RandomForestRegressor\n"
    "from sklearn.metrics import mean_squared_error\nfrom sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import OneHotEncoder\n"
    "from sklearn.model_selection import train_test_split",
    "rng = np.random.default_rng(0)\n"
    "df = pd.DataFrame({'city': rng.choice(['a', 'b'], 200), 'size': rng.normal(size=200)})\n"
    "y = df['size'] * 2 + (df['city'] == 'a')\n"
    "X_train, X_test, y_train, y_test = train_test_split(df, y, random_state=0)",
    "model = make_pipeline(\n"
    "    make_column_transformer(\n"
    "        (OneHotEncoder(sparse=False), ['city']), remainder='passthrough'\n"
    "    ),\n"
    "    RandomForestRegressor(n_estimators=20, max_features='auto', criterion='mse'),\n"
    ")\nmodel.fit(X_train, y_train)\n"
    "rmse = mean_squared_error(y_test, model.predict(X_test), squared=False)",
]
TRAINS["written_for_an_older_scikit_learn"] = OLDER_SCIKIT_LEARN


@pytest.mark.parametrize("name", sorted(TRAINS))
def test_a_conversion_that_says_ok_trains_and_lints_clean(write_notebook, tmp_path, name) -> None:
    notebook = write_notebook(TRAINS[name], name=f"{name}.ipynb")
    target = tmp_path / "pkg"
    converted = run_cli("convert", notebook, "-o", target)
    assert converted.code == 0, converted.stderr
    if name == "lint_debt":
        assert "Notebook lint debt carried as '# noqa'" in converted.stdout
        assert "# noqa: F403" in (target / name / "pipeline.py").read_text()
        assert f"  {name}/pipeline.py:" in converted.stdout  # not the staging folder's path
    env = {
        **os.environ,
        "PYTHONPATH": str(target),
        "MLFLOW_TRACKING_URI": store_in(tmp_path),
    }
    trained = run_module(f"{name}.train", cwd=tmp_path, env=env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "Traceback" not in trained.stderr
    linted = run_cli("lint", target)
    assert linted.code == 0, linted.stdout + linted.stderr


def test_a_model_a_notebook_function_fits_and_returns_is_the_model(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                *IRIS_SPLIT,
                "from sklearn.linear_model import LogisticRegression\n"
                "def train(features, labels):\n"
                "    model = LogisticRegression(max_iter=500)\n"
                "    model.fit(features, labels)\n"
                "    return model",
                "clf = train(X_train, y_train)\nacc = accuracy_score(y_test, clf.predict(X_test))",
            ]
        )
    )
    assert (plan.model.name, plan.model.fit_inputs[:1]) == ("clf", ("X_train",))
    assert plan.honesty.implementation_status == "IMPLEMENTED"


def test_a_loop_over_a_figures_axes_keeps_training_without_them(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                *IRIS_SPLIT,
                "from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.tree import DecisionTreeClassifier\n"
                "def plot_boundary(model, ax):\n"
                "    ax.set_title(type(model).__name__)",
                "fig, axs = plt.subplots(1, 2)\n"
                "for ax, clf in zip(axs, [LogisticRegression(), DecisionTreeClassifier()]):\n"
                "    clf.fit(X_train, y_train)\n"
                "    plot_boundary(clf, ax)",
                "acc = accuracy_score(y_test, clf.predict(X_test))",
            ]
        )
    )
    code = next(b.source for s in plan.steps for b in s.blocks if b.cell == 4)
    assert "for clf in [LogisticRegression(), DecisionTreeClassifier()]:" in code
    assert "axs" not in code and "plot_boundary" not in code
    assert dropped(plan, 4)[2].startswith("the loop no longer walks the figure's axes")
    assert dropped(plan, 3)[3] == "defines plot_boundary, which nothing the model needs calls"


def test_an_unused_loop_over_axes_goes_whole_and_imports_in_data_cells_stay_imports(
    write_notebook, tmp_path
) -> None:
    notebook = write_notebook(
        [
            "import matplotlib.pyplot as plt\nfrom sklearn.model_selection import train_test_split",
            "from sklearn.datasets import load_iris\nfrom sklearn.svm import SVC\n"
            "X, y = load_iris(return_X_y=True)\nsamplers = [1, 2]\n"
            "fig, axs = plt.subplots(1, 2)\n"
            "for ax, sampler in zip(axs, samplers):\n"
            "    title = 'first' if sampler == 1 else None\n"
            "    ax.set_title(title)",
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
            "model = SVC().fit(X_train, y_train)\nscore = model.score(X_test, y_test)",
        ]
    )
    result = run_cli("convert", notebook, "-o", tmp_path / "pkg")
    assert result.code == 0, result.stderr
    pipeline = (tmp_path / "pkg" / "nb" / "pipeline.py").read_text()
    assert "for sampler in samplers" not in pipeline and "from sklearn.svm import SVC" in pipeline


def test_a_class_from_another_library_is_asked_whether_it_predicts(write_notebook) -> None:
    """statsmodels' KDEUnivariate fits and never predicts: the library itself says so."""
    cells = [
        "import numpy as np\nimport statsmodels.api as sm",
        "x = np.random.default_rng(0).normal(size=50)\nkde = sm.nonparametric.KDEUnivariate(x)\n"
        "kde.fit()",
    ]
    with pytest.raises(InputError, match="no model nb2prod can serve: the notebook fits only"):
        build_plan(write_notebook(cells))


def test_a_model_fitted_on_some_columns_is_served_those_columns(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                "import pandas as pd\nimport statsmodels.api as sm",
                "df = pd.DataFrame({'y': [0.0, 1, 0, 1, 1, 0], 'a': [1.0, 2, 3, 4, 5, 6], "
                "'b': [2.0, 1, 4, 3, 6, 5], 'unused': ['x'] * 6})",
                "res = sm.OLS(df['y'], df[['a', 'b']]).fit()",
            ]
        )
    )
    assert "model_input=df[['a', 'b']]" in generate(plan).run_body.replace('"', "'")


def test_a_bare_question_to_the_model_is_shown_not_kept(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                "import numpy as np\nimport pandas as pd\nimport statsmodels.api as sm",
                "X = pd.DataFrame({'x1': np.arange(20.0), 'x2': np.arange(20.0) % 3})\n"
                "y = 2 * X['x1'] + 1\nres = sm.OLS(y, X).fit()",
                "res.t_test('x1=x2')",
                "res.score_test(exog_extra=X ** 2)",
            ]
        )
    )
    assert not plan.cells[2].kept and not plan.cells[3].kept
    assert plan.cells[3].reason == "nothing the model, its metrics or its input depends on"


def test_models_fitted_only_inside_functions_are_refused_truthfully(write_notebook) -> None:
    cells = [
        *IRIS_SPLIT,
        "from sklearn.linear_model import LogisticRegression\n"
        "def evaluate(model):\n"
        "    model.fit(X_train, y_train)\n"
        "    return model.score(X_test, y_test)",
        "scores = [evaluate(LogisticRegression(C=c)) for c in (0.1, 1.0)]",
    ]
    with pytest.raises(InputError, match=r"fits models only inside functions \(cell 3\), where"):
        build_plan(write_notebook(cells))
    built_inside = (
        "from sklearn.linear_model import LogisticRegression\n"
        "def fit_methods(X, y):\n"
        "    estimator = LogisticRegression().fit(X, y)\n"
        "    return [estimator.score(X, y)]"
    )
    cells[2:] = [built_inside, "scores = fit_methods(X_train, y_train)"]
    with pytest.raises(InputError, match=r"fits models only inside functions \(cell 3\), where"):
        build_plan(write_notebook(cells))  # not "as an argument to something else"


def test_an_import_beside_a_helper_left_unused_is_not_imported_from_helpers(
    write_notebook, tmp_path
) -> None:
    notebook = write_notebook(
        [
            IRIS_SPLIT[0].replace("import numpy as np\n", ""),
            IRIS_SPLIT[1],
            "import numpy as np\nfrom sklearn.svm import SVC\n"
            "def plot_margin(clf, ax):\n    ax.plot(np.arange(3))\n"
            "def make_model():\n    return SVC(C=1.0)",
            "model = make_model()\nmodel.fit(np.asarray(X_train), y_train)\n"
            "acc = accuracy_score(y_test, model.predict(np.asarray(X_test)))",
        ]
    )
    target = tmp_path / "pkg"
    assert run_cli("convert", notebook, "-o", target).code == 0
    env = {**os.environ, "PYTHONPATH": str(target)}
    imported = subprocess.run(
        [sys.executable, "-c", "import nb.pipeline"], env=env, capture_output=True, text=True
    )
    assert imported.returncode == 0, imported.stderr


def test_a_model_fitted_on_a_reshaped_array_is_served_that_shape(write_notebook) -> None:
    plan = build_plan(
        write_notebook(
            [
                "import numpy as np\nfrom sklearn.linear_model import LinearRegression",
                "X_train = np.arange(20.0)\ny_train = 3 * X_train + 1",
                "unused = LinearRegression().fit(X_train.reshape(-1, 1), y_train).coef_\n"
                "reg = LinearRegression()\nreg.fit(X_train.reshape(-1, 1), y_train)",
            ]
        )
    )
    assert plan.model.name == "reg"  # not the class a chained fit was called on
    assert "model_input=X_train.reshape(-1, 1)" in generate(plan).run_body


@pytest.mark.parametrize(
    ("fit", "says"),
    [
        (
            "clf = LogisticRegression()\nax = plt.plot(clf.fit(X_train, y_train).predict(X_test))",
            "no model outside display code: the notebook fits only to draw (clf.fit(...) in cell",
        ),
        (
            "scores = cross_val_score_of(LogisticRegression().fit(X_train, y_train))",
            "no fitted model is kept: the notebook fits only as an argument to something else",
        ),
    ],
)
def test_refusals_say_what_the_notebook_fits(write_notebook, fit: str, says: str) -> None:
    cells = [
        *IRIS_SPLIT,
        "from sklearn.linear_model import LogisticRegression\n"
        "def cross_val_score_of(model):\n    return 1.0\n" + fit,
    ]
    with pytest.raises(InputError) as error:
        build_plan(write_notebook(cells))
    assert says in str(error.value)


def test_a_refit_assigned_to_itself_keeps_what_the_model_was_built_as(write_notebook) -> None:
    cells = [
        "from sklearn.datasets import load_iris\nfrom sklearn.cluster import DBSCAN\n"
        "from sklearn.pipeline import Pipeline\nfrom sklearn.preprocessing import StandardScaler",
        "X, y = load_iris(return_X_y=True)",
        "model = Pipeline([('scale', StandardScaler()), ('dbscan', DBSCAN())])\n"
        "model = model.fit(X)\nlabels = model[-1].labels_",
    ]
    with pytest.raises(
        InputError, match="no model nb2prod can serve: the notebook fits only Pipeline"
    ):
        build_plan(write_notebook(cells))


# 4. Model formulas, forecasters and two-call estimators ---------------------------------------

SERIES = [
    "import numpy as np\nimport pandas as pd\nimport statsmodels.api as sm\n"
    "import statsmodels.formula.api as smf\nfrom statsmodels.tsa.api import AutoReg",
    "rng = np.random.default_rng(0)\n"
    "df = pd.DataFrame({'a': rng.normal(size=60), 'b': rng.normal(size=60)})\n"
    "df['y'] = 2 * df['a'] + rng.normal(size=60)",
]


def test_a_name_called_in_a_formula_is_read_there() -> None:
    import ast

    from nb2prod.frontend.names import scan_names

    names = scan_names(ast.parse("f = 'y ~ double_it(a) + np.log(b) + c'").body)
    assert [(u.name, u.optional) for u in names.uses] == [("double_it", True), ("np", True)]


def test_a_statsmodels_formula_calling_a_notebook_function_is_refused(
    write_notebook,
) -> None:
    cells = [
        *SERIES,
        "def double_it(x):\n    return 2 * x",
        "results = smf.ols('y ~ double_it(a) + b', data=df).fit()",
    ]
    result = run_cli("plan", write_notebook(cells))
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "cell 4, line 1: the model's formula calls double_it()" in result.stderr
    assert "loaded" in result.stderr and "compute double_it(...) into a column" in result.stderr
    plain = build_plan(write_notebook([*SERIES, "results = smf.ols('y ~ a + b', data=df).fit()"]))
    assert plain.model.name == "results"  # columns in a formula are not names to find


def test_an_unservable_last_model_gives_way_to_one_the_notebook_fitted_before(
    write_notebook,
) -> None:
    cells = [
        *SERIES,
        "plain = smf.ols('y ~ a + b', data=df).fit()",
        "def double_it(x):\n    return 2 * x",
        "doubled = smf.ols('y ~ double_it(a) + b', data=df).fit()",
    ]
    path = write_notebook(cells)
    plan = build_plan(path)
    assert plan.model.name == "plain" and "doubled" in plan.model.reason
    passed_over = [f for f in plan.findings if f.code == "model-unservable"]
    assert len(passed_over) == 1 and passed_over[0].cell == 5
    assert passed_over[0].message.startswith("doubled is not the model: the model's formula calls")
    named = run_cli("plan", "--model", "doubled", path)  # a model the user names is not replaced
    assert named.code == 2 and "formula calls double_it()" in named.stderr


@pytest.mark.parametrize(
    "fit",
    [
        "res = AutoReg(df['y'], lags=2).fit()",
        "mod = AutoReg(df['y'], lags=2)\nres = mod.fit()",
        "res = sm.tsa.SARIMAX(df['y'], order=(1, 0, 0)).fit(disp=False)",
    ],
)
def test_a_time_series_model_is_a_forecaster_of_its_series(write_notebook, fit: str) -> None:
    plan = build_plan(write_notebook([*SERIES, fit + "\nforecast = res.predict(60, 65)"]))
    assert plan.model.name == "res" and plan.model.fit_inputs == ("df['y']",)
    assert plan.model.library == "statsmodels"


def test_a_forecaster_whose_order_a_selection_function_chose_is_its_model(
    write_notebook,
) -> None:
    select = (
        "from statsmodels.tsa.ar_model import ar_select_order\n"
        "selection = ar_select_order(df['y'], 3)\nres = selection.model.fit()"
    )
    plan = build_plan(write_notebook([*SERIES, select]))
    assert plan.model.name == "res" and plan.model.estimator == "statsmodels.tsa.ar_model.AutoReg"
    assert plan.model.fit_inputs == ("df['y']",)  # the series, not the maximum lag
    unknown = (
        "from statsmodels.tsa.ardl import ardl_select_order\n"
        "res = ardl_select_order(df['y'], 3, df[['a']], 2).model.fit()"
    )
    result = run_cli("plan", write_notebook([*SERIES, unknown]))
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "cell 3: the model res is built by ardl_select_order(...)" in result.stderr


def test_a_conformal_model_never_conformalized_is_refused(write_notebook) -> None:
    fit = (
        "from mapie.regression import SplitConformalRegressor\n"
        "from sklearn.linear_model import LinearRegression\n"
        "mapie = SplitConformalRegressor(LinearRegression(), prefit=False)\n"
        "mapie.fit(df[['a', 'b']][:30], df['y'][:30])\n"
    )
    with pytest.raises(InputError, match=r"never calls mapie.conformalize\(\.\.\.\)"):
        build_plan(write_notebook([*SERIES, fit]))
    ready = fit + "mapie.conformalize(df[['a', 'b']][30:], df['y'][30:])"
    assert build_plan(write_notebook([*SERIES, ready])).model.name == "mapie"


# 7. Several models: a name bound to something else after its fit is no longer the model -------


def test_a_model_rebound_after_its_fit_is_not_chosen(write_notebook) -> None:
    cells = [
        *SERIES,
        "res = smf.quantreg('y ~ a', df).fit(q=0.5)",
        "def at(q):\n    fitted = res.model.fit(q=q)\n    return fitted.params['a']\n\n\n"
        "ols = smf.ols('y ~ a + b', df).fit()\nols = dict(a=ols.params['a'], q=at(0.9))",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.model.name == "res" and plan.model.fit_inputs == ("df",)  # (formula, data)
    said = [f.message for f in plan.findings if f.code == "model-rebound"]
    assert said == ["ols is not the model: it is bound to something else after its fit"]


def test_a_notebook_whose_only_model_is_rebound_is_refused_where(write_notebook) -> None:
    cells = [*SERIES, "ols = smf.ols('y ~ a', df).fit()\nols = ols.params"]
    result = run_cli("plan", write_notebook(cells))
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "cell 3, line 2: ols is bound to something else after its fit" in result.stderr


def test_a_prefit_conformal_model_is_fitted_by_conformalize(write_notebook) -> None:
    cells = [
        *SERIES,
        "from mapie.regression import SplitConformalRegressor\n"
        "from sklearn.linear_model import LinearRegression\n"
        "base = LinearRegression().fit(df[['a', 'b']][:30], df['y'][:30])\n"
        "mapie = SplitConformalRegressor(base, prefit=True)\n"
        "mapie.conformalize(df[['a', 'b']][30:], df['y'][30:])",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.model.name == "mapie"
    assert plan.model.estimator == "mapie.regression.SplitConformalRegressor"
    assert plan.model.fit_inputs[0] == "df[['a', 'b']][30:]"


# 3, 4. A model a yellowbrick visualizer fits and scores ----------------------------------------


def test_a_visualizers_fit_and_score_are_the_models(write_notebook) -> None:
    cells = [
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import Ridge\n"
        "from sklearn.model_selection import train_test_split\n"
        "from yellowbrick.regressor import PredictionError, ResidualsPlot",
        "X, y = load_diabetes(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "visualizer = ResidualsPlot(Ridge(alpha=2.0), hist=False)\n"
        "visualizer.fit(X_train, y_train)  # fit the training data\n"
        "visualizer.score(X_test, y_test)\n"
        "visualizer.show()",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.model.name == "model" and plan.model.estimator == "sklearn.linear_model.Ridge"
    assert plan.model.fit_inputs == ("X_train", "y_train")
    assert [m.name for m in plan.metrics] == ["model_score"]
    code = "".join(block.source for step in plan.steps for block in step.blocks)
    assert "model = Ridge(alpha=2.0)\nmodel.fit(X_train, y_train)  # fit the training data" in code
    assert "visualizer" not in code
    reasons = dropped(plan, 3)
    assert reasons[1].endswith("the visualizer's fit and score are done on model itself")
    assert reasons[4] == "only displays or plots"


def test_a_fit_shown_is_a_fit(write_notebook) -> None:
    cells = [
        *IRIS_SPLIT,
        "from sklearn.linear_model import LogisticRegression\n"
        "clf = LogisticRegression(max_iter=500)\ndisplay(clf.fit(X_train, y_train))",
    ]
    plan = build_plan(write_notebook(cells))
    assert plan.model.name == "clf" and plan.model.fit_inputs == ("X_train", "y_train")
    assert dropped(plan, 3)[3] == "showing dropped; the fit it shows is kept"


# 3. A metric wrapped in arithmetic; 10. what the notebook saves to disk ------------------------


def test_a_wrapped_metric_is_measured_and_a_saved_copy_is_not_kept(write_notebook) -> None:
    cells = [
        "import joblib\nimport numpy as np\nfrom sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import Ridge\n"
        "from sklearn.metrics import mean_squared_error, r2_score\n"
        "from sklearn.model_selection import cross_val_score, train_test_split",
        "X, y = load_diabetes(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "reg = Ridge().fit(X_train, y_train)\n"
        "rmse = np.sqrt(mean_squared_error(y_test, reg.predict(X_test)))\n"
        "r2 = round(r2_score(y_test, reg.predict(X_test)), 3)\n"
        "cv = cross_val_score(reg, X, y, cv=3).mean()",
        "joblib.dump(reg, 'model.pkl')\nX_test.to_csv('test.csv')",
    ]
    plan = build_plan(write_notebook(cells))
    measured = {m.name: (m.function, m.validation, m.greater_is_better) for m in plan.metrics}
    assert measured == {
        "rmse": ("mean_squared_error", "holdout", False),
        "r2": ("r2_score", "holdout", True),
        "cv": ("cross_val_score", "cross-validation", True),
    }
    saved = dropped(plan, 4)
    assert (
        saved[1]
        == saved[2]
        == ("saves to a file; the package logs the model and its data to MLflow")
    )


# 10. A notebook written for another version of its libraries ----------------------------------

DIABETES = [
    "import numpy as np\nimport pandas as pd\nfrom sklearn import datasets\n"
    "from sklearn.linear_model import Ridge\nfrom sklearn.metrics import mean_squared_error\n"
    "from sklearn.model_selection import train_test_split",
    "X, y = datasets.load_diabetes(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
]


@pytest.mark.parametrize(
    ("cells", "says"),
    [
        (
            [
                *DIABETES,
                "reg = Ridge().fit(X_train, y_train)\nroot = len(y_test) > 0\n"
                "rmse = mean_squared_error(y_test, reg.predict(X_test), squared=not root)",
            ],
            "cell 3, line 3: mean_squared_error() takes no keyword 'squared' in scikit-learn ",
        ),
        (
            [
                *DIABETES,
                "boston = datasets.load_boston()\nreg = Ridge().fit(boston.data, boston.target)",
            ],
            "cell 3, line 1: datasets.load_boston() does not exist in scikit-learn ",
        ),
        (
            [
                *SERIES,
                "from statsmodels.tsa.ar_model import ar_select_order\n"
                "res = ar_select_order(df['y'], 3, old_names=True).model.fit()",
            ],
            "cell 3, line 2: ar_select_order() takes no keyword 'old_names' in statsmodels ",
        ),
    ],
)
def test_a_call_the_installed_library_no_longer_takes_is_refused_before_training(
    write_notebook, cells: list[str], says: str
) -> None:
    result = run_cli("plan", write_notebook(cells))
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert says in result.stderr and "the version installed here" in result.stderr
    assert "install the version the notebook was written for" in result.stderr


def test_calls_an_older_library_took_are_rewritten_where_the_rewrite_is_exact(
    write_notebook,
) -> None:
    plan = build_plan(write_notebook(OLDER_SCIKIT_LEARN))
    migrated = [(f.line, f.message) for f in plan.findings if f.code == "library-migrated"]
    assert [line for line, _ in migrated] == [3, 5, 5, 8]
    said = " ".join(message for _, message in migrated)
    for text in (
        "OneHotEncoder(): sparse=False was removed in scikit-learn 1.4; written as "
        "sparse_output=False, its replacement",
        "max_features='auto' was removed in scikit-learn 1.3; written as max_features=1.0",
        "criterion='mse' was removed in scikit-learn 1.2; written as criterion='squared_error'",
        "mean_squared_error(): squared=False was removed in scikit-learn 1.6; the square root",
    ):
        assert text in said, said
    code = "\n".join(step.source for step in generate(plan).pipeline)
    assert "OneHotEncoder(sparse_output=False)" in code
    assert (
        "RandomForestRegressor(n_estimators=20, max_features=1.0, criterion='squared_error')"
        in (code)
    )
    assert "rmse = (mean_squared_error(y_test, model.predict(X_test))) ** 0.5" in code
    assert [(m.name, m.greater_is_better) for m in plan.metrics] == [("rmse", False)]


def test_calls_the_installed_library_takes_are_not_questioned(write_notebook) -> None:
    cells = [
        *DIABETES,
        "params = {'alpha': 0.5}\nreg = Ridge(**params).fit(X_train, y_train)\n"
        "rmse = np.sqrt(mean_squared_error(y_test, reg.predict(X_test)))\n"
        "frame = pd.concat([X_test, y_test], axis=1).rename(columns={'target': 'y'})",
    ]
    assert build_plan(write_notebook(cells)).model.name == "reg"


def test_a_library_is_asked_once_then_its_signatures_come_from_the_cache(
    write_notebook, tmp_path: Path
) -> None:
    path = write_notebook([*DIABETES, "reg = Ridge().fit(X_train, y_train)"])
    probe = (
        "import sys\nfrom pathlib import Path\nfrom nb2prod.frontend.planner import build_plan\n"
        f"build_plan(Path({str(path)!r}))\nprint('sklearn' in sys.modules)"
    )
    env = {**os.environ, "NB2PROD_CACHE_DIR": str(tmp_path / "cache")}
    first, second = (
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        ).stdout.split()[-1]
        for _ in range(2)
    )
    assert (first, second) == ("True", "False")  # scikit-learn's import costs a plan ~2 s
