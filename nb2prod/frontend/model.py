"""Find the model object the package is built around.

In order: an explicit choice (`nb2prod:model=NAME` tag, `# nb2prod: train model=NAME`, or
notebook metadata `nb2prod.model`), then a fitted estimator with a conventional name
(`model`, `clf`, `pipeline`...), then the last fitted estimator, then a rule-based model
(an instance of a class the notebook defines with a `predict` method). When more than one
object fits the description, the choice is reported as a finding, never made silently.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from nb2prod.errors import InputError, UnservableModel
from nb2prod.frontend.facts import CallSite, CellFacts, NotebookFacts
from nb2prod.frontend.installed import built_on_deep_learning, installed_has, installed_object
from nb2prod.frontend.keras_models import is_keras_model, runs_on_keras
from nb2prod.frontend.names import scan_names
from nb2prod.frontend.pysyntax import dotted_name, keyword, names_in
from nb2prod.frontend.training_loops import (
    answers_with_distribution,
    batch_of_processes,
    called_on_several_inputs,
    loader_tensor,
    module_class,
    module_output,
    trained_modules,
)
from nb2prod.frontend.vocabulary import (
    CALLED_BEFORE_PREDICT,
    CLASSIFIER_HINTS,
    CONVENTIONAL_MODEL_NAMES,
    CV_FUNCTIONS,
    DATA_WRAPPERS,
    DEEP_LEARNING_MODULES,
    FIT_METHODS,
    FORECASTING_WRAPPERS,
    MODEL_SELECTORS,
    NON_PREDICTORS,
    PREDICT_METHODS,
    REGRESSOR_HINTS,
    TRAIN_FUNCTIONS,
    is_transformer,
    through_setters,
)
from nb2prod.plan import Finding, Model

_TORCH_LOOP = "a PyTorch training loop"
UNKNOWN_LINE = 1_000_000  # a candidate whose line is not known counts as its cell's last


@dataclass(frozen=True)
class _Candidate:
    name: str
    kind: str
    cell: int
    fit_inputs: tuple[str, ...]
    constructor: str | None = None  # the class it was built from, when the fit shows it
    line: int = UNKNOWN_LINE  # where in its cell it is fitted or chosen


def explicit_model_name(
    facts: NotebookFacts, override: str | None = None
) -> tuple[str, str] | None:
    """The model name the user chose (`--model`) or the notebook declares, with where."""
    if override:
        return override, "--model"
    declared = facts.notebook.metadata.get("nb2prod")
    if isinstance(declared, dict) and isinstance(declared.get("model"), str):
        return declared["model"], "notebook metadata nb2prod.model"
    for cell in facts.cells:
        for tag in cell.cell.tags:
            if tag.startswith("nb2prod:model="):
                return tag.split("=", 1)[1], f"cell {cell.number} tag {tag!r}"
        for word in (cell.directive or "").split():
            if word.startswith("model="):
                return word.split("=", 1)[1], f"cell {cell.number} directive"
    return None


def candidate_names(facts: NotebookFacts) -> set[str]:
    """Names that may hold the model, before roles are known (roles use them)."""
    return {c.name for c in _candidates(facts, kept=None)}


def find_model(
    facts: NotebookFacts,
    kept: set[int],
    override: str | None = None,
    passed_over: Collection[str] = (),
) -> tuple[Model, list[Finding]]:
    """The model and why it was chosen; `passed_over` names candidates already found
    unservable (UnservableModel), so the choice falls to the next one."""
    candidates = _candidates(facts, kept)
    rebound = _rebound_after_fit(facts, kept, candidates)
    explicit = explicit_model_name(facts, override)
    findings: list[Finding] = []
    if explicit is not None:
        name, where = explicit
        chosen = next((c for c in reversed(candidates) if c.name == name), None)
        if chosen is None:
            chosen = _defined_candidate(facts, kept, name, where)
        elif name in rebound:
            raise _rebound_error(facts, name, rebound[name])
        reason = f"named by {where}"
    else:
        live = [c for c in candidates if c.name not in rebound and c.name not in passed_over]
        if candidates and not live and not passed_over:
            name = candidates[-1].name
            raise _rebound_error(facts, name, rebound[name])
        for name, (cell, line) in rebound.items():
            findings.append(
                Finding(
                    "model-rebound",
                    "info",
                    f"{name} is not the model: it is bound to something else after its fit",
                    cell,
                    line,
                    None,
                )
            )
        chosen, reason = _choose(facts, live, findings)
    model = _describe(facts, kept, chosen, reason, candidates)
    _refuse_unservable(facts, kept, model)
    return model, findings


def _refuse_unservable(facts: NotebookFacts, kept: set[int], model: Model) -> None:
    """Models that cannot be served as the notebook leaves them, said before anything is
    written rather than found when training logs the model."""
    short = model.estimator.rsplit(".", 1)[-1]
    where = model.fitted_in or model.defined_in
    if ".tsa." in f".{model.estimator}" and _imported_class(model.estimator) is None:
        raise UnservableModel(
            facts.notebook.path,
            model.name,
            f"the model {model.name} is built by {short}(...), not by one of statsmodels' "
            "time-series model classes, so nb2prod cannot tell how it forecasts",
            cell=where,
            hint="build it from its class, as in AutoReg(endog, lags=...).fit()",
        )
    if ".tsa." in f".{model.estimator}" and not is_time_series_model(model.estimator):
        raise UnservableModel(
            facts.notebook.path,
            model.name,
            f"the model {model.name} ({short}) forecasts only a number of steps ahead, not "
            "a stretch from start to end; nb2prod does not serve such forecasters yet",
            cell=where,
            hint="fit one of statsmodels' time-series models (ARIMA, SARIMAX, AutoReg, "
            "ExponentialSmoothing, ETSModel) or a model on rows of lagged features",
        )
    inputs = _several_inputs(facts, model.fit_inputs[0] if model.fit_inputs else "")
    if inputs and is_keras_model(facts, model.estimator):
        raise UnservableModel(
            facts.notebook.path,
            model.name,
            f"{model.name} is a network fitted on {inputs} inputs ({model.fit_inputs[0]}), and "
            "the service answers records of one table",
            cell=where,
            hint="give the network one input (concatenate the arrays, or split one array "
            "inside the network), or serve it yourself",
        )
    several = called_on_several_inputs(facts, kept, model.name)
    if several:
        cell, line, call = several
        raise UnservableModel(
            facts.notebook.path,
            model.name,
            f"{model.name} is called on several tensors ({call}), and the service "
            "answers records of one table, one tensor",
            cell=cell,
            line=line,
            hint="give the network one input (concatenate the tensors, and split them inside "
            "forward), or serve it yourself",
        )
    distribution = answers_with_distribution(facts, model.estimator)
    predicted = distribution and module_output(facts, kept, model.name, set(), distribution=True)
    if distribution and not predicted:
        raise UnservableModel(
            facts.notebook.path,
            model.name,
            f"{short} answers with a distribution, not a tensor ({distribution}), and no "
            f"cell predicts from it as {model.name}(x) or likelihood({model.name}(x)), whose "
            "mean the service could answer with",
            cell=where,
            hint=f"add a cell that predicts, as observed = likelihood({model.name}(test_x))",
        )
    batch = distribution and batch_of_processes(facts, model.estimator)
    # a batch answers a row's value per process: its mean can be turned to a row each, what
    # the notebook makes of it otherwise (`probs > 0.5` compared to labels) may not be
    if batch and predicted and not predicted.expression.endswith(".mean"):
        cell, line, keyword = batch
        raise UnservableModel(
            facts.notebook.path,
            model.name,
            f"{short} is a batch of Gaussian processes ({keyword}), and the notebook reads "
            f"its prediction as {predicted.expression}, not as the mean each process answers "
            "at a row",
            cell=cell,
            line=line,
            hint="return MultitaskMultivariateNormal.from_batch_mvn(...) from forward to serve "
            "the processes as the tasks of one model, or serve this model yourself",
        )
    for pattern, method in CALLED_BEFORE_PREDICT.items():
        if not pattern.search(model.estimator):
            continue
        called = any(
            call.receiver == model.name and call.method == method
            for cell in facts.cells
            if cell.number in kept
            for call in cell.calls
            if not call.in_display
        )
        if not called:
            raise UnservableModel(
                facts.notebook.path,
                model.name,
                f"{short} predicts only after {method}(...), and the notebook never calls "
                f"{model.name}.{method}(...)",
                cell=where,
                hint=f"call {model.name}.{method}(...) after the fit, as its library requires",
            )


def trees_predicted_with(facts: NotebookFacts, kept: set[int], model: Model) -> str | None:
    """`bst.predict(dvalid, iteration_range=(0, bst.best_iteration + 1))`: a booster trained by
    `xgb.train` predicts with every tree unless told, so the notebook measured the trees up to
    its early-stopping round; the service answers with those (`bst[0 : bst.best_iteration + 1]`),
    not with the rounds after it."""
    if model.estimator != "xgboost.Booster":
        return None
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for call in cell.calls:
            trees = keyword(call.node, "iteration_range")
            if (
                call.receiver == model.name
                and call.method in ("predict", "inplace_predict")
                and isinstance(trees, ast.Tuple)
                and len(trees.elts) == 2
            ):
                first, last = (ast.unparse(bound) for bound in trees.elts)
                return f"{model.name}[{first} : {last}]"
    return None


def _several_inputs(facts: NotebookFacts, fitted_on: str) -> int:
    """How many arrays a fit is handed as a list, tuple or dict (`[X_cat, X_num]`, or a name
    bound to one: a Keras network with several inputs); 0 for one array."""
    try:
        value: ast.expr | None = ast.parse(fitted_on, mode="eval").body
    except SyntaxError:
        return 0
    if isinstance(value, ast.Name):
        name = value.id
        value = None
        for cell in facts.cells:
            for statement in cell.statements:
                if (
                    isinstance(statement, ast.Assign)
                    and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name)
                    and statement.targets[0].id == name
                ):
                    value = statement.value
    if isinstance(value, ast.List | ast.Tuple) and len(value.elts) > 1:
        return len(value.elts)
    if isinstance(value, ast.Dict) and len(value.keys) > 1:
        return len(value.keys)
    return 0


def _rebound_after_fit(
    facts: NotebookFacts, kept: set[int], candidates: list[_Candidate]
) -> dict[str, tuple[int, int]]:
    """Names the notebook binds again after their last fit (`ols = dict(a=ols.params[0])`):
    what they hold at the end is no longer the model. Maps each to where it is rebound."""
    last_fit: dict[str, tuple[int, int]] = {}
    for candidate in candidates:
        position = (candidate.cell, candidate.line)
        last_fit[candidate.name] = max(last_fit.get(candidate.name, position), position)
    rebound: dict[str, tuple[int, int]] = {}
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            for name in scan_names([statement]).defines:
                fitted = last_fit.get(name)
                if fitted is not None and (cell.number, statement.lineno) > fitted:
                    rebound[name] = (cell.number, statement.lineno)
    return rebound


def _rebound_error(facts: NotebookFacts, name: str, where: tuple[int, int]) -> InputError:
    return InputError(
        facts.notebook.path,
        f"{name} is bound to something else after its fit, so what it holds at the end is "
        "no longer the fitted model",
        cell=where[0],
        line=where[1],
        hint=f"give the new value another name than {name}",
    )


def _candidates(facts: NotebookFacts, kept: set[int] | None) -> list[_Candidate]:
    found: list[_Candidate] = []
    rule_classes = {
        name
        for cell in facts.cells
        for name, methods in cell.classes.items()
        if "predict" in methods
    }
    trainers = _model_returning_functions(facts)
    collections = _fitted_collections(facts)
    modules = trained_modules(facts, kept)
    for cell in facts.cells:
        if kept is not None and cell.number not in kept:
            continue
        local_calls = _calls_on_function_locals(cell.kept_statements)
        for call in cell.calls:
            if call.in_display or id(call.node) in local_calls:
                continue
            candidate = _fitted_candidate(facts, call, cell.number)
            if candidate is not None:
                found.append(candidate)
            callee = dotted_name(call.node.func)
            if callee in rule_classes and call.assigned_to:
                found.append(
                    _Candidate(call.assigned_to[0], "rule-based", cell.number, (), line=call.line)
                )
        found += _returned_by_trainers(facts, cell, trainers)
        found += [
            _Candidate(
                module.name,
                "fitted",
                cell.number,
                module.inputs,
                module_class(facts, module),
                module.line,
            )
            for module in modules
            if module.cell == cell.number
        ]
        found += _chosen_by_notebook(facts, cell, {c.name for c in found}, collections)
    return found


def _model_returning_functions(facts: NotebookFacts) -> set[str]:
    """Notebook functions that fit a local model and return it: `def train(X, y): ...`."""
    names = set()
    for cell in facts.cells:
        for statement in cell.kept_statements:
            if not isinstance(statement, ast.FunctionDef):
                continue
            fitted = {
                node.func.value.id
                for node in ast.walk(statement)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in FIT_METHODS
                and isinstance(node.func.value, ast.Name)
            }
            returned = {
                node.value.id
                for node in ast.walk(statement)
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Name)
            }
            if fitted & returned:
                names.add(statement.name)
    return names


def _returned_by_trainers(
    facts: NotebookFacts, cell: CellFacts, trainers: set[str]
) -> list[_Candidate]:
    """`clf = train(X_train, y_train)`: the model a notebook function fits and returns."""
    found = []
    for call in cell.calls:
        if call.in_display or not call.assigned_to or len(call.assigned_to) != 1:
            continue
        if isinstance(call.node.func, ast.Name) and call.node.func.id in trainers:
            inputs = tuple(dotted_name(arg) or ast.unparse(arg) for arg in call.node.args)
            found.append(
                _Candidate(call.assigned_to[0], "fitted", cell.number, inputs, line=call.line)
            )
    return found


def _fitted_candidate(facts: NotebookFacts, call: CallSite, cell: int) -> _Candidate | None:
    """A model fitted by this call: `.fit(...)`, a native booster's `train`, statsmodels."""
    if call.qualified in TRAIN_FUNCTIONS and call.assigned_to:
        data = call.node.args[1] if len(call.node.args) > 1 else None
        for item in call.node.keywords:
            if item.arg in ("dtrain", "train_set"):
                data = item.value
        inputs = _booster_inputs(facts, data)
        return _Candidate(call.assigned_to[0], "fitted", cell, inputs, line=call.line)
    if not isinstance(call.node.func, ast.Attribute) or not (
        call.method in FIT_METHODS or _completes(facts, call)
    ):
        return None
    name = call.receiver
    receiver = through_setters(call.node.func.value)
    constructor = facts.constructors.get(name or "")
    built_here = (
        receiver if isinstance(receiver, ast.Call) else facts.constructor_calls.get(name or "")
    )
    if isinstance(receiver, ast.Call) and (callee := dotted_name(receiver.func)):
        constructor = facts.aliases.resolve(callee)  # EmpiricalCovariance().fit(X)
    if isinstance(receiver, ast.Attribute) and receiver.attr == "model":
        selected = _selected_model(facts, receiver.value, constructor)  # the model it chose
        if selected is not None:
            constructor, built_here = selected
    served_network = runs_on_keras(facts, constructor) or (constructor or "").startswith("skorch.")
    if constructor and _is_deep_learning(constructor) and not served_network:
        return None  # refused with what it is when nothing else predicts (_no_model)
    if _without_refit(built_here):
        return None  # GridSearchCV(refit=False) keeps scores, no model that predicts
    statsmodels = _is_statsmodels(facts, built_here)
    if (not isinstance(receiver, ast.Name) or statsmodels) and call.assigned_to:
        name = call.assigned_to[0]  # results = smf.ols(...).fit(): the results predict
    elif not isinstance(receiver, ast.Name) or statsmodels:
        return None  # `Model().fit(X, y)` passed on, a statsmodels result not kept: no variable
    if not name or is_transformer(constructor) or not _predicts(facts, name, constructor):
        return None
    inputs = tuple(_unwrapped(facts, arg) for arg in call.node.args)
    built = built_here if isinstance(built_here, ast.Call) else None
    if statsmodels and built is not None and built.args and is_time_series_model(constructor):
        inputs = (dotted_name(built.args[0]) or ast.unparse(built.args[0]),)  # the series
    elif statsmodels and built is not None:
        inputs = _statsmodels_inputs(built) or inputs
    return _Candidate(name, "fitted", cell, inputs, constructor, call.line)


