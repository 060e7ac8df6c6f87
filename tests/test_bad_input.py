"""Bad input: exit code 2, one line on stderr naming the file (and cell), no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import TRAINING_CELLS, notebook, run_cli


def assert_refused(path: Path, *expected: str) -> str:
    result = run_cli("plan", path)
    assert result.code == 2, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert str(path) in lines[0]
    for text in expected:
        assert text in lines[0]
    return lines[0]


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "notes.ipynb"
    path.write_text("this is not json")
    assert_refused(path, "is not valid JSON", "line 1")


def test_truncated_json(tmp_path: Path) -> None:
    path = tmp_path / "cut.ipynb"
    path.write_text(nbformat.writes(notebook(TRAINING_CELLS))[:300])
    assert_refused(path, "is not valid JSON", "truncated")


def test_json_that_is_not_a_notebook(tmp_path: Path) -> None:
    path = tmp_path / "config.ipynb"
    path.write_text(json.dumps({"name": "x", "cells": 3}))
    assert_refused(path, "not a Jupyter notebook")


def test_invalid_notebook_structure(tmp_path: Path) -> None:
    data = json.loads(nbformat.writes(notebook(TRAINING_CELLS)))
    data["cells"][0]["source"] = 42
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(data))
    assert_refused(path, "is not a valid notebook")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "image.ipynb"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert_refused(path, "not UTF-8")


def test_non_python_kernel_names_the_language(write_notebook) -> None:
    path = write_notebook(
        ["library(ggplot2)"],
        metadata={
            "kernelspec": {"name": "ir", "display_name": "R", "language": "R"},
            "language_info": {"name": "R"},
        },
    )
    assert_refused(path, "'R'", "kernel 'ir'", "Python notebooks only")


def test_empty_notebook(write_notebook) -> None:
    assert_refused(write_notebook([{"source": "# Title", "markdown": True}]), "has no code")


def test_no_training_code(write_notebook) -> None:
    path = write_notebook(["import pandas as pd", "df = pd.DataFrame({'a': [1, 2]})", "df.head()"])
    assert_refused(path, "no training code", "nb2prod:train")


def test_syntax_error_cites_cell_and_line(write_notebook) -> None:
    path = write_notebook(["import numpy as np", "x = 1\ny = (2,\nz = 3"])
    line = assert_refused(path, "cell 2, line", "syntax error")
    assert "tag it 'skip'" in line


def test_missing_file(tmp_path: Path) -> None:
    assert_refused(tmp_path / "nope.ipynb", "no such file")


def test_directory(tmp_path: Path) -> None:
    assert_refused(tmp_path, "is a directory")


def test_undefined_name_cites_the_cell(write_notebook) -> None:
    cells = [*TRAINING_CELLS[:3], "model = LogisticRegression()\nmodel.fit(features, y_train)"]
    line = assert_refused(write_notebook(cells), "cell 4", "'features'", "never defined")
    assert "define or import it" in line


def test_name_defined_only_by_dropped_code(write_notebook) -> None:
    cells = [
        "import matplotlib.pyplot as plt\nfrom sklearn.linear_model import LinearRegression",
        "fig, ax = plt.subplots()",
        {"source": "X = [[1], [2]]\ny = [1, 2]", "tags": ["skip"]},
        "model = LinearRegression()\nmodel.fit(X, y)",
    ]
    assert_refused(write_notebook(cells), "cell 4", "'X' is defined only in cell 3")


def test_unknown_role_in_directive(write_notebook) -> None:
    cells = [*TRAINING_CELLS[:3], "# nb2prod: trian\n" + TRAINING_CELLS[3]]
    assert_refused(write_notebook(cells), "cell 4", "unknown nb2prod role 'trian'")


def test_unknown_declared_status(write_notebook) -> None:
    path = write_notebook(
        TRAINING_CELLS,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "nb2prod": {"implementation_status": "DONE"},
        },
    )
    assert_refused(path, "unknown implementation_status 'DONE'")


def test_unsupported_nbformat_version(tmp_path: Path) -> None:
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({"nbformat": 2, "worksheets": []}))
    assert_refused(path, "nbformat version 2")


@pytest.mark.parametrize("args", [["plan"], ["plan", "a.ipynb", "--bogus"], ["frobnicate"]])
def test_usage_errors_are_one_line(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--help" in result.stderr
