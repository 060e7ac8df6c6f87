"""The CI formats: SARIF (code scanning), GitHub workflow annotations, GitLab Code Quality
and Markdown (a PR comment).

Paths are written relative to the current folder, the repository root in CI, as these
services expect. A notebook finding cannot point at a line of the `.ipynb` file (that is
JSON, not the cell's code), so it is reported at the notebook's first line, or against the
whole file where the format allows, with `cell_N:line:col` leading the message. A file that
could not be linted is reported too: an unchecked file must not look like a clean one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nb2prod import __version__
from nb2prod.lint.violation import (
    NOT_LINTED_CODE,
    UNUSED_CODE,
    FileResult,
    Violation,
    severity_of,
)

INFORMATION_URI = "https://pypi.org/project/nb2prod/"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "nb2prod/v1"
_ERROR_PLACE = re.compile(r"^(?:cell_(?P<cell>\d+):)?(?P<line>\d+):(?P<column>\d+): (?P<text>.*)$")


def render(results: Sequence[FileResult], output_format: str) -> str:
    renderers = {
        "sarif": render_sarif,
        "github": render_github,
        "gitlab": render_gitlab,
        "markdown": render_markdown,
    }
    if output_format not in renderers:
        raise ValueError(f"unknown output format {output_format!r}")
    return renderers[output_format](results)


# -- what every format shares ------------------------------------------------------------


def display_path(path: str) -> str:
    """`path` relative to the current folder when it is inside it, in posix form."""
    if os.path.isabs(path):
        relative = os.path.relpath(path)
        if not relative.startswith(".."):
            path = relative
    return Path(path).as_posix()


def where(v: Violation) -> str:
    """The place inside the file: `line:col`, or `cell_N:line:col` in a notebook."""
    place = f"{v.line}:{v.column}"
    return f"cell_{v.cell}:{place}" if v.cell is not None else place


def _cell_prefixed(v: Violation) -> str:
    return f"{where(v)}: {v.message}" if v.cell is not None else v.message


@dataclass(frozen=True)
class ErrorPlace:
    """Where a file that could not be linted went wrong, when the error says so."""

    text: str
    line: int | None = None
    column: int | None = None
    cell: int | None = None


def error_place(error: str) -> ErrorPlace:
    match = _ERROR_PLACE.match(error)
    if not match:
        return ErrorPlace(error)
    cell = match["cell"]
    return ErrorPlace(
        match["text"], int(match["line"]), int(match["column"]), int(cell) if cell else None
    )


def fingerprints(results: Sequence[FileResult]) -> dict[Violation, str]:
    """A fingerprint per finding that survives lines inserted or removed elsewhere.

    It hashes the rule code, the path and the whitespace-normalised text of the finding's
    first line, not its number. (Only the first line: a finding that spans a whole function
    would otherwise change with every edit inside it.) Identical lines in one file are told
    apart by their order, as GitHub does for its own line hashes.
    """
    found: dict[Violation, str] = {}
    for result in results:
        if not result.violations:
            continue
        path = display_path(result.path)
        lines = _source_lines(result.path)
        seen: Counter[str] = Counter()
        for v in result.violations:
            text = _line_text(lines, v) if lines is not None else None
            basis = "\0".join((v.code, path, text if text is not None else v.message))
            seen[basis] += 1
            digest = hashlib.sha256(f"{basis}\0{seen[basis]}".encode())
            found[v] = digest.hexdigest()[:32]
    return found


def _source_lines(path: str) -> dict[int | None, list[str]] | None:
    """The file's lines; for a notebook, each code cell's lines keyed by cell number."""
    try:
        if path.endswith(".ipynb"):
            from nb2prod.lint.notebooks import read_notebook_source

            notebook = read_notebook_source(Path(path))
            joined = notebook.source.splitlines()
            bounds = [*notebook.starts[1:], len(joined) + 1]
            return {
                cell: joined[start - 1 : end - 1]
                for cell, start, end in zip(notebook.cells, notebook.starts, bounds, strict=True)
            }
        return {None: Path(path).read_text(encoding="utf-8", errors="replace").splitlines()}
    except (OSError, ValueError):
        return None


def _line_text(lines: dict[int | None, list[str]], v: Violation) -> str | None:
    block = lines.get(v.cell, [])
    if 1 <= v.line <= len(block):
        return " ".join(block[v.line - 1].split())
    return None


@cache
def _rule_metadata(code: str) -> dict[str, Any]:
    """SARIF's reportingDescriptor for a rule, from the rule's own documentation."""
    from nb2prod.lint.suppressions import UNUSED_NAME

    if code == UNUSED_CODE:
        text = "A '# nb2prod: ignore[CODE]' comment that silences nothing."
        return _descriptor(code, UNUSED_NAME, text, text, text)
    from nb2prod.lint.registry import all_rules  # imports libcst: only when there are findings

    for rule in all_rules():
        if code == rule.CODE:
            docs = rule.documentation()
            return _descriptor(code, rule.NAME, rule.MESSAGE, _section(docs), docs)
    return {"id": code}


def _descriptor(code: str, name: str, short: str, full: str, docs: str) -> dict[str, Any]:
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": docs, "markdown": docs},
        "defaultConfiguration": {"level": severity_of(code)},
    }


def _section(docs: str, title: str = "What it does") -> str:
    """The text under `## title` in a rule's documentation (all of it if there is none)."""
    match = re.search(rf"^##\s*{re.escape(title)}\s*$(.*?)(?=^##\s|\Z)", docs, re.M | re.S)
    return " ".join((match[1] if match else docs).split())


