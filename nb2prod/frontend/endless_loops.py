"""Loops that never end: the package's training would run until someone kills it.

A notebook stops a cell by hand (the stop button, a kernel interrupt); a package's `train` has
no one to do that, in CI or on a schedule. A kept `while` loop that the code shows cannot end
is refused at plan, naming its line, rather than capped: a cap would train a model the notebook
never trained, so its claim would measure something else. The code shows it when the loop's
condition is always true (`while True:`) or reads only names the loop never changes and calls
nothing (`while not done:` with `done` never set in it), and nothing in its body leaves it
(`break`, `return`, `raise`, a `sys.exit`). Anything else (`while loss > 0.01:` with `loss`
computed in the body, a condition that calls a function) may end, and is left as written.
"""

from __future__ import annotations

import ast

from nb2prod.errors import InputError
from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import dotted_name

_EXITS = frozenset({"sys.exit", "exit", "quit", "os._exit"})


def refuse_endless_loops(facts: NotebookFacts, kept: set[int]) -> None:
    """InputError at the first kept `while` loop that cannot end."""
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            for loop in ast.walk(statement):
                if isinstance(loop, ast.While) and _never_ends(loop):
                    raise InputError(
                        facts.notebook.path,
                        f"`while {ast.unparse(loop.test)}:` never ends (nothing in it changes "
                        "its condition or leaves it), so the package's training would never "
                        "finish",
                        cell=cell.number,
                        line=loop.lineno,
                        hint="end it on a condition the loop changes (for epoch in "
                        "range(n), or break when the loss stops improving)",
                    )


def _never_ends(loop: ast.While) -> bool:
    return _always_true(loop) and not _leaves(loop.body)


def _always_true(loop: ast.While) -> bool:
    """True, a non-zero constant, or a test over names the body never binds or changes that
    calls nothing (which could change what it reads)."""
    test = loop.test
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if any(isinstance(node, ast.Call | ast.Attribute | ast.Subscript) for node in ast.walk(test)):
        return False  # a call, or an object's state another name may change
    read = {node.id for node in ast.walk(test) if isinstance(node, ast.Name)}
    # entered once, it holds for ever (a notebook that ran it was stopped by hand)
    return bool(read) and not (read & _touched(loop.body))


def _touched(body: list[ast.stmt]) -> set[str]:
    """Names the body binds, deletes, or calls a method on (which may change them)."""
    names: set[str] = set()
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                names.add(node.id)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                names.update(node.names)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = dotted_name(node.func.value)
                if receiver:
                    names.add(receiver.split(".")[0])
    return names


def _leaves(body: list[ast.stmt]) -> bool:
    """A `break` of this loop (not of a loop inside it), a `return`, a `raise` or an exit
    call anywhere in the body."""
    for statement in body:
        for node in _own_nodes(statement):
            if isinstance(node, ast.Break | ast.Return | ast.Raise):
                return True
            if isinstance(node, ast.Call) and dotted_name(node.func) in _EXITS:
                return True
    return False


def _own_nodes(node: ast.AST) -> list[ast.AST]:
    """The nodes under `node`, without entering inner loops (their `break` is theirs), nor
    function or class definitions (their `return` is theirs)."""
    found = [node]
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(child, ast.For | ast.AsyncFor | ast.While):
            # an inner loop's break is its own; its return, raise and exits still leave ours
            found += [
                n
                for n in ast.walk(child)
                if isinstance(n, ast.Return | ast.Raise | ast.Call) and n is not child
            ]
            continue
        found += _own_nodes(child)
    return found
