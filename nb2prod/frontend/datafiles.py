"""Data files a notebook reads by relative path: the package must carry them to train anywhere.

`pd.read_csv("data/train.csv")` works in the notebook's folder and nowhere else. The planner
lists such files so `convert` can ship them inside the package and rewrite the path.
"""

from __future__ import annotations

import ast
import posixpath
import re

from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import dotted_name
from nb2prod.frontend.vocabulary import is_load_call
from nb2prod.plan import DataFile, Finding

_PATH_KEYWORDS = ("filepath_or_buffer", "path", "fname", "file", "filepath", "source", "io")
_NOT_A_FILE = re.compile(r"^([a-z][a-z0-9+.-]*://|/|[A-Za-z]:[\\/]|~)")


def find_data_files(facts: NotebookFacts, kept: set[int]) -> tuple[DataFile, ...]:
    """Relative files the kept code reads, with paths built in code resolved where they can be."""
    folder = facts.notebook.path.resolve().parent
    strings = _string_values(facts, kept)
    found: dict[str, DataFile] = {}
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        in_functions = _calls_in_functions(cell.kept_statements)
        for call in cell.calls:
            if call.in_display or not is_load_call(call.qualified):
                continue
            for node in _path_nodes(call.node):
                literal = isinstance(node, ast.Constant)
                relative = node.value if literal else resolve_path(node, strings)
                if relative is None:
                    if id(call.node) not in in_functions and _names_a_path(node, call):
                        found.setdefault(
                            f"?{cell.number}:{node.lineno}",
                            DataFile(ast.unparse(node), cell.number, node.lineno, None, "?"),
                        )
                    continue
                expression = None if literal else ast.unparse(node)
                relative = relative if literal else posixpath.normpath(relative)
                key = f"{relative}\0{expression}"  # each way of writing it is rewritten
                if key in found or not _looks_relative_file(relative):
                    continue
                candidate = folder / relative
                size = candidate.stat().st_size if candidate.is_file() else None
                found[key] = DataFile(relative, cell.number, node.lineno, size, expression)
    return tuple(found.values())


def path_arguments(call: ast.Call) -> list[ast.Constant]:
    """The string constants a load call takes its file path from."""
    return [n for n in _path_nodes(call) if isinstance(n, ast.Constant)]


def _path_nodes(call: ast.Call) -> list[ast.expr]:
    nodes = [*call.args[:1], *(k.value for k in call.keywords if k.arg in _PATH_KEYWORDS)]
    return [n for n in nodes if not (isinstance(n, ast.Constant) and not isinstance(n.value, str))]


def resolve_path(node: ast.expr, strings: dict[str, str]) -> str | None:
    """The text of a path built from literals: `DIR + "x.csv"`, `os.path.join`, `Path / "x"`;
    or from the working folder, which is the notebook's when it runs (`Path.cwd() / "data"`,
    `Path().absolute().parents[0]`, `os.getcwd()`): "." there."""
    folder = _from_working_folder(node, strings)
    if folder is not None:
        return folder
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return strings.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                if value.format_spec is not None or value.conversion != -1:
                    return None
                value = value.value
            text = resolve_path(value, strings)
            if text is None:
                return None
            parts.append(text)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Div):
        left, right = resolve_path(node.left, strings), resolve_path(node.right, strings)
        if left is None or right is None:
            return None
        return left + right if isinstance(node.op, ast.Add) else posixpath.join(left, right)
    if isinstance(node, ast.Call):
        callee = dotted_name(node.func) or ""
        if callee.endswith(("path.join", "Path", "PurePath", "PosixPath")) or (
            isinstance(node.func, ast.Attribute) and node.func.attr == "joinpath"
        ):
            parts = [resolve_path(arg, strings) for arg in node.args]
            if isinstance(node.func, ast.Attribute) and node.func.attr == "joinpath":
                parts.insert(0, resolve_path(node.func.value, strings))
            if any(part is None for part in parts):
                return None
            return posixpath.join(*parts) if parts else "."  # type: ignore[arg-type]
    return None


