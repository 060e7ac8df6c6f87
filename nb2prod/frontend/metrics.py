"""Which metrics the notebook measures, and on what data.

A claim of accuracy is only honest when it was measured on data the model did not see. Names
are followed through the notebook: the test outputs of `train_test_split` are held out, and
so is anything computed from them (`y_pred = model.predict(X_test)`); cross-validation
scores are held out by construction.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

from nb2prod.frontend.computed_metrics import (
    bound_values,
    cross_validation_score,
    data_read,
    hand_metric,
    named_values,
)
from nb2prod.frontend.facts import CallSite, NotebookFacts
from nb2prod.frontend.lineage import OTHER, measured_models
from nb2prod.frontend.pysyntax import (
    dotted_name,
    keyword,
    names_in,
    nodes_run_now,
    root_name,
    target_names,
)
from nb2prod.frontend.vocabulary import (
    CROSS_VALIDATE,
    CV_FUNCTIONS,
    LOWER_IS_BETTER,
    SPLIT_FUNCTIONS,
    is_metric_function,
)
from nb2prod.plan import Finding, Metric, Parameter, Scorer, freeze

_HELD_OUT_NAME = re.compile(r"(^|_)(test|val|valid|validation|holdout|heldout|oof)(_|$)", re.I)
_TRAIN_NAME = re.compile(r"(^|_)train(_|$)", re.I)
_DEFAULT_TEST_SIZE = 0.25
_DEFAULT_FOLDS = 5
_RESPONSE_METHODS = ("predict_proba", "decision_function")
_PREDICTION_KEYWORDS = ("y_pred", "y_score", "y_prob", "probas_pred")


@dataclass(frozen=True)
class Measurement:
    metrics: tuple[Metric, ...]
    holdout_fraction: float | None  # from train_test_split
    findings: tuple[Finding, ...]
    # metric name -> what it measures: the served model (lineage.SERVED), the served model
    # before a later fit (REFITTED), or no model the notebook fits (UNKNOWN)
    measures: dict[str, str]
    # metrics of another model, or of an earlier binding of the served name (lineage.OTHER):
    # the run does not log them, since they say nothing of the model it logs
    others: tuple[Metric, ...] = ()
    # held-out metric name -> the share of the whole data it reads: a split of a split's
    # held-out part (train / validation / test) holds part of that part
    holdout_shares: dict[str, float] = field(default_factory=dict)


def find_metrics(
    facts: NotebookFacts,
    kept: set[int],
    model_name: str,
    parameters: tuple[Parameter, ...],
    metric_names: set[str],
    models: tuple[str, ...] = (),
) -> Measurement:
    """The metrics the kept code computes; `models` names every object the notebook fits
    (the model among them), so a metric of another one is told from one of the model."""
    defaults = {p.name: p.default for p in parameters}
    notebook_functions = {name for cell in facts.cells for name in cell.functions}
    notebook_functions -= facts.returns_no_number  # a dict of figures is no metric
    held_out: set[str] = set()
    trained_on: set[str] = set()
    holdout_fraction: float | None = None
    shares: dict[str, float] = {}  # a split's output (or what is computed from it) -> its share
    read_shares: dict[int, float] = {}  # a held-out metric's call node -> the share it reads
    metrics: list[Metric] = []
    findings: list[Finding] = []
    calls: list[int] = []  # the id of each metric's call node, in the order of `metrics`
    cross_validated: dict[int, bool] = {}
    cv_results: dict[str, ast.Call] = {}  # names bound to `cross_validate(...)`'s dict
    parts = bound_values(s for c in facts.cells if c.number in kept for s in c.kept_statements)
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            split = _split_call(statement, facts)
            if split is not None:
                holdout_fraction = _test_size(split, defaults)
            _share_out(statement, split, holdout_fraction, shares, {model_name, *models})
            _propagate(statement, split, held_out, trained_on)
        by_call = len(metrics)
        for call in cell.calls:
            if call.in_display or not call.assigned_to:
                continue
            qualified = call.qualified
            function = qualified.rsplit(".", 1)[-1]
            is_score = call.method == "score" and call.receiver == model_name
            by_body = qualified in facts.returns_a_metric  # `def evaluate(...): return rmse`
            if not (
                is_score or by_body or is_metric_function(qualified, function in notebook_functions)
            ):
                continue
            if qualified == CROSS_VALIDATE and call.assigned_whole:
                # a dict of arrays per scorer: what the notebook reads from it is the metric
                cv_results[call.assigned_to[0]] = call.node
                continue
            data = names_in(call.node)
            if qualified in CV_FUNCTIONS:
                validation, folds = "cross-validation", _folds(call.node, defaults)
            elif data & held_out:
                validation, folds = "holdout", None
            elif data & trained_on:
                validation, folds = "training data", None
            else:
                validation, folds = "unknown", None
            name = call.assigned_to[0]
            metric = Metric(
                name=name,
                function=function,
                cell=cell.number,
                line=call.line,
                held_out=validation in ("holdout", "cross-validation"),
                validation=validation,
                folds=folds,
                greater_is_better=_greater_is_better(call.node, function, name),
                scorer=_scorer(call, is_score, facts),
            )
            metrics.append(metric)
            calls.append(id(call.node))
            _note_share(read_shares, id(call.node), data & held_out, shares)
            cross_validated[id(call.node)] = qualified in CV_FUNCTIONS
            if validation == "training data":
                findings.append(_on_training_data(name, cell.number, call.line))
        called = {(metric.name, metric.line) for metric in metrics[by_call:]}
        for target, value in _by_hand(cell.kept_statements):
            read = cross_validation_score(value)
            if read is not None and read[0] in cv_results:
                results, scorer = read
                call_node = cv_results[results]
                metrics.append(
                    Metric(
                        name=target,
                        function=scorer,
                        cell=cell.number,
                        line=value.lineno,
                        held_out=True,
                        validation="cross-validation",
                        folds=_folds(call_node, defaults),
                        greater_is_better=scorer.startswith("neg_")
                        or not LOWER_IS_BETTER.search(scorer),
                        expression=ast.unparse(value),
                    )
                )
                calls.append(id(value))
                cross_validated[id(value)] = True
                continue
            quantity = hand_metric(target, value, parts, (model_name, *models))
            if quantity is None or (target, value.lineno) in called:
                continue
            data = data_read(value, parts)
            validation = "unknown"
            if data & held_out:
                validation = "holdout"
            elif data & trained_on:
                validation = "training data"
            metrics.append(
                Metric(
                    name=target,
                    function=quantity,
                    cell=cell.number,
                    line=value.lineno,
                    held_out=validation == "holdout",
                    validation=validation,
                    folds=None,
                    greater_is_better=not LOWER_IS_BETTER.search(quantity),
                    expression=ast.unparse(value),
                )
            )
            calls.append(id(value))
            _note_share(read_shares, id(value), data & held_out, shares)
            cross_validated[id(value)] = False
            if validation == "training data":
                findings.append(_on_training_data(target, cell.number, value.lineno))
    measured = measured_models(facts, kept, model_name, set(models), cross_validated)
    lineage = [measured[key] for key in calls]
    others = tuple(m for m, of in zip(metrics, lineage, strict=True) if of == OTHER)
    findings += [_of_another_model(metric, model_name) for metric in others]
    own: dict[str, tuple[Metric, str]] = {}  # by name: a name measured again keeps its last
    holdout_shares: dict[str, float] = {}
    for metric, of, key in zip(metrics, lineage, calls, strict=True):
        if of != OTHER:
            own.pop(metric.name, None)
            own[metric.name] = (metric, of)
            holdout_shares.pop(metric.name, None)
            if key in read_shares:
                holdout_shares[metric.name] = read_shares[key]
    metrics = [metric for metric, _ in own.values()]
    for name in sorted(metric_names - own.keys()):
        cell = next((c.number for c in facts.cells if name in c.names.defines), 0)
        metrics.append(Metric(name, "unknown", cell, 0, False, "unknown", None, None))
    measures = {name: of for name, (_, of) in own.items()}
    return Measurement(
        tuple(metrics), holdout_fraction, tuple(findings), measures, others, holdout_shares
    )


def _by_hand(statements: list[ast.stmt]) -> list[tuple[str, ast.expr]]:
    """Each `name = value` the statements run (in loops and `with` blocks too), in order;
    `a, b = value` as `a = value[0]` and `b = value[1]`."""
    found = [
        pair
        for statement in statements
        for node in nodes_run_now(statement)
        for pair in named_values(node)
    ]
    return sorted(found, key=lambda pair: (pair[1].lineno, pair[1].col_offset))


def _on_training_data(name: str, cell: int, line: int) -> Finding:
    return Finding(
        "metric-on-training-data",
        "warning",
        f"{name!r} is measured on the data the model was trained on, so it says nothing "
        "about new data",
        cell,
        line,
        "measure it on the held-out split",
    )


def _of_another_model(metric: Metric, model_name: str) -> Finding:
    return Finding(
        "metric-of-another-model",
        "info",
        f"{metric.name!r} measures another model than {model_name} as the package serves it "
        "(another name, an earlier binding of this one, or weights put back over the ones it "
        "measured): the run does not log it",
        metric.cell,
        metric.line,
        None,
    )


def _scorer(call: CallSite, is_score: bool, facts: NotebookFacts) -> Scorer | None:
    """The metric as the package can compute it on folds of its own: a scikit-learn metric
    function called with literal options, or the model's `score`, whose value the notebook keeps
    as it is (a metric scaled or combined afterwards would not compare with a fold's score)."""
    if not call.assigned_whole:
        return None
    if is_score:
        return Scorer("", freeze({}), "predict")
    if not call.qualified.startswith("sklearn.metrics.") or len(call.node.args) > 2:
        return None
    keywords: dict[str, object] = {}
    predicted = call.node.args[1] if len(call.node.args) == 2 else None
    for option in call.node.keywords:
        if option.arg in _PREDICTION_KEYWORDS:
            predicted = option.value
            continue
        if option.arg is None:
            return None  # **options: not known before run time
        if option.arg == "y_true":
            continue
        try:
            value = ast.literal_eval(option.value)
            json.dumps(value)
        except (ValueError, TypeError, SyntaxError):
            return None  # sample_weight=w, labels=classes: values only the notebook has
        keywords[option.arg] = value
    if predicted is None:
        return None
    return Scorer(call.qualified, freeze(keywords), _response_method(predicted, facts))


def _response_method(predicted: ast.expr, facts: NotebookFacts) -> str:
    """Which of the model's methods gives what the metric reads: `predict_proba(X)[:, 1]` in
    the call, or a variable assigned from it in any cell."""
    found = _response_in(predicted)
    if found or not isinstance(predicted, ast.Name | ast.Subscript):
        return found or "predict"
    name = root_name(predicted)
    for cell in facts.cells:
        for statement in cell.statements:
            for node in ast.walk(statement):
                if isinstance(node, ast.Assign) and any(
                    name in target_names(target) for target in node.targets
                ):
                    found = _response_in(node.value) or found
    return found or "predict"


def _response_in(expression: ast.expr) -> str | None:
    for node in ast.walk(expression):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _RESPONSE_METHODS
        ):
            return node.func.attr
    return None


