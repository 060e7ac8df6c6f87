"""`nb2prod lint` as a tool: configuration, cache, bad input, exit codes, fixes, and a light
import path. Every test runs the real CLI in a subprocess, in a folder of real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Run, run_cli

from nb2prod.resources import contract_path

BAD_RUN = 'import mlflow\n\nwith mlflow.start_run():\n    mlflow.log_metric("a", 1)\n'
BAD_STATUS = 'import mlflow\nmlflow.log_param("implementation_status", "DONE")\n'
HEAVY = ("mlflow", "fastapi", "pandas", "nbconvert")


def lint(folder: Path, *args: str | Path) -> Run:
    return run_cli("lint", *args, cwd=folder)


def codes(run: Run) -> list[str]:
    """`path:code` for each finding of a JSON-format run."""
    return sorted(f"{Path(f['filename']).as_posix()}:{f['code']}" for f in json.loads(run.stdout))


def pyproject(folder: Path, body: str) -> None:
    (folder / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.nb2prod.lint]\n{body}")


def imported_modules(folder: Path, *args: str) -> tuple[int, set[str]]:
    """Run `nb2prod lint` with -X importtime: its exit code and every module it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nb2prod", "lint", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=120,
    )
    modules = {
        line.split("|")[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return done.returncode, modules


# -- configuration -----------------------------------------------------------------------


def test_select_and_ignore_from_pyproject_and_flags_override(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(BAD_RUN)
    (tmp_path / "status.py").write_text(BAD_STATUS)
    pyproject(tmp_path, 'select = ["NBH101", "NBH102"]\nignore = ["NBH102"]\n')
    assert codes(lint(tmp_path, "--output-format", "json")) == ["run.py:NBH101"]
    flagged = lint(tmp_path, "--output-format", "json", "--ignore", "NBH101")
    assert codes(flagged) == ["status.py:NBH102"]
    selected = lint(tmp_path, "--output-format", "json", "--select", "NBH102", "--ignore", "")
    assert codes(selected) == ["status.py:NBH102"]


def test_per_file_ignores_and_exclude_are_relative_to_the_project_root(tmp_path: Path) -> None:
    for name in ("src/run.py", "src/legacy/old.py", "scripts/run.py", "gen/made.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(BAD_RUN)
    pyproject(
        tmp_path,
        'select = ["NBH101"]\nexclude = ["src/legacy/", "gen"]\n'
        '[tool.nb2prod.lint.per-file-ignores]\n"scripts/*.py" = ["NBH1"]\n',
    )
    found = lint(tmp_path, "--output-format", "json")
    assert codes(found) == ["src/run.py:NBH101"]
    # the same settings hold when linting a sub-folder from inside it
    inside = lint(tmp_path / "src", ".", "--output-format", "json")
    assert codes(inside) == ["run.py:NBH101"]
    # a file named on the command line is linted even if excluded, as ruff does
    named = lint(tmp_path, "gen/made.py", "--output-format", "json")
    assert codes(named) == ["gen/made.py:NBH101"]
    assert codes(lint(tmp_path, "--output-format", "json", "--exclude", "src")) == [
        "gen/made.py:NBH101"
    ]


def test_contract_from_config_changes_what_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "status.py").write_text(BAD_STATUS)
    text = contract_path().read_text(encoding="utf-8")
    custom = text.replace(
        "[statuses.PLANNED]", '[statuses.DONE]\nmark = "✔"\nmeaning = "x"\n\n[statuses.PLANNED]'
    )
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "contract.toml").write_text(custom, encoding="utf-8")
    assert lint(tmp_path, "--select", "NBH102").code == 1
    pyproject(tmp_path, 'select = ["NBH102"]\ncontract = "policy/contract.toml"\n')
    assert lint(tmp_path).code == 0
    assert lint(tmp_path, "--contract", contract_path()).code == 1


def test_nearest_configured_pyproject_and_explicit_config(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "status.py").write_text(BAD_STATUS)
    pyproject(tmp_path, 'ignore = ["NBH102"]\n')
    # a pyproject without [tool.nb2prod.lint] does not hide the repository's settings
    (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    assert lint(tmp_path / "pkg" / "sub", "--select", "NBH102", "--ignore", "").code == 1
    assert lint(tmp_path / "pkg" / "sub", "--output-format", "json").stdout.strip() == "[]"
    other = tmp_path / "other.toml"
    other.write_text('[tool.nb2prod.lint]\nselect = ["NBH102"]\n')
    assert lint(tmp_path / "pkg" / "sub", "--config", other).code == 1
    assert lint(tmp_path / "pkg" / "sub", "--isolated").code == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("select = [", "is not valid TOML"),
        ("selct = ['NBH101']", "unknown key 'selct'"),
        ("select = 'NBH101'", "'select' must be a list of strings"),
        ("select = ['NHB101']", "NHB101: matches no rule"),
        ("per-file-ignores = ['x']", "'per-file-ignores' must be a table"),
        ("contract = 'missing.toml'", "cannot read the contract"),
    ],
)
def test_a_broken_config_is_one_line_and_exit_2(tmp_path: Path, body: str, expected: str) -> None:
    (tmp_path / "run.py").write_text(BAD_RUN)
    pyproject(tmp_path, body + "\n")
    result = lint(tmp_path)
    assert result.code == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_bad_select_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = lint(tmp_path, "--select", "NBH1O1")
    assert result.code == 2 and "not a rule code" in result.stderr


# -- cache -------------------------------------------------------------------------------


def test_a_second_run_answers_from_the_cache_without_importing_libcst(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(BAD_RUN)
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "bad.py").write_text("x = (\n")
    first = lint(tmp_path, "--output-format", "json")
    assert (tmp_path / ".nb2prod_cache" / ".gitignore").is_file()
    code, modules = imported_modules(tmp_path, "--output-format", "json")
    assert code == first.code == 1
    assert "libcst" not in modules and "nb2prod.lint.engine" not in modules
    assert lint(tmp_path, "--output-format", "json").stdout == first.stdout
    # a changed file is linted again, and only then is libcst needed
    (tmp_path / "run.py").write_text("x = 2\n")
    code, modules = imported_modules(tmp_path, "--output-format", "json")
    assert code == 2 and "libcst" in modules  # only bad.py is left


def test_the_cache_key_covers_rules_selection_and_contract(tmp_path: Path) -> None:
    (tmp_path / "status.py").write_text(BAD_STATUS)
    assert lint(tmp_path, "--select", "NBH102").code == 1
    assert lint(tmp_path, "--select", "NBH101").code == 0
    assert lint(tmp_path, "--select", "NBH102").code == 1
    custom = (
        contract_path()
        .read_text(encoding="utf-8")
        .replace("[statuses.PLANNED]", '[statuses.DONE]\nmark = ""\n\n[statuses.PLANNED]')
    )
    (tmp_path / "contract.toml").write_text(custom, encoding="utf-8")
    assert lint(tmp_path, "--select", "NBH102", "--contract", "contract.toml").code == 0


def test_no_cache_and_cache_dir(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(BAD_RUN)
    assert lint(tmp_path, "--no-cache").code == 1
    assert not (tmp_path / ".nb2prod_cache").exists()
    elsewhere = tmp_path / "caches" / "lint"
    assert lint(tmp_path, "--cache-dir", elsewhere).code == 1
    assert list(elsewhere.glob("lint-*.json")) and not (tmp_path / ".nb2prod_cache").exists()
    # a corrupt cache file is ignored and rewritten, never an error
    for cache_file in elsewhere.glob("lint-*.json"):
        cache_file.write_text("{not json")
    again = lint(tmp_path, "--cache-dir", elsewhere)
    assert again.code == 1 and again.stderr == ""
    code, modules = imported_modules(tmp_path, "--no-cache")
    assert code == 1 and "libcst" in modules


def test_the_cache_lives_in_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "run.py").write_text(BAD_RUN)
    pyproject(tmp_path, "")
    assert lint(tmp_path / "src").code == 1
    assert (tmp_path / ".nb2prod_cache").is_dir() and not (
        tmp_path / "src" / ".nb2prod_cache"
    ).exists()


# -- bad input ---------------------------------------------------------------------------


def bad_inputs(folder: Path) -> dict[str, str]:
    """Files that cannot be linted, and what their line must say."""
    (folder / "syntax.py").write_text("def f(:\n")
    (folder / "latin1.py").write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    (folder / "binary.py").write_bytes(b"\x7fELF\x00\x01\x02")
    (folder / "nb.ipynb").write_text("{not json")
    (folder / "loop").mkdir()
    os.symlink(folder / "loop", folder / "loop" / "again")
    return {
        "syntax.py": "syntax error",
        "latin1.py": "not UTF-8",
        "binary.py": "binary file",
        "nb.ipynb": "not a notebook",
    }


def test_bad_inputs_are_one_line_each_and_the_run_goes_on(tmp_path: Path) -> None:
    expected = bad_inputs(tmp_path)
    alone = lint(tmp_path, "--output-format", "concise")
    assert alone.code == 2, alone.stdout + alone.stderr
    lines = alone.stdout.splitlines()
    for name, problem in expected.items():
        (line,) = [line for line in lines if line.startswith(f"{name}: error: ")]
        assert problem in line
    assert "Traceback" not in alone.stderr and alone.stderr == ""
    (tmp_path / "run.py").write_text(BAD_RUN)
    with_finding = lint(tmp_path, "--output-format", "concise", "--select", "NBH101")
    assert with_finding.code == 1
    assert "run.py:3:6: NBH101" in with_finding.stdout
    assert all(f"{name}: error: " in with_finding.stdout for name in expected)
    # the cache does not turn an error into silence
    assert lint(tmp_path, "--output-format", "concise").stdout.count(": error: ") == len(expected)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: chmod 000 does not stop root from reading the file",
)
def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    secret = tmp_path / "secret.py"
    secret.write_text("x = 1\n")
    secret.chmod(0)
    try:
        result = lint(tmp_path, "--output-format", "concise")
    finally:
        secret.chmod(0o644)
    assert result.code == 2
    assert "secret.py: error: cannot be read" in result.stdout


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_a_file_whose_read_fails_is_one_line_even_as_root(tmp_path: Path) -> None:
    """chmod cannot stop root, but reading /proc/self/mem from offset 0 fails for anyone."""
    os.symlink("/proc/self/mem", tmp_path / "mem.py")
    (tmp_path / "ok.py").write_text("x = 1\n")
    for _ in range(2):  # a read failure may pass: it is never cached
        result = lint(tmp_path, "--output-format", "concise")
        assert result.code == 2 and result.stderr == ""
        assert result.stdout.splitlines()[0].startswith("mem.py: error: cannot be read: ")