def _selected_model(
    facts: NotebookFacts, selection: ast.expr, constructor: str | None
) -> tuple[str, ast.expr | None] | None:
    """`ar_select_order(y, 9).model`, directly or through a name: the class of the model a
    selection function hands back, and the call that chose it (its first argument is the
    series)."""
    if isinstance(selection, ast.Call) and (callee := dotted_name(selection.func)):
        chosen_by = MODEL_SELECTORS.get(facts.aliases.resolve(callee))
        return (chosen_by, selection) if chosen_by else None
    if isinstance(selection, ast.Name) and constructor in MODEL_SELECTORS:
        return MODEL_SELECTORS[constructor], facts.constructor_calls.get(selection.id)
    return None


def _completes(facts: NotebookFacts, call: CallSite) -> bool:
    """`mapie.conformalize(X, y)` on a model built around a fitted one (prefit=True): the call
    that readies it to predict is its fit."""
    built_as = facts.constructors.get(call.receiver or "")
    return bool(built_as) and any(
        pattern.search(built_as or "") and method == call.method
        for pattern, method in CALLED_BEFORE_PREDICT.items()
    )


def _unwrapped(facts: NotebookFacts, given: ast.expr) -> str:
    """What a fit or predict is given, with a library's data wrapper taken off: the frame
    inside `Pool(X_train, y_train)` (CatBoost), `DMatrix(X)`, `Dataset(X)`, which serving
    takes as records; the wrapper itself is no input a client can send. A DataLoader over a
    TensorDataset is unwrapped to its features tensor the same way."""
    tensor = loader_tensor(facts, given)
    if tensor is not None:
        return dotted_name(tensor) or ast.unparse(tensor)
    built = given if isinstance(given, ast.Call) else None
    if isinstance(given, ast.Name):
        built = facts.constructor_calls.get(given.id)
    callee = dotted_name(built.func) if built is not None else None
    if built is not None and callee and facts.aliases.resolve(callee) in DATA_WRAPPERS:
        data = built.args[0] if built.args else keyword(built, "data")
        if data is not None:
            return dotted_name(data) or ast.unparse(data)
    return dotted_name(given) or ast.unparse(given)


