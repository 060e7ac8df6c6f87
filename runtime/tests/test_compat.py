"""A package refuses to run over a runtime it was not generated for, in one line, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nb2prod_runtime
from nb2prod_runtime.compat import compatible, require_runtime

EXAMPLE = Path(__file__).resolve().parent / "iris_example"


@pytest.mark.parametrize(
    ("installed", "generated_for", "fits"),
    [
        ("0.1.0", "0.1.0", True),
        ("0.1.7", "0.1.0", True),  # a patch release of the same minor
        ("0.2.0", "0.1.0", False),  # while 0.x, a minor may break
        ("0.1.0", "0.2.0", False),
        ("1.4.0", "1.0.0", True),  # from 1.0, the major decides
        ("2.0.0", "1.9.0", False),
    ],
)
def test_the_same_major_and_while_0x_the_same_minor_fit(installed, generated_for, fits) -> None:
    assert compatible(installed, generated_for) is fits


def test_a_mismatch_says_what_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        require_runtime("0.1.0", "serve", installed="0.2.0")
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        "serve: cannot start: nb2prod-runtime 0.2.0 is installed, this package was generated "
        "for 0.1.x: pip install vendor/nb2prod_runtime-0.1.0-py3-none-any.whl\n"
    )


@pytest.fixture(scope="module")
def from_the_future(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package as a future nb2prod would generate it, for runtime 9.0.0."""
    root = tmp_path_factory.mktemp("future")
    package = root / "iris_example"
    shutil.copytree(EXAMPLE, package, ignore=shutil.ignore_patterns("__pycache__"))
    init = package / "__init__.py"
    text = init.read_text()
    assert f'RUNTIME_VERSION = "{nb2prod_runtime.__version__}"' in text
    init.write_text(text.replace(nb2prod_runtime.__version__, "9.0.0"))
    return root


@pytest.mark.parametrize(
    ("module", "program"),
    [("train", "train"), ("promote", "promote"), ("entrypoint", "serve")],
)
def test_train_promote_and_serve_refuse_at_start(from_the_future: Path, module, program) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"iris_example.{module}"],
        cwd=from_the_future,
        env={**os.environ, "PYTHONPATH": str(from_the_future)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"{program}: cannot start: nb2prod-runtime {nb2prod_runtime.__version__} is installed, "
        "this package was generated for 9.x: pip install "
        "vendor/nb2prod_runtime-9.0.0-py3-none-any.whl"
    )


def test_a_package_without_its_runtime_says_what_to_install(tmp_path: Path) -> None:
    """Where the runtime is not installed at all, the package's first import says so (python
    -S: no site-packages, where the runtime is installed)."""
    shutil.copytree(
        EXAMPLE, tmp_path / "iris_example", ignore=shutil.ignore_patterns("__pycache__")
    )
    done = subprocess.run(
        [sys.executable, "-S", "-m", "iris_example.train"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "iris_example: cannot start: nb2prod-runtime is not installed: pip install "
        f"vendor/nb2prod_runtime-{nb2prod_runtime.__version__}-py3-none-any.whl"
    )