# -- SARIF 2.1.0 -------------------------------------------------------------------------


def render_sarif(results: Sequence[FileResult]) -> str:
    codes = sorted({v.code for r in results for v in r.violations})
    index = {code: i for i, code in enumerate(codes)}
    prints = fingerprints(results)
    sarif_results = []
    for result in results:
        uri = _uri(result.path)
        for v in result.violations:
            physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}}
            entry: dict[str, Any] = {
                "ruleId": v.code,
                "ruleIndex": index[v.code],
                "level": v.severity,
                "message": {"text": _cell_prefixed(v)},
                "locations": [{"physicalLocation": physical}],
                "partialFingerprints": {FINGERPRINT_KEY: prints[v]},
            }
            if v.cell is None:
                physical["region"] = {
                    "startLine": v.line,
                    "startColumn": v.column,
                    "endLine": v.end_line,
                    "endColumn": v.end_column,
                }
            else:  # GitHub requires a region: the notebook's first line, the cell in the text
                physical["region"] = {"startLine": 1}
                entry["locations"][0]["logicalLocations"] = [{"name": f"cell_{v.cell}"}]
                entry["properties"] = {"cell": v.cell, "cellLine": v.line, "cellColumn": v.column}
            sarif_results.append(entry)
    notifications = [_sarif_notification(r) for r in results if r.error]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "nb2prod",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule_metadata(code) for code in codes],
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "results": sarif_results,
    }
    document = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _uri(path: str) -> str:
    from urllib.parse import quote

    return quote(display_path(path), safe="/")


def _sarif_notification(result: FileResult) -> dict[str, Any]:
    place = error_place(result.error or "")
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": _uri(result.path), "uriBaseId": "%SRCROOT%"}
    }
    if place.line is not None and place.cell is None:
        physical["region"] = {"startLine": place.line, "startColumn": place.column}
    return {
        "level": "error",
        "descriptor": {"id": NOT_LINTED_CODE},
        "message": {"text": f"{display_path(result.path)} could not be linted: {result.error}"},
        "locations": [{"physicalLocation": physical}],
    }


# -- GitHub workflow commands ------------------------------------------------------------


