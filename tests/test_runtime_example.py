"""runtime/tests drives the runtime through iris_example, a package nb2prod generates from a
five-cell iris notebook. It is kept in the repository so the runtime's tests need no compiler;
this test keeps it what nb2prod renders today, so the runtime is never tested against a package
no convert would write."""

from __future__ import annotations

from pathlib import Path

import nbformat
from conftest import REPO, TRAINING_CELLS, notebook

from nb2prod.backend.render import convert

EXAMPLE = REPO / "runtime" / "tests" / "iris_example"


def test_the_runtimes_example_package_is_what_nb2prod_renders(tmp_path: Path) -> None:
    source = tmp_path / "iris_example.ipynb"
    nbformat.write(notebook(TRAINING_CELLS), source)
    rendered = convert(source, tmp_path / "out").target / "iris_example"
    kept = sorted(p.name for p in EXAMPLE.iterdir() if p.is_file())
    assert kept == sorted(p.name for p in rendered.iterdir() if p.is_file())
    # The code, not the data files: runtime.json pins the libraries installed where it renders.
    for name in (n for n in kept if n.endswith(".py")):
        assert (EXAMPLE / name).read_text() == (rendered / name).read_text(), (
            f"runtime/tests/iris_example/{name} differs from the render: convert the notebook "
            "again and copy the package's files over"
        )
