"""Where each line of a notebook's code cells sits in the .ipynb file itself.

A pull request's diff of a notebook is a diff of its JSON, and review comments go on JSON
lines. Jupyter writes each line of a cell's `source` as one JSON string on a line of its own,
so a cell line can be found in the file by decoding those strings in order. A notebook
written some other way (a source as one string, a notebook on one line) maps every line of
the cell to the line holding that string.
"""

from __future__ import annotations

import json
from typing import Any


def cell_line_map(text: str) -> dict[tuple[int, int], int]:
    """(code cell number from 1, line in the cell from 1) -> line in the file (from 1).

    Cells that cannot be found are left out; callers then treat the notebook as a whole.
    """
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        return {}
    file_lines = text.splitlines()
    found: dict[tuple[int, int], int] = {}
    cursor = 0
    number = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        position = _locate(cell.get("source", ""), file_lines, cursor)
        if position is None:
            continue
        lines, cursor = position
        for index, file_line in enumerate(lines, start=1):
            found[(number, index)] = file_line
    return found


def _locate(source: Any, file_lines: list[str], start: int) -> tuple[list[int], int] | None:
    """File lines (1-based) of each source line, searching from index `start`; and where the
    search should continue for the next cell."""
    pieces = source if isinstance(source, list) else [source]
    pieces = [p for p in pieces if isinstance(p, str)]
    if not pieces or not "".join(pieces):
        return None
    if len(pieces) == 1 and "\n" in pieces[0].rstrip("\n"):  # one string holds every line
        index = _find(file_lines, start, pieces[0], whole=True)
        if index is None:
            return None
        count = pieces[0].rstrip("\n").count("\n") + 1
        return [index + 1] * count, index + 1
    first = _find(file_lines, start, pieces[0], whole=len(pieces) == 1)
    while first is not None:
        if all(
            _decoded(file_lines[first + k] if first + k < len(file_lines) else "") == piece
            for k, piece in enumerate(pieces[1:], start=1)
        ):
            return [first + k + 1 for k in range(len(pieces))], first + len(pieces)
        first = _find(file_lines, first + 1, pieces[0], whole=len(pieces) == 1)
    return None


def _find(file_lines: list[str], start: int, piece: str, *, whole: bool) -> int | None:
    """The index of the line holding `piece` as its JSON string; with `whole`, also as part
    of a longer line (`"source": "a = 1\\nb = 2"`, or a notebook written on one line)."""
    encoded = {json.dumps(piece), json.dumps(piece, ensure_ascii=False)} if whole else set()
    for index in range(start, len(file_lines)):
        line = file_lines[index]
        if _decoded(line) == piece or any(e in line for e in encoded):
            return index
    return None


def _decoded(line: str) -> str | None:
    """The JSON string a file line holds (`"text\\n",`), or None."""
    text = line.strip().removesuffix(",")
    if not (text.startswith('"') and text.endswith('"')):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None
