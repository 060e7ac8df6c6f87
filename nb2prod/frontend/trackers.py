"""Experiment trackers (Weights & Biases, Neptune, Comet, ClearML, Aim) in a notebook.

A tracker call sends to a service: it needs the network and an account, and the package logs
to MLflow instead. So its statements are side effects, left out like a plot, and said in one
finding. A kept statement that *reads* from a tracker (``C=wandb.config.C``, values a run
fetches) is different: the model would depend on a service at train, and the value would not
be the notebook's. That is refused at plan, naming the line, rather than failing at train.
"""

from __future__ import annotations

import ast

from nb2prod.errors import InputError
from nb2prod.frontend.facts import CellFacts, NotebookFacts
from nb2prod.frontend.pysyntax import dotted_name
from nb2prod.frontend.vocabulary import TRACKER_MODULES
from nb2prod.plan import Finding


def tracker_module(
    facts: NotebookFacts, statement: ast.stmt, left_out: frozenset[int] = frozenset()
) -> str | None:
    """The tracker a statement uses through an import (not the import itself), if any,
    outside the lines `left_out` (display and tracker calls dropped from inside it)."""
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return None
    for node in ast.walk(statement):
        if getattr(node, "lineno", None) in left_out:
            continue
        if isinstance(node, ast.Name) and facts.aliases.is_module_alias(node.id):
            top = facts.aliases.resolve(dotted_name(node) or node.id).split(".")[0]
            if top in TRACKER_MODULES:
                return top
    return None


def refuse_reads_from_trackers(facts: NotebookFacts, kept: set[int]) -> None:
    """A kept statement still using a tracker is one the model or its metrics read."""
    for cell in _kept_cells(facts, kept):
        left_out = frozenset(
            line for drop in cell.nested_drops for line in range(drop.line, drop.end_line + 1)
        )
        for statement in cell.kept_statements:
            tracker = tracker_module(facts, statement, left_out)
            if tracker is None:
                continue
            raise InputError(
                facts.notebook.path,
                f"{ast.unparse(statement).splitlines()[0][:80]!s} reads from {tracker}, an "
                "experiment tracker (network and credentials at train), and the model or its "
                "metrics depend on it",
                cell=cell.number,
                line=statement.lineno,
                hint="write the values into the notebook, as config = {...}; the package's "
                "MLflow run logs them",
            )


def tracker_findings(facts: NotebookFacts) -> list[Finding]:
    """One finding per tracker naming the cells whose calls to it were left out."""
    cells: dict[str, list[int]] = {}
    for cell in facts.cells:
        try:  # the cell as written: calls already pruned from inside kept code count too
            statements = ast.parse(cell.normalised.source).body
        except SyntaxError:
            continue
        for statement in statements:
            tracker = tracker_module(facts, statement)
            if tracker is not None and cell.number not in cells.get(tracker, []):
                cells.setdefault(tracker, []).append(cell.number)
    return [
        Finding(
            "experiment-tracker",
            "info",
            f"{tracker} calls (cell{'s' if len(numbers) > 1 else ''} "
            f"{', '.join(map(str, numbers))}) are left out: they send to an experiment tracker "
            "(network, credentials); the package's run logs its parameters and metrics to MLflow",
            numbers[0],
            None,
            None,
        )
        for tracker, numbers in cells.items()
    ]


def _kept_cells(facts: NotebookFacts, kept: set[int]) -> list[CellFacts]:
    return [cell for cell in facts.cells if cell.number in kept]
