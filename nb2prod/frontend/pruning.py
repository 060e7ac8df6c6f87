"""Drop display code nested inside code that is kept: `axes[i].plot(...)` in a training loop.

A loop that fits a model and draws on a subplot in the same body is training code with a plot
woven in. The loop is kept; the statements inside it that only show something are removed,
and a body left empty gets a `pass`, so the names the plot needed (`axes`) are never read.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from dataclasses import dataclass

from nb2prod.frontend.pysyntax import construct
from nb2prod.plan import DISPLAY_REASON

_BODIES = ("body", "orelse", "finalbody")
_COMPOUND = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.If,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
)


@dataclass(frozen=True)
class NestedDrop:
    """A statement removed from inside a kept one, by its notebook lines."""

    line: int
    end_line: int
    construct: str
    pass_indent: int | None  # a `pass` replaces it when its body is left empty
    replacement: str | None = None  # a loop header rewritten without the figure's axes
    reason: str = DISPLAY_REASON


def prune_nested_display(
    statement: ast.stmt, is_display: Callable[[ast.stmt], bool], figures: set[str]
) -> tuple[ast.stmt, list[NestedDrop]]:
    """The statement without its nested display statements, and what was removed."""
    if not isinstance(statement, _COMPOUND) or not _has_nested_display(statement, is_display):
        return statement, []
    pruned = copy.deepcopy(statement)
    drops: list[NestedDrop] = []
    _prune(pruned, is_display, drops)
    for node in ast.walk(pruned):
        if isinstance(node, ast.For):
            _unzip_figures(node, figures, drops)
    return pruned, drops


def _unzip_figures(loop: ast.For, figures: set[str], drops: list[NestedDrop]) -> None:
    """`for ax, clf in zip(axes, models)` -> `for clf in models` once nothing reads `ax`."""
    zipped = loop.iter
    if not (
        isinstance(zipped, ast.Call)
        and isinstance(zipped.func, ast.Name)
        and zipped.func.id == "zip"
        and not zipped.keywords
        and isinstance(loop.target, ast.Tuple)
        and len(loop.target.elts) == len(zipped.args)
    ):
        return
    read = {
        n.id
        for statement in [*loop.body, *loop.orelse]
        for n in ast.walk(statement)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    pairs = [
        (target, source)
        for target, source in zip(loop.target.elts, zipped.args, strict=True)
        if not (
            isinstance(target, ast.Name)
            and target.id not in read
            and any(n.id in figures for n in ast.walk(source) if isinstance(n, ast.Name))
        )
    ]
    first_body = loop.body[0].lineno if loop.body else loop.lineno
    header_end = zipped.end_lineno or loop.lineno
    if not pairs or len(pairs) == len(zipped.args) or first_body <= header_end:
        return
    if len(pairs) == 1:
        loop.target, loop.iter = pairs[0]
    else:
        loop.target.elts = [target for target, _ in pairs]
        zipped.args = [source for _, source in pairs]
    header = f"for {ast.unparse(loop.target)} in {ast.unparse(loop.iter)}:"
    drops.append(
        NestedDrop(
            loop.lineno,
            header_end,
            f"zip({', '.join(ast.unparse(a) for a in zipped.args)})"[:60],
            None,
            " " * loop.col_offset + header,
            "the loop no longer walks the figure's axes, which only the plots read",
        )
    )


def _has_nested_display(statement: ast.stmt, is_display: Callable[[ast.stmt], bool]) -> bool:
    for body in _bodies(statement):
        for inner in body:
            if _droppable(inner, body) and is_display(inner):
                return True
            if isinstance(inner, _COMPOUND) and _has_nested_display(inner, is_display):
                return True
    return False


def _prune(node: ast.stmt, is_display: Callable[[ast.stmt], bool], drops: list[NestedDrop]) -> None:
    for field in _body_fields(node):
        body: list[ast.stmt] = getattr(node, field)
        kept: list[ast.stmt] = []
        removed: list[ast.stmt] = []
        for inner in body:
            if _droppable(inner, body) and is_display(inner):
                removed.append(inner)
                continue
            if isinstance(inner, _COMPOUND):
                _prune(inner, is_display, drops)
            kept.append(inner)
        for index, inner in enumerate(removed):
            empty = not kept and index == 0
            drops.append(
                NestedDrop(
                    inner.lineno,
                    inner.end_lineno or inner.lineno,
                    construct(inner),
                    inner.col_offset if empty else None,
                )
            )
        if removed and not kept:
            first = removed[0]
            kept = [ast.Pass(lineno=first.lineno, col_offset=first.col_offset)]
        setattr(node, field, kept)
    if isinstance(node, ast.Try):
        for handler in node.handlers:
            _prune_handler(handler, is_display, drops)


def _prune_handler(
    handler: ast.ExceptHandler, is_display: Callable[[ast.stmt], bool], drops: list[NestedDrop]
) -> None:
    wrapper = ast.If(test=ast.Constant(True), body=handler.body, orelse=[])
    _prune(wrapper, is_display, drops)
    handler.body = wrapper.body


def _body_fields(node: ast.stmt) -> list[str]:
    return [f for f in _BODIES if isinstance(getattr(node, f, None), list)]


def _bodies(statement: ast.stmt) -> list[list[ast.stmt]]:
    bodies = [getattr(statement, f) for f in _body_fields(statement)]
    if isinstance(statement, ast.Try):
        bodies += [handler.body for handler in statement.handlers]
    return bodies


def _droppable(inner: ast.stmt, body: list[ast.stmt]) -> bool:
    """Docstrings and `pass` stay: they are not display, whatever they look like."""
    if isinstance(inner, ast.Pass):
        return False
    is_string = isinstance(inner, ast.Expr) and isinstance(inner.value, ast.Constant)
    return not (is_string and inner is body[0])
