"""Classes of notebooks seen outside the corpus (issue 22) that converted and then failed to
train, or were refused with a reason that was not true. Each notebook is the smallest of its
class; each converts, trains and keeps what the model reads."""

from __future__ import annotations

import importlib.util
import json
import re
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
    set_up_by_ci,
)
from conftest import train_package as train
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from nb2prod.backend.render import convert
from nb2prod.errors import InputError
from nb2prod.frontend.planner import build_plan
from nb2prod_runtime import drift

TITANIC_LIKE = (
    "import numpy as np\n"
    "import pandas as pd\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.tree import DecisionTreeClassifier",
    "rng = np.random.default_rng(0)\n"
    "train = pd.DataFrame({'Sex': rng.choice(['male', 'female'], 200),"
    " 'Age': rng.integers(1, 80, 200)})\n"
    "train['Survived'] = (train['Sex'] == 'female').astype(int)\n"
    "test = train.sample(50, random_state=0).copy()",
)
FIT_ON_COLUMNS = (
    "features = ['Sex', 'Age']\n"
    "model = DecisionTreeClassifier(random_state=0).fit(train[features], train['Survived'])\n"
    "print(accuracy_score(test['Survived'], model.predict(test[features])))"
)
IRIS = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
)

TORCH_IRIS = (
    "import torch\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from torch import nn\n"
    "from torch.utils.data import DataLoader, TensorDataset",
    "def to_tensor(a):\n    return torch.tensor(a, dtype=torch.float32)",
    "torch.manual_seed(0)\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "loader = DataLoader(TensorDataset(to_tensor(X_train), torch.tensor(y_train)), "
    "batch_size=16, shuffle=True)\n"
    "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))\n"
    "opt = torch.optim.SGD(net.parameters(), lr=0.1)",
)
TORCH_IRIS_MEASURED = (
    "predicted = net(to_tensor(X_test)).argmax(dim=1)\naccuracy = accuracy_score(y_test, predicted)"
)

RATIO_ADDER = [
    "import numpy as np\n"
    "from sklearn.base import BaseEstimator, TransformerMixin\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline",
    "petal_ix, sepal_ix = 2, 0\n"
    "class RatioAdder(BaseEstimator, TransformerMixin):\n"
    "    def fit(self, X, y=None):\n"
    "        return self\n"
    "\n"
    "    def transform(self, X):\n"
    "        return np.c_[X, X[:, petal_ix] / X[:, sepal_ix]]\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "model = make_pipeline(RatioAdder(), LogisticRegression(max_iter=1000))\n"
    "model.fit(X_train, y_train)\n"
    "accuracy = model.score(X_test, y_test)",
]

NOTEBOOKS = {
    # a transformer reading column indexes its cell sets (Hands-On ML's housing notebook):
    # left local to the step, the fitted pipeline could not be saved (train failed)
    "a_transformer_reading_constants_of_its_cell": RATIO_ADDER,
    # the same transformer reading values its cell computes stays inside the step: the
    # model is logged as a cloudpickle, which names the class (skops cannot load it by name)
    "a_transformer_reading_values_of_its_step": [
        RATIO_ADDER[0],
        RATIO_ADDER[1]
        .replace(
            "petal_ix, sepal_ix = 2, 0\n",
            "X, y = load_iris(return_X_y=True)\n"
            "petal_ix, sepal_ix = int(np.argmax(X.std(axis=0))), 0\n",
        )
        .replace("X, y = load_iris(return_X_y=True)\nX_train", "X_train"),
    ],
    # the notebook's own evaluate(...), the name of a pipeline step, called by the step
    "a_notebook_function_named_as_a_pipeline_step": [
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, roc_auc_score\n"
        "from sklearn.model_selection import train_test_split",
        "def evaluate(model, X, y):\n"
        "    probabilities = model.predict_proba(X)[:, 1]\n"
        "    return roc_auc_score(y, probabilities), probabilities",
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "model = LogisticRegression(max_iter=5000).fit(X_train, y_train)",
        "auc, test_probs = evaluate(model, X_test, y_test)\n"
        "accuracy = accuracy_score(y_test, (test_probs > 0.5).astype(int))",
    ],
    # a network fitted on float64 rows a notebook function makes into float32 tensors: the
    # input example is what the function makes, not the rows
    "fitted_on_what_a_notebook_function_makes": [
        *TORCH_IRIS,
        "for epoch in range(20):\n"
        "    for xb, yb in loader:\n"
        "        opt.zero_grad()\n"
        "        nn.functional.cross_entropy(net(xb), yb).backward()\n"
        "        opt.step()",
        TORCH_IRIS_MEASURED,
    ],
    # an epoch in a notebook function handed the loader: its batches are the function's own
    "trained_by_a_function_handed_the_loader": [
        *TORCH_IRIS,
        "def train_one_epoch(model, loader, optimizer):\n"
        "    model.train()\n"
        "    for xb, yb in loader:\n"
        "        optimizer.zero_grad()\n"
        "        loss = nn.functional.cross_entropy(model(xb), yb)\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
        "    return loss.item()",
        "for epoch in range(20):\n    last_loss = train_one_epoch(net, loader, opt)",
        TORCH_IRIS_MEASURED,
    ],
    # a frame changed through a loop variable: `for df in [train, test]`
    "loop_over_a_list_of_frames": [
        *TITANIC_LIKE,
        "for df in [train, test]:\n    df['Sex'] = df['Sex'].map({'male': 0, 'female': 1})",
        FIT_ON_COLUMNS,
    ],
    # ... through a dict of frames named earlier
    "loop_over_a_dict_of_frames": [
        *TITANIC_LIKE,
        "combine = {'train': train, 'test': test}\n"
        "for name, df in combine.items():\n"
        "    df['Sex'] = df['Sex'].map({'male': 0, 'female': 1})\n"
        "    print(name, df.shape)",
        FIT_ON_COLUMNS,
    ],
    # ... through a notebook function's parameter, passed by position and by keyword
    "function_changing_its_argument": [
        *TITANIC_LIKE,
        "def encode(frame):\n"
        "    frame['Sex'] = frame['Sex'].map({'male': 0, 'female': 1})\n"
        "\n"
        "encode(train)\n"
        "encode(frame=test)",
        FIT_ON_COLUMNS,
    ],
    # `clf.set_params(...)` returns clf: the chained fit fits clf
    "set_params_then_fit_in_a_loop": [
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import Ridge\n"
        "from sklearn.metrics import r2_score\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_diabetes(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "clf = Ridge()\n"
        "for a in [0.1, 1.0, 10.0]:\n"
        "    clf.set_params(alpha=a).fit(X_train, y_train)\n"
        "    print(a, r2_score(y_test, clf.predict(X_test)))",
        "r2 = r2_score(y_test, clf.predict(X_test))",
    ],
    # HalvingRandomSearchCV exists once the notebook's enabling import has run
    "experimental_estimator_enabled_by_an_import": [
        "from sklearn.experimental import enable_halving_search_cv  # noqa\n"
        + IRIS
        + "from sklearn.model_selection import HalvingRandomSearchCV\n"
        "from sklearn.ensemble import RandomForestClassifier",
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "search = HalvingRandomSearchCV(RandomForestClassifier(random_state=0),"
        " {'max_depth': [2, 3, 4]}, random_state=0)\n"
        "search.fit(X_train, y_train)\n"
        "print(accuracy_score(y_test, search.predict(X_test)))",
    ],
    # a search with refit=False fitted last keeps no model: the pipeline before it is served
    "search_without_refit_after_the_model": [
        IRIS + "from sklearn.model_selection import GridSearchCV\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "from sklearn.svm import SVC",
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "pipe = make_pipeline(StandardScaler(), SVC(C=1.0))\n"
        "pipe.fit(X_train, y_train)\n"
        "print(accuracy_score(y_test, pipe.predict(X_test)))",
        "search = GridSearchCV(make_pipeline(StandardScaler(), SVC()), {'svc__C': [0.1, 1, 10]},"
        " refit=False, cv=3)\n"
        "search.fit(X_train, y_train)\n"
        "print(search.cv_results_['mean_test_score'])",
    ],
    # IPython strips the indentation of a cell whose first line is indented
    "cell_starting_with_a_space": [
        " " + IRIS.replace("\n", "\n ").rstrip() + "\n from sklearn.linear_model import "
        "LogisticRegression",
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "model = LogisticRegression(max_iter=500).fit(X_train, y_train)\n"
        "print(accuracy_score(y_test, model.predict(X_test)))",
    ],
    # experiment trackers send to a service: their calls are left out, inside loops too
    "experiment_tracker_calls": [
        "import wandb\nimport neptune\n"
        + IRIS
        + "from sklearn.linear_model import LogisticRegression",
        "wandb.init(project='iris', config={'C': 1.0})\n"
        "run = neptune.init_run(project='me/iris', api_token='not-a-token')",
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "for C in [0.1, 1.0]:\n"
        "    model = LogisticRegression(C=C, max_iter=500).fit(X_train, y_train)\n"
        "    wandb.log({'C': C, 'accuracy': accuracy_score(y_test, model.predict(X_test))})\n"
        "    run['eval/accuracy'] = accuracy_score(y_test, model.predict(X_test))\n"
        "acc = accuracy_score(y_test, model.predict(X_test))\n"
        "run.stop()",
    ],
    # a later cell of the same step rebinds what the model was fitted on: the input example is
    # taken as it was at the fit, not the five-column X_train after it
    "input_rebound_after_the_fit": [
        IRIS + "from sklearn.datasets import make_classification\n"
        "from sklearn.linear_model import LogisticRegression",
        "X, y = load_iris(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "model = LogisticRegression(max_iter=500).fit(X_train, y_train)\n"
        "print(accuracy_score(y_test, model.predict(X_test)))",
        "x, y = make_classification(n_features=5, random_state=0)\n"
        "X_train, X_test, y_train, _ = train_test_split(x, y, random_state=0)\n"
        "other = LogisticRegression().fit(X_train, y_train)",
    ],
    # the same, with the later example in a cell of its own that loads data: the loaded table
    # is then kept as loaded, which moved where run() looked for the steps after the fit
    # (train failed: "X has 5 features, but LogisticRegression is expecting 4")
    "input_rebound_by_a_later_cell_that_loads_data": [
        IRIS + "from sklearn.datasets import make_classification\n"
        "from sklearn.linear_model import LogisticRegression",
        "X, y = load_iris(return_X_y=True, as_frame=True)",
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "model = LogisticRegression(max_iter=500).fit(X_train, y_train)\n"
        "print(accuracy_score(y_test, model.predict(X_test)))",
        "X, y = make_classification(n_features=5, random_state=0)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    ],
    # a notebook class wrapping the module, fitted on a DataLoader and predicting on arrays:
    # the model's input is the tensor the loader draws from (train failed: DataLoader rows)
    "trainer_class_fitted_on_a_loader": [
        "import numpy as np\n"
        "import torch\n"
        "from torch import nn\n"
        "from torch.utils.data import DataLoader, TensorDataset\n"
        "from sklearn.datasets import load_wine\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split\n"
        "from sklearn.preprocessing import StandardScaler",
        "torch.manual_seed(0)\n"
        "X, y = load_wine(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "scaler = StandardScaler().fit(X_train)\n"
        "X_train_t = torch.tensor(scaler.transform(X_train), dtype=torch.float32)\n"
        "X_test_s = scaler.transform(X_test)\n"
        "train_loader = DataLoader(TensorDataset(X_train_t, torch.tensor(y_train)),"
        " batch_size=32, shuffle=True)",
        "class Trainer:\n"
        "    def __init__(self, model, lr=0.01, epochs=20):\n"
        "        self.model = model\n"
        "        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)\n"
        "        self.epochs = epochs\n"
        "\n"
        "    def fit(self, loader):\n"
        "        for epoch in range(self.epochs):\n"
        "            for xb, yb in loader:\n"
        "                self.optimizer.zero_grad()\n"
        "                nn.functional.cross_entropy(self.model(xb), yb).backward()\n"
        "                self.optimizer.step()\n"
        "        return self\n"
        "\n"
        "    def predict(self, X):\n"
        "        with torch.no_grad():\n"
        "            x = torch.tensor(np.asarray(X), dtype=torch.float32)\n"
        "            return self.model(x).argmax(1).numpy()",
        "net = nn.Sequential(nn.Linear(13, 16), nn.ReLU(), nn.Linear(16, 3))\n"
        "trainer = Trainer(net)\n"
        "trainer.fit(train_loader)\n"
        "acc = accuracy_score(y_test, trainer.predict(X_test_s))",
    ],
    # the most common layout: predictions in a cell of their own, measured in the next one
    "predictions_in_a_cell_of_their_own": [
        IRIS + "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import f1_score",
        "X, y = load_iris(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "clf = LogisticRegression(max_iter=500)\nclf.fit(X_train, y_train)",
        "preds = clf.predict(X_test)",
        "print(f1_score(y_test, preds, average='macro'))",
    ],
    # a vectorizer's sparse matrix is the model's input: the example and signature hold dense rows
    "fitted_on_a_sparse_matrix": [
        IRIS + "import pandas as pd\n"
        "from sklearn.feature_extraction.text import TfidfVectorizer\n"
        "from sklearn.naive_bayes import MultinomialNB",
        "words = ['good', 'great', 'fine', 'bad', 'awful', 'poor', 'film', 'plot', 'cast']\n"
        "texts = [' '.join(words[(i * k) % 9] for k in range(1, 6)) for i in range(120)]\n"
        "df = pd.DataFrame({'text': texts, 'liked': [int('g' in t[:6]) for t in texts]})",
        "X_train, X_test, y_train, y_test = train_test_split(df['text'], df['liked'],"
        " random_state=0)\n"
        "tfidf = TfidfVectorizer()\n"
        "X_train_tfidf = tfidf.fit_transform(X_train)\n"
        "X_test_tfidf = tfidf.transform(X_test)",
        "nb = MultinomialNB().fit(X_train_tfidf, y_train)\n"
        "print(accuracy_score(y_test, nb.predict(X_test_tfidf)))",
    ],
    # what a fit only shows is dropped: LightGBM 4's fit no longer takes `verbose`
    "display_only_fit_arguments": [
        "import lightgbm as lgb\n" + IRIS,
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "model = lgb.LGBMClassifier(n_estimators=20, random_state=0, verbose=-1)\n"
        "model.fit(X_train, y_train, eval_set=[(X_test, y_test)], verbose=False)\n"
        "acc = accuracy_score(y_test, model.predict(X_test))",
    ],
    # a network's class defined in the cell that trains it: not local to the step, and a
    # pipeline holding a skorch net is pickled (skops cannot hold torch's objects)
    "network_class_defined_where_it_is_trained": [
        "import numpy as np\n"
        "import torch\n"
        "from torch import nn\n"
        "from skorch import NeuralNetClassifier\n"
        "from sklearn.datasets import make_classification\n"
        "from sklearn.model_selection import train_test_split\n"
        "from sklearn.pipeline import Pipeline\n"
        "from sklearn.preprocessing import StandardScaler",
        "X, y = make_classification(200, 6, random_state=0)\n"
        "X, y = X.astype(np.float32), y.astype(np.int64)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        "class Classifier(nn.Module):\n"
        "    def __init__(self, units=8):\n"
        "        super().__init__()\n"
        "        self.layers = nn.Sequential(nn.Linear(6, units), nn.ReLU(), nn.Linear(units, 2))\n"
        "\n"
        "    def forward(self, X):\n"
        "        return self.layers(X)\n"
        "\n"
        "torch.manual_seed(0)\n"
        "net = NeuralNetClassifier(Classifier, max_epochs=5, lr=0.1, verbose=0)\n"
        "pipe = Pipeline([('scale', StandardScaler()), ('net', net)])\n"
        "pipe.fit(X_train, y_train)\n"
        "score = pipe.score(X_test, y_test)",
    ],
}


@pytest.mark.parametrize("case", sorted(NOTEBOOKS))
def test_the_notebook_converts_and_trains(
    case: str, write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    source = write_notebook(NOTEBOOKS[case], name=f"{case}.ipynb")
    package = convert(source, tmp_path / "package").target
    trained = train(package, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]


def test_a_class_defined_where_the_model_is_trained_is_a_helper(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """Left in the training step, the class would be local to it, and a model holding one
    could not be saved by reference: it moves to helpers.py, which the pipeline imports."""
    case = "network_class_defined_where_it_is_trained"
    source = write_notebook(NOTEBOOKS[case], name=f"{case}.ipynb")
    package = convert(source, tmp_path / "package").target / case
    assert "# From cell 3\nclass Classifier(nn.Module):" in (package / "helpers.py").read_text()
    pipeline = (package / "pipeline.py").read_text()
    assert f"from {case}.helpers import Classifier" in pipeline
    assert "class Classifier" not in pipeline


def test_the_input_example_has_the_columns_the_model_was_fitted_on(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """`fit(train[features], ...)`: the example is `train[features]`, not all of `train`."""
    source = write_notebook(
        NOTEBOOKS["loop_over_a_list_of_frames"], name="loop_over_a_list_of_frames.ipynb"
    )
    package = convert(source, tmp_path / "package").target
    pipeline = (package / "loop_over_a_list_of_frames" / "pipeline.py").read_text()
    assert "model_input=train[features]" in pipeline


def test_an_alias_mutation_is_kept_and_the_plan_says_nothing_of_it_dropped(
    write_notebook: Callable[..., Path],
) -> None:
    plan = build_plan(write_notebook(NOTEBOOKS["loop_over_a_list_of_frames"], name="frames.ipynb"))
    loop_cell = next(d for d in plan.cells if d.cell == 3)
    assert loop_cell.dropped == ()


REFUSED = {
    # a Pipeline whose last step transforms: it has no predict to serve
    "pipeline_ending_in_a_transformer": (
        [
            "from sklearn.datasets import load_iris\n"
            "from sklearn.neighbors import NeighborhoodComponentsAnalysis\n"
            "from sklearn.pipeline import make_pipeline\n"
            "from sklearn.preprocessing import StandardScaler",
            "X, y = load_iris(return_X_y=True)",
            "pipe = make_pipeline(StandardScaler(),"
            " NeighborhoodComponentsAnalysis(n_components=2, random_state=0))\n"
            "pipe.fit(X, y)\n"
            "print(pipe.transform(X)[:3])",
        ],
        "no model nb2prod can serve: the notebook fits only make_pipeline ending in "
        "NeighborhoodComponentsAnalysis (cell 3), whose class has no predict method",
    ),
    # nested cross-validation: the search is only ever fitted by cross_val_score, on copies
    "search_only_cross_validated": (
        [
            "from sklearn.datasets import load_iris\n"
            "from sklearn.model_selection import GridSearchCV, cross_val_score\n"
            "from sklearn.svm import SVC",
            "X, y = load_iris(return_X_y=True)",
            "inner = GridSearchCV(SVC(), {'C': [0.1, 1, 10]}, cv=3)\n"
            "nested = cross_val_score(inner, X, y, cv=3)\n"
            "print(nested.mean())",
        ],
        "no fitted model: the notebook only cross-validates GridSearchCV with cross_val_score "
        "(cell 3), which fits copies of the model and keeps none of them",
    ),
    # a search that keeps no best model, and nothing else fitted
    "search_without_refit_alone": (
        [
            "from sklearn.datasets import load_iris\n"
            "from sklearn.model_selection import GridSearchCV\n"
            "from sklearn.svm import SVC",
            "X, y = load_iris(return_X_y=True)",
            "search = GridSearchCV(SVC(), {'C': [0.1, 1, 10]}, refit=False, cv=3)\n"
            "search.fit(X, y)\n"
            "print(search.cv_results_['mean_test_score'])",
        ],
        "the notebook fits only GridSearchCV (cell 3), searched with refit=False, which keeps "
        "no model that predicts",
    ),
    # a set-up line pinning what this environment does not have
    "pip_line_the_environment_contradicts": (
        [
            '!pip install -U "scikit-learn<1.0"',
            IRIS + "from sklearn.linear_model import LogisticRegression",
            *NOTEBOOKS["cell_starting_with_a_space"][1:],
        ],
        "cell 1: the notebook installs scikit-learn<1.0, but scikit-learn ",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_would_fail_at_train_is_refused_at_convert_in_one_true_line(
    case: str, write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    cells, wording = REFUSED[case]
    source = write_notebook(cells, name=f"{case}.ipynb")
    with pytest.raises(InputError) as refused:
        convert(source, tmp_path / "package")
    assert wording in str(refused.value)
    assert not (tmp_path / "package").exists()


def test_a_model_reading_from_an_experiment_tracker_is_refused_naming_the_line(
    write_notebook: Callable[..., Path],
) -> None:
    """Its values would come from a service at train, and not be the notebook's."""
    source = write_notebook(
        [
            "import wandb\n" + IRIS + "from sklearn.linear_model import LogisticRegression",
            "wandb.init(project='iris', config={'C': 0.5})\n"
            "config = wandb.config\n"
            "X, y = load_iris(return_X_y=True, as_frame=True)",
            "model = LogisticRegression(C=config.C, max_iter=500).fit(X, y)",
        ]
    )
    with pytest.raises(InputError) as refusal:
        build_plan(source)
    assert refusal.value.cell == 2 and refusal.value.line == 2
    assert "config = wandb.config reads from wandb, an experiment tracker" in str(refusal.value)


def test_tracker_calls_left_out_are_said(write_notebook: Callable[..., Path]) -> None:
    source = write_notebook(NOTEBOOKS["experiment_tracker_calls"])
    plan = build_plan(source)
    said = [f.message for f in plan.findings if f.code == "experiment-tracker"]
    assert len(said) == 2 and said[0].startswith("wandb calls (cells 2, 4) are left out")
    assert not {"wandb", "neptune"} & {r.name for r in plan.requirements}


def test_dropped_display_arguments_are_said(write_notebook: Callable[..., Path]) -> None:
    plan = build_plan(write_notebook(NOTEBOOKS["display_only_fit_arguments"]))
    said = [(f.cell, f.line, f.message) for f in plan.findings if f.code == "display-argument"]
    assert said == [
        (3, 2, "verbose=False dropped from model.fit(): it only changes what training shows")
    ]


XGBOOST_QUIET = [
    "import xgboost as xgb\n" + IRIS,
    "X, y = load_iris(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "model = xgb.XGBClassifier(n_estimators=20, random_state=0)\n"
    "model.fit(X_train, y_train, eval_set=[(X_test, y_test)], verbose=False)\n"
    "dtrain = xgb.DMatrix(X_train, label=y_train)\n"
    "params = {'objective': 'multi:softmax', 'num_class': 3, 'seed': 0}\n"
    "booster = xgb.train(params, dtrain, 20, evals=[(dtrain, 'train')], verbose_eval=False)\n"
    "shown = xgb.train(params, dtrain, 20, evals=[(dtrain, 'train')], verbose_eval=5)\n"
    "acc = accuracy_score(y_test, model.predict(X_test))",
]


def test_a_display_argument_that_silences_training_is_kept_where_the_library_takes_it(
    write_notebook: Callable[..., Path],
) -> None:
    """`verbose_eval=False` dropped brings back xgboost's default, a line for every round of
    training: kept, like `verbose=False` in a fit that takes it; one that shows is dropped."""
    plan = build_plan(write_notebook(XGBOOST_QUIET))
    said = [(f.cell, f.line, f.message) for f in plan.findings if f.code == "display-argument"]
    assert said == [
        (3, 6, "verbose_eval=5 dropped from xgb.train(): it only changes what training shows")
    ]


def test_a_fit_keyword_the_installed_class_no_longer_takes_is_refused_at_plan(
    write_notebook: Callable[..., Path],
) -> None:
    """LightGBM 4 moved early stopping into callbacks: the fit would fail at train."""
    cells = list(NOTEBOOKS["display_only_fit_arguments"])
    cells[-1] = cells[-1].replace("verbose=False", "early_stopping_rounds=5")
    with pytest.raises(InputError) as refusal:
        build_plan(write_notebook(cells))
    assert (refusal.value.cell, refusal.value.line) == (3, 2)
    assert "model.fit() (LGBMClassifier.fit) takes no keyword 'early_stopping_rounds' in " in str(
        refusal.value
    )


REBOUND_THREE_TIMES = [
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score, f1_score\n"
    "from sklearn.model_selection import train_test_split",
    "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    *(
        f"model = {built}\n"
        "model.fit(X_train, y_train)\n"
        "score = accuracy_score(y_test, model.predict(X_test))\n"
        "print(score)"
        for built in (
            "RandomForestClassifier(n_estimators=10, random_state=0)",
            "LogisticRegression(max_iter=5000)",
        )
    ),
    "model = GradientBoostingClassifier(n_estimators=20, random_state=0)\n"
    "model.fit(X_train, y_train)\n"
    "score = accuracy_score(y_test, model.predict(X_test))\n"
    "f1 = f1_score(y_test, model.predict(X_test))",
]


def test_a_run_logs_only_the_metrics_of_its_own_model(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """One name bound to three models in turn: the scores of the first two measure models the
    package does not serve, so its run logs the served one's alone, each metric once."""
    source = write_notebook(REBOUND_THREE_TIMES)
    plan = build_plan(source)
    assert [(m.name, m.cell) for m in plan.metrics] == [("score", 5), ("f1", 5)]
    assert [(f.cell, f.line) for f in plan.findings if f.code == "metric-of-another-model"] == [
        (3, 3),
        (4, 3),
    ]
    package = convert(source, tmp_path / "package").target
    assert "noqa: F601" not in (package / source.stem / "pipeline.py").read_text()
    assert train(package, tmp_path).returncode == 0
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (logged,) = (run.data.metrics for run in client.search_runs(experiments))
    assert {"score", "f1"} <= logged.keys()
    assert not [k for k in logged if re.fullmatch(r"(score|f1)_\d+", k)]  # each once
    assert logged["score"] == pytest.approx(_served_models_accuracy())


@pytest.mark.parametrize(
    ("loop", "chosen"),
    [
        ("for name, model in models.items():", "best_model = models[best_name]"),
        ("for name in models:\n    model = models[name]", "best_model = models[best_name]"),
        ("for name, model in models.items():", "best_model = models.get(best_name)"),
    ],
)
def test_a_score_in_a_loop_over_a_dict_of_models_measures_none_of_them_alone(
    write_notebook: Callable[..., Path], loop: str, chosen: str
) -> None:
    """`for name, model in models.items(): scores = cross_val_score(model, ...)`: the value
    left in `scores` is the last model's, whichever model the notebook then picks and serves,
    so it is no metric of the served one (it was logged as the claim's cross-validation)."""
    cells = [
        REBOUND_THREE_TIMES[0] + "\nfrom sklearn.model_selection import cross_val_score",
        REBOUND_THREE_TIMES[1],
        "models = {\n"
        "    'lr': LogisticRegression(max_iter=5000),\n"
        "    'rf': RandomForestClassifier(n_estimators=20, random_state=0),\n"
        "}\n"
        "results = {}\n"
        f"{loop}\n"
        "    scores = cross_val_score(model, X_train, y_train, cv=3)\n"
        "    results[name] = scores.mean()",
        "best_name = max(results, key=results.get)\n"
        f"{chosen}\n"
        "best_model.fit(X_train, y_train)\n"
        "acc = accuracy_score(y_test, best_model.predict(X_test))",
    ]
    plan = build_plan(write_notebook(cells))
    assert [m.name for m in plan.metrics] == ["acc"]
    assert [f.cell for f in plan.findings if f.code == "metric-of-another-model"] == [3]


def _served_models_accuracy() -> float:
    """The last model's holdout accuracy, computed as the notebook computes it."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X_train, y_train)
    return float(accuracy_score(y_test, model.predict(X_test)))


TEXT_ON_ONE_COLUMN = [
    "import pandas as pd\n"
    "from sklearn.feature_extraction.text import TfidfVectorizer\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline",
    "reviews = pd.DataFrame({'review': ['good movie', 'bad movie', 'great film', 'awful film',"
    " 'nice plot', 'terrible plot'] * 20, 'liked': [1, 0, 1, 0, 1, 0] * 20})\n"
    "X_train, X_test, y_train, y_test = train_test_split(reviews['review'], reviews['liked'],"
    " random_state=0)",
    "model = make_pipeline(TfidfVectorizer(), LogisticRegression())\n"
    "model.fit(X_train, y_train)\n"
    "acc = accuracy_score(y_test, model.predict(X_test))",
]


def test_a_model_fitted_on_one_text_column_is_served_from_records_of_it(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """MLflow takes no Series as an example: the model is logged with a frame of its one
    column, and the service hands it the column again, as it was fitted."""
    package = convert(write_notebook(TEXT_ON_ONE_COLUMN, name="reviews.ipynb"), tmp_path / "pkg")
    trained = train(package.target, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    # drift is measured for it too: its reference profile predicts on records of the column
    assert "no reference profile" not in trained.stderr, trained.stderr[-3000:]
    assert _logged_run(tmp_path).data.tags["drift_profile"] == drift.PROFILE_PATH
    own_tests = run_module(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=package.target,
        env={"PYTHONPATH": str(package.target)},
    )
    assert own_tests.returncode == 0, own_tests.stdout[-3000:]
    rows = [{"review": "good movie"}, {"review": "awful film"}]
    assert _served(package.target, tmp_path, "reviews", rows)["predictions"] == [1, 0]


@pytest.mark.parametrize("column", ["reviews['review']", "reviews['review'].to_numpy()"])
def test_verify_compares_a_model_fitted_on_one_text_column(
    write_notebook: Callable[..., Path], tmp_path: Path, column: str
) -> None:
    """Fitted on a Series (or its array), the model takes records of that one column: the
    rows verify sends are handed to it as that column ("not compared": pandas read a Series
    back as a frame and refused it)."""
    cells = [
        cell.replace("train_test_split(reviews['review'],", f"train_test_split({column},")
        for cell in TEXT_ON_ONE_COLUMN
    ]
    source = write_notebook(cells, name="reviews.ipynb")
    package = convert(source, tmp_path / "pkg").target
    done = run_cli("verify", source, package, timeout=600)
    assert done.code == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "predictions: the same on all 20 rows" in done.stdout, done.stdout[-2000:]


def _served(package: Path, work: Path, name: str, rows: list[dict[str, Any]]) -> Any:
    """The answer of the package's service (version 1 in the store in `work`) to `rows`."""
    (work / "rows.json").write_text(json.dumps(rows))
    served = run_code(
        "import json\n"
        "from fastapi.testclient import TestClient\n"
        f"from {name} import serve\n"
        "with TestClient(serve.app) as client:\n"
        "    rows = json.load(open('rows.json'))\n"
        "    print(json.dumps(client.post('/predict', json=rows).json()))",
        cwd=work,
        env={
            "PYTHONPATH": str(package),
            "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
            "MODEL_URI": f"models:/{name}/1",
        },
    )
    assert served.returncode == 0, served.stderr[-3000:]
    return last_json_line(served.stdout)


def _logged_run(work: Path) -> Any:
    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run


PANDAS_IN_A_TRANSFORMER = [
    "import pandas as pd\n"
    "from sklearn.base import BaseEstimator, TransformerMixin\n"
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline",
    "class Clipper(BaseEstimator, TransformerMixin):\n"
    "    def fit(self, X, y=None):\n"
    "        X = pd.DataFrame(X)\n"
    "        self.lower_ = X.quantile(0.01)\n"
    "        self.upper_ = X.quantile(0.99)\n"
    "        return self\n"
    "\n"
    "    def transform(self, X):\n"
    "        return pd.DataFrame(X).clip(self.lower_, self.upper_, axis=1)",
    "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "model = make_pipeline(Clipper(), LogisticRegression(max_iter=5000))\n"
    "model.fit(X_train, y_train)\n"
    "acc = accuracy_score(y_test, model.predict(X_test))",
]


def test_a_model_skops_cannot_save_is_pickled_and_the_run_says_why(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """A notebook transformer that keeps pandas Series as fitted state: skops cannot save a
    pandas object at all, so the model is logged as a cloudpickle (loaded by reference to the
    package's helpers), and the run's model_format tag says why. Train failed with a raw
    `TypeError: no default __reduce__ due to non-trivial __cinit__`."""
    source = write_notebook(PANDAS_IN_A_TRANSFORMER, name="clipped.ipynb")
    package = convert(source, tmp_path / "pkg")
    trained = train(package.target, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = _logged_run(tmp_path)
    assert run.data.tags["model_format"].startswith("cloudpickle: skops cannot save the model")
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    _, X_test, _, _ = train_test_split(X, y, random_state=0)
    rows = X_test.head(3).to_dict(orient="records")
    assert len(_served(package.target, tmp_path, "clipped", rows)["predictions"]) == 3


WORKING_FOLDER_PATHS = [
    "import os\n"
    "from pathlib import Path\n"
    "import pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split",
    "DATA = Path().absolute() / 'data'\n"
    "train = pd.read_csv(DATA / 'train.csv')\n"
    "test = pd.read_csv(os.path.join(os.getcwd(), 'data', 'test.csv'))",
    "model = LogisticRegression().fit(train[['a', 'b']], train['y'])\n"
    "acc = accuracy_score(test['y'], model.predict(test[['a', 'b']]))",
]


def _write_frames(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed in (("train.csv", 0), ("test.csv", 1)):
        rows = [(i % 7 - 3, (i * seed) % 5 - 2) for i in range(60)]
        lines = ["a,b,y", *(f"{a},{b},{int(a + b > 0)}" for a, b in rows)]
        (folder / name).write_text("\n".join(lines) + "\n")


def test_data_paths_built_from_the_working_folder_are_shipped(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """The working folder is the notebook's when it runs: `Path().absolute() / "data"` and
    `os.getcwd()` resolve there, so the files ship and training runs anywhere."""
    source = write_notebook(WORKING_FOLDER_PATHS, name="working_folder.ipynb")
    _write_frames(source.parent / "data")
    plan = build_plan(source)
    assert sorted(d.path for d in plan.data_files) == ["data/test.csv", "data/train.csv"]
    package = convert(source, tmp_path / "package").target
    work = tmp_path / "elsewhere"
    work.mkdir()
    trained = train(package, work)
    assert trained.returncode == 0, trained.stderr[-3000:]


def test_a_file_above_the_notebooks_folder_is_refused_at_plan(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    cells = list(WORKING_FOLDER_PATHS)
    cells[1] = cells[1].replace("Path().absolute() / 'data'", "Path().absolute().parents[0]")
    (tmp_path / "notebooks").mkdir()
    source = write_notebook(cells, name="notebooks/above.ipynb")
    _write_frames(source.parent / "data")
    (source.parent.parent / "train.csv").write_text((source.parent / "data/train.csv").read_text())
    plan = build_plan(source)
    outside = [f for f in plan.findings if f.code == "data-file-outside"]
    assert [(f.cell, f.line) for f in outside] == [(2, 2)]
    assert outside[0].message.startswith("reads '../train.csv', outside the notebook's folder")


ENVIRONMENT_BEFORE_IMPORT = [
    "import os\n"
    "os.environ['TREE_DEPTH'] = '3'  # read by settings.py when it is imported\n"
    "import settings\n" + IRIS + "from sklearn.tree import DecisionTreeClassifier",
    "X, y = load_iris(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "model = DecisionTreeClassifier(max_depth=settings.MAX_DEPTH, random_state=0)\n"
    "model.fit(X_train, y_train)\n"
    "acc = accuracy_score(y_test, model.predict(X_test))",
]


def test_the_process_environment_is_set_before_the_imports_that_read_it(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """`os.environ["KERAS_BACKEND"] = "torch"` before `import keras`: no name shows that the
    import reads it, so it is kept, and it runs where the imports run, before them."""
    source = write_notebook(ENVIRONMENT_BEFORE_IMPORT, name="environment.ipynb")
    (source.parent / "settings.py").write_text(
        "import os\n\nMAX_DEPTH = int(os.environ['TREE_DEPTH'])\n"
    )
    package = convert(source, tmp_path / "package").target
    pipeline = (package / "environment" / "pipeline.py").read_text()
    assert pipeline.index('os.environ["TREE_DEPTH"] = "3"') < pipeline.index("settings")
    trained = train(package, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]


CATBOOST_POOL = [
    "from catboost import CatBoostClassifier, Pool\n"
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split",
    "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "train_pool = Pool(X_train, y_train)\n"
    "test_pool = Pool(X_test, y_test)",
    "model = CatBoostClassifier(iterations=30, random_seed=0, verbose=0)\n"
    "model.fit(train_pool, eval_set=test_pool)\n"
    "accuracy = accuracy_score(y_test, model.predict(test_pool))",
]


def test_a_model_fitted_on_a_catboost_pool_takes_the_frame_inside_it(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """A Pool is CatBoost's wrapper around the frame; a client sends the frame's records, so
    the model's input is the frame (as for XGBoost's DMatrix), and `random_seed` seeds it."""
    if importlib.util.find_spec("catboost") is None:
        set_up_by_ci("catboost is missing: pip install -r benchmarks/corpus-requirements.txt")
    source = write_notebook(CATBOOST_POOL)
    plan = build_plan(source)
    assert plan.model.fit_inputs == ("X_train",)
    assert not [f for f in plan.findings if f.code == "unseeded-random"]
    package = convert(source, tmp_path / "package").target
    trained = train(package, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]


def test_a_submodule_reached_through_its_package_is_imported_by_name(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """`import tqdm` then `tqdm.auto.tqdm(...)`: Jupyter had imported tqdm.auto already, a
    package's training has not, so the package imports it by name and trains."""
    if importlib.util.find_spec("tqdm") is None:
        set_up_by_ci("tqdm is missing: pip install -r benchmarks/corpus-requirements.txt")
    source = write_notebook(
        [
            "import tqdm\n" + IRIS + "from sklearn.tree import DecisionTreeClassifier",
            "X, y = load_iris(return_X_y=True)\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
            "model = DecisionTreeClassifier(random_state=0)\n"
            "for _ in tqdm.auto.tqdm(range(2)):\n"
            "    model.fit(X_train, y_train)\n"
            "accuracy = accuracy_score(y_test, model.predict(X_test))",
        ]
    )
    package = convert(source, tmp_path / "package").target
    assert "import tqdm.auto" in (package / "nb" / "pipeline.py").read_text()
    trained = train(package, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]


CATEGORY_COLUMNS = [
    "import numpy as np\nimport pandas as pd\nimport lightgbm as lgb\n"
    "from sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import train_test_split",
    "rng = np.random.default_rng(0)\n"
    "df = pd.DataFrame({'age': rng.integers(18, 80, 300),"
    " 'city': pd.Categorical(rng.choice(['paris', 'lyon', 'nice'], 300))})\n"
    "df['churn'] = ((df['age'] < 35) & (df['city'] == 'lyon')).astype(int)\n"
    "X_train, X_test, y_train, y_test = train_test_split(df[['age', 'city']], df['churn'],"
    " random_state=0)",
    "clf = lgb.LGBMClassifier(n_estimators=30, random_state=0, verbose=-1)\n"
    "clf.fit(X_train, y_train, callbacks=[lgb.log_evaluation(0)])\n"
    "accuracy = accuracy_score(y_test, clf.predict(X_test))",
]


# scikit-learn's own booster on the same columns keeps `functools.partial(check_array, ...)`,
# which skops lists as a type to vouch for: training failed asking for --trust-type
HISTOGRAM_BOOSTER_ON_CATEGORIES = [
    CATEGORY_COLUMNS[0] + "\nfrom sklearn.ensemble import HistGradientBoostingClassifier",
    CATEGORY_COLUMNS[1],
    "clf = HistGradientBoostingClassifier(categorical_features='from_dtype', random_state=0)\n"
    "clf.fit(X_train, y_train)\n"
    "accuracy = accuracy_score(y_test, clf.predict(X_test))",
]


@pytest.mark.parametrize(
    "cells",
    [CATEGORY_COLUMNS, HISTOGRAM_BOOSTER_ON_CATEGORIES],
    ids=["lightgbm", "scikit-learn-histogram-booster"],
)
def test_a_model_fitted_on_category_columns_is_served_records_of_their_values(
    write_notebook: Callable[..., Path], tmp_path: Path, cells: list[str]
) -> None:
    """A record carries a category column's value as a string; LightGBM refuses a frame whose
    categorical columns differ from the fit's, so the service gives them back as the
    categories they were fitted with (an unseen one becomes missing). Training profiles the
    answers through the same, so drift is measured."""
    source = write_notebook(cells, name="churn_by_city.ipynb")
    package = convert(source, tmp_path / "package").target
    trained = train(package, tmp_path, "--cross-validation-folds", "0")
    assert trained.returncode == 0, trained.stderr[-3000:]
    # profiled through the model as the service loads it, so drift is measured
    assert "no reference profile" not in trained.stderr
    served = run_beside_package(
        package,
        tmp_path,
        "import json\n"
        "from fastapi.testclient import TestClient\n"
        "from churn_by_city import serve\n"
        "client = TestClient(serve.create_app('models:/churn_by_city/1'))\n"
        "rows = [{'age': 25, 'city': 'lyon'}, {'age': 60, 'city': 'paris'},"
        " {'age': 25, 'city': 'berlin'}]\n"
        "answer = client.post('/predict', json=rows)\n"
        "print(json.dumps([answer.status_code, answer.json()]))",
    )
    assert served.returncode == 0, served.stderr[-3000:]
    status, body = last_json_line(served.stdout)
    assert status == 200, body
    assert body["predictions"][:2] == [1, 0]


def test_a_fit_input_bound_to_a_call_on_itself_is_planned(
    write_notebook: Callable[..., Path],
) -> None:
    """`X_train = X_train.reshape(-1, 1)` names the call it is bound to: looking through the
    input for a DataLoader's tensor followed that name round forever (plan never returned)."""
    cells = [
        "import numpy as np\nfrom sklearn.linear_model import LinearRegression",
        "from sklearn.model_selection import train_test_split\n"
        "X_train, X_test, y_train, y_test = train_test_split(np.arange(20.0), np.arange(20.0))\n"
        "X_train = X_train.reshape(-1, 1)\n"
        "model = LinearRegression().fit(X_train, y_train)",
    ]
    done = run_cli("plan", write_notebook(cells), timeout=60)
    assert done.code == 0, done.stderr


LOG_TARGET_REGRESSOR = [
    "import numpy as np\n"
    "from sklearn.compose import ColumnTransformer, TransformedTargetRegressor\n"
    "from sklearn.datasets import load_diabetes\n"
    "from sklearn.linear_model import Ridge\n"
    "from sklearn.metrics import r2_score\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import Pipeline\n"
    "from sklearn.preprocessing import StandardScaler",
    "X, y = load_diabetes(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "prep = ColumnTransformer([('scale', StandardScaler(), list(X.columns))])\n"
    "regressor = TransformedTargetRegressor(\n"
    "    regressor=Pipeline([('prep', prep), ('ridge', Ridge())]),\n"
    "    func=np.log1p,\n"
    "    inverse_func=np.expm1,\n"
    ")\n"
    "regressor.fit(X_train, y_train)\n"
    "r2 = r2_score(y_test, regressor.predict(X_test))",
]


def test_a_regressor_on_a_transformed_target_is_the_model_and_answers_on_the_original_scale(
    write_notebook: Callable[..., Path], tmp_path: Path
) -> None:
    """`TransformedTargetRegressor` lives beside ColumnTransformer in sklearn.compose but
    predicts: it is the model (it was refused as one that only transforms data, and where a
    loop fitted other models, one of them was served in its place), and its service answers
    on the target's own scale, as the claim measures."""
    source = write_notebook(LOG_TARGET_REGRESSOR, name="log_target.ipynb")
    plan = build_plan(source)
    assert (plan.model.name, plan.model.estimator) == (
        "regressor",
        "sklearn.compose.TransformedTargetRegressor",
    )
    assert plan.honesty.primary_metric == "r2"
    package = convert(source, tmp_path / "pkg")
    trained = train(package.target, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    _, X_test, _, _ = train_test_split(X, y, random_state=0)
    answer = _served(package.target, tmp_path, "log_target", X_test.head(5).to_dict("records"))
    assert min(answer["predictions"]) > 20  # disease progression's scale (25 to 346), not log
