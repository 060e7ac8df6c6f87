"""`# nb2prod: ignore[CODE] reason`: a suppression must name the rule it silences.

A bare `ignore` is not accepted (it would hide findings nobody looked at), and a suppression
that silences nothing is itself reported, so stale ones do not pile up.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

from nb2prod.lint.violation import UNUSED_CODE, Violation

UNUSED_NAME = "unused-suppression"
_COMMENT = re.compile(r"#\s*nb2prod:\s*ignore\[(?P<codes>[A-Z0-9, ]+)\](?P<reason>.*)$")


@dataclass(frozen=True)
class Suppression:
    line: int
    column: int
    codes: frozenset[str]


def find_suppressions(source: str) -> list[Suppression]:
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and (match := _COMMENT.search(token.string)):
                codes = frozenset(c.strip() for c in match["codes"].split(",") if c.strip())
                found.append(Suppression(token.start[0], token.start[1] + 1, codes))
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def apply_suppressions(
    path: str,
    violations: list[Violation],
    suppressions: list[Suppression],
    selected: frozenset[str] | None = None,
) -> list[Violation]:
    """Drop suppressed violations; report suppressions of selected rules that matched nothing.

    A suppression for a rule that did not run (not selected, or ignored) is not reported: it
    may be needed by the next run that selects the rule."""
    used: set[tuple[int, str]] = set()
    kept = []
    by_line = {s.line: s for s in suppressions}
    for violation in violations:
        suppression = by_line.get(violation.line)
        if suppression and violation.code in suppression.codes:
            used.add((suppression.line, violation.code))
        else:
            kept.append(violation)
    for suppression in suppressions:
        unused = suppression.codes - {c for line, c in used if line == suppression.line}
        if selected is not None:
            unused &= selected
        for code in sorted(unused):
            kept.append(
                Violation(
                    path=path,
                    line=suppression.line,
                    column=suppression.column,
                    code=UNUSED_CODE,
                    name=UNUSED_NAME,
                    message=f"'# nb2prod: ignore[{code}]' suppresses nothing here; remove it",
                    end_line=suppression.line,
                    end_column=suppression.column,
                )
            )
    return kept
