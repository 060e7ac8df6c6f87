"""Notebooks other tools left odd are read; old ones are upgraded."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from conftest import TRAINING_CELLS, notebook

from nb2prod.frontend.planner import build_plan
from nb2prod.frontend.reader import read_notebook


def test_odd_metadata_is_accepted(tmp_path: Path) -> None:
    data = json.loads(nbformat.writes(notebook(TRAINING_CELLS, metadata={})))  # no kernelspec
    data["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    data["metadata"]["colab"] = {"provenance": []}
    data["cells"][0]["id"] = "not a valid id !"  # invalid ids are repaired, not refused
    data["cells"][1]["extra_key"] = "left by another tool"
    data["cells"].insert(0, {"cell_type": "raw", "metadata": {}, "source": "raw text"})
    data["cells"].insert(
        0,
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": "![x](attachment:x.png)",
            "attachments": {"x.png": {"image/png": "iVBORw0KGgo="}},
        },
    )
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps(data))
    plan = build_plan(path)
    assert plan.notebook.code_cells == len(TRAINING_CELLS)
    assert plan.model.name == "model"


def test_v3_notebook_is_upgraded(tmp_path: Path) -> None:
    cells = [
        {"cell_type": "code", "input": source, "language": "python", "outputs": [], "metadata": {}}
        for source in TRAINING_CELLS
    ]
    data = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [{"cells": cells, "metadata": {}}],
    }
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(data))
    notebook_read = read_notebook(path)
    assert notebook_read.upgraded_from == 3
    assert notebook_read.nbformat_version.startswith("4.")
    assert build_plan(path).model.name == "model"


def test_code_cells_are_numbered_among_code_cells(write_notebook) -> None:
    cells = [{"source": "# Intro", "markdown": True}, *TRAINING_CELLS]
    assert [c.number for c in read_notebook(write_notebook(cells)).cells] == [1, 2, 3, 4, 5]


def test_bom_and_list_sources_are_read(tmp_path: Path) -> None:
    data = json.loads(nbformat.writes(notebook(TRAINING_CELLS)))
    for cell in data["cells"]:
        source = cell["source"]
        cell["source"] = source.splitlines(keepends=True) if isinstance(source, str) else source
    path = tmp_path / "bom.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())
    assert read_notebook(path).cells[3].source == TRAINING_CELLS[3]
