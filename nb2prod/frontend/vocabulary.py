"""What the frontend knows about the ML libraries it reads, in one place.

Each pattern is matched against qualified names (imports resolved), so `from sklearn.metrics
import f1_score as f` and `sklearn.metrics.f1_score` are the same call.
"""

from __future__ import annotations

import ast
import re

from nb2prod.frontend.pysyntax import imported_modules

FIT_METHODS = frozenset({"fit", "fit_predict", "partial_fit", "fit_conformalize"})
# scikit-learn's setters return the estimator itself: `clf.set_params(alpha=a).fit(X, y)` fits clf.
SELF_RETURNING_METHODS = frozenset({"set_params", "set_output"})
TRAIN_FUNCTIONS = frozenset({"xgboost.train", "lightgbm.train", "catboost.train"})
# Boosters' own data containers, built around the frame a client sends as records.
DATA_WRAPPERS = frozenset(
    {"catboost.Pool", "xgboost.DMatrix", "xgboost.QuantileDMatrix", "lightgbm.Dataset"}
)
PREDICT_METHODS = frozenset({"predict", "predict_proba", "predict_log_proba", "decision_function"})
CONVENTIONAL_MODEL_NAMES = (
    "model",
    "clf",
    "classifier",
    "regressor",
    "reg",
    "estimator",
    "pipeline",
    "pipe",
    "best_model",
    "final_model",
    "search",
    "grid",
    "gs",
)
LOAD_PREFIXES = (
    "pandas.read_",
    "polars.read_",
    "polars.scan_",
    "numpy.load",
    "numpy.genfromtxt",
    "numpy.fromfile",
    "sklearn.datasets.load_",
    "sklearn.datasets.fetch_",
    "sklearn.datasets.make_",
    "datasets.load_dataset",
    "pyarrow.parquet.read_",
    "torchvision.datasets.",
    "tensorflow.keras.datasets.",
    "keras.datasets.",
    "json.load",
    "csv.reader",
    "csv.DictReader",
    "open",
)
# Estimators that fit but do not predict: chosen as "the model", training would fail later.
NON_PREDICTORS = re.compile(
    r"^sklearn\.(decomposition|manifold|random_projection|kernel_approximation|"
    r"feature_extraction|feature_selection|preprocessing|impute)\."
    r"|^sklearn\.covariance\.(?!EllipticEnvelope$)\w+$"
    r"|^sklearn\.cluster\.(?!(KMeans|MiniBatchKMeans|BisectingKMeans|MeanShift|"
    r"AffinityPropagation|Birch)$)\w+$"
    r"|^sklearn\.neighbors\.(NearestNeighbors|KernelDensity)$"
    # the same kinds of estimator from other libraries, known by their class names
    r"|\.(\w*DBSCAN|OPTICS|\w*AgglomerativeClustering|SpectralClustering|SpectralEmbedding|"
    r"TSNE|Isomap|MDS|LocallyLinearEmbedding|UMAP|NearestNeighbors|\w*Covariance|"
    r"\w*Scaler|\w*Imputer|\w*Encoder|PCA|\w*PCA|TruncatedSVD|\w*Sampler|SMOTE\w*)$"
)
# Estimators that predict only after a second call the fit does not make.
CALLED_BEFORE_PREDICT = {
    re.compile(
        r"^mapie\.\w+\.(SplitConformal(Regressor|Classifier)|ConformalizedQuantileRegressor)$"
    ): "conformalize",
}
# Functions that choose a model's order and hand the model back, unfitted, as their result's
# `.model`: `ar_select_order(y, 9).model.fit()` fits an AutoReg.
MODEL_SELECTORS = {"statsmodels.tsa.ar_model.ar_select_order": "statsmodels.tsa.ar_model.AutoReg"}
# Classes that fit a time-series model on a transformed series and forecast through it: their
# results forecast from `start` to `end` (get_prediction) like a time-series model's.
FORECASTING_WRAPPERS = frozenset({"statsmodels.tsa.forecasting.stl.STLForecast"})
# Experiment trackers: their calls send to a service (see trackers.py).
TRACKER_MODULES = ("wandb", "neptune", "comet_ml", "clearml", "aim")
DEEP_LEARNING_MODULES = ("tensorflow.", "keras.", "torch.", "pytorch_lightning.", "lightning.")
SPLIT_FUNCTIONS = frozenset({"sklearn.model_selection.train_test_split"})
CROSS_VALIDATE = "sklearn.model_selection.cross_validate"
CV_FUNCTIONS = frozenset({"sklearn.model_selection.cross_val_score", CROSS_VALIDATE})
_TRANSFORMER_MODULES = (
    "sklearn.preprocessing.",
    "sklearn.feature_extraction.",
    "sklearn.feature_selection.",
    "sklearn.decomposition.",
    "sklearn.impute.",
    "sklearn.compose.",
    "category_encoders.",
)
_TRANSFORMER_NAME = re.compile(
    r"(Scaler|Encoder|Imputer|Vectorizer|Transformer|PCA|SVD|Selector|SelectKBest|"
    r"SelectFromModel|Binarizer|Normalizer|PolynomialFeatures|Discretizer|Tokenizer)$"
)
_PREDICTOR_SUFFIXES = ("Regressor", "Classifier")
_METRIC_SUFFIXES = ("_score", "_error", "_loss", "_deviance")
_METRIC_EXTRAS = frozenset({"matthews_corrcoef", "log_loss", "hinge_loss", "top_k_accuracy_score"})
_METRIC_WORDS = re.compile(
    r"^(rmse|mse|mae|mape|smape|rmsle|accuracy|acc|auc|roc_auc|f1|precision|recall|r2|"
    r"logloss|error_rate|score)(_|$)"
)
LOWER_IS_BETTER = re.compile(
    r"(error|loss|rmse|rmsle|msle|mse|mae|mape|deviance|brier|hinge|perplexity)", re.IGNORECASE
)
CLASSIFIER_HINTS = re.compile(r"(Classifier|LogisticRegression|SVC|NB$|KNeighborsClassifier)")
REGRESSOR_HINTS = re.compile(r"(Regressor|Regression$|Ridge|Lasso|ElasticNet|SVR|LinearModel)")
CLASSIFICATION_METRICS = re.compile(r"(accuracy|f1|precision|recall|roc_auc|log_loss|matthews)")
REGRESSION_METRICS = re.compile(r"(r2|squared_error|absolute_error|rmsle|msle|rmse|mae|mse|mape)")

