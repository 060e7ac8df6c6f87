"""`pip install .` (a real wheel, not the editable checkout) gives a working nb2prod."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES, fresh_venv, install_into


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with nb2prod installed from a wheel built from this checkout.

    The venv sees the already installed dependencies (those of the interpreter running the
    tests) so the test needs no network; nb2prod itself comes only from the wheel.
    """
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            dist,
            REPO,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("nb2prod-*.whl")
    python = fresh_venv(root / "venv")
    install_into(python, wheel)
    return root / "venv"


def test_wheel_carries_contract_and_templates(wheel_venv: Path, tmp_path: Path) -> None:
    python = wheel_venv / "bin" / "python"
    probe = (
        "import nb2prod, nb2prod.resources as r; "
        "print(nb2prod.__file__); print(r.contract_path()); print(r.data_dir('templates'))"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    module, contract, templates = done.stdout.split()
    assert str(wheel_venv) in module  # not the checkout
    assert Path(contract).is_file() and "_data" in contract
    assert Path(templates).is_dir() and "_data" in templates


def test_wheel_console_script_plans_a_sample(wheel_venv: Path, tmp_path: Path) -> None:
    script = wheel_venv / "bin" / "nb2prod"
    done = subprocess.run(
        [script, "plan", SAMPLES / "pool_heuristic.ipynb"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "⚠️ HEURISTIC" in done.stdout


def test_wheel_converts_with_the_runtime_it_carries(wheel_venv: Path, tmp_path: Path) -> None:
    """The installed nb2prod builds the runtime wheel from the sources it carries: the same
    bytes as the checkout builds, since the build is reproducible."""
    from nb2prod.backend.runtime_wheel import runtime_wheel

    script = wheel_venv / "bin" / "nb2prod"
    done = subprocess.run(
        [script, "convert", SAMPLES / "pool_heuristic.ipynb", "-o", tmp_path / "pool"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (vendored,) = (tmp_path / "pool" / "vendor").glob("nb2prod_runtime-*.whl")
    assert (tmp_path / "cache").is_dir()  # built by the installed nb2prod, not found cached
    assert vendored.read_bytes() == runtime_wheel().read_bytes()
