"""Classes and functions a notebook defines beside other code, moved to the package's helpers.

A cell that defines `class Net(nn.Module)` and then trains it is one pipeline step: left there,
the class would be local to the step's function, and a model holding an instance of a local
class cannot be saved by reference (pickle refuses it, skops cannot name its type, Keras cannot
register it). A definition that reads only imports, builtins and other such definitions does not
need the step's values, so it moves to helpers.py, which the steps import, and keeps its
`# From cell N` marker. One that reads the notebook's values stays where it is, a closure, as
does a helper cell's definition that reads one (`split_helpers`).
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
from collections.abc import Iterable

from nb2prod.frontend.names import scan_names
from nb2prod.plan import Block, Plan, Step

_DEFINITIONS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def with_definitions_hoisted(plan: Plan, import_names: set[str]) -> Plan:
    """The plan with each such definition in a `functions` step of its own, just before the
    step it came from."""
    helpers, _ = split_helpers(plan.steps, import_names)
    allowed = import_names | set(dir(builtins)) | _defined_by_helpers(helpers)
    # a parameter is set by the run, so a definition reading one stays beside it
    defined_once = _defined_once(plan.steps) - {p.name for p in plan.parameters}
    moved_names: set[str] = set()
    steps: list[Step] = []
    for step in plan.steps:
        if step.role == "functions":
            steps.append(step)
            continue
        moved: list[Block] = []
        kept: list[Block] = []
        for block in step.blocks:
            out, rest = _split(block, allowed, defined_once)
            moved += out
            kept += rest
            names = {name for part in out for name in _names_defined(part.source)}
            allowed |= names
            moved_names |= names
        if moved:
            steps.append(Step(f"{step.name}_definitions", "functions", tuple(moved), (), (), ()))
        if kept:
            steps.append(dataclasses.replace(step, blocks=tuple(kept)))
    # what a step handed the next is now imported by both from helpers.py
    return dataclasses.replace(plan, steps=without_names(steps, moved_names))


def without_names(steps: Iterable[Step], names: set[str]) -> tuple[Step, ...]:
    """The steps with `names` no longer passed between them: each is now defined at the
    module's top (an import, a helper), where every step reads it."""
    return tuple(
        dataclasses.replace(
            step,
            inputs=tuple(n for n in step.inputs if n not in names),
            outputs=tuple(n for n in step.outputs if n not in names),
        )
        for step in steps
    )


def split_helpers(steps: Iterable[Step], import_names: set[str]) -> tuple[list[Step], list[Step]]:
    """Helpers that only need imports live in helpers.py; the rest become pipeline steps.

    A notebook helper that reads a notebook variable (a parameter, some data) cannot be a
    module-level function without a global. It is defined inside a step instead, as a closure
    over the values it reads, and handed to the steps that call it.
    """
    helpers = [s for s in steps if s.role == "functions"]
    closures: list[Step] = []
    changed = True
    while changed:
        changed = False
        allowed = import_names | set(dir(builtins)) | _defined_by_helpers(helpers)
        for step in list(helpers):
            names = scan_names(ast.parse(_source(step)).body)
            if any(
                u.name not in allowed and u.name not in names.defines and not u.optional
                for u in names.uses
            ):
                helpers.remove(step)
                closures.append(step)
                changed = True
    return helpers, closures


def _source(step: Step) -> str:
    return "\n".join(block.source for block in step.blocks)


def _split(
    block: Block, allowed: set[str], defined_once: set[str]
) -> tuple[list[Block], list[Block]]:
    """The block's hoistable definitions, and what remains of it, each part a block of the same
    cell (a part starts on its own line of the cell)."""
    try:
        tree = ast.parse(block.source)
    except SyntaxError:
        return [], [block]
    lines = block.source.split("\n")
    cuts: list[tuple[int, int]] = []  # 0-based [start, end) line ranges of hoisted statements
    known = set(allowed)
    # `rooms_ix, households_ix = 3, 6` before a class that reads them: constants it can take
    constants: dict[str, ast.stmt] = {}
    for statement in tree.body:
        bound = _constant_names(statement)
        if bound and bound <= defined_once:
            constants |= dict.fromkeys(bound, statement)
        if not isinstance(statement, _DEFINITIONS) or statement.name not in defined_once:
            continue
        names = scan_names([statement])
        free = {use.name for use in names.uses if not use.optional} - set(names.defines)
        missing = free - known - {statement.name}
        if not missing <= constants.keys():
            continue
        for needed in dict.fromkeys(constants[name] for name in sorted(missing)):
            cuts.append((needed.lineno - 1, needed.end_lineno or needed.lineno))
            known |= _constant_names(needed)
        start = min([statement.lineno, *(d.lineno for d in statement.decorator_list)]) - 1
        cuts.append((start, statement.end_lineno or statement.lineno))
        known.add(statement.name)
    cuts = sorted(set(cuts))
    if not cuts:
        return [], [block]
    moved, kept, position = [], [], 0
    for start, end in cuts:
        kept.append(_part(block, lines, position, start))
        moved.append(_part(block, lines, start, end))
        position = end
    kept.append(_part(block, lines, position, len(lines)))
    return [b for b in moved if b is not None], [b for b in kept if b is not None]


def _constant_names(statement: ast.stmt) -> set[str]:
    """The names `NAME = 3` or `a, b = 3, 4` binds to literals; empty for anything else."""
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
        return set()
    target = statement.targets[0]
    targets = target.elts if isinstance(target, ast.Tuple) else [target]
    if not all(isinstance(t, ast.Name) for t in targets):
        return set()
    try:
        ast.literal_eval(statement.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return set()
    return {t.id for t in targets if isinstance(t, ast.Name)}


def _part(block: Block, lines: list[str], start: int, end: int) -> Block | None:
    text = "\n".join(lines[start:end]).strip("\n")
    if not text.strip():
        return None
    skipped = next(i for i, line in enumerate(lines[start:end]) if line.strip())
    return Block(block.cell, block.first_line + start + skipped, text + "\n", block.last_line)


def _names_defined(source: str) -> list[str]:
    return list(scan_names(ast.parse(source).body).defines)


def _defined_by_helpers(steps: Iterable[Step]) -> set[str]:
    return {
        name
        for step in steps
        if step.role == "functions"
        for block in step.blocks
        for name in _names_defined(block.source)
    }


def _defined_once(steps: Iterable[Step]) -> set[str]:
    """Names bound by exactly one statement of all the kept code: a definition moved out of a
    step must not be one a later step binds again."""
    counts: dict[str, int] = {}
    for step in steps:
        for block in step.blocks:
            try:
                tree = ast.parse(block.source)
            except SyntaxError:
                continue
            for statement in tree.body:
                for name in set(scan_names([statement]).defines):
                    counts[name] = counts.get(name, 0) + 1
    return {name for name, count in counts.items() if count == 1}