def test_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    assert lint(tmp_path, "ok.py").code == 0
    (tmp_path / "run.py").write_text(BAD_RUN)
    assert lint(tmp_path, "run.py", "--select", "NBH101").code == 1
    missing = lint(tmp_path, "missing.py")
    assert missing.code == 2 and "no such file" in missing.stdout
    usage = lint(tmp_path, "--output-format", "xml")
    assert usage.code == 2 and len(usage.stderr.splitlines()) == 1


def test_statistics(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(BAD_RUN)
    (tmp_path / "b.py").write_text(BAD_RUN)
    result = lint(tmp_path, "--statistics", "--select", "NBH101")
    assert result.code == 1
    assert result.stdout.split() == ["2", "NBH101", "mlflow-run-without-honesty"]


def test_lint_never_imports_the_heavy_runtime(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(BAD_RUN + "import fastapi\nimport pandas\n")
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": [], "nbformat": 4}))
    for args in (["--no-cache"], [], ["--output-format", "sarif"]):
        code, modules = imported_modules(tmp_path, *args)
        assert code == 1
        assert not {m.split(".")[0] for m in modules} & set(HEAVY), args


# -- fixes -------------------------------------------------------------------------------

RUN_IN_FUNCTION = """\
import mlflow as mf


def train(x):
    with mf.start_run() as run:
        mf.log_param("implementation_status", "IMPLEMENTED")
        mf.log_metric("accuracy", x)
"""


def test_diff_shows_the_fix_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(RUN_IN_FUNCTION)
    result = lint(tmp_path, "--diff")
    assert result.code == 1
    assert result.stdout.startswith("--- train.py\n+++ train.py\n")
    added = [line[1:] for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert added == [
        "        # TODO(nb2prod): log this run's real honesty values (nb2prod rule NBH101)",
        "        mf.log_params({",
        '            "accuracy_claim": "TODO: fill in",',
        '            "validation_method": "TODO: fill in",',
        '            "honesty_warning": "TODO: fill in",',
        "        })",
    ]
    assert (tmp_path / "train.py").read_text() == RUN_IN_FUNCTION
    assert "Would fix 1 finding" in result.stderr


def test_fix_writes_valid_code_that_still_asks_for_a_human(tmp_path: Path) -> None:
    source = "import mlflow\n\nwith mlflow.start_run():\n    pass\n"
    (tmp_path / "train.py").write_text(source)
    (tmp_path / "clean.py").write_text("x = 1\n")
    result = lint(tmp_path, "--fix", "--select", "NBH101,NBH102", "--output-format", "json")
    fixed = (tmp_path / "train.py").read_text()
    compile(fixed, "train.py", "exec")
    assert '"implementation_status": "TODO: fill in"' in fixed
    # NBH101 is gone; the placeholder status is not a contract value, so the run still fails
    assert codes(result) == ["train.py:NBH102"] and result.code == 1
    assert "Fixed 1 finding" in result.stderr
    again = lint(tmp_path, "--fix", "--select", "NBH101,NBH102")
    assert (tmp_path / "train.py").read_text() == fixed and again.code == 1
    assert (tmp_path / "clean.py").read_text() == "x = 1\n"


def test_runs_without_a_safe_fix_are_left_alone(tmp_path: Path) -> None:
    source = "from mlflow import start_run\n\nwith start_run():\n    pass\n"
    (tmp_path / "train.py").write_text(source)
    result = lint(tmp_path, "--diff", "--select", "NBH101")
    assert result.code == 0 and result.stdout == ""
    assert (tmp_path / "train.py").read_text() == source


def test_fix_declares_missing_response_fields(tmp_path: Path) -> None:
    source = (
        "from fastapi import FastAPI\nfrom pydantic import BaseModel\n\napp = FastAPI()\n\n\n"
        "class Answer(BaseModel):\n    prediction: float\n    implementation_status: str\n\n\n"
        '@app.post("/predict", response_model=Answer)\n'
        "def predict() -> Answer:\n"
        '    return Answer(prediction=1.0, implementation_status="HEURISTIC")\n'
    )
    path = tmp_path / "serve.py"
    path.write_text(source)
    shown = run_cli("lint", "--no-cache", "--diff", path)
    assert shown.code == 1 and "+    accuracy_claim: str" in shown.stdout
    assert path.read_text() == source  # --diff writes nothing
    fixed = run_cli("lint", "--no-cache", "--fix", path)
    assert "    accuracy_claim: str\n    validation_status: str\n" in path.read_text()
    assert "NBH105" not in run_cli("lint", "--no-cache", path).stdout, fixed.stdout