def _booster_inputs(facts: NotebookFacts, data: ast.expr | None) -> tuple[str, ...]:
    """The frame behind `xgb.DMatrix(X, label=y)` / `lgb.Dataset(X, y)`: what serving takes."""
    if isinstance(data, ast.Name):
        built = facts.constructor_calls.get(data.id)
        if built is not None and built.args:
            return (dotted_name(built.args[0]) or ast.unparse(built.args[0]),)
    return ()


def _is_statsmodels(facts: NotebookFacts, call: ast.expr | None) -> bool:
    if not isinstance(call, ast.Call):
        return False
    callee = dotted_name(call.func)
    return bool(callee) and facts.aliases.resolve(callee or "").startswith("statsmodels.")


def _statsmodels_inputs(call: ast.expr) -> tuple[str, ...]:
    """statsmodels models take (endog, exog) or a formula and its data: exog or data is the
    input."""
    assert isinstance(call, ast.Call)
    for item in call.keywords:
        if item.arg in ("exog", "data"):
            return (dotted_name(item.value) or ast.unparse(item.value),)
    if len(call.args) > 1:  # (endog, exog), or (formula, data)
        return (dotted_name(call.args[1]) or ast.unparse(call.args[1]),)
    return ()


def _predicts(facts: NotebookFacts, name: str, constructor: str | None) -> bool:
    """Whether what `name` was built with can predict (a PCA or a covariance cannot)."""
    last_step = _final_step(facts, name, constructor)
    if last_step and (is_transformer(last_step) or NON_PREDICTORS.search(last_step)):
        return False
    if is_time_series_model(last_step):
        return True  # STLForecast's results forecast, though the class has no predict
    return last_step is None or _class_predicts(last_step) is not False


