"""`convert --force` over an existing folder: only a recorded, unedited package is re-rendered.

Nothing is removed that nb2prod did not write and record: a git repository, a folder nb2prod
did not make, and a package with hand edits are refused in one line that points at `update`;
files the user added beside the recorded ones (a trained `mlflow.db`, a virtualenv) stay.
"""

from __future__ import annotations

from pathlib import Path

from nb2prod.errors import InputError
from nb2prod.lifecycle.apply import Write, apply_changes
from nb2prod.lifecycle.gitstate import is_repository
from nb2prod.lifecycle.record import (
    RECORD_DIR,
    edited_files,
    has_record,
    read_record,
    rendered_files,
)


def refuse_to_replace(target: Path) -> None:
    """Raise unless `target` is empty or a package nb2prod recorded and nobody edited."""
    if not any(target.iterdir()):
        return
    update = f"run 'nb2prod update {target}' to merge the new render into it"
    if is_repository(target):
        raise InputError(
            target,
            "is a git repository; --force would replace its files and could lose your work",
            hint=update,
        )
    if not has_record(target):
        raise InputError(
            target,
            f"holds files nb2prod did not record (no {RECORD_DIR}/record.json), and --force "
            "replaces only a package nb2prod made",
            hint="choose another -o DIR, or move the folder aside",
        )
    record = read_record(target)
    edited = edited_files(target, record)
    if edited:
        more = f" and {len(edited) - 1} more" if len(edited) > 1 else ""
        raise InputError(
            target,
            f"has files changed since nb2prod wrote them ({edited[0]}{more}); --force would "
            "lose those changes",
            hint=update,
        )


def replace_render(target: Path, render: Path) -> tuple[str, ...]:
    """Put a new render over an unedited recorded package; returns the files it rewrote or
    removed. Files the record does not list are the user's and stay."""
    record = read_record(target)
    new = rendered_files(render)
    for name in new:
        mine = target / name
        if name not in record.files and mine.is_file():
            if mine.read_bytes() == (render / name).read_bytes():
                continue
            raise InputError(
                mine,
                "is yours (nb2prod did not record it) and the new render writes a file there; "
                "--force would lose it",
                hint=f"run 'nb2prod update {target}' to merge the two",
            )
    writes = [
        Write(name, (render / name).read_bytes(), (render / name).stat().st_mode & 0o7777)
        for name in new
    ]
    removals = sorted(set(record.files) - set(new))
    apply_changes(target, writes, removals, render / RECORD_DIR)
    return tuple(sorted((set(record.files) & set(new)) | set(removals)))
