"""Best-epoch checkpoints: a model's weights saved inside its training loop and put back after.

Early stopping by hand keeps the best epoch's weights (`best_state =
copy.deepcopy(model.state_dict())`, or `torch.save(model.state_dict(), "best.pt")`, under
`if val_acc > best_acc:`) and restores them once the loop ends (`model.load_state_dict(
best_state)`). The model served is then the restored one: a metric the loop measured last
(the last epoch's `val_acc`) measures weights the package does not serve, and the metric saved
beside the weights (`best_acc = val_acc` in the same branch) measures exactly the ones it does.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from nb2prod.frontend.pysyntax import dotted_name, root_name

SNAPSHOT_METHODS = frozenset({"state_dict", "get_weights"})
RESTORE_METHODS = frozenset({"load_state_dict", "set_weights", "load_weights"})
_SAVES = frozenset({"torch.save", "save"})
_LOADS = frozenset({"torch.load", "load"})


def snapshot(statement: ast.stmt, models: set[str]) -> tuple[str, str] | None:
    """The model whose weights the statement keeps, and the key they are kept under: the name
    bound to them (`best_state = copy.deepcopy(model.state_dict())`) or the file written
    (`torch.save(model.state_dict(), path)`, `model.save_weights(path)`)."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        model = _weights_of(statement.value, models)
        if model is not None and isinstance(target, ast.Name):
            return model, target.id
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None
    call = statement.value
    callee = dotted_name(call.func) or ""
    if callee in _SAVES and len(call.args) >= 2:
        model = _weights_of(call.args[0], models)
        if model is not None:
            return model, _file_key(call.args[1])
    if (
        isinstance(call.func, ast.Attribute)
        and call.func.attr == "save_weights"
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id in models
        and call.args
    ):
        return call.func.value.id, _file_key(call.args[0])
    return None


def restore(statement: ast.stmt, models: set[str]) -> tuple[str, str] | None:
    """The model whose weights the statement puts back, and the key of the ones it puts back:
    `model.load_state_dict(best_state)`, `model.load_state_dict(torch.load(path))`,
    `model.load_weights(path)`."""
    for node in ast.walk(statement):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in RESTORE_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in models
            and node.args
        ):
            continue
        given = node.args[0]
        if node.func.attr == "load_weights":
            return node.func.value.id, _file_key(given)
        if isinstance(given, ast.Call) and (dotted_name(given.func) or "") in _LOADS:
            return (node.func.value.id, _file_key(given.args[0])) if given.args else None
        name = root_name(given)
        return (node.func.value.id, name) if name is not None else None
    return None


def beside_snapshots(statements: list[ast.stmt], models: set[str]) -> dict[int, str]:
    """For each statement in the same block as a snapshot (`best_acc = val_acc` beside
    `best_state = ...state_dict()`), by id, the key of the weights it was kept with."""
    found: dict[int, str] = {}
    for block in _blocks(statements):
        keys = [kept[1] for statement in block if (kept := snapshot(statement, models))]
        if keys:
            found |= {id(statement): keys[-1] for statement in block}
    return found


def _weights_of(value: ast.expr, models: set[str]) -> str | None:
    for node in ast.walk(value):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SNAPSHOT_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in models
        ):
            return node.func.value.id
    return None


def _file_key(path: ast.expr) -> str:
    return f"file {ast.unparse(path)}"


def _blocks(statements: list[ast.stmt]) -> Iterator[list[ast.stmt]]:
    """Every list of statements that run one after the other: the cell's, and each body,
    `else` and `finally` nested in it (not function or class bodies)."""
    yield statements
    for statement in statements:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(statement, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                yield from _blocks(inner)
        for handler in getattr(statement, "handlers", []) or []:
            yield from _blocks(handler.body)