def _split_call(statement: ast.stmt, facts: NotebookFacts) -> ast.Call | None:
    if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call):
        callee = dotted_name(statement.value.func)
        if callee and facts.aliases.resolve(callee) in SPLIT_FUNCTIONS:
            return statement.value
    return None


def _propagate(
    statement: ast.stmt, split: ast.Call | None, held_out: set[str], trained_on: set[str]
) -> None:
    """Follow held-out and training data through one assignment."""
    if not isinstance(statement, ast.Assign):
        return
    targets = [name for target in statement.targets for name in target_names(target)]
    if split is not None:
        for index, name in enumerate(targets):
            (held_out if index % 2 else trained_on).add(name)
        return
    for name, sources in _assigned_from(statement, targets):
        if sources & held_out or _HELD_OUT_NAME.search(name):
            held_out.add(name)
            trained_on.discard(name)
        elif sources & trained_on or _TRAIN_NAME.search(name):
            trained_on.add(name)


def _share_out(
    statement: ast.stmt,
    split: ast.Call | None,
    fraction: float | None,
    shares: dict[str, float],
    models: set[str],
) -> None:
    """Follow each name's share of the whole data through one assignment: a split's outputs
    hold `fraction` (held out) or the rest of what it splits, and what is computed from them
    (`scaler.transform(X_test)`) holds the same rows. A fitted model holds no rows, so
    `gbm.predict(X_test)` holds X_test's, whatever gbm was early-stopped on."""
    if not isinstance(statement, ast.Assign):
        return
    targets = [name for target in statement.targets for name in target_names(target)]
    if split is not None:
        split_from = names_in(split.args[0]) if split.args else set()
        whole = min((shares[n] for n in split_from if n in shares), default=1.0)
        for index, name in enumerate(targets):
            shares.pop(name, None)
            if fraction is not None:
                shares[name] = whole * (fraction if index % 2 else 1 - fraction)
        return
    for name, sources in _assigned_from(statement, targets):
        known = [shares[source] for source in sources - models if source in shares]
        shares.pop(name, None)
        if known:
            shares[name] = min(known)


