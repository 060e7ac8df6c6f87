"""Data files a notebook reads by relative path: the package must carry them to train anywhere.

`pd.read_csv("data/train.csv")` works in the notebook's folder and nowhere else. The planner
lists such files so `convert` can ship them inside the package and rewrite the path.
"""

from __future__ import annotations

import ast
import re

from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.vocabulary import is_load_call
from nb2prod.plan import DataFile, Finding

_PATH_KEYWORDS = ("filepath_or_buffer", "path", "fname", "file", "filepath", "source", "io")
_NOT_A_FILE = re.compile(r"^([a-z][a-z0-9+.-]*://|/|[A-Za-z]:[\\/]|~)")


def find_data_files(facts: NotebookFacts, kept: set[int]) -> tuple[DataFile, ...]:
    folder = facts.notebook.path.resolve().parent
    found: dict[str, DataFile] = {}
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for call in cell.calls:
            if call.in_display or not is_load_call(call.qualified):
                continue
            for node in path_arguments(call.node):
                relative = node.value
                if relative in found or not _looks_relative_file(relative):
                    continue
                candidate = folder / relative
                size = candidate.stat().st_size if candidate.is_file() else None
                found[relative] = DataFile(relative, cell.number, node.lineno, size)
    return tuple(found.values())


def path_arguments(call: ast.Call) -> list[ast.Constant]:
    """The string constants a load call takes its file path from."""
    nodes = [*call.args[:1], *(k.value for k in call.keywords if k.arg in _PATH_KEYWORDS)]
    return [n for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def data_file_findings(files: tuple[DataFile, ...]) -> list[Finding]:
    findings = []
    for data in files:
        if data.size is None:
            findings.append(
                Finding(
                    "missing-data-file",
                    "warning",
                    f"reads {data.path!r}, which is not beside the notebook: the package cannot "
                    "ship it",
                    data.cell,
                    data.line,
                    "put the file beside the notebook, or point DATA_DIR at its folder when "
                    "training",
                )
            )
    return findings


def _looks_relative_file(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text and not _NOT_A_FILE.match(text)