def _final_step(facts: NotebookFacts, name: str | None, constructor: str | None) -> str | None:
    """What answers for the object: a pipeline's last step, else its own class."""
    built = facts.constructor_calls.get(name or "")
    if constructor and constructor.rsplit(".", 1)[-1] in ("make_pipeline", "Pipeline") and built:
        return _last_pipeline_step(facts, built) or constructor
    return constructor


def is_time_series_model(qualified: str | None) -> bool:
    """A statsmodels time-series model: its results forecast from `start` to `end`."""
    if not qualified or ".tsa." not in f".{qualified}":
        return False
    if qualified in FORECASTING_WRAPPERS:
        return True
    found = _imported_class(qualified)
    return found is not None and any(
        f"{base.__module__}.{base.__name__}" == _TIME_SERIES_MODEL for base in found.__mro__
    )


_TIME_SERIES_MODEL = "statsmodels.tsa.base.tsa_model.TimeSeriesModel"


def _class_predicts(qualified: str) -> bool | None:
    """Ask the library itself, when it is installed here: does this class have `predict`?
    (NeighborhoodComponentsAnalysis, a transformer the vocabulary does not name, has not.)
    The answer is kept on disk per installed library; None when it cannot be told."""
    if not qualified.rpartition(".")[2][:1].isupper():
        return None
    return installed_has(qualified, "predict")


