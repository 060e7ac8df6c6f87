"""The package's own measurement of the model, so the claim it ships is measured, not copied.

A notebook's holdout score is one split of the data, and a lucky split overstates the model.
Where it can, training refits fresh copies of the model on k folds of the data the model was
fitted on and scores each on the fold it did not see, with the notebook's own metric; the claim
is their mean and spread, and `validation_method` says so. Where it cannot (the model is not a
scikit-learn estimator, the metric is the notebook's own computation, too few rows, no labels),
the notebook's holdout metric stands and the run says why, in its `measurement_note` tag.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_FOLDS = 5
# Past this many seconds of the notebook's own steps, k more fits are not made unless asked for:
# a long training stays a long training, not k + 1 of them.
UNASKED_BUDGET_SECONDS = 120.0
SEED = 0  # the folds are shuffled the same way on every run, so a retrain measures alike


class CannotCrossValidate(Exception):
    """Why the package cannot cross-validate this model; the holdout metric stands."""


@dataclass(frozen=True)
class Measurement:
    """What the claim is made from: a metric the run logged, its value and spread, and how."""

    metric: str | None  # the run's metric key, e.g. "accuracy_cv"; None when nothing measured
    value: float | None
    spread: float | None
    method: str  # the validation_method: what was actually done
    note: str = ""  # why the package did not cross-validate, when it did not


def folds_to_use(asked: int | None, steps_seconds: float) -> tuple[int, str]:
    """The folds to cross-validate with, and why none, when none: what was asked for, else the
    default unless the notebook's steps alone took longer than the budget."""
    if asked is not None:
        return asked, "" if asked >= 2 else f"cross-validation is off ({asked} folds asked for)"
    if steps_seconds > UNASKED_BUDGET_SECONDS:
        return 0, (
            f"the notebook's steps took {steps_seconds:.0f} s, so {DEFAULT_FOLDS} more fits were "
            f"not made unasked (train --cross-validation-folds {DEFAULT_FOLDS} makes them)"
        )
    return DEFAULT_FOLDS, ""


def measure(
    declared: Mapping[str, Any],
    model: Any,
    fit_data: tuple[Any, Any] | None,
    logged: Mapping[str, tuple[float, float | None]],
    folds: int = DEFAULT_FOLDS,
    why_no_folds: str = "",
) -> Measurement:
    """Cross-validate the model where it can; else the notebook's held-out metric, as logged.
    `declared` is the package's honesty.json: the notebook's metric and how to measure it."""
    primary = str(declared.get("primary_metric") or "")
    method = declared["validation_method"]
    if primary in logged and method.endswith("cross-validation"):
        return Measurement(primary, *logged[primary], method)  # the notebook cross-validates
    try:
        scores, metric, used = cross_validated(declared, model, fit_data, folds, why_no_folds)
    except CannotCrossValidate as reason:
        note = str(reason)
    except Exception as error:  # measuring more must never cost the training it measures
        note = f"cross-validation failed: {_cause(error)}"
    else:
        name = f"{metric}_cv" if f"{metric}_cv" not in logged else f"{metric}_package_cv"
        ordered = (declared.get("cross_validation") or {}).get("ordered")
        folds_kind = "time-ordered cross-validation" if ordered else "cross-validation"
        return Measurement(
            name, float(scores.mean()), float(scores.std()), f"{used}-fold {folds_kind}"
        )
    if primary in logged:
        return Measurement(primary, *logged[primary], method, note)
    return Measurement(None, None, None, method, note)