# Estimators whose result depends on `random_state` when none is given.
RANDOM_STATE_ESTIMATORS = re.compile(
    r"^sklearn\.[\w.]*\.(RandomForest\w+|ExtraTrees\w+|GradientBoosting\w+|"
    r"HistGradientBoosting\w+|DecisionTree\w+|ExtraTree\w+|AdaBoost\w+|Bagging\w+|"
    r"IsolationForest|KMeans|MiniBatchKMeans|MLP\w+|SGD\w+|Perceptron|RandomizedSearchCV|"
    r"ShuffleSplit|StratifiedShuffleSplit|TSNE|RandomTreesEmbedding|GaussianMixture)$"
    r"|^(xgboost\.XGB\w+|lightgbm\.LGBM\w+)$"
)
SHUFFLING_SPLITTERS = re.compile(r"^sklearn\.model_selection\.(KFold|StratifiedKFold|GroupKFold)$")
NUMPY_GLOBAL_RANDOM = re.compile(
    r"^numpy\.random\.(?!seed$|default_rng$|RandomState$|Generator$)\w+$"
)
PYTHON_RANDOM = re.compile(r"^random\.(?!seed$|Random$|SystemRandom$)\w+$")
# torch's global generator: its draws, and the calls that seed it (and every other generator).
TORCH_GLOBAL_RANDOM = re.compile(
    r"^torch\.(rand|randn|randint|randperm|normal|bernoulli|multinomial|poisson)(_like)?$"
)
TORCH_SEEDS = frozenset(
    {
        "torch.manual_seed",
        "torch.random.manual_seed",
        "lightning.seed_everything",
        "pytorch_lightning.seed_everything",
        "keras.utils.set_random_seed",
        "tensorflow.keras.utils.set_random_seed",
    }
)


def is_transformer(constructor: str | None) -> bool:
    if not constructor:
        return False
    last = constructor.rsplit(".", 1)[-1]
    if last.endswith(_PREDICTOR_SUFFIXES):  # `sklearn.compose.TransformedTargetRegressor`
        return False
    return constructor.startswith(_TRANSFORMER_MODULES) or bool(_TRANSFORMER_NAME.search(last))


def is_metric_function(qualified: str, defined_in_notebook: bool) -> bool:
    last = qualified.rsplit(".", 1)[-1]
    if qualified in CV_FUNCTIONS:
        return True
    if qualified.startswith("sklearn.metrics."):
        return last.endswith(_METRIC_SUFFIXES) or last in _METRIC_EXTRAS
    if defined_in_notebook:
        return bool(_METRIC_WORDS.match(last.lower())) or last.endswith(_METRIC_SUFFIXES)
    return False


def is_load_call(qualified: str) -> bool:
    return qualified.startswith(LOAD_PREFIXES)


def through_setters(node: ast.expr) -> ast.expr:
    """`clf` for `clf.set_params(...).set_output(...)`: what a chain of setters returns."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SELF_RETURNING_METHODS
    ):
        node = node.func.value
    return node


# Modules imported for what importing them does: `from sklearn.experimental import
# enable_halving_search_cv` makes HalvingRandomSearchCV importable. Never read by name.
ENABLING_MODULES = ("sklearn.experimental.",)


def enables(statement: ast.stmt) -> bool:
    """An import kept for its effect, though nothing reads what it binds."""
    return any(name.startswith(ENABLING_MODULES) for name in imported_modules(statement))
