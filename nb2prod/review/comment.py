"""What the bot writes: one summary comment (found again by its marker) and inline comments.

The summary is for the reviewer: which file lacks which honesty metadata, what status the
code claims (with the contract's marks), and how to fix each. When everything is fixed the
same comment says so, instead of disappearing, so the history of the PR stays readable.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nb2prod import __version__
from nb2prod.lint.reporters import path_cell, plural, table_text
from nb2prod.review.diff import ChangedLines
from nb2prod.review.findings import Finding, ReviewedFile

MARKER = "<!-- nb2prod:review -->"
INLINE_MARKER = re.compile(r"<!-- nb2prod:finding (?P<code>NBH\d+) -->")
MAX_BODY = 60_000  # GitHub refuses comments over 65,536 characters
TITLE = "### nb2prod review: honesty metadata"


@dataclass(frozen=True)
class Links:
    """Where the comment's links point: the head commit's files on the GitHub server."""

    server_url: str
    repository: str
    head: str | None

    def line(self, path: str, line: int) -> str | None:
        if not self.head:
            return None
        plain = "?plain=1" if path.endswith(".ipynb") else ""  # notebooks render as cells
        return f"{self.server_url}/{self.repository}/blob/{self.head}/{path}{plain}#L{line}"


def summary(files: Sequence[ReviewedFile], links: Links, *, everything: bool) -> str:
    """The summary comment's body, marker first."""
    kept = [(f, finding) for f in files for finding in f.kept(everything=everything)]
    broken = [f for f in files if f.error]
    scope = "in the files" if everything else "on the lines"
    head = [MARKER, TITLE, ""]
    if not kept and not broken:
        checked = plural(len(files), "Python file or notebook", "Python files and notebooks")
        head.append(
            f"✅ **All good**: no honesty metadata is missing {scope} this pull request "
            f"changes ({checked} checked)."
        )
    else:
        parts = []
        if kept:
            touched = len({f.path for f, _ in kept})
            parts.append(
                f"**{plural(len(kept), 'finding')}** {scope} this pull request changes, "
                f"in {plural(touched, 'file')}"
            )
        if broken:
            parts.append(f"**{plural(len(broken), 'file')}** could not be linted")
        head.append(f"❌ {'; '.join(parts)}.")
    body = [*head, ""]
    rows = [_row(f, finding, links) for f, finding in kept]
    if rows:
        body += [
            "| File | Declared status | Where | What is missing | How to fix |",
            "| --- | --- | --- | --- | --- |",
        ]
        body += _within_budget(rows, body)
        body.append("")
    if broken:
        body += ["| File that could not be linted | Problem |", "| --- | --- |"]
        body += [f"| {path_cell(f.path)} | {table_text(f.error or '')} |" for f in broken]
        body.append("")
    body += _statuses(files)
    outside = sum(len(f.findings) for f in files) - len(kept)
    if outside:
        body.append(
            f"{plural(outside, 'more finding')} in these files "
            f"{'is' if outside == 1 else 'are'} on lines this pull request does not change; "
            "`nb2prod lint` on the files shows them."
        )
        body.append("")
    body.append(_footer(links, bool(kept)))
    return "\n".join(body) + "\n"


def _row(file: ReviewedFile, finding: Finding, links: Links) -> str:
    v = finding.violation
    place = f"cell {v.cell}, line {v.line}" if v.cell is not None else f"line {v.line}"
    url = links.line(file.path, finding.first_line)
    where = f"[{place}]({url})" if url else place
    what, how = split_message(v.message, v.code)
    status = ", ".join(s.label for s in file.statuses) or "—"
    severity = "" if finding.severity == "error" else " (warning)"
    finding_text = f"**{v.code}**{severity} {table_text(what)}"
    return f"| {path_cell(file.path)} | {status} | {where} | {finding_text} | {table_text(how)} |"


def split_message(message: str, code: str) -> tuple[str, str]:
    """Rule messages read 'what is wrong; how to fix it'."""
    what, _, how = message.partition("; ")
    return what, how or f"see `nb2prod rule {code}`"