def cross_validated(
    declared: Mapping[str, Any],
    model: Any,
    fit_data: tuple[Any, Any] | None,
    folds: int,
    why_no_folds: str = "",
) -> tuple[np.ndarray, str, int]:
    """The model's score on each of k folds, the metric's name, and k."""
    spec = declared.get("cross_validation")
    if folds < 2:
        raise CannotCrossValidate(why_no_folds or f"cross-validation is off ({folds} folds)")
    if spec is None:
        raise CannotCrossValidate(declared.get("cross_validation_note") or "no metric")
    if fit_data is None:
        raise CannotCrossValidate("the model was fitted without labels to measure it against")
    try:
        from sklearn.base import clone, is_classifier, is_regressor
        from sklearn.model_selection import (
            KFold,
            StratifiedKFold,
            TimeSeriesSplit,
            cross_val_score,
        )
    except ImportError:
        raise CannotCrossValidate("scikit-learn, which cross-validates, is not installed") from None
    if not hasattr(model, "get_params"):
        raise CannotCrossValidate(f"a {type(model).__name__} is not a scikit-learn estimator")
    # a search's choice is measured, not the search again on every fold (nested, k times the cost)
    chosen = getattr(model, "best_estimator_", model)
    try:
        fresh = clone(chosen)
    except Exception as error:
        raise CannotCrossValidate(
            f"a {type(model).__name__} cannot be copied unfitted: {error}"
        ) from None
    features, labels = fit_data
    rows = len(labels)
    if spec.get("ordered"):
        # the notebook measured on rows after those it learned from: each fold does too
        used = min(folds, rows // 2 - 1)
        if used < 2:
            raise CannotCrossValidate(f"{rows} rows are too few to cross-validate in order")
        splitter: Any = TimeSeriesSplit(used)
    elif is_classifier(model):
        smallest = int(np.unique(np.asarray(labels), return_counts=True)[1].min())
        used = min(folds, smallest)
        splitter = StratifiedKFold(used, shuffle=True, random_state=SEED)
        if used < 2:
            raise CannotCrossValidate("a class has a single example: no fold can hold it out")
    else:
        used = min(folds, rows // 2)
        splitter = KFold(used, shuffle=True, random_state=SEED) if used >= 2 else None
        if splitter is None:
            raise CannotCrossValidate(f"{rows} rows are too few to cross-validate")
    if spec["scorer"]:
        scoring, metric = _scorer(spec), spec["metric"]
    else:  # the estimator's own score, as the notebook's model.score(X, y)
        own = "accuracy" if is_classifier(model) else "r2" if is_regressor(model) else "score"
        scoring, metric = None, spec["metric"] or own
    try:
        scores = cross_val_score(
            fresh, features, labels, cv=splitter, scoring=scoring, error_score="raise"
        )
    except Exception as error:
        raise CannotCrossValidate(f"cross-validation failed: {_cause(error)}") from None
    return np.asarray(scores, dtype=float), metric, used


def _cause(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _scorer(spec: Mapping[str, Any]) -> Any:
    """The notebook's metric as a scorer, reading what it read: predictions or probabilities."""
    from sklearn.metrics import make_scorer

    module, _, name = spec["scorer"].rpartition(".")
    function = getattr(importlib.import_module(module), name)
    response = spec["response_method"]
    try:
        return make_scorer(function, response_method=response, **spec["keywords"])
    except TypeError:  # scikit-learn before 1.4 names the response differently
        needs = {"predict_proba": "needs_proba", "decision_function": "needs_threshold"}
        flags = {needs[response]: True} if response in needs else {}
        return make_scorer(function, **flags, **spec["keywords"])


def overclaim(declared: Mapping[str, Any], notebook: float, measured: Measurement) -> str | None:
    """Why the notebook's own number cannot be quoted: it beats what the folds measured by more
    than twice their spread (one split's luck, not the model); None when it is within it."""
    if measured.value is None or measured.spread is None:
        return None
    greater_is_better = declared.get("greater_is_better", True)
    margin = 2 * measured.spread + 5e-4  # claims are rounded to 3 decimals
    beyond = (
        notebook > measured.value + margin
        if greater_is_better
        else notebook < measured.value - margin
    )
    if not beyond:
        return None
    return (
        f"the notebook's {declared.get('primary_metric')} {notebook:.3f} "
        f"({declared['validation_method']}) beats what {measured.method} measured, "
        f"{measured.value:.3f} ±{measured.spread:.3f}, by more than twice the spread: one lucky "
        "split, not what the model does"
    )
