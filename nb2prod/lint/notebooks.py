"""Lint a notebook as the code its cells hold, and say which cell a finding is in.

The cells are read with the standard json module (nbformat and nbconvert are too heavy for
a pre-commit hook) and normalised with the same IPython rules `convert` uses, so magics and
shell escapes never look like syntax errors.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NotebookSource:
    source: str
    starts: tuple[int, ...]  # first line of each code cell in `source`
    cells: tuple[int, ...]  # the cell number (1-based among code cells) at each start

    def locate(self, line: int) -> tuple[int, int] | None:
        index = bisect.bisect_right(self.starts, line) - 1
        if index < 0:
            return None
        return self.cells[index], line - self.starts[index] + 1


def read_notebook_source(path: Path) -> NotebookSource:
    return notebook_source(path.read_text(encoding="utf-8-sig"))


def notebook_source(text: str) -> NotebookSource:
    """The code cells of a notebook's JSON text, as one module (see NotebookSource)."""
    from nb2prod.frontend.magics import normalise  # only notebooks pay for the IPython rules

    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as error:
        raise ValueError(f"not a notebook: invalid JSON at line {error.lineno}") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise ValueError("not a notebook: no 'cells'")
    parts, starts, numbers = [], [], []
    line, number = 1, 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        code = normalise(source).source
        starts.append(line)
        numbers.append(number)
        parts.append(code + "\n")
        line += code.count("\n") + 1
    return NotebookSource("".join(parts), tuple(starts), tuple(numbers))