def _statuses(files: Sequence[ReviewedFile]) -> list[str]:
    declared = [f for f in files if f.statuses]
    if not declared:
        return []
    lines = ["**Declared implementation status** in the changed files:", ""]
    for file in declared:
        labels = ", ".join(s.label for s in file.statuses)
        lines.append(f"- {path_cell(file.path)}: {labels}")
    return [*lines, ""]


def _footer(links: Links, findings: bool) -> str:
    commit = f" at `{links.head[:12]}`" if links.head else ""
    hint = (
        " · `nb2prod rule CODE` explains a rule · `nb2prod lint --fix` adds the placeholders it can"
        if findings
        else ""
    )
    return f"<sub>nb2prod {__version__}{commit}; this comment is updated on every push{hint}.</sub>"


def _within_budget(rows: list[str], before: list[str]) -> list[str]:
    budget = MAX_BODY - sum(len(line) + 1 for line in before) - 2_000
    kept: list[str] = []
    for index, row in enumerate(rows):
        if budget - len(row) - 1 < 0:
            kept.append(f"| … | | | {len(rows) - index} more findings not shown | |")
            break
        kept.append(row)
        budget -= len(row) + 1
    return kept


# -- inline review comments ------------------------------------------------------------


@dataclass(frozen=True)
class InlineComment:
    path: str
    line: int
    start_line: int | None
    body: str
    code: str

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "line": self.line, "side": "RIGHT"}
        if self.start_line is not None and self.start_line != self.line:
            data |= {"start_line": self.start_line, "start_side": "RIGHT"}
        return data | {"body": self.body}


def inline_comment(
    file: ReviewedFile, finding: Finding, suggestion: tuple[int, int, str] | None
) -> InlineComment | None:
    """A review comment on the finding's lines, with a suggestion block when one applies.

    GitHub accepts comments only on lines its diff shows; a finding whose lines are all
    outside the hunks stays in the summary alone.
    """
    v = finding.violation
    what, how = split_message(v.message, v.code)
    text = [f"<!-- nb2prod:finding {v.code} -->", f"**{v.code}** `{v.name}`: {what}."]
    if suggestion is not None:
        start, end, replacement = suggestion
        text += [
            "",
            "The placeholders below make the gap visible; the values are yours to fill in:",
            "",
            "```suggestion",
            replacement.rstrip("\n"),
            "```",
        ]
        return InlineComment(file.path, end, start, "\n".join(text), v.code)
    text += ["", f"To fix: {how}. (`nb2prod rule {v.code}` explains the rule.)"]
    line = _anchor(finding, file.changed)
    if line is None:
        return None
    return InlineComment(file.path, line, None, "\n".join(text), v.code)


def _anchor(finding: Finding, changed: ChangedLines) -> int | None:
    first, last = finding.first_line, finding.last_line
    if first in changed.commentable:
        return first
    return next(
        (n for n in range(first, last + 1) if n in changed.touched and n in changed.commentable),
        None,
    )


def suggestion_for(before: str, after: str, changed: ChangedLines) -> tuple[int, int, str] | None:
    """(first line, last line, replacement) when the fix is one contiguous edit on lines
    GitHub lets a suggestion cover; None otherwise (the comment then explains the fix)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    edits = [op for op in difflib.SequenceMatcher(None, old, new).get_opcodes() if op[0] != "equal"]
    if len(edits) != 1:
        return None
    tag, i1, i2, j1, j2 = edits[0]
    if tag == "insert":  # suggest the line before the insertion, followed by the new lines
        if i1 == 0:
            start, end, replacement = 1, 1, "".join(new[j1:j2]) + old[0]
        else:
            start, end, replacement = i1, i1, old[i1 - 1] + "".join(new[j1:j2])
    else:
        start, end, replacement = i1 + 1, i2, "".join(new[j1:j2])
    if not all(n in changed.commentable for n in range(start, end + 1)):
        return None
    return start, end, replacement
