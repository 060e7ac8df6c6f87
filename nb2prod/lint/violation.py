"""What a rule reports, as frozen data the reporters and the cache share."""

from __future__ import annotations

from dataclasses import dataclass

NOT_LINTED_CODE = "NBH000"  # what reporters call a file that could not be linted


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
