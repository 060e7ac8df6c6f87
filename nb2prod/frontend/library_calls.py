"""Calls the installed libraries would refuse: a notebook written for another version.

A notebook saved against statsmodels 0.14 passes `ar_select_order(..., old_names=False)`,
which 0.15 no longer takes; scikit-learn renamed `OneHotEncoder(sparse=...)`. The package
pins the versions installed here, so such a call would convert cleanly and then fail when
training runs. Each call of a library function or class in the code the package keeps is
bound to the installed signature instead, and a call it cannot take is refused at plan.

Only what can be told for sure is refused: a call with `*args` or `**kwargs`, a callable
without a signature, or one behind a decorator (which may accept an old keyword its
wrapped signature no longer lists) is left alone.
"""

from __future__ import annotations

import ast
import inspect

from nb2prod.errors import InputError
from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.installed import (
    MISSING,
    installed_signature,
    installed_version,
    present_after_imports,
)
from nb2prod.frontend.pysyntax import dotted_name
from nb2prod.frontend.vocabulary import FIT_METHODS


def refuse_calls_the_installed_libraries_reject(facts: NotebookFacts, kept: set[int]) -> None:
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            for node in ast.walk(statement):
                if not isinstance(node, ast.Call):
                    continue
                rejected = _rejected(facts, node)
                if rejected is None:
                    continue
                qualified, problem = rejected
                library = installed_version(qualified) or qualified.partition(".")[0]
                raise InputError(
                    facts.notebook.path,
                    f"{problem} in {library}, the version installed here, so training would "
                    "fail: the notebook was written for another version",
                    cell=cell.number,
                    line=node.lineno,
                    hint=f"change the call for {library}, or install the version the notebook "
                    "was written for and convert again",
                )


def _rejected(facts: NotebookFacts, call: ast.Call) -> tuple[str, str] | None:
    """(the callee, what is wrong) when the installed library cannot take this call."""
    fitted = _fit_of_a_built_object(facts, call)
    if fitted is not None:
        return fitted
    callee = dotted_name(call.func)
    qualified = facts.aliases.imported(callee) if callee else None
    if callee is None or qualified is None:
        return None
    signature = installed_signature(qualified)
    if signature is MISSING:
        if present_after_imports(qualified, facts.aliases.imported_names):
            return None  # enabled by an import of the notebook's (an experimental feature)
        return qualified, f"{callee}() does not exist"
    if not isinstance(signature, inspect.Signature) or _unknowable(call):
        return None
    try:
        signature.bind(*call.args, **{item.arg: item.value for item in call.keywords if item.arg})
    except TypeError as error:
        return qualified, f"{callee}() {_reason(error)}"
    return None


def _fit_of_a_built_object(facts: NotebookFacts, call: ast.Call) -> tuple[str, str] | None:
    """`model.fit(..., early_stopping_rounds=10)` on a `model` the notebook built from a
    library class, bound to that class's installed fit (LightGBM 4 took keywords out of it)."""
    func = call.func
    if not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.attr in FIT_METHODS
    ):
        return None
    constructor = facts.constructors.get(func.value.id)
    if constructor is None or _unknowable(call):
        return None
    qualified = f"{constructor}.{func.attr}"
    signature = installed_signature(qualified)
    if not isinstance(signature, inspect.Signature):
        return None
    first = next(iter(signature.parameters.values()), None)
    if first is None or first.name != "self":
        return None  # not a plain method: what binds to it cannot be told
    arguments = {item.arg: item.value for item in call.keywords if item.arg}
    try:
        signature.bind(None, *call.args, **arguments)
    except TypeError as error:
        shown = f"{func.value.id}.{func.attr}() ({constructor.rsplit('.', 1)[-1]}.{func.attr})"
        return qualified, f"{shown} {_reason(error)}"
    return None


def _unknowable(call: ast.Call) -> bool:
    """`f(*args)` or `f(**options)`: how many arguments, and which, shows only at run time."""
    return any(isinstance(arg, ast.Starred) for arg in call.args) or any(
        item.arg is None for item in call.keywords
    )


def _reason(error: TypeError) -> str:
    """inspect's wording, as Python itself would put it to the caller."""
    text = str(error)
    if text.startswith("got an unexpected keyword argument"):
        return f"takes no keyword {text.rpartition(' ')[2]}"
    return f"cannot take these arguments ({text})"
