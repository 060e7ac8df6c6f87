"""Whether the notebook measures its model on later rows than it learns from.

A notebook that splits its rows by date (`train = df[df["date"] < cutoff]` and `test =
df[df["date"] >= cutoff]`) or without shuffling (`train_test_split(X, y, shuffle=False)`)
measures the model on the future of its training data; so does one that sorts its rows by
time and cuts them at a position (`df.sort_values("date")`, then `df.iloc[:cut]` and
`df.iloc[cut:]`). Folds drawn at random would score the model on rows between those it learns
from, a better number than the notebook's own, so the package cross-validates such a model on
folds that keep the rows' order.
"""

from __future__ import annotations

import ast
import re

from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import dotted_name, keyword, root_name
from nb2prod.frontend.vocabulary import SPLIT_FUNCTIONS

_TIME_WORDS = re.compile(r"date|time|year|month|week|day|period|timestamp", re.IGNORECASE)
_COMPLEMENTS = {ast.Lt: ast.GtE, ast.LtE: ast.Gt, ast.Gt: ast.LtE, ast.GtE: ast.Lt}


def ordered_split(facts: NotebookFacts, kept: set[int]) -> str | None:
    """Why the notebook's held-out rows come after its training rows, or None."""
    sorted_in: int | None = None  # the cell that put the rows in time order
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        masks: list[tuple[str, ast.Compare]] = []  # (the frame split, the comparison)
        cuts: list[tuple[str, str, bool]] = []  # (the frame cut, where, the rows before it)
        for statement in cell.kept_statements:
            for node in ast.walk(statement):
                if isinstance(node, ast.Call) and _unshuffled(facts, node):
                    callee = (dotted_name(node.func) or "").rsplit(".", 1)[-1]
                    return f"cell {cell.number} splits with {callee}(..., shuffle=False)"
                if isinstance(node, ast.Call) and _sorts_by_time(node):
                    sorted_in = cell.number
                if not isinstance(node, ast.Subscript):
                    continue
                mask, frame = node.slice, root_name(node.value)
                if isinstance(mask, ast.Compare) and _by_time(mask) and frame is not None:
                    masks.append((frame, mask))
                if (cut := _positional_cut(mask)) is not None and frame is not None:
                    cuts.append((frame, *cut))
        for index, (frame, mask) in enumerate(masks):
            for other_frame, other in masks[index + 1 :]:
                if other_frame == frame and _complementary(mask, other):
                    return f"cell {cell.number} splits its rows by {ast.unparse(mask)}"
        for frame, where, before in cuts:
            if sorted_in is not None and (frame, where, not before) in cuts:
                return (
                    f"cell {cell.number} cuts its rows at {where}, sorted in time order in "
                    f"cell {sorted_in}"
                )
    return None


def _positional_cut(given: ast.expr) -> tuple[str, bool] | None:
    """`[:cut]` or `[cut:]` (on a frame's `.iloc` or an array): where it cuts, and whether it
    keeps the rows before the cut."""
    if not isinstance(given, ast.Slice) or given.step is not None:
        return None
    if given.lower is None and given.upper is not None:
        return ast.unparse(given.upper), True
    if given.upper is None and given.lower is not None:
        return ast.unparse(given.lower), False
    return None


def _sorts_by_time(call: ast.Call) -> bool:
    """`df.sort_values("date")`, `df.sort_values(by=["store", "week"])`, `df.sort_index()`:
    the rows put in time order, so a cut at a position is a cut in time."""
    if not isinstance(call.func, ast.Attribute):
        return False
    if call.func.attr == "sort_index":
        return True
    if call.func.attr != "sort_values":
        return False
    given = [*call.args[:1], *(k.value for k in call.keywords if k.arg == "by")]
    return any(
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _TIME_WORDS.search(node.value)
        for value in given
        for node in ast.walk(value)
    )


def _unshuffled(facts: NotebookFacts, call: ast.Call) -> bool:
    if facts.aliases.resolve(dotted_name(call.func) or "") not in SPLIT_FUNCTIONS:
        return False
    shuffle = keyword(call, "shuffle")
    return isinstance(shuffle, ast.Constant) and shuffle.value is False


def _by_time(mask: ast.Compare) -> bool:
    """`df["date"] < cutoff`, `df.year >= 2020`: one comparison that reads a time."""
    if len(mask.ops) != 1:
        return False
    words = [
        node.attr if isinstance(node, ast.Attribute) else node.id
        for node in ast.walk(mask)
        if isinstance(node, ast.Attribute | ast.Name)
    ]
    words += [
        node.value
        for node in ast.walk(mask)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    return any(_TIME_WORDS.search(word) for word in words)


def _complementary(mask: ast.Compare, other: ast.Compare) -> bool:
    """`a < b` and `a >= b`: the rows before a cut and the rows from it on."""
    same_sides = ast.dump(mask.left) == ast.dump(other.left) and ast.dump(
        mask.comparators[0]
    ) == ast.dump(other.comparators[0])
    complement = _COMPLEMENTS.get(type(mask.ops[0]))
    return same_sides and complement is not None and isinstance(other.ops[0], complement)
