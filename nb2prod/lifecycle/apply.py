"""Write a set of file changes into a package all or nothing.

Every new content is first written to a temporary file beside its target, and the new record
to a temporary folder; only when all of them are on disk are they renamed into place, so a
full disk or a read-only folder leaves the package exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nb2prod.lifecycle.record import RECORD_DIR


@dataclass(frozen=True)
class Write:
    path: str  # relative to the package, POSIX form
    content: bytes
    mode: int | None = None  # permission bits; None keeps the file's own (or the default)


def apply_changes(
    package: Path, writes: Sequence[Write], removals: Sequence[str], record: Path
) -> None:
    """Write, remove, and put `record` (a staged `.nb2prod/`) in place; OSError leaves the
    package untouched."""
    suffix = f".nb2prod-{os.getpid()}.tmp"
    staged: list[tuple[Path, Path]] = []
    created: list[Path] = []
    new_record = package / f"{RECORD_DIR}{suffix}"
    try:
        for write in writes:
            target = package / write.path
            created += _make_parents(target.parent, package)
            temporary = target.with_name(f".{target.name}{suffix}")
            temporary.write_bytes(write.content)
            mode = write.mode if write.mode is not None else _mode_of(target)
            if mode is not None:
                os.chmod(temporary, mode)
            staged.append((temporary, target))
        shutil.copytree(record, new_record)
    except OSError:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        shutil.rmtree(new_record, ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    for temporary, target in staged:
        os.replace(temporary, target)
    for name in removals:
        (package / name).unlink(missing_ok=True)
        _prune_empty(package / name, package)
    old_record = package / f"{RECORD_DIR}.old{suffix}"
    if (package / RECORD_DIR).exists():
        os.replace(package / RECORD_DIR, old_record)
    os.replace(new_record, package / RECORD_DIR)
    shutil.rmtree(old_record, ignore_errors=True)


def _make_parents(folder: Path, package: Path) -> list[Path]:
    """Create `folder` and its missing parents inside the package; return those created."""
    missing = []
    while not folder.exists() and folder != package:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


def _mode_of(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None


def _prune_empty(path: Path, package: Path) -> None:
    """Remove the folders a removal left empty, up to the package's own folder."""
    folder = path.parent
    while folder != package and folder.is_relative_to(package):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
