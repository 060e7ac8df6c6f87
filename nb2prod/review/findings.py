"""Lint the files a pull request changed and keep what falls on the lines it changed.

A finding spans a node (a whole `with mlflow.start_run():` block, a response model class),
so it is kept when the PR touched any line of that span: removing a `log_params` call from
a run changes a line inside the run, not the `with` line the finding starts on.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from nb2prod.contract import Contract, Status
from nb2prod.lint.cache import lint_with_cache
from nb2prod.lint.config import LintConfig
from nb2prod.lint.violation import FileResult, Violation
from nb2prod.review.diff import ChangedLines
from nb2prod.review.notebook_lines import cell_line_map

LINTED_SUFFIXES = frozenset({".py", ".pyi", ".ipynb"})


@dataclass(frozen=True)
class Finding:
    """A lint finding placed on the lines of the file the PR's diff shows."""

    violation: Violation
    first_line: int  # in the file as committed (for a notebook: a line of its JSON)
    last_line: int
    in_diff: bool

    @property
    def severity(self) -> str:
        return self.violation.severity


@dataclass(frozen=True)
class ReviewedFile:
    path: str  # relative to the repository root, as GitHub names it
    changed: ChangedLines
    findings: tuple[Finding, ...] = ()
    error: str | None = None  # the file could not be linted
    statuses: tuple[Status, ...] = ()  # implementation_status values the code declares

    def kept(self, *, everything: bool) -> tuple[Finding, ...]:
        return self.findings if everything else tuple(f for f in self.findings if f.in_diff)


def review_files(
    root: Path, changed: dict[str, ChangedLines], config: LintConfig
) -> list[ReviewedFile]:
    """Lint every changed Python file and notebook that exists at the head commit."""
    paths = sorted(
        path
        for path in changed
        if Path(path).suffix in LINTED_SUFFIXES
        and (root / path).is_file()
        and not config.is_excluded(root / path)
    )
    if not paths:
        return []
    results = lint_with_cache([root / path for path in paths], config.load_rules, None)
    _, contract = config.load_rules()
    return [
        _reviewed(path, root / path, changed[path], config.keep(result), contract)
        for path, result in zip(paths, results, strict=True)
    ]


def _reviewed(
    path: str, file: Path, changed: ChangedLines, result: FileResult, contract: Contract
) -> ReviewedFile:
    text = file.read_text(encoding="utf-8", errors="replace")
    cells = cell_line_map(text) if file.suffix == ".ipynb" else None
    findings = tuple(_placed(v, changed, cells) for v in result.violations)
    source = _notebook_code(text) if cells is not None else text
    return ReviewedFile(path, changed, findings, result.error, declared_statuses(source, contract))


def _placed(
    violation: Violation, changed: ChangedLines, cells: dict[tuple[int, int], int] | None
) -> Finding:
    first, last = violation.line, max(violation.end_line, violation.line)
    if cells is not None and violation.cell is not None:
        spots = [
            cells[(violation.cell, n)]
            for n in range(first, last + 1)
            if (violation.cell, n) in cells
        ]
        if not spots:  # the notebook is not laid out as Jupyter writes it: judge it whole
            return Finding(violation, 1, 1, changed.whole_file or bool(changed.touched))
        first, last = min(spots), max(spots)
    return Finding(violation, first, last, changed.changes(first, last))


def _notebook_code(text: str) -> str:
    from nb2prod.lint.notebooks import notebook_source

    try:
        return notebook_source(text).source
    except ValueError:
        return ""


def declared_statuses(source: str, contract: Contract) -> tuple[Status, ...]:
    """The statuses the code states as literals (`implementation_status="HEURISTIC"`, a dict
    entry, a log_param/set_tag pair, an assignment), in contract order, for the comment to
    show with their marks. Unknown words are NBH102's business, not shown here."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return ()
    found: set[str] = set()
    for node in ast.walk(tree):
        for value in _status_values(node):
            try:
                found.add(contract.status(value).name)
            except KeyError:
                continue
    return tuple(s for s in contract.statuses if s.name in found)


def _status_values(node: ast.AST) -> list[str]:
    field = "implementation_status"
    values: list[ast.expr | None] = []
    if isinstance(node, ast.keyword) and node.arg == field:
        values.append(node.value)
    elif isinstance(node, ast.Dict):
        values += [v for k, v in zip(node.keys, node.values, strict=True) if _is_text(k, field)]
    elif isinstance(node, ast.Call) and len(node.args) >= 2 and _is_text(node.args[0], field):
        values.append(node.args[1])
    elif isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Name) and t.id.lower() == field for t in targets):
            values.append(node.value)
    return [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]


def _is_text(node: ast.expr | None, text: str) -> bool:
    return isinstance(node, ast.Constant) and node.value == text
