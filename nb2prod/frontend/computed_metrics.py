"""Metrics a notebook computes without a metric function.

Deep-learning notebooks often measure by hand: `accuracy = (preds == y_test).float().mean()`,
`correct += (predicted == labels).sum().item()` in a loop and then `acc = correct / total`,
`rmse = np.sqrt(((y_hat - y_test) ** 2).mean())`. Neither the name nor the expression is enough
on its own (`acc = history.history["acc"][-1]` is a number the fit printed, `(a == b).mean()`
may count anything), so both must agree: the name says which quantity it holds, and its value
is made, directly or through the names it reads, of what that quantity is made of (labels
compared with predictions for accuracy, predictions taken from targets for an error) reduced to
one number (a mean, a sum, a division) there or in the value itself. A Keras network's
`evaluate` measures what the name it is unpacked into says.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterable, Iterator, Mapping

from nb2prod.frontend.pysyntax import names_in, nodes_run_now

_ACCURACY = re.compile(r"(^|_)(acc|accuracy)\d*(_|$)", re.IGNORECASE)
_ERROR = re.compile(r"(^|_)(rmse|mse|mae)\d*(_|$)", re.IGNORECASE)
_REDUCTIONS = frozenset({"mean", "sum", "average", "nanmean", "count_nonzero"})
_STEPS = 5  # how many names deep a value is followed (`acc` <- `correct` <- `predicted`)

Parts = Mapping[str, tuple[ast.expr, ...]]


def bound_values(statements: Iterable[ast.stmt]) -> dict[str, tuple[ast.expr, ...]]:
    """What each name is bound to in `statements`, loops and `with` blocks included:
    assignments, augmented ones (`correct += ...`) and loop targets (`for x, y in loader`)."""
    found: dict[str, list[ast.expr]] = {}
    for statement in statements:
        for node in nodes_run_now(statement):
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            elif isinstance(node, ast.For | ast.AsyncFor):
                targets, value = [node.target], node.iter
            else:
                continue
            for target in targets:
                for name in names_in(target):
                    found.setdefault(name, []).append(value)
    return {name: tuple(values) for name, values in found.items()}


def named_values(node: ast.AST) -> list[tuple[str, ast.expr]]:
    """The names an assignment binds, each with its value: `loss, acc = model.evaluate(...)`
    binds `acc` to `model.evaluate(...)[1]`."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
        return []
    target = node.targets[0]
    if isinstance(target, ast.Name):
        return [(target.id, node.value)]
    if not isinstance(target, ast.Tuple) or isinstance(node.value, ast.Tuple | ast.List):
        return []
    return [
        (element.id, ast.copy_location(ast.Subscript(node.value, ast.Constant(i)), node.value))
        for i, element in enumerate(target.elts)
        if isinstance(element, ast.Name)
    ]


def hand_metric(
    target: str, value: ast.expr, parts: Parts, models: Collection[str] | None
) -> str | None:
    """The quantity (`accuracy`, `rmse`, `mse` or `mae`) that `target = value` computes by
    hand, or None; `parts` holds what the notebook binds each name to. One side of the
    comparison or difference must come from one of the `models` and the other not: two of a
    model's own outputs compared (an approximation against the exact value) measure no model.
    `models` None: not known yet (the sides are not told apart).
    A Keras network's own `evaluate` (`loss, acc = model.evaluate(X_test, y_test)`) measures
    what the name says."""
    if _ACCURACY.search(target):
        quantity, made_of = "accuracy", _is_equality
    elif found := _ERROR.search(target):
        quantity, made_of = found.group(2).lower(), _is_difference
    else:
        return None
    if models is not None and _evaluated_by(value, models):
        return quantity
    reduced = any(_reduces(node) for node in ast.walk(value))
    for expression in _reached(value, parts):
        nodes = list(ast.walk(expression))
        compared = [node for node in nodes if made_of(node)]
        if not (reduced or any(_reduces(node) for node in nodes)):
            continue
        if models is None and compared:
            return quantity
        if models is not None and any(_against_the_model(n, parts, models) for n in compared):
            return quantity
    return None


def _evaluated_by(value: ast.expr, models: Collection[str]) -> bool:
    """`model.evaluate(X, y)`, or an item of what it returns, for one of the models."""
    while isinstance(value, ast.Subscript):
        value = value.value
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "evaluate"
        and isinstance(value.func.value, ast.Name)
        and value.func.value.id in models
    )


def _against_the_model(node: ast.AST, parts: Parts, models: Collection[str]) -> bool:
    """Whether exactly one side of `a == b` or `a - b` is made from one of the models."""
    sides = (node.left, node.comparators[0]) if isinstance(node, ast.Compare) else ()
    if isinstance(node, ast.BinOp):
        sides = (node.left, node.right)
    from_model = [bool(data_read(side, parts) & set(models)) for side in sides]
    return sorted(from_model) == [False, True]


def data_read(value: ast.expr, parts: Parts) -> set[str]:
    """Every name the value reads, through the names it reads (`correct` -> `labels` ->
    `test_loader`): where the data a metric is measured on comes from."""
    return {name for expression in _reached(value, parts) for name in names_in(expression)}


def _reached(value: ast.expr, parts: Parts) -> Iterator[ast.expr]:
    seen: set[str] = set()
    frontier = [value]
    for _ in range(_STEPS + 1):
        following: list[ast.expr] = []
        for expression in frontier:
            yield expression
            for name in names_in(expression) - seen:
                seen.add(name)
                following.extend(parts.get(name, ()))
        frontier = following


def _is_equality(node: ast.AST) -> bool:
    return isinstance(node, ast.Compare) and [type(op) for op in node.ops] == [ast.Eq]


def _is_difference(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub)


def _reduces(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return True
    if isinstance(node, ast.Call):
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        return name in _REDUCTIONS
    return False


def cross_validation_score(value: ast.expr) -> tuple[str, str] | None:
    """`scores["test_roc_auc"].mean()` or `np.mean(scores["test_f1"])`: the mean over the
    folds of one scorer of a `cross_validate(...)` result, as the name holding the result
    and the scorer's name."""
    if not isinstance(value, ast.Call):
        return None
    if isinstance(value.func, ast.Attribute) and value.func.attr == "mean" and not value.args:
        read = value.func.value
    elif ast.unparse(value.func) in ("np.mean", "numpy.mean") and len(value.args) == 1:
        read = value.args[0]
    else:
        return None
    if not (
        isinstance(read, ast.Subscript)
        and isinstance(read.value, ast.Name)
        and isinstance(read.slice, ast.Constant)
        and isinstance(read.slice.value, str)
        and read.slice.value.startswith("test_")
    ):
        return None
    return read.value.id, read.slice.value.removeprefix("test_")
