"""Lint files: one parse per file, every rule in one batched libcst pass, files in parallel.

A rule declares the substrings it needs (`TRIGGERS`); a file containing none of them for
every selected rule is not parsed at all, which is where most of the speed on a large tree
comes from. Notebooks are linted natively: their code cells are joined, linted once, and
each finding is mapped back to `notebook.ipynb:cell_N:line:col`.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper

from nb2prod.contract import Contract
from nb2prod.lint.notebooks import NotebookSource, read_notebook_source
from nb2prod.lint.registry import all_rules, rules_folder
from nb2prod.lint.rule import LintRule, RuleContext
from nb2prod.lint.suppressions import apply_suppressions, find_suppressions
from nb2prod.lint.violation import FileResult, Violation

_PARALLEL_FROM = 16  # fewer files than this: process start-up costs more than it saves


class SourceError(Exception):
    """The source does not parse: where, and what the parser said."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def lint_source(
    source: str, path: str, rules: Sequence[type[LintRule]], contract: Contract
) -> list[Violation]:
    """Violations in one module's source; raises SourceError if it does not parse."""
    active = [r for r in rules if not r.TRIGGERS or any(t in source for t in r.TRIGGERS)]
    found: list[Violation] = []
    parsed = _relevant_source(source, active) if active else None
    if parsed is not None:
        try:
            module = cst.parse_module(parsed)
        except cst.ParserSyntaxError as error:
            raise SourceError(error.raw_line, error.raw_column + 1, error.message) from None
        context = RuleContext(path, contract)
        visitors = [rule(context) for rule in active]
        MetadataWrapper(module, unsafe_skip_copy=True).visit_batched(visitors)
        found = [v for visitor in visitors for v in visitor.violations]
    elif not active:
        _check_syntax(source)
    suppressions = find_suppressions(source) if "nb2prod:" in source else []
    selected = frozenset(rule.CODE for rule in rules)
    return sorted(apply_suppressions(path, found, suppressions, selected))


def _relevant_source(source: str, active: Sequence[type[LintRule]]) -> str | None:
    """The source with every top-level def/class that holds no trigger blanked out.

    Only when each active rule judges a definition on its own (MODULE_WIDE is False). Lines
    are blanked, not removed, so positions stay those of the file. Python's own parser finds
    the definitions; it is an order of magnitude faster than libcst's, whose parse and scope
    analysis then only see the code that can matter.
    """
    if any(rule.MODULE_WIDE for rule in active):
        return source
    triggers = tuple({t for rule in active for t in rule.TRIGGERS})
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return source  # libcst reports the error with its own position
    lines = source.splitlines(keepends=True)
    blanked = _blank_definitions(tree.body, lines, triggers)
    if not _triggers_in_code(tree, lines, triggers):
        return None  # the triggers are only in docstrings or strings: nothing to parse for
    return "".join(lines) if blanked else source


def _triggers_in_code(tree: ast.Module, lines: list[str], triggers: tuple[str, ...]) -> bool:
    """Whether a trigger survives once docstrings (and other bare strings) are removed.

    A docstring that shows `mlflow.start_run()` in an example is prose, not a run. Strings
    that are values (a dict key "implementation_status") stay: rules look for those."""
    code = list(lines)
    for statement in ast.walk(tree):
        node = statement.value if isinstance(statement, ast.Expr) else None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.end_lineno:
            first, last = node.lineno - 1, node.end_lineno - 1
            if first == last:
                raw = code[first].encode()
                code[first] = (raw[: node.col_offset] + raw[node.end_col_offset or 0 :]).decode(
                    errors="replace"
                )
            else:
                code[first] = code[first].encode()[: node.col_offset].decode(errors="replace")
                for index in range(first + 1, last):
                    code[index] = ""
                code[last] = (
                    code[last].encode()[node.end_col_offset or 0 :].decode(errors="replace")
                )
    text = "".join(code)
    return any(trigger in text for trigger in triggers)