def _imported_class(qualified: str) -> type | None:
    """The class itself, when the name is a class and its library may be imported here
    (not scikit-learn, whose classes the vocabulary knows and whose import costs a plan
    half a second)."""
    if qualified.startswith("sklearn.") or not qualified.rpartition(".")[2][:1].isupper():
        return None
    found = installed_object(qualified)
    return found if isinstance(found, type) else None


def _last_pipeline_step(facts: NotebookFacts, built: ast.Call) -> str | None:
    """`make_pipeline(a, b)` -> b; `Pipeline([..., ("clf", b)])` -> b, imports resolved."""
    last: ast.expr | None = built.args[-1] if built.args else None
    if isinstance(last, ast.List) and last.elts:  # Pipeline(steps)
        pair = last.elts[-1]
        last = pair.elts[-1] if isinstance(pair, ast.Tuple) and pair.elts else None
    if isinstance(last, ast.Call) and (callee := dotted_name(last.func)):
        return facts.aliases.resolve(callee)
    return None


def _calls_on_function_locals(statements: list[ast.stmt]) -> set[int]:
    """`def evaluate(model): model.fit(...)` fits the caller's objects, and
    `est = Model().fit(...)` inside a function a local one: neither is a global model."""
    found: set[int] = set()
    for statement in statements:
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        local = {a.arg for a in [*statement.args.args, *statement.args.kwonlyargs]}
        local |= {
            n.id
            for n in ast.walk(statement)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        for node in ast.walk(statement):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                root = node.func.value
                if isinstance(root, ast.Call) or (isinstance(root, ast.Name) and root.id in local):
                    found.add(id(node))  # a local's fit, or `Model().fit(...)` built there
    return found


def _chosen_by_notebook(
    facts: NotebookFacts, cell: CellFacts, fitted: set[str], collections: set[str]
) -> list[_Candidate]:
    """`best_model = models[best_name]`, `model = search.best_estimator_`: the notebook's pick."""
    found = []
    for statement in cell.kept_statements:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
            continue
        target = statement.targets[0]
        if not isinstance(target, ast.Name):
            continue
        reads = {n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name)}
        picked = target.id.startswith("best") or _is_best_estimator(statement.value)
        sources = reads & (fitted | collections)
        if picked and sources:
            found.append(_Candidate(target.id, "chosen", cell.number, (), line=statement.lineno))
    return found


def _is_best_estimator(value: ast.expr) -> bool:
    return isinstance(value, ast.Attribute) and value.attr == "best_estimator_"


def _fitted_collections(facts: NotebookFacts) -> set[str]:
    """Names a loop draws fitted models from: `models` in `for name, m in models.items()`."""
    names: set[str] = set()
    for cell in facts.cells:
        for statement in cell.kept_statements:
            for loop in ast.walk(statement):
                if not isinstance(loop, ast.For):
                    continue
                targets = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
                fits = any(
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in FIT_METHODS
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in targets
                    for node in ast.walk(loop)
                )
                if fits:
                    names |= {n.id for n in ast.walk(loop.iter) if isinstance(n, ast.Name)}
    return names


def _choose(
    facts: NotebookFacts, candidates: list[_Candidate], findings: list[Finding]
) -> tuple[_Candidate, str]:
    for kind in ("chosen", "fitted", "rule-based"):
        pool = [c for c in candidates if c.kind == kind]
        names = list(dict.fromkeys(c.name for c in pool))
        if not names:
            continue
        # `for train, valid in kf.split(X): model = ...; model.fit(...)` then `final.fit(X, y)`:
        # the fold models are scored, the one fitted on all the rows is the model
        folded = {n for n in names if all(_in_fold_loop(facts, c) for c in pool if c.name == n)}
        after_folds = bool(folded) and len(folded) < len(names) and kind == "fitted"
        if after_folds:
            names = [n for n in names if n not in folded]
            pool = [c for c in pool if c.name not in folded]
        conventional = [n for n in names if n in CONVENTIONAL_MODEL_NAMES]
        if kind == "chosen":
            chosen_name = names[-1]
            reason = f"the notebook picks it as its best model (cell {pool[-1].cell})"
        elif after_folds and len(names) == 1:
            chosen_name = names[0]
            reason = (
                f"the only estimator fitted outside a loop over cross-validation folds "
                f"(fitted in cell {pool[-1].cell})"
            )
        elif len(names) == 1:
            chosen_name = names[0]
            reason = (
                f"the only fitted estimator (fitted in cell {pool[-1].cell})"
                if kind == "fitted"
                else "the only instance of a notebook class with a predict method "
                f"(cell {pool[-1].cell})"
            )
        elif len(conventional) == 1:
            chosen_name = conventional[0]
            reason = f"its name is the conventional {chosen_name!r}"
        else:
            chosen_name = (conventional or names)[-1]
            reason = "the last one the notebook fits"
        chosen = [c for c in pool if c.name == chosen_name][-1]
        names_all = list(dict.fromkeys(c.name for c in candidates))
        if len(names_all) > 1:
            others = ", ".join(n for n in names_all if n != chosen_name)
            findings.append(
                Finding(
                    "ambiguous-model",
                    "warning",
                    f"several objects could be the model ({', '.join(names_all)}); chose "
                    f"{chosen_name!r} because {_as_clause(reason)}, not {others}",
                    chosen.cell,
                    None,
                    "choose another with --model NAME or a 'nb2prod:model=NAME' cell tag",
                )
            )
        if kind == "chosen":
            chosen = dataclasses.replace(chosen, kind="fitted", fit_inputs=_inputs_of(candidates))
        return chosen, reason
    raise _no_model(facts)


