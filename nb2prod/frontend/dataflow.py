"""Cross-cell def-use: where each name a kept cell reads comes from.

Running the kept cells top to bottom is what the generated pipeline will do, so a name must
be defined by a kept cell above the one that reads it. A name defined only by code that is
dropped (a plot, a shell escape, a skipped cell) or never defined at all stops the
conversion with the cell named; a name defined only further down is hidden state, which a
reviewer must see.
"""

from __future__ import annotations

import bisect
import builtins
from collections.abc import Iterable
from dataclasses import dataclass

from nb2prod.errors import InputError
from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.names import scan_names
from nb2prod.plan import Finding

NOTEBOOK_BUILTINS = frozenset(dir(builtins)) | {
    "display",
    "get_ipython",
    "In",
    "Out",
    "_",
    "__",
    "___",
    "exit",
    "quit",
    "__name__",
}


@dataclass(frozen=True)
class DataFlow:
    """For each kept cell, the earlier cells whose names it reads."""

    reads_from: dict[int, dict[str, int]]  # cell -> {name: defining cell}
    used_names: frozenset[str]  # every name some kept cell reads
    findings: tuple[Finding, ...]


def analyse_dataflow(facts: NotebookFacts, kept: set[int]) -> DataFlow:
    definitions: dict[str, list[int]] = {}
    for cell in facts.cells:
        if cell.number in kept:
            for name in cell.names.defines:
                definitions.setdefault(name, []).append(cell.number)
    dropped_definitions = _dropped_definitions(facts, kept)
    star = bool(facts.aliases.star_modules)
    findings: list[Finding] = []
    reads_from: dict[int, dict[str, int]] = {}
    used: set[str] = set()
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        sources: dict[str, int] = {}
        for use in cell.names.uses:
            if use.optional and use.name not in definitions:
                continue
            used.add(use.name)
            if use.name in NOTEBOOK_BUILTINS:
                continue
            defining = definitions.get(use.name, [])
            above = bisect.bisect_left(defining, cell.number)  # cells are visited in order
            if above:
                sources.setdefault(use.name, defining[above - 1])
            elif defining and use.deferred:
                sources.setdefault(use.name, defining[0])
            elif defining:
                later = defining[above:]
                findings.append(
                    Finding(
                        code="use-before-definition",
                        severity="warning",
                        message=(
                            f"cell {cell.number} reads {use.name!r}, which only "
                            f"{_cells(later)} below it defines: the notebook does not run "
                            "top to bottom"
                        ),
                        cell=cell.number,
                        line=use.line,
                        hint=f"move the definition of {use.name!r} above cell {cell.number}",
                    )
                )
                sources.setdefault(use.name, later[0])
            elif star:
                findings.append(
                    Finding(
                        "undefined-name",
                        "warning",
                        f"{use.name!r} is not defined in the notebook; it may come from a "
                        f"star import ({', '.join(facts.aliases.star_modules)})",
                        cell.number,
                        use.line,
                        "import the name explicitly",
                    )
                )
            else:
                raise _undefined(facts, cell.number, use.name, use.line, dropped_definitions)
        reads_from[cell.number] = sources
    return DataFlow(reads_from, frozenset(used), tuple(dict.fromkeys(findings)))


def _dropped_definitions(facts: NotebookFacts, kept: set[int]) -> dict[str, tuple[int, str]]:
    """Names bound only by code that will not be in the package, and why it was dropped."""
    dropped: dict[str, tuple[int, str]] = {}
    for cell in facts.cells:
        for name in cell.normalised.names_from_shell:
            dropped.setdefault(name, (cell.number, "a shell escape (x = !cmd)"))
        if cell.number not in kept:
            for name in scan_names(cell.statements).defines:
                dropped.setdefault(name, (cell.number, "a cell that is dropped"))
        else:
            display = [s for s, shown in zip(cell.statements, cell.display, strict=True) if shown]
            for name in scan_names(display).defines:
                dropped.setdefault(name, (cell.number, "display code that is dropped"))
    return dropped


def _undefined(
    facts: NotebookFacts,
    cell: int,
    name: str,
    line: int,
    dropped: dict[str, tuple[int, str]],
) -> InputError:
    if name in dropped:
        where, why = dropped[name]
        return InputError(
            facts.notebook.path,
            f"{name!r} is defined only in cell {where}, by {why}",
            cell=cell,
            line=line,
            hint=f"keep that code (tag cell {where} with its role, e.g. 'nb2prod:features')",
        )
    return InputError(
        facts.notebook.path,
        f"{name!r} is used but never defined in the notebook",
        cell=cell,
        line=line,
        hint="define or import it in a cell above",
    )


def _cells(numbers: Iterable[int]) -> str:
    numbers = sorted(set(numbers))
    return ("cell " if len(numbers) == 1 else "cells ") + ", ".join(map(str, numbers))
