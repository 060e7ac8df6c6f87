"""Which files to lint: the paths given, folders walked with `.gitignore` and excludes honoured.

Folders are walked without following symbolic links into directories, so a link loop cannot
hang a run; a path that does not exist is reported, not fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathspec import PathSpec


LINTED_SUFFIXES = (".py", ".pyi", ".ipynb")
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".nox",
        "node_modules",
        "build",
        "dist",
        ".nb2prod_cache",
    }
)


def find_files(
    paths: Sequence[Path], exclude: Sequence[str] = ()
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files to lint, [(path, problem)]) for the given files and folders."""
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            files.extend(_walk(path, exclude))
        elif path.is_file() or (path.is_symlink() and path.exists()):
            files.append(path)  # named explicitly: linted whatever its suffix or ignores
        elif path.is_symlink():
            problems.append((path, "broken symbolic link"))
        else:
            problems.append((path, "no such file or folder"))
    return list(dict.fromkeys(files)), problems


def _walk(root: Path, exclude: Sequence[str]) -> Iterator[Path]:
    import pathspec  # only walking folders needs it; a pre-commit run names files

    excluded = pathspec.GitIgnoreSpec.from_lines(exclude)
    ignores: list[tuple[Path, pathspec.PathSpec]] = []
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(folder)
        gitignore = here / ".gitignore"
        if gitignore.is_file():
            try:
                lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
                ignores.append((here, pathspec.GitIgnoreSpec.from_lines(lines)))
            except OSError:
                pass
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIPPED_DIRS and not _ignored(here / d, root, excluded, ignores, True)
        )
        for name in sorted(filenames):
            path = here / name
            if name.endswith(LINTED_SUFFIXES) and not _ignored(
                path, root, excluded, ignores, False
            ):
                yield path


def _ignored(
    path: Path,
    root: Path,
    excluded: PathSpec,
    ignores: list[tuple[Path, PathSpec]],
    is_dir: bool,
) -> bool:
    suffix = "/" if is_dir else ""
    if excluded.match_file(path.relative_to(root).as_posix() + suffix):
        return True
    for base, spec in ignores:
        if path.is_relative_to(base) and spec.match_file(
            path.relative_to(base).as_posix() + suffix
        ):
            return True
    return False
