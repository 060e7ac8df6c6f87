"""Keep the metrics a notebook only prints: `print("accuracy:", accuracy_score(y, p))`.

And the fits it only shows: `display(clf.fit(X, y))` shows the fitted estimator, and fits it.

Notebooks measure their model and show the number in the same breath. Dropping the
statement as display would drop the measurement too, and a model measured on held-out data
would be called never evaluated. The metric call is lifted out of the printing into an
assignment with a name of its own, on the statement's own lines, so line numbers still point
at the notebook; the printing goes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from nb2prod.frontend.computed_metrics import Parts, bound_values, hand_metric
from nb2prod.frontend.pysyntax import (
    Aliases,
    construct,
    dotted_name,
    fresh_name,
    lines_per_statement,
    root_name,
)
from nb2prod.frontend.vocabulary import CV_FUNCTIONS, FIT_METHODS, is_metric_function


@dataclass(frozen=True)
class LiftedMetric:
    line: int
    construct: str  # the printing statement, shortened
    names: tuple[str, ...]  # the assignments that replaced it


def lift_printed_metrics(
    source: str,
    statements: list[ast.stmt],
    is_display: Callable[[ast.stmt], bool],
    aliases: Aliases,
    notebook_functions: set[str],
    taken: set[str],
) -> tuple[str, list[LiftedMetric]]:
    """The cell's source with printed metrics assigned to new names (added to `taken`)."""
    lines = source.split("\n")
    lifted: list[LiftedMetric] = []
    occupied = lines_per_statement(statements)
    for statement in statements:  # in notebook order: the first score printed is `accuracy`
        if not isinstance(statement, ast.Expr):
            continue
        shown = is_display(statement)
        calls = _metric_calls(statement.value, aliases, notebook_functions, fits=shown)
        by_hand = _printed_accuracy(statement.value, statements) if shown and not calls else None
        if by_hand is None and (not calls or (not shown and calls != [statement.value])):
            continue  # a kept statement is lifted only when it is the metric call itself
        first, last = statement.lineno, statement.end_lineno or statement.lineno
        if any(occupied[line] > 1 for line in range(first, last + 1)):
            continue  # shares a line with another statement (`a = 1; print(...)`)
        assignments = []
        fits = []
        if by_hand is not None:
            name = fresh_name("accuracy", taken)
            taken.add(name)
            assignments.append((name, ast.unparse(by_hand)))
        for call in calls:
            if isinstance(call, ast.Call) and _is_fit(call, aliases):
                fits.append(ast.unparse(call))
                continue
            name = fresh_name(_base_name(call, aliases), taken)
            taken.add(name)
            assignments.append((name, ast.unparse(call)))
        text = fits + [f"{name} = {code}" for name, code in assignments]
        span = last - first + 1
        if len(text) > span:
            text = [*text[: span - 1], "; ".join(text[span - 1 :])]
        for index in range(first - 1, last):
            lines[index] = ""
        for offset, assignment in enumerate(text):
            lines[first - 1 + offset] = assignment
        lifted.append(
            LiftedMetric(first, construct(statement), tuple(name for name, _ in assignments))
        )
    return "\n".join(lines), lifted


def _printed_accuracy(value: ast.expr, statements: list[ast.stmt]) -> ast.expr | None:
    """`print("Accuracy: %d %%" % (100 * correct / total))` with `correct += (predicted ==
    labels).sum().item()` above it in the cell: an accuracy counted by hand and only printed,
    its label saying so. Whether it measures the model is decided once the model is known,
    like any accuracy computed by hand."""
    if not (isinstance(value, ast.Call) and dotted_name(value.func) == "print"):
        return None
    labels = " ".join(
        node.value
        for node in ast.walk(value)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )
    if not _ACCURACY_LABEL.search(labels):
        return None
    parts = bound_values(statements)
    for node in ast.walk(value):
        if not isinstance(node, ast.BinOp | ast.Call) or node is value:
            continue
        if _is_formatting(node) or _shows_a_kept_accuracy(node, parts):
            continue
        if hand_metric("accuracy", node, parts, None):
            return node
    return None


def _shows_a_kept_accuracy(node: ast.BinOp | ast.Call, parts: Parts) -> bool:
    """`acc.mean()` with `acc = (predicted == y).float().mean()` above it: the accuracy is
    already measured under its own name, and printing it measures nothing again."""
    return any(
        hand_metric(name.id, bound, parts, None)
        for name in ast.walk(node)
        if isinstance(name, ast.Name)
        for bound in parts.get(name.id, ())
    )


