"""The pre-commit hooks, run by the real `pre-commit try-repo` against this checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import REPO, notebook

pytestmark = pytest.mark.skipif(shutil.which("pre-commit") is None, reason="pre-commit missing")

MISSING = 'import mlflow\n\nwith mlflow.start_run():\n    mlflow.log_metric("accuracy", 0.9)\n'
HONEST = (
    "import mlflow\n\naccuracy = 0.9\nwith mlflow.start_run():\n"
    '    mlflow.log_metric("accuracy", accuracy)\n'
    "    mlflow.log_params(\n"
    "        {\n"
    '            "implementation_status": "IMPLEMENTED",\n'
    '            "accuracy_claim": f"{accuracy:.3f} (holdout 20%)",\n'
    '            "validation_method": "holdout 20%",\n'
    '            "honesty_warning": "VALIDATED",\n'
    "        }\n"
    "    )\n"
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-commit cache for the module, so the hook's environment is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for command in (
        ["init", "-q"],
        ["config", "user.email", "dev@example.org"],
        ["config", "user.name", "dev"],
    ):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    return tmp_path


def try_repo(project: Path, home: Path, hook: str, *files: str) -> subprocess.CompletedProcess[str]:
    subprocess.run(["git", "add", *files], cwd=project, check=True)
    return subprocess.run(
        ["pre-commit", "try-repo", str(REPO), hook, "--files", *files],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"},
    )


def test_lint_hook_fails_on_missing_honesty_then_passes(project: Path, home: Path) -> None:
    (project / "train.py").write_text(MISSING)
    failed = try_repo(project, home, "nb2prod-lint", "train.py")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "train.py:3:6: NBH101 MLflow run does not log implementation_status" in failed.stdout
    (project / "train.py").write_text(HONEST)
    passed = try_repo(project, home, "nb2prod-lint", "train.py")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout


def test_lint_hook_cites_notebook_cells(project: Path, home: Path) -> None:
    cells = ["import mlflow", "with mlflow.start_run():\n    mlflow.log_metric('a', 1)"]
    nbformat.write(notebook(cells), project / "explore.ipynb")
    failed = try_repo(project, home, "nb2prod-lint", "explore.ipynb")
    assert failed.returncode == 1
    assert "explore.ipynb:cell_2:1:6: NBH101" in failed.stdout


def test_fix_hook_inserts_the_placeholders(project: Path, home: Path) -> None:
    (project / "train.py").write_text(MISSING)
    fixed = try_repo(project, home, "nb2prod-fix", "train.py")
    assert fixed.returncode == 1  # pre-commit fails a hook that changed files
    text = (project / "train.py").read_text()
    assert '"implementation_status": "TODO: fill in"' in text
    compile(text, "train.py", "exec")
    assert json.dumps("TODO: fill in") in text
