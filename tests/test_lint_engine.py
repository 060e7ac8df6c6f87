"""The lint engine: notebooks mapped to cells, suppressions that must name the rule, discovery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
from conftest import notebook, run_cli

from nb2prod.contract import load_contract
from nb2prod.lint.discovery import find_files
from nb2prod.lint.engine import lint_file, lint_source
from nb2prod.lint.registry import all_rules

RULES = all_rules()
CONTRACT = load_contract()
BAD_RUN = 'import mlflow\nwith mlflow.start_run():\n    mlflow.log_metric("a", 1)\n'


def codes(source: str) -> list[tuple[int, str]]:
    return [(v.line, v.code) for v in lint_source(source, "x.py", RULES, CONTRACT)]


def test_notebook_findings_cite_the_cell(tmp_path: Path) -> None:
    path = tmp_path / "train.ipynb"
    cells = [
        {"source": "# Title", "markdown": True},
        "%matplotlib inline\nimport mlflow",
        "!pip install mlflow\nx = 1",
        'with mlflow.start_run():\n    mlflow.log_param("implementation_status", "DONE")',
    ]
    nbformat.write(notebook(cells), path)
    result = lint_file(path, RULES, CONTRACT)
    assert result.error is None
    assert sorted(v.location for v in result.violations) == [
        f"{path}:cell_3:1:6",
        f"{path}:cell_3:2:47",
    ]


def test_notebook_that_is_not_json_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text("{oops")
    result = lint_file(path, RULES, CONTRACT)
    assert result.violations == () and "not a notebook" in (result.error or "")


def test_suppression_must_name_the_rule_and_unused_ones_are_reported() -> None:
    suppressed = BAD_RUN.replace(
        "with mlflow.start_run():", "with mlflow.start_run():  # nb2prod: ignore[NBH101] legacy"
    )
    assert codes(suppressed) == []
    bare = BAD_RUN.replace(
        "with mlflow.start_run():", "with mlflow.start_run():  # nb2prod: ignore"
    )
    assert codes(bare) == [(2, "NBH101")]
    unused = "x = 1  # nb2prod: ignore[NBH102] not needed any more\n"
    assert codes(unused) == [(1, "NBH900")]


def test_syntax_errors_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a_bad.py").write_text("def f(:\n")
    (tmp_path / "b_run.py").write_text(BAD_RUN)
    (tmp_path / "c_binary.py").write_bytes(b"\x00\x01\x02")
    (tmp_path / "d_latin1.py").write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    result = run_cli("lint", tmp_path, "--output-format", "concise")
    assert result.code == 1  # findings win over unreadable files
    lines = result.stdout.strip().splitlines()
    assert any("a_bad.py: error: 1:" in line and "syntax error" in line for line in lines)
    assert any("c_binary.py: error: binary file" in line for line in lines)
    assert any("d_latin1.py: error: not UTF-8" in line for line in lines)
    assert any("b_run.py:2:6: NBH101" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_only_unreadable_files_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("x = (\n")
    result = run_cli("lint", tmp_path)
    assert result.code == 2 and "syntax error" in result.stdout


def test_discovery_respects_gitignore_skips_and_link_loops(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("generated/\n*_skip.py\n")
    for name in ("keep.py", "gone_skip.py", "generated/x.py", ".venv/y.py", "nb/n.ipynb", "t.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n" if not name.endswith(".ipynb") else json.dumps({}))
    os.symlink(tmp_path, tmp_path / "nb" / "loop")
    files, problems = find_files([tmp_path, tmp_path / "missing.py"], exclude=["nb/"])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in files) == ["keep.py"]
    assert [(p.name, why) for p, why in problems] == [("missing.py", "no such file or folder")]


def test_lint_exit_codes(tmp_path: Path) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n")
    assert run_cli("lint", clean).code == 0
    dirty = tmp_path / "dirty.py"
    dirty.write_text(BAD_RUN)
    assert run_cli("lint", dirty).code == 1


def test_rule_docs_from_the_cli() -> None:
    listing = run_cli("rules")
    assert listing.code == 0 and "NBH101" in listing.stdout
    doc = run_cli("rule", "NBH101")
    assert doc.code == 0
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert section in doc.stdout
    unknown = run_cli("rule", "NOPE1")
    assert unknown.code == 2 and "nb2prod rules" in unknown.stderr