def _is_formatting(node: ast.BinOp | ast.Call) -> bool:
    """`"%d %%" % value` or `"{:.4f}".format(value)`: a string formatted, not a number
    computed."""
    if isinstance(node, ast.Call):
        text = node.func.value if isinstance(node.func, ast.Attribute) else None
        return (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(text, ast.Constant)
            and isinstance(text.value, str)
        )
    return (
        isinstance(node.op, ast.Mod)
        and isinstance(node.left, ast.Constant)
        and isinstance(node.left.value, str)
    )


_ACCURACY_LABEL = re.compile(r"\bacc(uracy)?\b", re.IGNORECASE)


def _metric_calls(
    value: ast.expr, aliases: Aliases, notebook_functions: set[str], fits: bool = False
) -> list[ast.expr]:
    """The outermost metric calls in an expression (and fits, with `fits`), none of them
    reading a local name; a metric's square root is lifted whole, as the number it shows
    (`print("RMSE:", np.sqrt(mean_squared_error(y, p)))` shows no mean squared error)."""
    found: list[ast.expr] = []
    local = _locally_bound(value)
    stack: list[ast.AST] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.GeneratorExp):
            continue
        if isinstance(node, ast.DictComp | ast.Compare):
            continue  # `errors(model, X) > threshold` shows flags, not the metric
        rooted = _rooted(node, aliases) if isinstance(node, ast.Call | ast.BinOp) else None
        if rooted is not None and _is_metric(rooted, aliases, notebook_functions):
            if not {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & local:
                found.append(node)  # the square root, whole
            continue
        if isinstance(node, ast.Call) and (
            _is_metric(node, aliases, notebook_functions) or (fits and _is_fit(node, aliases))
        ):
            if not {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & local:
                found.append(node)
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return found


def _rooted(node: ast.expr, aliases: Aliases) -> ast.Call | None:
    """The call under a square root: `np.sqrt(call)`, `math.sqrt(call)`, `call ** 0.5`."""
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        callee = aliases.resolve(dotted_name(node.func) or "")
        inner = node.args[0]
        if callee in ("numpy.sqrt", "math.sqrt") and isinstance(inner, ast.Call):
            return inner
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Pow)
        and isinstance(node.right, ast.Constant)
        and node.right.value == 0.5
        and isinstance(node.left, ast.Call)
    ):
        return node.left
    return None


def _locally_bound(value: ast.expr) -> set[str]:
    return {
        node.id
        for node in ast.walk(value)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }


def _is_metric(call: ast.Call, aliases: Aliases, notebook_functions: set[str]) -> bool:
    callee = dotted_name(call.func)
    if callee is not None:
        qualified = aliases.resolve(callee)
        last = qualified.rsplit(".", 1)[-1]
        if is_metric_function(qualified, last in notebook_functions and "." not in callee):
            return True
    if isinstance(call.func, ast.Attribute) and call.func.attr == "score" and len(call.args) >= 2:
        receiver = root_name(call.func.value)
        return receiver is not None and not aliases.is_module_alias(receiver)
    return False


def _is_fit(call: ast.Call, aliases: Aliases) -> bool:
    """`clf.fit(X, y)` on a variable: a fit, whatever shows its result."""
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in FIT_METHODS
        and isinstance(func.value, ast.Name)
        and not aliases.is_module_alias(func.value.id)
    )


def _base_name(call: ast.expr, aliases: Aliases) -> str:
    rooted = _rooted(call, aliases)
    if rooted is not None:  # np.sqrt(mean_squared_error(...)): root_mean_squared_error
        return "root_" + _base_name(rooted, aliases).removesuffix("_value")
    if not isinstance(call, ast.Call):
        return "metric_value"
    callee = dotted_name(call.func)
    if isinstance(call.func, ast.Attribute) and call.func.attr == "score":
        receiver = root_name(call.func.value)
        if callee is None or not aliases.resolve(callee).startswith(("sklearn.", "numpy.")):
            return f"{receiver}_score"
    qualified = aliases.resolve(callee or "metric")
    if qualified in CV_FUNCTIONS:
        return "cv_scores"
    last = qualified.rsplit(".", 1)[-1]
    if last.endswith("_score") and len(last) > len("_score"):
        return last.removesuffix("_score")
    return f"{last}_value"