def render_github(results: Sequence[FileResult]) -> str:
    lines = []
    for result in results:
        path = display_path(result.path)
        if result.error:
            place = error_place(result.error)
            props = {"file": path}
            if place.line is not None and place.cell is None:
                props |= {"line": str(place.line), "col": str(place.column)}
            title = f"{NOT_LINTED_CODE} (file not linted)"
            lines.append(_command("error", props, title, result.error))
        for v in result.violations:
            props = {"file": path}
            if v.cell is None:
                props["line"], props["endLine"] = str(v.line), str(v.end_line)
                if v.line == v.end_line:  # GitHub takes columns only within one line
                    props["col"], props["endColumn"] = str(v.column), str(v.end_column)
            lines.append(_command(v.severity, props, f"{v.code} ({v.name})", _cell_prefixed(v)))
    return "".join(line + "\n" for line in lines)


def _command(level: str, props: dict[str, str], title: str, message: str) -> str:
    """A workflow command; `level` (error or warning) is also the command's name."""
    fields = ",".join(f"{k}={_escape_property(v)}" for k, v in (*props.items(), ("title", title)))
    return f"::{level} {fields}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# -- GitLab Code Quality -----------------------------------------------------------------


def render_gitlab(results: Sequence[FileResult]) -> str:
    prints = fingerprints(results)
    issues: list[dict[str, Any]] = []
    for result in results:
        path = display_path(result.path)
        if result.error:
            place = error_place(result.error)
            digest = hashlib.sha256(f"{NOT_LINTED_CODE}\0{path}".encode()).hexdigest()[:32]
            issues.append(
                {
                    "description": f"{path} could not be linted: {result.error}",
                    "check_name": NOT_LINTED_CODE,
                    "fingerprint": digest,
                    "severity": "critical",
                    "location": {"path": path, "lines": {"begin": _line_or_1(place)}},
                }
            )
        for v in result.violations:
            lines = {"begin": v.line, "end": v.end_line} if v.cell is None else {"begin": 1}
            issues.append(
                {
                    "description": f"{v.code} {_cell_prefixed(v)}",
                    "check_name": v.code,
                    "fingerprint": prints[v],
                    "severity": "major" if v.severity == "error" else "minor",
                    "location": {"path": path, "lines": lines},
                }
            )
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


def _line_or_1(place: ErrorPlace) -> int:
    return place.line if place.line is not None and place.cell is None else 1


# -- Markdown ----------------------------------------------------------------------------


def render_markdown(results: Sequence[FileResult]) -> str:
    with_findings = [r for r in results if r.violations]
    failed = [r for r in results if r.error]
    count = sum(len(r.violations) for r in with_findings)
    out = ["## nb2prod lint", ""]
    if not with_findings and not failed:
        return "\n".join([*out, "No findings: every file passes the honesty rules.", ""])
    summary = f"**{plural(count, 'finding')}** in {plural(len(with_findings), 'file')}"
    if failed:
        summary += f"; {plural(len(failed), 'file')} could not be linted"
    out += [summary + ".", ""]
    for result in with_findings:
        out += [f"### {code_span(display_path(result.path))}", ""]
        out += ["| Location | Rule | Message |", "| --- | --- | --- |"]
        out += [
            f"| {where(v)} | `{v.code}` {table_text(v.name)} | {table_text(v.message)} |"
            for v in result.violations
        ]
        out.append("")
    if failed:
        out += ["### Files that could not be linted", "", "| File | Problem |", "| --- | --- |"]
        out += [f"| {path_cell(r.path)} | {table_text(r.error or '')} |" for r in failed]
        out.append("")
    return "\n".join(out)


def plural(n: int, word: str, many: str | None = None) -> str:
    """ "1 finding", "2 findings"; `many` for words that do not just take an s."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def table_text(text: str) -> str:
    """Text safe inside a table cell: no pipes, no line breaks, no stray HTML."""
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def path_cell(path: str) -> str:
    """A path as code inside a table: GitHub needs `\\|` even inside a code span."""
    return code_span(display_path(path)).replace("|", "\\|")


def code_span(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"
