"""The package lives on: its record, `nb2prod update` merging a new render into a package a team
edited (real git, real edits, a real training and the package's own tests afterwards), and
`convert --force` that never deletes a user's work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import SAMPLES, Run, run_cli, run_module

SAMPLE = "tumor_classifier"
OWNER_ROUTE = '''
    @app.get("/livez")
    def livez() -> dict[str, str]:
        """Kubernetes' liveness probe, as the cluster's other services answer it."""
        return {"status": "alive", "team": "team-tumor"}
'''
README_NOTE = "\n## On call\n\nPaged by team-tumor, never by nb2prod.\n"


def nb2prod(*args: str | Path, cwd: Path | None = None) -> Run:
    return run_cli(*args, cwd=cwd, timeout=300)


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Team", "-c", "user.email=team@example.org", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def set_hyperparameter(notebook: Path, old: str, new: str) -> None:
    """Edit the notebook as a data scientist does: one literal in its parameters cell."""
    document = json.loads(notebook.read_text())
    for cell in document["cells"]:
        source = "".join(cell["source"])
        if old in source:
            cell["source"] = source.replace(old, new)
            break
    else:
        raise AssertionError(f"{old!r} is in no cell")
    notebook.write_text(json.dumps(document, indent=1))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(folder).parts
    }


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    """The tumor sample converted into a package that is a git repository, one commit deep."""
    notebook = tmp_path / f"{SAMPLE}.ipynb"
    shutil.copy(SAMPLES / f"{SAMPLE}.ipynb", notebook)
    package = tmp_path / "service"
    done = nb2prod("convert", notebook, "-o", package)
    assert done.code == 0, done.stderr
    git(package, "init", "-q")
    git(package, "add", "-A")
    git(package, "commit", "-qm", "converted")
    return notebook, package


def hand_edit(package: Path) -> None:
    """A route and a README section the team added, committed."""
    serve = package / SAMPLE / "serve.py"
    text = serve.read_text()
    anchor = "    return service.finish(app)"
    assert anchor in text
    serve.write_text(text.replace(anchor, OWNER_ROUTE.lstrip("\n") + "\n" + anchor))
    readme = package / "README.md"
    readme.write_text(readme.read_text() + README_NOTE)
    git(package, "commit", "-qam", "our route and notes")


def test_convert_records_what_made_the_package(project: tuple[Path, Path]) -> None:
    notebook, package = project
    record = json.loads((package / ".nb2prod" / "record.json").read_text())
    assert record["notebook"]["path"] == f"../{notebook.name}"
    assert len(record["notebook"]["sha256"]) == 64
    assert record["options"] == {
        "status": None,
        "model": None,
        "feature_store": None,
        "template": None,
    }
    assert f"{SAMPLE}/serve.py" in record["files"]
    plan = json.loads((package / ".nb2prod" / "plan.json").read_text())
    assert plan["package_name"] == SAMPLE
    assert plan["notebook"]["sha256"] == record["notebook"]["sha256"]
    # the render is kept for the next merge, out of sight of linters, test runners and imports
    base = package / ".nb2prod" / "base" / record["files"][f"{SAMPLE}/serve.py"]
    assert base.read_bytes() == (package / SAMPLE / "serve.py").read_bytes()
    assert not list((package / ".nb2prod").rglob("*.py"))


def test_update_keeps_edits_and_carries_the_notebook_change_then_trains_and_tests(
    project: tuple[Path, Path],
) -> None:
    notebook, package = project
    hand_edit(package)
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")

    done = nb2prod("update", package)

    assert done.code == 0, done.stdout + done.stderr
    assert "the notebook changed" in done.stdout
    # only the files the new render changes are listed: serve.py, edited by the team alone, is not
    assert f"updated  {SAMPLE}/pipeline.py" in done.stdout and "serve.py" not in done.stdout
    assert "merged  README.md" in done.stdout and "kept your edits in 1 file" in done.stdout
    pipeline = (package / SAMPLE / "pipeline.py").read_text()
    assert "n_estimators: int = 40" in pipeline
    assert '"team": "team-tumor"}' in (package / SAMPLE / "serve.py").read_text()
    assert README_NOTE in (package / "README.md").read_text()
    record = json.loads((package / ".nb2prod" / "record.json").read_text())
    assert (
        record["notebook"]["sha256"]
        == json.loads((package / SAMPLE / "honesty.json").read_text())["notebook_sha256"]
    )
    assert not [p for p in package.rglob("*.tmp")]
    # the updated package lints clean, trains, and passes its own tests
    assert nb2prod("lint", package, "--no-cache").code == 0
    env = {"PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": ""}
    trained = run_module(f"{SAMPLE}.train", cwd=package, env=env)
    assert trained.returncode == 0, trained.stderr
    tests = run_module("pytest", "-q", "-p", "no:cacheprovider", cwd=package, env=env)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    # and a second update has nothing left to do
    git(package, "add", "-A")
    git(package, "commit", "-qm", "updated")
    again = nb2prod("update", package)
    assert again.code == 0 and "nothing to change" in again.stdout


def test_the_same_lines_changed_on_both_sides_conflict(project: tuple[Path, Path]) -> None:
    notebook, package = project
    pipeline = package / SAMPLE / "pipeline.py"
    tuned = pipeline.read_text().replace("n_estimators: int = 100", "n_estimators: int = 300")
    pipeline.write_text(tuned)
    git(package, "commit", "-qam", "tuned by hand")
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")

    done = nb2prod("update", package)

    assert done.code == 1, done.stdout + done.stderr
    conflicts = [line for line in done.stdout.splitlines() if "conflict  " in line]
    assert conflicts == [
        f"       conflict  {SAMPLE}/pipeline.py  (1 conflicting hunk: resolve the <<<<<<< markers)"
    ]
    text = pipeline.read_text()
    assert "<<<<<<< yours" in text and "n_estimators: int = 300" in text
    assert "n_estimators: int = 40" in text and ">>>>>>> nb2prod" in text
    # everything else is whole: the record names the new notebook, no temporary file is left
    record = json.loads((package / ".nb2prod" / "record.json").read_text())
    honesty = json.loads((package / SAMPLE / "honesty.json").read_text())
    assert record["notebook"]["sha256"] == honesty["notebook_sha256"]
    assert not [p for p in package.rglob("*.tmp")]


def test_what_the_users_edits_broke_is_said_after_the_update(project: tuple[Path, Path]) -> None:
    notebook, package = project
    serve = package / SAMPLE / "serve.py"
    field = "    implementation_status: str | None\n"
    assert serve.read_text().count(field) == 1
    serve.write_text(serve.read_text().replace(field, ""))
    git(package, "commit", "-qam", "a field we thought we did not need")
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")

    done = nb2prod("update", package)

    assert done.code == 1, done.stdout + done.stderr
    assert "nb2prod lint finds 1 honesty problem(s) after the update:" in done.stdout
    assert f"  {SAMPLE}/serve.py:" in done.stdout and "NBH105" in done.stdout
    assert "n_estimators: int = 40" in (package / SAMPLE / "pipeline.py").read_text()


def test_deleted_files_stay_deleted_and_files_no_longer_generated_go_unless_edited(
    tmp_path: Path,
) -> None:
    fork = tmp_path / "fork"
    shutil.copytree(Path(__file__).resolve().parents[1] / "templates", fork)
    root = fork / "{{cookiecutter.package_name}}"
    (root / "RUNBOOK.md").write_text("# Runbook\n\nRestart the pod.\n")
    (root / "NOTES.md").write_text("# Notes\n\nNothing yet.\n")
    notebook = tmp_path / f"{SAMPLE}.ipynb"
    shutil.copy(SAMPLES / f"{SAMPLE}.ipynb", notebook)
    package = tmp_path / "service"
    assert nb2prod("convert", notebook, "-o", package, "--template", fork).code == 0
    (package / "deploy" / "kubernetes" / "poddisruptionbudget.yaml").unlink()
    (package / "NOTES.md").write_text("# Notes\n\nOurs now.\n")
    (package / "mine.txt").write_text("never nb2prod's")
    (root / "RUNBOOK.md").unlink()
    (root / "NOTES.md").unlink()
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")

    done = nb2prod("update", package)

    assert done.code == 0, done.stdout + done.stderr
    assert "kept deleted  deploy/kubernetes/poddisruptionbudget.yaml" in done.stdout
    assert not (package / "deploy" / "kubernetes" / "poddisruptionbudget.yaml").exists()
    assert "removed  RUNBOOK.md" in done.stdout and not (package / "RUNBOOK.md").exists()
    assert "kept  NOTES.md  (nb2prod no longer generates it; kept" in done.stdout
    assert (package / "NOTES.md").read_text().endswith("Ours now.\n")
    assert (package / "mine.txt").read_text() == "never nb2prod's"
    assert "n_estimators: int = 40" in (package / SAMPLE / "pipeline.py").read_text()


def test_a_file_whose_last_render_is_lost_is_kept_and_named(project: tuple[Path, Path]) -> None:
    notebook, package = project
    hand_edit(package)
    record = json.loads((package / ".nb2prod" / "record.json").read_text())
    (package / ".nb2prod" / "base" / record["files"]["README.md"]).unlink()
    git(package, "commit", "-qam", "lost a base")
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")
    readme = (package / "README.md").read_text()

    done = nb2prod("update", package)

    assert done.code == 1, done.stdout + done.stderr
    assert "unmerged  README.md  (changed by you and by nb2prod, and its last render" in done.stdout
    assert (package / "README.md").read_text() == readme


def test_dry_run_prints_the_diff_and_writes_nothing(project: tuple[Path, Path]) -> None:
    notebook, package = project
    hand_edit(package)
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")
    before = snapshot(package)

    done = nb2prod("update", package, "--dry-run")

    assert done.code == 0, done.stdout + done.stderr
    assert f"+++ b/{SAMPLE}/pipeline.py" in done.stdout
    assert "-    n_estimators: int = 100" in done.stdout
    assert "+    n_estimators: int = 40" in done.stdout
    assert "(dry run: nothing was written)" in done.stdout
    assert snapshot(package) == before
    assert not [p for p in package.parent.iterdir() if p.name.startswith(".nb2prod-")]


def test_uncommitted_changes_are_refused_unless_allowed(project: tuple[Path, Path]) -> None:
    notebook, package = project
    limits = package / SAMPLE / "entrypoint.py"
    limits.write_text(limits.read_text() + "# work in progress\n")
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")
    before = snapshot(package)

    refused = nb2prod("update", package)

    assert refused.code == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert f"uncommitted changes ({SAMPLE}/entrypoint.py)" in refused.stderr
    assert "--allow-dirty" in refused.stderr
    assert snapshot(package) == before
    allowed = nb2prod("update", package, "--allow-dirty")
    assert allowed.code == 0, allowed.stdout + allowed.stderr
    assert limits.read_text().endswith("# work in progress\n")
    assert "n_estimators: int = 40" in (package / SAMPLE / "pipeline.py").read_text()


def test_force_is_refused_over_a_git_repository_and_over_edits(project: tuple[Path, Path]) -> None:
    notebook, package = project
    before = snapshot(package)
    over_git = nb2prod("convert", notebook, "-o", package, "--force")
    assert over_git.code == 2 and "is a git repository" in over_git.stderr
    assert "nb2prod update" in over_git.stderr and snapshot(package) == before

    shutil.rmtree(package / ".git")
    (package / SAMPLE / "entrypoint.py").write_text("# tuned\n")
    over_edit = nb2prod("convert", notebook, "-o", package, "--force")
    assert over_edit.code == 2 and len(over_edit.stderr.strip().splitlines()) == 1
    says = f"has files changed since nb2prod wrote them ({SAMPLE}/entrypoint.py)"
    assert says in over_edit.stderr
    assert (package / SAMPLE / "entrypoint.py").read_text() == "# tuned\n"


def test_force_rerenders_an_unedited_package_and_keeps_files_it_did_not_write(
    project: tuple[Path, Path],
) -> None:
    notebook, package = project
    shutil.rmtree(package / ".git")
    (package / "mlflow.db").write_bytes(b"a trained store")
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")

    done = nb2prod("convert", notebook, "-o", package, "--force")

    assert done.code == 0, done.stderr
    assert "n_estimators: int = 40" in (package / SAMPLE / "pipeline.py").read_text()
    assert (package / "mlflow.db").read_bytes() == b"a trained store"


def test_force_is_refused_over_a_folder_nb2prod_did_not_record(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    done = nb2prod("convert", SAMPLES / "pool_heuristic.ipynb", "-o", target, "--force")
    assert done.code == 2 and "nb2prod did not record" in done.stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written.


def assert_refused(done: Run, *says: str) -> None:
    assert done.code == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    for text in says:
        assert text in done.stderr, done.stderr


def test_a_folder_nb2prod_did_not_make_is_refused(tmp_path: Path) -> None:
    assert_refused(nb2prod("update", tmp_path), "is not a package made by nb2prod")
    assert_refused(nb2prod("update", tmp_path / "nowhere"), "is not a folder")


def test_a_moved_notebook_is_named_and_found_with_notebook(project: tuple[Path, Path]) -> None:
    notebook, package = project
    moved = notebook.parent / "notebooks" / notebook.name
    moved.parent.mkdir()
    notebook.rename(moved)
    assert_refused(nb2prod("update", package), f"was made from ../{SAMPLE}.ipynb", "--notebook")
    set_hyperparameter(moved, "n_estimators = 100", "n_estimators = 40")
    done = nb2prod("update", package, "--notebook", moved)
    assert done.code == 0, done.stderr
    record = json.loads((package / ".nb2prod" / "record.json").read_text())
    assert record["notebook"]["path"] == f"../notebooks/{SAMPLE}.ipynb"


def test_a_notebook_that_no_longer_plans_changes_nothing(project: tuple[Path, Path]) -> None:
    notebook, package = project
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = (100,")
    before = snapshot(package)
    assert_refused(nb2prod("update", package), "cell")
    assert snapshot(package) == before
    assert not [p for p in package.parent.iterdir() if p.name.startswith(".nb2prod-")]


def test_a_record_edited_into_nonsense_is_one_line(project: tuple[Path, Path]) -> None:
    _, package = project
    record = package / ".nb2prod" / "record.json"
    for nonsense in ("{not json", '{"format": 1, "files": []}', json.dumps({"format": 99})):
        record.write_text(nonsense)
        assert_refused(nb2prod("update", package), "record.json: is not a record nb2prod can read")


def test_a_runtime_wheel_missing_from_vendor_is_one_line(project: tuple[Path, Path]) -> None:
    _, package = project
    (wheel,) = (package / "vendor").glob("nb2prod_runtime-*.whl")
    wheel.unlink()
    before = snapshot(package)
    assert_refused(nb2prod("update", package), f"vendor/{wheel.name}: is missing", "git checkout")
    assert snapshot(package) == before


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """The folder as a read-only file system shows it (root ignores permission bits)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for path in modes:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only folder here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_package_is_one_line_and_unchanged(project: tuple[Path, Path]) -> None:
    notebook, package = project
    set_hyperparameter(notebook, "n_estimators = 100", "n_estimators = 40")
    before = snapshot(package)
    with read_only(package):
        assert_refused(nb2prod("update", package), "cannot write the package")
    assert snapshot(package) == before
