"""`nb2prod update [PACKAGE]`: carry a new render of the notebook into an edited package.

Re-plan the notebook (the recorded one, or `--notebook`) with the recorded options, render it
with the nb2prod that runs, and merge it into the package three ways against the render
recorded at the last convert or update (see merge.py). It writes all or nothing, refuses a
package with uncommitted changes (so `git checkout` can always undo it), and afterwards lints
the package, so what the user's edits broke is said at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nb2prod import __version__
from nb2prod.backend.render import honesty_findings, rendering, writing
from nb2prod.errors import InputError
from nb2prod.lifecycle.apply import Write, apply_changes
from nb2prod.lifecycle.gitstate import uncommitted
from nb2prod.lifecycle.merge import UNRESOLVED, FileMerge, Outcome, merge_render
from nb2prod.lifecycle.record import RECORD_DIR, PackageRecord, read_record

VENDOR = "vendor/"  # where a package carries the runtime wheel it was generated with


@dataclass(frozen=True)
class UpdateResult:
    package: Path
    notebook: Path
    previous_version: str  # the nb2prod that made the last render
    notebook_changed: bool
    merges: tuple[FileMerge, ...]
    lint: tuple[str, ...]  # honesty findings in the package afterwards
    dry_run: bool
    seconds: float

    @property
    def conflicts(self) -> list[FileMerge]:
        return [m for m in self.merges if m.outcome in UNRESOLVED]


def update(
    package: Path,
    *,
    notebook: Path | None = None,
    dry_run: bool = False,
    allow_dirty: bool = False,
) -> UpdateResult:
    """Merge a new render into `package`; InputError (nothing written) when it cannot."""
    started = time.perf_counter()
    package = package.absolute()
    if not package.is_dir():
        raise InputError(package, "is not a folder", hint="pass the folder nb2prod convert wrote")
    record = read_record(package)
    source = notebook.absolute() if notebook else record.notebook(package)
    if not source.is_file():
        raise InputError(
            package,
            f"was made from {record.notebook_path}, which is not there any more",
            hint="pass --notebook PATH where the notebook is now",
        )
    require_runtime_wheel(package, record)
    if not dry_run and not allow_dirty:
        dirty = uncommitted(package)
        if dirty:
            more = f" and {len(dirty) - 1} more" if len(dirty) > 1 else ""
            raise InputError(
                package,
                f"has uncommitted changes ({dirty[0]}{more})",
                hint="commit or stash them first, so the update can be undone with git; or "
                "pass --allow-dirty",
            )
    lint: tuple[str, ...] = ()
    with (
        writing(package),
        rendering(source, package, record.options, package_name=record.package_name) as render,
    ):
        merges = merge_render(package, record, render.folder, __version__)
        if not dry_run:
            writes = [Write(m.path, m.content, m.mode) for m in merges if m.content is not None]
            removals = [m.path for m in merges if m.outcome is Outcome.REMOVED]
            apply_changes(package, writes, removals, render.folder / RECORD_DIR)
            lint = tuple(
                f"{where}: {what}" for where, what in honesty_findings(package, render.folder)
            )
        changed = render.plan.notebook.sha256 != record.notebook_sha256
    return UpdateResult(
        package,
        source,
        record.nb2prod_version,
        changed,
        tuple(merges),
        lint,
        dry_run,
        time.perf_counter() - started,
    )


def require_runtime_wheel(package: Path, record: PackageRecord) -> None:
    """The runtime wheel the package records must be there: without it the package installs
    nothing, and an update cannot tell a wheel the user meant to drop from one lost."""
    for name in record.files:
        if name.startswith(VENDOR) and name.endswith(".whl") and not (package / name).is_file():
            raise InputError(
                package / name,
                "is missing: the package's runtime wheel, which its install and image need",
                hint=f"restore it (git checkout -- {VENDOR}), then update again",
            )


def render_update(result: UpdateResult, shown: str) -> str:
    """What `update` tells the user: each file it touched, then what is left to do."""
    lines = []
    if result.dry_run:
        lines += [diff for diff in (m.diff() for m in result.merges) if diff]
    verb = "Would update" if result.dry_run else "Updated"
    versions = (
        f"nb2prod {result.previous_version} -> {__version__}"
        if result.previous_version != __version__
        else f"nb2prod {__version__}"
    )
    notebook = "the notebook changed" if result.notebook_changed else "the notebook is unchanged"
    lines.append(f"{verb} {shown}/ ({versions}; {notebook}) in {result.seconds:.1f} s")
    lines += [m.line() for m in result.merges]
    if not result.merges:
        lines.append("  nothing to change: the package already has this render")
    kept = sum(m.outcome in (Outcome.MERGED, Outcome.KEPT_EDITED) for m in result.merges)
    if kept:
        lines.append(f"kept your edits in {kept} file{'s' if kept != 1 else ''}")
    if result.conflicts:
        count = len(result.conflicts)
        lines.append(
            f"{count} conflict{'s' if count != 1 else ''}: resolve "
            f"{'them' if count != 1 else 'it'}, then run nb2prod lint and python -m pytest"
        )
    if result.lint:
        lines.append(f"nb2prod lint finds {len(result.lint)} honesty problem(s) after the update:")
        lines += [f"  {finding}" for finding in result.lint]
    if result.dry_run:
        lines.append("(dry run: nothing was written)")
    return "\n".join(lines) + "\n"