def _note_share(
    read_shares: dict[int, float], key: int, held_out: set[str], shares: dict[str, float]
) -> None:
    known = [shares[name] for name in held_out if name in shares]
    if known:
        read_shares[key] = min(known)


def _assigned_from(statement: ast.Assign, targets: list[str]) -> list[tuple[str, set[str]]]:
    """Each target with the names its value reads: `a, b = f(x), g(y)` pairs them up."""
    value = statement.value
    if isinstance(value, ast.Call) and len(targets) == len(value.args) > 1:
        return [(name, names_in(arg)) for name, arg in zip(targets, value.args, strict=True)]
    return [(name, names_in(value)) for name in targets]


def _test_size(call: ast.Call, defaults: dict[str, object]) -> float | None:
    """The held-out fraction, when it can be read; None when it is a count or unknown."""
    test, train = keyword(call, "test_size"), keyword(call, "train_size")
    if test is not None:
        value = _number(test, defaults)
    elif train is not None:
        kept = _number(train, defaults)
        value = 1 - kept if isinstance(kept, float) else None
    else:
        value = _DEFAULT_TEST_SIZE
    return float(value) if isinstance(value, float) and 0 < value < 1 else None


def _folds(call: ast.Call, defaults: dict[str, object]) -> int:
    cv = _number(keyword(call, "cv"), defaults)
    return int(cv) if isinstance(cv, int) and not isinstance(cv, bool) else _DEFAULT_FOLDS


def _number(node: ast.expr | None, defaults: dict[str, object]) -> int | float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name) and isinstance(defaults.get(node.id), int | float):
        return defaults[node.id]  # type: ignore[return-value]
    return None


def _greater_is_better(call: ast.Call, function: str, name: str) -> bool:
    scoring = keyword(call, "scoring")
    if isinstance(scoring, ast.Constant) and isinstance(scoring.value, str):
        return True  # sklearn scorers are all "greater is better" (errors are negated)
    return not LOWER_IS_BETTER.search(function) and not LOWER_IS_BETTER.search(name)
