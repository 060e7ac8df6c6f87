"""Fit and score the model a yellowbrick visualizer wraps: `ResidualsPlot(model).fit(X, y)`.

A model visualizer fits the estimator it wraps, scores it on held-out data, then draws. The
drawing is display, but the fit and the score are the notebook's training and measurement.
They are rewritten onto the model itself, on the statement's own lines (so line numbers still
point at the notebook), and the visualizer's name becomes display, as a figure's is: its
`show()` goes with the drawing. A model built inside the visualizer's call
(`ResidualsPlot(Ridge())`) is bound to a variable of its own in place of the visualizer.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nb2prod.frontend.pysyntax import Aliases, construct, dotted_name

VISUALIZER_MODULES = ("yellowbrick.",)
_WRAPPED_CALLS = ("fit", "score")
_ESTIMATOR_KEYWORDS = ("estimator", "model")


@dataclass(frozen=True)
class UnwrappedCall:
    line: int
    construct: str  # the visualizer's statement, shortened
    model: str  # the variable that now holds the model it wraps


def unwrap_visualizers(
    source: str,
    statements: list[ast.stmt],
    aliases: Aliases,
    model_name: str,
    visualizers: set[str],
) -> tuple[str, list[UnwrappedCall]]:
    """The cell's source with visualizer fits and scores done on the model they wrap; a model
    built inside a visualizer's call is bound to `model_name`, as a notebook rebinds `model`.
    The names of the visualizers are added to `visualizers`."""
    lines = source.split("\n")
    wrapping: dict[str, str] = {}  # visualizer variable -> model variable
    unwrapped: list[UnwrappedCall] = []
    for statement in statements:
        if _spans_shared_lines(statement, statements):
            continue
        replacement, model = _rewrite(statement, aliases, wrapping, model_name)
        visualizers.update(wrapping)
        if replacement is None or model is None:
            continue
        _replace(lines, statement, replacement)
        unwrapped.append(UnwrappedCall(statement.lineno, construct(statement), model))
    return "\n".join(lines), unwrapped


def _rewrite(
    statement: ast.stmt, aliases: Aliases, wrapping: dict[str, str], model_name: str
) -> tuple[str | None, str | None]:
    """The statement's new code and the model it concerns; (None, None) to leave it."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if not isinstance(target, ast.Name):
            return None, None
        wrapping.pop(target.id, None)  # rebound: whatever it wrapped is no longer reached
        built = statement.value
        if not (isinstance(built, ast.Call) and _is_visualizer(built, aliases)):
            return None, None
        estimator = _estimator_argument(built)
        if isinstance(estimator, ast.Name):
            wrapping[target.id] = estimator.id
            return None, None
        if not isinstance(estimator, ast.Call) or _is_visualizer(estimator, aliases):
            return None, None
        wrapping[target.id] = model_name
        return f"{model_name} = {ast.unparse(estimator)}", model_name
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None, None
    call = statement.value
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    if not (isinstance(receiver, ast.Name) and receiver.id in wrapping):
        return None, None
    assert isinstance(call.func, ast.Attribute)
    if call.func.attr not in _WRAPPED_CALLS:
        return None, None
    model = wrapping[receiver.id]
    on_model = ast.Call(
        func=ast.Attribute(value=ast.Name(model), attr=call.func.attr),
        args=call.args,
        keywords=call.keywords,
    )
    return ast.unparse(on_model), model


def _is_visualizer(call: ast.Call, aliases: Aliases) -> bool:
    callee = dotted_name(call.func)
    return bool(callee) and aliases.resolve(callee or "").startswith(VISUALIZER_MODULES)


def _estimator_argument(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg in _ESTIMATOR_KEYWORDS:
            return keyword.value
    return call.args[0] if call.args else None


def _replace(lines: list[str], statement: ast.stmt, replacement: str) -> None:
    first, last = statement.lineno, statement.end_lineno or statement.lineno
    if first == last:  # keep what shares the line: an indent, a trailing comment
        raw = lines[first - 1].encode()
        start, end = statement.col_offset, statement.end_col_offset or len(raw)
        lines[first - 1] = raw[:start].decode() + replacement + raw[end:].decode()
        return
    indent = lines[first - 1][: len(lines[first - 1]) - len(lines[first - 1].lstrip())]
    for index in range(first - 1, last):
        lines[index] = ""
    lines[first - 1] = indent + replacement


def _spans_shared_lines(statement: ast.stmt, statements: list[ast.stmt]) -> bool:
    first, last = statement.lineno, statement.end_lineno or statement.lineno
    return any(
        other is not statement
        and (other.lineno <= last and (other.end_lineno or other.lineno) >= first)
        for other in statements
    )