def _blank_definitions(body: list[ast.stmt], lines: list[str], triggers: tuple[str, ...]) -> bool:
    """Blank the definitions in `body` that hold no trigger; look inside classes that do."""
    blanked = False
    for node in body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        last = node.end_lineno or node.lineno
        if any(trigger in "".join(lines[first - 1 : last]) for trigger in triggers):
            if isinstance(node, ast.ClassDef):
                kept_methods = [n for n in node.body if not _is_definition(n)]
                if kept_methods or len(node.body) > 1:
                    blanked |= _blank_definitions(node.body, lines, triggers)
            continue
        for index in range(first - 1, last):
            lines[index] = "\n" if lines[index].endswith("\n") else ""
        blanked = True
    return blanked


def _is_definition(node: ast.stmt) -> bool:
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)


def _check_syntax(source: str) -> None:
    """No rule needs this file's tree, but a syntax error is still worth a line (C parser)."""
    try:
        ast.parse(source)
    except SyntaxError as error:
        raise SourceError(error.lineno or 1, error.offset or 1, error.msg) from None
    except (ValueError, RecursionError) as error:
        raise SourceError(1, 1, str(error)) from None


def lint_file(path: Path, rules: Sequence[type[LintRule]], contract: Contract) -> FileResult:
    shown = str(path)
    try:
        if path.suffix == ".ipynb":
            notebook = read_notebook_source(path)
            source = notebook.source
        else:
            data = path.read_bytes()
            if b"\0" in data:
                return FileResult(shown, error="binary file, not Python source")
            source = data.decode("utf-8")
            notebook = None
    except UnicodeDecodeError:
        return FileResult(shown, error="not UTF-8 text")
    except OSError as error:
        return FileResult(shown, error=f"cannot be read: {error.strerror or error}")
    except ValueError as error:  # a notebook that is not JSON
        return FileResult(shown, error=str(error))
    try:
        violations = lint_source(source, shown, rules, contract)
    except SourceError as error:
        where = notebook.locate(error.line) if notebook else None
        place = f"cell_{where[0]}:{where[1]}" if where else str(error.line)
        return FileResult(shown, error=f"{place}:{error.column}: syntax error: {error.message}")
    except RecursionError:
        return FileResult(shown, error="nested too deeply to parse")
    if notebook is not None:
        violations = [_in_cell(v, notebook) for v in violations]
    return FileResult(shown, tuple(violations))


def lint_stdin(
    source: str, name: str, rules: Sequence[type[LintRule]], contract: Contract
) -> FileResult:
    try:
        return FileResult(name, tuple(lint_source(source, name, rules, contract)))
    except SourceError as error:
        return FileResult(name, error=f"{error.line}:{error.column}: syntax error: {error.message}")


def lint_files(
    paths: Iterable[Path], rules: Sequence[type[LintRule]], contract: Contract
) -> list[FileResult]:
    """Lint every file, across processes when there are enough of them."""
    paths = list(paths)
    if len(paths) < _PARALLEL_FROM or (os.cpu_count() or 1) == 1:
        return [lint_file(path, rules, contract) for path in paths]
    workers = os.cpu_count() or 1
    from concurrent.futures import ProcessPoolExecutor  # only runs with many files pay for it

    # Rule classes are loaded from files, so workers receive their codes and load them again.
    codes = tuple(rule.CODE for rule in rules)
    folder = rules_folder(rules)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunk = max(1, len(paths) // (workers * 8))
        jobs = [(path, codes, folder, contract) for path in paths]
        return list(pool.map(_lint_one, jobs, chunksize=chunk))


def _lint_one(job: tuple[Path, tuple[str, ...], Path, Contract]) -> FileResult:
    path, codes, folder, contract = job
    rules = [rule for rule in all_rules(folder) if rule.CODE in codes]
    return lint_file(path, rules, contract)


def _in_cell(violation: Violation, notebook: NotebookSource) -> Violation:
    where = notebook.locate(violation.line)
    if where is None:
        return violation
    cell, line = where
    end = notebook.locate(violation.end_line) or (cell, line)
    return replace(violation, cell=cell, line=line, end_line=end[1] if end[0] == cell else line)