def _in_fold_loop(facts: NotebookFacts, candidate: _Candidate) -> bool:
    """The candidate is fitted inside a loop over a splitter's folds (`for train, valid in
    kf.split(X)`, `enumerate(skf.split(X, y))`), so each fit sees part of the rows."""
    for statement in facts.cell(candidate.cell).statements:
        if not statement.lineno <= candidate.line <= (statement.end_lineno or statement.lineno):
            continue
        return any(
            isinstance(loop, ast.For)
            and loop.lineno < candidate.line <= (loop.end_lineno or loop.lineno)
            and any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "split"
                for call in ast.walk(loop.iter)
            )
            for loop in ast.walk(statement)
        )
    return False


def _inputs_of(candidates: list[_Candidate]) -> tuple[str, ...]:
    """A model picked from several was trained on what they were trained on."""
    for candidate in reversed(candidates):
        if candidate.fit_inputs:
            return candidate.fit_inputs
    return ()


def _no_model(facts: NotebookFacts) -> InputError:
    """Nothing predicts: say what the notebook does instead, so the refusal is believable."""
    found: dict[str, dict[str, list[int]]] = {}  # why it is no model -> what was fitted, where
    deep = _deep_learning(facts)
    if deep and deep[1] == _TORCH_LOOP:
        return InputError(
            facts.notebook.path,
            "trains with a PyTorch loop, but no optimizer over a module the notebook keeps is "
            "stepped (built in a cell, handed to the function that steps it, or returned by "
            "the function that builds it), so nb2prod cannot tell which module is the model",
            cell=deep[0],
            hint="return the module from the function that trains it and assign it (model = "
            "train(...)), or pass it in (train(model)), or build and train it in a cell",
        )
    if deep:
        cell, what = deep
        return InputError(
            facts.notebook.path,
            f"trains {what}: nb2prod converts scikit-learn-style, XGBoost, LightGBM, "
            "CatBoost and statsmodels models, PyTorch modules trained by a loop and skorch "
            "nets, not this framework's models yet",
            cell=cell,
            hint="convert a notebook whose model is one of those, or serve this model yourself",
        )
    inside: list[str] = []  # fitted only inside a function, on its own argument
    passed: list[str] = []  # `Model().fit(X, y)` handed straight to something else
    shown: list[str] = []  # fitted only inside display code (`ax.plot(clf.fit(X, y)...)`)
    for cell in facts.cells:
        local_calls = _calls_on_function_locals(cell.kept_statements)
        for call in cell.calls:
            if call.method not in FIT_METHODS or not call.receiver:
                continue
            if call.in_display and call.statement not in cell.sliced:
                shown.append(f"{call.receiver}.{call.method}(...) in cell {cell.number}")
                continue
            if call.in_display:
                continue
            if id(call.node) in local_calls:
                inside.append(f"cell {cell.number}")
                continue
            fitted = getattr(call.node.func, "value", None)
            chained = not isinstance(fitted and through_setters(fitted), ast.Name)
            if chained and not call.assigned_to:
                passed.append(f"{ast.unparse(call.node.func)}(...) in cell {cell.number}")
                continue
            constructor = facts.constructors.get(call.receiver)
            if constructor is None:
                constructor = facts.aliases.imported(call.receiver)  # EmpiricalCovariance().fit
            what = constructor.rsplit(".", 1)[-1] if constructor else call.receiver
            final = _final_step(facts, call.receiver, constructor)
            if final and final != constructor:
                what = f"{what} ending in {final.rsplit('.', 1)[-1]}"  # a pipeline's last step
            why = _why_not_a_model(final)
            if _without_refit(
                facts.constructor_calls.get(call.receiver or "") or call.node.func.value
            ):
                why = "searched with refit=False, which keeps no model that predicts"
            found.setdefault(why, {}).setdefault(what, []).append(cell.number)
    if found:
        listed = "; ".join(
            ", ".join(f"{what} ({_cells(numbers)})" for what, numbers in fits.items()) + f", {why}"
            for why, fits in found.items()
        )
        return InputError(
            facts.notebook.path,
            f"no model nb2prod can serve: the notebook fits only {listed}",
            hint="tag the cell that builds a predicting model 'nb2prod:model=NAME'",
        )
    if passed:
        return InputError(
            facts.notebook.path,
            "no fitted model is kept: the notebook fits only as an argument to something "
            f"else ({'; '.join(dict.fromkeys(passed))})",
            hint="assign the fitted model to a variable (model = Model().fit(X, y))",
        )
    if inside:
        return InputError(
            facts.notebook.path,
            "no fitted model: the notebook fits models only inside functions "
            f"({', '.join(dict.fromkeys(inside))}), where they stay, so nothing it keeps is "
            "fitted",
            hint="return the fitted model from the function and assign it (model = train(...))",
        )
    cross_validated = _only_cross_validated(facts)
    if cross_validated:
        return InputError(
            facts.notebook.path,
            f"no fitted model: the notebook only cross-validates {cross_validated}, which "
            "fits copies of the model and keeps none of them",
            hint="fit the model itself in a cell after cross-validating it (model.fit(X, y))",
        )
    if shown:
        return InputError(
            facts.notebook.path,
            "no model outside display code: the notebook fits only to draw "
            f"({'; '.join(dict.fromkeys(shown))})",
            hint="fit the model itself in a cell (model.fit(X, y)) before drawing it",
        )
    return InputError(
        facts.notebook.path,
        "no training code: no cell fits a model (.fit(...), xgboost/lightgbm train(...)) or "
        "builds one from a class with a predict method",
        hint="tag the cell that builds the model 'nb2prod:train' and 'nb2prod:model=NAME'",
    )


