"""What git says of a package folder: whether it is a repository, and what is uncommitted."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def is_repository(folder: Path) -> bool:
    """The folder is a git repository of its own (its `.git` is a folder or a worktree file)."""
    return (folder / ".git").exists()


def uncommitted(folder: Path) -> list[str] | None:
    """Changed, staged or untracked files under `folder` that git would show (ignored files
    are not); None when the folder is not in a git work tree or git is missing."""
    git = shutil.which("git")
    if git is None:
        return None
    inside = subprocess.run(
        [git, "-C", str(folder), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    status = subprocess.run(
        [git, "-C", str(folder), "status", "--porcelain", "--untracked-files=all", "--", "."],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line[3:] for line in status.stdout.splitlines() if line.strip()]
