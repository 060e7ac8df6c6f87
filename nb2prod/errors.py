"""The one error type users see: a bad input, told in one line that says where and what to do."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input: the CLI prints it as one line on stderr and exits with code 2.

    It carries where the problem is (file, code cell, line) and what the user can do, so
    nobody has to read a traceback to find the cell at fault.
    """

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        cell: int | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path)
        self.message = message
        self.cell = cell
        self.line = line
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.cell is not None:
            where += f": cell {self.cell}"
            if self.line is not None:
                where += f", line {self.line}"
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return " ".join(text.split())


class UnservableModel(InputError):
    """The model chosen cannot be served as the notebook leaves it; another one may be."""

    def __init__(
        self,
        path: Path | str,
        model: str,
        message: str,
        *,
        cell: int | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.model = model
        super().__init__(path, message, cell=cell, line=line, hint=hint)