def _cells(numbers: list[int]) -> str:
    unique = list(dict.fromkeys(numbers))
    return f"cell {unique[0]}" if len(unique) == 1 else f"cells {', '.join(map(str, unique))}"


def _without_refit(built: ast.expr | None) -> bool:
    """`GridSearchCV(..., refit=False)`: a search that keeps its scores but no best model."""
    if not isinstance(built, ast.Call):
        return False
    refit = next((item.value for item in built.keywords if item.arg == "refit"), None)
    return isinstance(refit, ast.Constant) and refit.value is False


def _why_not_a_model(constructor: str | None) -> str:
    """What can truly be said of a fitted object that is not a candidate."""
    if constructor and (is_transformer(constructor) or NON_PREDICTORS.search(constructor)):
        return "which transform, cluster or describe data rather than predict"
    if constructor and _class_predicts(constructor) is False:
        return "whose class has no predict method"
    return "which nb2prod cannot tell to be a model that predicts"


def _deep_learning(facts: NotebookFacts) -> tuple[int, str] | None:
    for cell in facts.cells:
        for call in cell.calls:
            if call.in_display:
                continue
            constructor = facts.constructors.get(call.receiver or "", "")
            if call.method in FIT_METHODS and constructor.startswith(DEEP_LEARNING_MODULES):
                return cell.number, f"a {constructor.split('.')[0]} model ({call.receiver})"
            framework = (
                call.method in FIT_METHODS and constructor and _is_deep_learning(constructor)
            )
            if framework:
                return cell.number, (
                    f"a {constructor.rsplit('.', 1)[-1]} ({call.receiver}), a {framework} network "
                    "under a scikit-learn API"
                )
            if call.method in ("backward", "step") and any(
                module.startswith("torch") for module in facts.aliases.modules()
            ):
                return cell.number, _TORCH_LOOP
            library_training = _library_training(call, constructor)
            if library_training:
                return cell.number, library_training
    return None


def _library_training(call: CallSite, constructor: str) -> str | None:
    """A library's own training routine over torch (BoTorch's fit_gpytorch_mll, Pyro's MCMC,
    sbi's inference): the notebook trains, but through code nb2prod cannot look into."""
    if call.qualified.rsplit(".", 1)[-1] == "fit_gpytorch_mll":
        return "with BoTorch's fit_gpytorch_mll(...), a Gaussian process"
    library = constructor.partition(".")[0]
    if call.method in ("run", "train") and library in _TORCH_LIBRARIES:
        short = constructor.rsplit(".", 1)[-1]
        return f"with {library}'s {short}.{call.method}(...) ({call.receiver})"
    return None


_TORCH_LIBRARIES = ("pyro", "sbi", "botorch")


def _is_deep_learning(constructor: str) -> str | None:
    """The framework a model's class is, or is built on (see built_on_deep_learning)."""
    if constructor.startswith(DEEP_LEARNING_MODULES):
        return constructor.partition(".")[0]
    return built_on_deep_learning(constructor)


def _defined_candidate(facts: NotebookFacts, kept: set[int], name: str, where: str) -> _Candidate:
    for cell in facts.cells:
        if cell.number in kept and name in cell.names.defines:
            return _Candidate(
                name, "fitted" if name in _fitted(facts) else "rule-based", cell.number, ()
            )
    raise InputError(
        facts.notebook.path,
        f"{where} names the model {name!r}, but no kept cell defines it",
        hint="name a variable that a kept cell assigns",
    )


def _only_cross_validated(facts: NotebookFacts) -> str:
    """`cross_val_score(GridSearchCV(SVC(), ...), X, y) (cell 3)`, each model passed to a
    cross-validation function, named as the notebook builds it; empty when there is none."""
    found: dict[str, list[int]] = {}
    for cell in facts.cells:
        for call in cell.calls:
            if call.qualified not in CV_FUNCTIONS or not call.node.args:
                continue
            given = call.node.args[0]
            built = given if isinstance(given, ast.Call) else None
            if isinstance(given, ast.Name):
                built = facts.constructor_calls.get(given.id)
            callee = dotted_name(built.func) if isinstance(built, ast.Call) else None
            if callee is None:
                continue
            what = facts.aliases.resolve(callee).rsplit(".", 1)[-1]
            function = call.qualified.rsplit(".", 1)[-1]
            found.setdefault(f"{what} with {function}", []).append(cell.number)
    return "; ".join(f"{what} ({_cells(numbers)})" for what, numbers in found.items())


def _fitted(facts: NotebookFacts) -> set[str]:
    return {
        c.receiver
        for cell in facts.cells
        for c in cell.calls
        if c.method in FIT_METHODS and c.receiver
    }


