"""Compare what the notebook measured with what the package measured, and say why they differ."""

from __future__ import annotations

import math
from dataclasses import dataclass

from nb2prod.plan import Plan

CAUSE_CODES = ("unseeded-random", "dropped-random-draw", "hidden-state")


@dataclass(frozen=True)
class Row:
    metric: str
    notebook: float | None
    package: float | None

    @property
    def delta(self) -> float | None:
        if self.notebook is None or self.package is None:
            return None
        return self.package - self.notebook

    def agrees(self, rtol: float, atol: float) -> bool:
        if self.notebook is None or self.package is None:
            return False
        return math.isclose(self.package, self.notebook, rel_tol=rtol, abs_tol=atol)


def rows(plan: Plan, notebook: dict[str, float | None], package: dict[str, float]) -> list[Row]:
    return [Row(m.name, notebook.get(m.name), package.get(m.name)) for m in plan.metrics]


def numbers_only(compared: list[Row]) -> tuple[list[Row], list[str]]:
    """The rows that hold a number on at least one side, and the names of those that hold
    none on either (a value that is not a number is no metric, so no mismatch)."""
    kept = [row for row in compared if _holds_number(row.notebook) or _holds_number(row.package)]
    return kept, [row.metric for row in compared if row not in kept]


def _holds_number(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def causes(plan: Plan) -> list[str]:
    """What the Plan found that can make a re-run differ: each named with its cell and line."""
    found = []
    for finding in plan.findings:
        if finding.code not in CAUSE_CODES:
            continue
        where = f"cell {finding.cell}" + (f", line {finding.line}" if finding.line else "")
        found.append(f"{finding.code} ({where}): {finding.message}")
    return found


def table(compared: list[Row], rtol: float, atol: float) -> str:
    header = ("metric", "notebook", "package", "delta", "ok")
    lines = [header]
    for row in compared:
        lines.append(
            (
                row.metric,
                _number(row.notebook),
                _number(row.package),
                _number(row.delta),
                "yes" if row.agrees(rtol, atol) else "NO",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _number(value: float | None) -> str:
    return "missing" if value is None else f"{value:.6g}"


@dataclass(frozen=True)
class Predictions:
    """Both models on the same rows: how many answers differ beyond the tolerance."""

    rows: int
    differing: int
    largest_delta: float | None  # over numeric answers
    stretch: tuple[int, int] | None = None  # a forecaster's: the positions forecast

    def line(self) -> str:
        delta = "" if self.largest_delta is None else f" (largest delta {self.largest_delta:.3g})"
        if self.stretch is not None:
            start, end = self.stretch
            where = f"positions {start} to {end} of the series"
            if self.differing:
                return f"forecast: {self.differing} of {self.rows} steps differ ({where}){delta}"
            return f"forecast: the same at all {self.rows} steps ({where}){delta}"
        if self.differing:
            return f"predictions: {self.differing} of {self.rows} rows differ{delta}"
        return f"predictions: the same on all {self.rows} rows{delta}"


def compare_predictions(
    notebook: list,
    package: list,
    rtol: float,
    atol: float,
    stretch: tuple[int, int] | None = None,
) -> Predictions:
    if len(notebook) != len(package):
        count = max(len(notebook), len(package))
        return Predictions(count, count, None, stretch)
    differing, largest = 0, None
    for their_row, our_row in zip(notebook, package, strict=True):
        row_differs = False
        # a row's answer is a number, or a list of them (a probability per class)
        pairs = _pairs(their_row, our_row)
        for theirs, ours in pairs or [(their_row, our_row)]:
            if _is_number(theirs) and _is_number(ours):
                delta = abs(float(ours) - float(theirs))
                largest = delta if largest is None else max(largest, delta)
                same = math.isclose(float(ours), float(theirs), rel_tol=rtol, abs_tol=atol)
            else:
                same = str(ours) == str(theirs)
            row_differs |= not same
        differing += row_differs
    return Predictions(len(notebook), differing, largest, stretch)


def _pairs(theirs: object, ours: object) -> list[tuple[object, object]] | None:
    """A row's answers side by side when both are lists of the same length; else None."""
    if isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        return list(zip(theirs, ours, strict=True))
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
