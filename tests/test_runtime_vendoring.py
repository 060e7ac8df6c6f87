"""The runtime wheel a package carries: built reproducibly by convert, installed from vendor/
by `pip install .` and `pip install -e .` where only the package registries are reachable."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import TRAINING_CELLS, fresh_venv, notebook

from nb2prod.backend.render import convert
from nb2prod.backend.runtime_wheel import runtime_version, runtime_wheel, wheel_name
from nb2prod.resources import data_dir

OFFLINE = ("--no-index", "--no-build-isolation")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("vendoring")
    nbformat.write(notebook(TRAINING_CELLS), folder / "iris_vendored.ipynb")
    return convert(folder / "iris_vendored.ipynb", folder / "iris_vendored").target


def test_the_package_carries_the_wheel_of_the_runtime_it_names(package: Path) -> None:
    version = runtime_version()
    vendored = package / "vendor" / wheel_name(version)
    assert [p.name for p in (package / "vendor").iterdir()] == [vendored.name]
    assert (
        f'RUNTIME_VERSION = "{version}"' in (package / "iris_vendored" / "__init__.py").read_text()
    )
    for requirements in ("requirements.txt", "requirements-serve.txt"):
        assert f"./vendor/{vendored.name}" in (package / requirements).read_text().splitlines()
    pyproject = (package / "pyproject.toml").read_text()
    assert f'"nb2prod-runtime @ {{root:uri}}/vendor/{vendored.name}"' in pyproject
    dockerfile = (package / "Dockerfile").read_text()
    assert "COPY vendor/ ./vendor/" in dockerfile
    assert dockerfile.index("COPY vendor/") < dockerfile.index("-r requirements-serve.txt")
    with zipfile.ZipFile(vendored) as wheel:
        names = wheel.namelist()
    assert "nb2prod_runtime/serving.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_the_same_sources_build_the_same_bytes(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh build (another cache, another time) gives the bytes the package carries."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runtime_wheel.cache_clear()
    try:
        rebuilt = runtime_wheel()
    finally:
        runtime_wheel.cache_clear()
    assert rebuilt.is_relative_to(tmp_path)
    assert sha256(rebuilt) == sha256(package / "vendor" / rebuilt.name)


def test_a_changed_source_builds_another_wheel(tmp_path: Path, monkeypatch) -> None:
    """The cache is keyed on the sources' content, so an edited runtime is rebuilt."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source = tmp_path / "runtime"
    original = data_dir("runtime")
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes((original / name).read_bytes())
    library = source / "src" / "nb2prod_runtime"
    library.mkdir(parents=True)
    for path in (original / "src" / "nb2prod_runtime").glob("*.py"):
        (library / path.name).write_bytes(path.read_bytes())
    first = sha256(runtime_wheel(source))
    (library / "tracking.py").write_text((library / "tracking.py").read_text() + "\n# edited\n")
    runtime_wheel.cache_clear()
    assert sha256(runtime_wheel(source)) != first
    runtime_wheel.cache_clear()


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_pip_installs_the_runtime_from_vendor(package: Path, tmp_path: Path, editable) -> None:
    """Offline (no index): the only nb2prod-runtime pip can find is the vendored wheel."""
    python = fresh_venv(tmp_path / "venv")
    target = ["-e", str(package)] if editable else [str(package)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            *OFFLINE,
            *target,
        ],
        check=True,
        capture_output=True,
    )
    where = subprocess.run(
        [python, "-c", "import nb2prod_runtime; print(nb2prod_runtime.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    done = subprocess.run(
        [python, "-m", "iris_vendored.train", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "--cross-validation-folds" in done.stdout


def test_the_image_installs_mlflows_client_in_place_of_the_full_mlflow(package: Path) -> None:
    """The service reads its model from a tracking server: the image needs MLflow's client
    (mlflow-skinny) at the version training used, and otherwise the same pins."""

    def pins(name: str) -> list[str]:
        lines = (package / name).read_text().splitlines()
        return [line for line in lines if line and not line.startswith("#")]

    trained, served = pins("requirements.txt"), pins("requirements-serve.txt")
    (mlflow,) = [line for line in trained if line.startswith("mlflow==")]
    assert f"mlflow-skinny=={mlflow.removeprefix('mlflow==')}" in served
    assert not [line for line in served if line.startswith("mlflow==")]
    assert sorted(set(trained) - {mlflow}) == sorted(set(served) - {f"mlflow-skinny{mlflow[6:]}"})