_WORKING_FOLDER = ("Path.cwd", "getcwd", "getcwdb")
_SAME_PLACE_METHODS = ("absolute", "resolve", "expanduser")
_SAME_PLACE_FUNCTIONS = ("path.abspath", "path.realpath", "path.normpath")


def _from_working_folder(node: ast.expr, strings: dict[str, str]) -> str | None:
    """The working folder and what is reached from it by parents, as a relative path."""
    if isinstance(node, ast.Call):
        callee = dotted_name(node.func) or ""
        if callee.endswith(_WORKING_FOLDER) and not node.args:
            return "."
        if callee.endswith(("Path", "PurePath", "PosixPath")) and not node.args:
            return "."  # Path(): the working folder
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if method in _SAME_PLACE_METHODS and not node.args:
            return resolve_path(node.func.value, strings)  # type: ignore[attr-defined]
        if callee.endswith(_SAME_PLACE_FUNCTIONS) and len(node.args) == 1:
            return resolve_path(node.args[0], strings)
        if callee.endswith("path.dirname") and len(node.args) == 1:
            inner = resolve_path(node.args[0], strings)
            return None if inner is None else posixpath.normpath(posixpath.join(inner, ".."))
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = resolve_path(node.value, strings)
        return None if inner is None else posixpath.normpath(posixpath.join(inner, ".."))
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
        and node.slice.value >= 0
    ):
        inner = resolve_path(node.value.value, strings)
        ups = [".."] * (node.slice.value + 1)
        return None if inner is None else posixpath.normpath(posixpath.join(inner, *ups))
    return None


def _string_values(facts: NotebookFacts, kept: set[int]) -> dict[str, str]:
    """Names bound once, at the top level, to a path the notebook builds from literals."""
    values: dict[str, str] = {}
    bound: dict[str, int] = {}
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Name):
                    bound[target.id] = bound.get(target.id, 0) + 1
                    text = resolve_path(statement.value, values)
                    if text is not None:
                        values[target.id] = text
    return {name: text for name, text in values.items() if bound[name] == 1}


def _names_a_path(node: ast.expr, call: ast.Call) -> bool:
    """An argument that is not a literal but looks like it builds a file path."""
    if isinstance(node, ast.JoinedStr | ast.BinOp):
        return True
    if isinstance(node, ast.Call):
        callee = dotted_name(node.func) or ""
        return callee.endswith(("path.join", "Path", "joinpath"))
    return False


def _calls_in_functions(statements: list[ast.stmt]) -> set[int]:
    return {
        id(node)
        for statement in statements
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for node in ast.walk(statement)
        if isinstance(node, ast.Call)
    }


def data_file_findings(files: tuple[DataFile, ...]) -> list[Finding]:
    findings = []
    for data in files:
        if data.expression == "?":
            findings.append(
                Finding(
                    "unresolved-data-path",
                    "error",
                    f"reads a file whose path is built by {data.path}, which nb2prod cannot "
                    "work out before running the notebook, so the package cannot ship it",
                    data.cell,
                    data.line,
                    "write the path as a literal relative path (or a variable assigned one once)",
                )
            )
        elif data.path == ".." or data.path.startswith("../"):
            findings.append(
                Finding(
                    "data-file-outside",
                    "error",
                    f"reads {data.path!r}, outside the notebook's folder, so the package cannot "
                    "ship it and training would fail elsewhere",
                    data.cell,
                    data.line,
                    "move the file beside the notebook and read it from there",
                )
            )
        elif data.size is None:
            findings.append(
                Finding(
                    "missing-data-file",
                    "error",
                    f"reads {data.path!r}, which is not beside the notebook: the package cannot "
                    "ship it, so training would fail",
                    data.cell,
                    data.line,
                    "put the file beside the notebook (at that relative path) and convert again",
                )
            )
    return findings


def _looks_relative_file(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text and not _NOT_A_FILE.match(text)
