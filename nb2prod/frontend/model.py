"""Find the model object the package is built around.

In order: an explicit choice (`nb2prod:model=NAME` tag, `# nb2prod: train model=NAME`, or
notebook metadata `nb2prod.model`), then a fitted estimator with a conventional name
(`model`, `clf`, `pipeline`...), then the last fitted estimator, then a rule-based model
(an instance of a class the notebook defines with a `predict` method). When more than one
object fits the description, the choice is reported as a finding, never made silently.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nb2prod.errors import InputError
from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import dotted_name
from nb2prod.frontend.vocabulary import (
    CLASSIFIER_HINTS,
    CONVENTIONAL_MODEL_NAMES,
    FIT_METHODS,
    PREDICT_METHODS,
    REGRESSOR_HINTS,
    is_transformer,
)
from nb2prod.plan import Finding, Model


@dataclass(frozen=True)
class _Candidate:
    name: str
    kind: str
    cell: int
    fit_inputs: tuple[str, ...]


def explicit_model_name(facts: NotebookFacts) -> tuple[str, str] | None:
    """The model name the notebook declares, with where it says so."""
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


def find_model(facts: NotebookFacts, kept: set[int]) -> tuple[Model, list[Finding]]:
    candidates = _candidates(facts, kept)
    explicit = explicit_model_name(facts)
    findings: list[Finding] = []
    if explicit is not None:
        name, where = explicit
        chosen = next((c for c in reversed(candidates) if c.name == name), None)
        if chosen is None:
            chosen = _defined_candidate(facts, kept, name, where)
        reason = f"named by {where}"
    else:
        chosen, reason = _choose(facts, candidates, findings)
    return _describe(facts, kept, chosen, reason, candidates), findings


def _candidates(facts: NotebookFacts, kept: set[int] | None) -> list[_Candidate]:
    found: list[_Candidate] = []
    rule_classes = {
        name
        for cell in facts.cells
        for name, methods in cell.classes.items()
        if "predict" in methods
    }
    for cell in facts.cells:
        if kept is not None and cell.number not in kept:
            continue
        for call in cell.calls:
            if call.in_display:
                continue
            if call.method in FIT_METHODS:
                name = call.receiver if isinstance(call.node.func, ast.Attribute) else None
                chained = not isinstance(call.node.func.value, ast.Name)  # type: ignore[union-attr]
                if chained and call.assigned_to:
                    name = call.assigned_to[0]  # results = smf.ols(...).fit()
                if name and not is_transformer(facts.constructors.get(name)):
                    inputs = tuple(dotted_name(arg) or ast.unparse(arg) for arg in call.node.args)
                    found.append(_Candidate(name, "fitted", cell.number, inputs))
            callee = dotted_name(call.node.func)
            if callee in rule_classes and call.assigned_to:
                found.append(_Candidate(call.assigned_to[0], "rule-based", cell.number, ()))
    return found


def _choose(
    facts: NotebookFacts, candidates: list[_Candidate], findings: list[Finding]
) -> tuple[_Candidate, str]:
    for kind in ("fitted", "rule-based"):
        pool = [c for c in candidates if c.kind == kind]
        names = list(dict.fromkeys(c.name for c in pool))
        if not names:
            continue
        conventional = [n for n in names if n in CONVENTIONAL_MODEL_NAMES]
        if len(names) == 1:
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
        if len(names) > 1:
            others = ", ".join(n for n in names if n != chosen_name)
            findings.append(
                Finding(
                    "ambiguous-model",
                    "warning",
                    f"several objects could be the model ({', '.join(names)}); chose "
                    f"{chosen_name!r} because it is {reason}, not {others}",
                    chosen.cell,
                    None,
                    "tag the training cell 'nb2prod:model=NAME' to choose",
                )
            )
        return chosen, reason
    raise InputError(
        facts.notebook.path,
        "no training code: no cell fits a model (.fit(...)) or builds one from a class with a "
        "predict method",
        hint="tag the cell that builds the model 'nb2prod:train' and 'nb2prod:model=NAME'",
    )


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
    estimator = facts.constructors.get(chosen.name, "unknown")
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
                inputs.append(dotted_name(call.node.args[0]) or ast.unparse(call.node.args[0]))
    return tuple(dict.fromkeys(inputs))


def _callees_inside(call: ast.Call | None, facts: NotebookFacts) -> list[str]:
    if call is None:
        return []
    names = []
    for node in ast.walk(call):
        if isinstance(node, ast.Call) and (callee := dotted_name(node.func)):
            names.append(facts.aliases.resolve(callee))
    return names