def _describe(
    facts: NotebookFacts,
    kept: set[int],
    chosen: _Candidate,
    reason: str,
    candidates: list[_Candidate],
) -> Model:
    estimator = chosen.constructor or facts.constructors.get(chosen.name) or "unknown"
    if estimator in TRAIN_FUNCTIONS:
        estimator = estimator.removesuffix(".train") + ".Booster"  # xgb.train returns one
    defined_in = next(
        (cell.number for cell in facts.cells if chosen.name in cell.names.defines), chosen.cell
    )
    inner = _callees_inside(facts.constructor_calls.get(chosen.name), facts)
    parts = [*inner, estimator]
    if estimator.rsplit(".", 1)[-1] in ("make_pipeline", "Pipeline") and len(inner) > 1:
        estimator += "(" + ", ".join(part.rsplit(".", 1)[-1] for part in inner[1:]) + ")"
    task = "unknown"
    if any(REGRESSOR_HINTS.search(part.rsplit(".", 1)[-1]) for part in parts):
        task = "regression"
    if any(CLASSIFIER_HINTS.search(part.rsplit(".", 1)[-1]) for part in parts):
        task = "classification"
    top = estimator.split(".")[0] if "." in estimator else None
    return Model(
        name=chosen.name,
        kind=chosen.kind,
        estimator=estimator,
        library=top,
        task=task,
        defined_in=defined_in,
        fitted_in=chosen.cell if chosen.kind == "fitted" else None,
        fit_inputs=chosen.fit_inputs,
        predict_inputs=_predict_inputs(facts, kept, chosen.name),
        reason=reason,
        candidates=tuple(dict.fromkeys(c.name for c in candidates)),
    )


def _predict_inputs(facts: NotebookFacts, kept: set[int], name: str) -> tuple[str, ...]:
    inputs = []
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for call in cell.calls:
            if call.method in PREDICT_METHODS and call.receiver == name and call.node.args:
                inputs.append(_unwrapped(facts, call.node.args[0]))
    return tuple(dict.fromkeys(inputs))


def _callees_inside(call: ast.Call | None, facts: NotebookFacts) -> list[str]:
    if call is None:
        return []
    names = []
    for node in ast.walk(call):
        if isinstance(node, ast.Call) and (callee := dotted_name(node.func)):
            names.append(facts.aliases.resolve(callee))
    return names


def without_input(path: Path, model: Model) -> InputError:
    """A fitted model the notebook never hands data (only inside code nb2prod cannot follow):
    the package could not tell what a request holds."""
    name = model.name
    return InputError(
        path,
        f"the notebook never gives the model {name} any data (no {name}.fit(X, ...), "
        f"{name}.predict(X) or {name}(X) on a variable), so the package cannot tell what it "
        "takes as input",
        cell=model.defined_in,
        hint=f"call {name}.predict(X) on an example of its input in a cell",
    )


def refuse_a_model_without_input(path: Path, model: Model, facts: NotebookFacts) -> None:
    """Said by plan, before convert would find no input for the package's model: none of what
    it is fitted on or predicts on reads a notebook variable (`net(torch.zeros(4, 2))`)."""
    if model.kind != "fitted" or is_time_series_model(model.estimator):
        return  # a forecaster answers a stretch of its series, not rows
    defined = {name for cell in facts.cells for name in cell.names.defines}
    only_in_functions = _function_locals(facts) - defined
    for text in [*model.fit_inputs[:1], *model.predict_inputs[:1]]:
        try:
            read = names_in(ast.parse(text, mode="eval").body) - set(dir(builtins))
        except SyntaxError:
            continue
        if any(not facts.aliases.is_module_alias(n) for n in read - only_in_functions):
            return
        if read & only_in_functions:
            named = "the model" if model.name == "model" else f"the model {model.name}"
            datasets = _dataset_classes(facts)
            hint = (
                "build what it is fitted on in a cell (loader = DataLoader("
                "TensorDataset(X_t, y_t))) and hand it to the function"
            )
            if datasets:  # the loader is built, over rows nb2prod cannot follow
                hint = (
                    f"make {datasets[0]}.__getitem__ return rows of tensors its __init__ "
                    "holds (return self.X[idx], self.y[idx]), or draw the batches from "
                    "DataLoader(TensorDataset(X_t, y_t))"
                )
            raise InputError(
                path,
                f"{named} is fitted on {text}, a name only a notebook function binds, so the "
                "package cannot tell which of the notebook's data it takes",
                cell=model.defined_in,
                hint=hint,
            )
    raise without_input(path, model)


def _dataset_classes(facts: NotebookFacts) -> list[str]:
    """The notebook's own torch Dataset classes, in order."""
    return [
        statement.name
        for cell in facts.cells
        for statement in cell.statements
        if isinstance(statement, ast.ClassDef)
        and any(
            facts.aliases.resolve(dotted_name(base) or "").startswith("torch.utils.data")
            for base in statement.bases
        )
    ]


def _function_locals(facts: NotebookFacts) -> set[str]:
    """The names the notebook's functions bind in their bodies (their loop variables
    included)."""
    return {
        name
        for cell in facts.cells
        for statement in cell.statements
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(statement)
        for name in (
            [node.id] if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) else []
        )
    }


def _as_clause(reason: str) -> str:
    """`the only fitted estimator` as `it is the only fitted estimator`; a reason that is a
    clause already (`its name is ...`, `the notebook picks it ...`) as it is."""
    return reason if reason.startswith(("its ", "the notebook ")) else f"it is {reason}"
