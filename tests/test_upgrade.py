"""A package made by an earlier nb2prod updates to this one: the nb2prod of the commit before
the runtime library (every package then vendored the whole runtime as its own modules) is
taken from this repository's history, converts a sample, the team edits it, and this nb2prod's
`update` carries it onto the runtime wheel with the edits kept; it then trains and passes its
own tests."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES, run_cli, run_module

import nb2prod

# nb2prod 0.2.0: packages recorded what made them, and carried ~2,400 lines of runtime modules.
EARLIER = "5f9c6079ae6ec416b4499fc3318f329e37bb3b58"
SAMPLE = "tumor_classifier"
GIT = ["git", "-c", "user.name=Team", "-c", "user.email=team@example.org"]


def earlier_nb2prod(folder: Path) -> Path:
    """The nb2prod of EARLIER, unpacked from this repository's history into `folder`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", EARLIER],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {EARLIER[:12]} is not in this clone (a shallow clone?)")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def test_a_package_made_by_the_earlier_nb2prod_updates_onto_the_runtime(tmp_path: Path) -> None:
    old = earlier_nb2prod(tmp_path / "nb2prod-earlier")
    notebook = tmp_path / f"{SAMPLE}.ipynb"
    shutil.copy(SAMPLES / f"{SAMPLE}.ipynb", notebook)
    package = tmp_path / "service"
    made = subprocess.run(
        [sys.executable, "-m", "nb2prod", "convert", str(notebook), "-o", str(package)],
        env={**os.environ, "PYTHONPATH": str(old)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    assert (package / SAMPLE / "payloads.py").is_file() and not (package / "vendor").exists()
    subprocess.run([*GIT, "init", "-q"], cwd=package, check=True)
    readme = package / "README.md"
    readme.write_text(readme.read_text() + "\n## On call\n\nPaged by team-tumor.\n")
    (package / SAMPLE / "owners.py").write_text('"""Who is paged."""\n\nTEAM = "team-tumor"\n')
    subprocess.run([*GIT, "add", "-A"], cwd=package, check=True)
    subprocess.run([*GIT, "commit", "-qm", "converted and edited"], cwd=package, check=True)

    done = run_cli("update", package, timeout=300)

    assert done.code == 0, done.stdout + done.stderr
    assert f"nb2prod 0.2.0 -> {nb2prod.__version__}" in done.stdout
    wheels = sorted((package / "vendor").glob("nb2prod_runtime-*.whl"))
    assert len(wheels) == 1 and f"added  vendor/{wheels[0].name}" in done.stdout
    assert f"removed  {SAMPLE}/payloads.py" in done.stdout
    assert not (package / SAMPLE / "payloads.py").exists()
    assert readme.read_text().endswith("## On call\n\nPaged by team-tumor.\n")
    assert (package / SAMPLE / "owners.py").is_file()
    record = json.loads((package / ".nb2prod" / "record.json").read_text())
    assert record["nb2prod_version"] == nb2prod.__version__ and record["runtime_version"]
    assert run_cli("lint", package, "--no-cache").code == 0
    env = {"PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": ""}
    trained = run_module(f"{SAMPLE}.train", cwd=package, env=env)
    assert trained.returncode == 0, trained.stderr
    tests = run_module("pytest", "-q", "-p", "no:cacheprovider", cwd=package, env=env)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
