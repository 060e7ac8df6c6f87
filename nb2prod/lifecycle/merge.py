"""Three-way merge of a new render into a package, file by file, as `git merge-file` merges.

The base is the render recorded at the last convert or update, ours is the package as the user
has it, theirs is the new render. What a side left alone takes the other side's change; what
both changed is merged line by line, with ordinary conflict markers where the two touch the
same lines. A file the user deleted stays deleted; a file nb2prod no longer generates is
removed only if the user never edited it.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from nb2prod.errors import InputError
from nb2prod.lifecycle.record import (
    BASE_DIR,
    RECORD_DIR,
    PackageRecord,
    base_text,
    is_text,
    rendered_files,
    sha256,
)


class Outcome(Enum):
    ADDED = "added"  # new in the render
    UPDATED = "updated"  # the user had not edited it: the new render is taken
    MERGED = "merged"  # both changed it, on different lines
    CONFLICT = "conflict"  # both changed the same lines: markers written
    REMOVED = "removed"  # no longer generated, never edited
    KEPT_DELETED = "kept deleted"  # the user deleted it; it stays deleted
    KEPT_EDITED = "kept"  # no longer generated, but edited: it is the user's now
    KEPT_BINARY = "binary conflict"  # both changed a file that has no lines to merge
    NO_BASE = "unmerged"  # both changed it, and its last render is missing from the record


# What the user must finish by hand: the update exits 1 while any of these is left.
UNRESOLVED = frozenset({Outcome.CONFLICT, Outcome.KEPT_BINARY, Outcome.NO_BASE})


@dataclass(frozen=True)
class FileMerge:
    path: str
    outcome: Outcome
    content: bytes | None = None  # what the file becomes; None: removed or left alone
    before: bytes | None = None  # the user's file before the update, for --dry-run's diff
    conflicts: int = 0
    mode: int | None = None

    @property
    def writes(self) -> bool:
        return self.content is not None

    def line(self) -> str:
        """One line for the user, as `git status` lists paths."""
        notes = {
            Outcome.CONFLICT: f"{self.conflicts} conflicting hunk"
            + ("s" if self.conflicts != 1 else "")
            + ": resolve the <<<<<<< markers",
            Outcome.KEPT_DELETED: "you deleted it; nb2prod's new version is not added",
            Outcome.KEPT_EDITED: "nb2prod no longer generates it; kept, since you edited it",
            Outcome.KEPT_BINARY: "changed by you and by nb2prod, and not text: yours is kept",
            Outcome.NO_BASE: f"changed by you and by nb2prod, and its last render is not in "
            f"{RECORD_DIR}/{BASE_DIR}: yours is kept; merge nb2prod's by hand",
        }
        note = notes.get(self.outcome)
        return f"{self.outcome.value:>15}  {self.path}" + (f"  ({note})" if note else "")

    def diff(self) -> str:
        """What the update does to the file, as a unified diff."""
        old, new = self.before, self.content
        if self.outcome is Outcome.REMOVED:
            new = b""
        elif new is None:
            return ""
        if not is_text(old or b"") or not is_text(new):
            return f"Binary file {self.path} {self.outcome.value}\n"
        lines = difflib.unified_diff(
            (old or b"").decode("utf-8").splitlines(keepends=True),
            new.decode("utf-8").splitlines(keepends=True),
            fromfile=f"a/{self.path}" if old is not None else "/dev/null",
            tofile=f"b/{self.path}" if self.outcome is not Outcome.REMOVED else "/dev/null",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


LABELS = ("yours", "last render", "nb2prod {version}")


def merge_render(
    package: Path, record: PackageRecord, render: Path, version: str
) -> list[FileMerge]:
    """What becomes of every file nb2prod wrote before or writes now (others are not touched)."""
    new_files = set(rendered_files(render))
    merges = []
    for name in sorted(new_files | set(record.files)):
        theirs_path = render / name
        theirs = theirs_path.read_bytes() if name in new_files else None
        mode = theirs_path.stat().st_mode & 0o7777 if theirs is not None else None
        found = _file_merge(package, name, record.files.get(name), theirs, version, mode)
        if found is not None:
            merges.append(found)
    return merges


def _file_merge(
    package: Path,
    name: str,
    base: str | None,
    theirs: bytes | None,
    version: str,
    mode: int | None,
) -> FileMerge | None:
    path = package / name
    ours = path.read_bytes() if path.is_file() else None
    if ours is None:
        if base is None and theirs is not None:
            return FileMerge(name, Outcome.ADDED, theirs, mode=mode)
        if base is not None and theirs is not None:
            return FileMerge(name, Outcome.KEPT_DELETED)
        return None
    if theirs is None:
        if base is None:
            return None  # the user's own file
        if sha256(ours) == base:
            return FileMerge(name, Outcome.REMOVED, before=ours)
        return FileMerge(name, Outcome.KEPT_EDITED)
    if ours == theirs:
        return None
    if base is not None and sha256(ours) == base:
        return FileMerge(name, Outcome.UPDATED, theirs, before=ours, mode=mode)
    if base is not None and sha256(theirs) == base:
        return None  # only the user changed it
    if not (is_text(ours) and is_text(theirs)):
        return FileMerge(name, Outcome.KEPT_BINARY)
    base_bytes = base_text(package, base) if base is not None else b""
    if base_bytes is None:
        return FileMerge(name, Outcome.NO_BASE)
    merged, conflicts = merge_file(ours, base_bytes, theirs, version)
    outcome = Outcome.CONFLICT if conflicts else Outcome.MERGED
    return FileMerge(name, outcome, merged, before=ours, conflicts=conflicts)


def merge_file(ours: bytes, base: bytes, theirs: bytes, version: str) -> tuple[bytes, int]:
    """`git merge-file -p`: the merged text and how many conflicts it marks."""
    git = shutil.which("git")
    if git is None:
        raise InputError(
            "nb2prod update",
            "needs git to merge a file both you and nb2prod changed (git merge-file)",
            hint="install git",
        )
    labels = [label.format(version=version) for label in LABELS]
    with tempfile.TemporaryDirectory(prefix="nb2prod-merge-") as scratch:
        paths = [Path(scratch, side) for side in ("ours", "base", "theirs")]
        for path, data in zip(paths, (ours, base, theirs), strict=True):
            path.write_bytes(data)
        done = subprocess.run(
            [git, "merge-file", "-p", *(f"-L{label}" for label in labels), *map(str, paths)],
            capture_output=True,
            check=False,
        )
    if done.returncode < 0 or done.returncode > 127:
        detail = done.stderr.decode(errors="replace").strip()
        raise InputError("nb2prod update", f"git merge-file failed: {detail}")
    return done.stdout, done.returncode
