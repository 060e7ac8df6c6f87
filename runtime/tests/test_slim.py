"""`python -m nb2prod_runtime.slim` on a real virtual environment, run by its own Python, as
the generated Dockerfile runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

SOURCES = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    root = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    relative = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    site = root / relative
    files = {
        "served/__init__.py": "",
        "served/core.py": "from served import helper\nVALUE = helper.VALUE\n",
        "served/helper.py": "VALUE = 42\n",
        "served/never_imported.py": "VALUE = 0\n",
        "served/core.pyi": "VALUE: int\n",
        "served/tests/__init__.py": "",
        "served/tests/test_core.py": "def test_value(): ...\n",
        "served/sub/tests/test_deep.py": "",
        "served/datasets/tests/expected.csv": "a,b\n1,2\n",  # data a library reads: kept
        "pip/__init__.py": "",
        "pip-26.0.dist-info/METADATA": "Name: pip\n",
        "setuptools/__init__.py": "",
        "served/__pycache__/stale.pyc": "",
    }
    for name, text in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "bin" / "pip").write_text("#!/bin/sh\n")
    return root


def slim(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SOURCES)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "nb2prod_runtime.slim", str(venv), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def site_of(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3*/site-packages")
    return site


def test_what_serving_never_reads_goes_and_what_it_imports_is_compiled(venv: Path) -> None:
    done = slim(venv, "--import", "served.core")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("slim: removed "), done.stdout
    site = site_of(venv)
    left = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()}
    assert not any(name.startswith(("pip", "setuptools")) for name in left), left
    assert not any("/tests/test_" in name or name.endswith(".pyi") for name in left), left
    assert "served/datasets/tests/expected.csv" in left
    assert not (venv / "bin" / "pip").exists()
    compiled = {name for name in left if name.endswith(".pyc")}
    tag = sys.implementation.cache_tag
    assert compiled == {f"served/__pycache__/{m}.{tag}.pyc" for m in ("__init__", "core", "helper")}
    # Unchecked-hash pycs (PEP 552 flags 0b01): valid whatever the files' times in the image.
    header = (site / f"served/__pycache__/core.{tag}.pyc").read_bytes()[4:8]
    assert int.from_bytes(header, "little") == 0b01
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import served.core; print(served.core.VALUE)"],
        capture_output=True,
        text=True,
    )
    assert imported.stdout.strip() == "42", imported.stderr


def test_a_module_that_does_not_import_fails_the_build_in_one_line(venv: Path) -> None:
    done = slim(venv, "--import", "served.missing")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"slim: {venv}: ModuleNotFoundError: No module named 'served.missing'"
    ]
