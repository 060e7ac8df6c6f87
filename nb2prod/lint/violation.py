"""What a rule reports, as frozen data the reporters and the cache share."""

from __future__ import annotations

from dataclasses import dataclass

NOT_LINTED_CODE = "NBH000"  # what reporters call a file that could not be linted
UNUSED_CODE = "NBH900"  # an unused suppression: reported by the engine, selected like a rule
# An unused suppression is untidy, not dishonest: a warning, which CI may let pass
# (`--fail-on error`); every rule's finding is an error.
WARNING_CODES = frozenset({UNUSED_CODE})
SEVERITIES = ("warning", "error")  # rising
FAIL_ON_CHOICES = ("none", *SEVERITIES)


def severity_of(code: str) -> str:
    return "warning" if code in WARNING_CODES else "error"


def fails(severity: str, fail_on: str) -> bool:
    """Whether a finding of `severity` fails a run that fails on `fail_on` and above."""
    return fail_on != "none" and SEVERITIES.index(severity) >= SEVERITIES.index(fail_on)


@dataclass(frozen=True, order=True)
class Violation:
    """One finding at a place in a file (or a notebook cell)."""

    path: str
    line: int
    column: int  # 1-based, as editors count
    code: str
    name: str
    message: str
    end_line: int
    end_column: int
    cell: int | None = None  # for notebooks: the code cell, and line is within it

    @property
    def severity(self) -> str:
        return severity_of(self.code)

    @property
    def location(self) -> str:
        if self.cell is not None:
            return f"{self.path}:cell_{self.cell}:{self.line}:{self.column}"
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: its violations, or why it could not be linted."""

    path: str
    violations: tuple[Violation, ...] = ()
    error: str | None = None  # a file that does not parse or cannot be read
