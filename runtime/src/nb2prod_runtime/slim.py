"""Shrink a serving image's virtual environment to what the service reads.

The generated Dockerfile runs it in its build stage, after installing with ``--no-compile``::

    python -m nb2prod_runtime.slim /opt/venv --import PKG.serve --import mlflow.sklearn ...

Why each cut is safe in an image that is rebuilt, never upgraded in place:

- pip, setuptools and wheel: nothing installs into the image once it is built;
- the ``tests`` folders inside installed packages (pandas alone ships 18 MB): no library imports
  its own test suite (``numpy.testing`` and the like are ``testing``, and are kept);
- type stubs (``.pyi``): read by type checkers only;
- bytecode: pip compiles every module it installs, which for a random forest's image is about
  170 MB, mostly for code the service never runs (mlflow's server and GenAI, most of scipy).
  Only the modules that importing ``--import`` loads are compiled, so a worker still starts as
  fast as with full compilation; anything else a request reaches later is compiled in memory.

The bytecode is written as unchecked-hash pycs: valid whatever the files' times after a
``COPY --from``, and never rewritten (the image's root is read-only where it runs).
"""

from __future__ import annotations

import argparse
import importlib
import py_compile
import shutil
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALLERS = ("pip", "setuptools", "wheel", "pkg_resources", "_distutils_hack")


@dataclass(frozen=True)
class Slimmed:
    """What was removed and compiled, in bytes and files, for the build log."""

    removed_bytes: int
    compiled_modules: int


def site_packages(venv: Path) -> Path:
    """The venv's purelib folder, as this interpreter lays it out."""
    relative = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return venv / relative


def removable(venv: Path, site: Path) -> Iterable[Path]:
    """The files and folders the service never reads, found before anything is removed."""
    yield from (venv / "bin").glob("pip*")
    for entry in site.iterdir():
        name = entry.name.split("-", 1)[0].lower()
        if name in INSTALLERS or entry.name == "distutils-precedence.pth":
            yield entry
    for package in (p for p in site.iterdir() if p.is_dir()):
        yield from package.rglob("tests")
    yield from site.rglob("*.pyi")
    yield from site.rglob("__pycache__")


def size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def remove(paths: Iterable[Path]) -> int:
    """Remove each path (a folder whole); the bytes freed. Nested ones are counted once."""
    freed = 0
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not path.exists() and not path.is_symlink():
            continue  # inside a folder removed before it
        if path.is_dir() and not path.is_symlink():
            if path.name == "tests" and not any(path.rglob("*.py")):
                continue  # data a library reads, not a test suite
            freed += size(path)
            shutil.rmtree(path)
        else:
            freed += size(path)
            path.unlink()
    return freed


def compile_imported(modules: Sequence[str], site: Path) -> int:
    """Import `modules`, then byte-compile every module of `site` that the imports loaded."""
    for module in modules:
        importlib.import_module(module)
    compiled = 0
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None)
        if not source or not source.endswith(".py"):
            continue
        path = Path(source).resolve()
        if site not in path.parents or not path.is_file():
            continue  # another folder's, or removed above (pip's own, loaded at start-up)
        py_compile.compile(
            str(path),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled += 1
    return compiled


def slim(venv: Path, modules: Sequence[str]) -> Slimmed:
    """Remove what serving never reads from `venv`, then compile what importing `modules` loads."""
    site = site_packages(venv).resolve()
    if not site.is_dir():
        raise FileNotFoundError(f"{venv} has no {site.relative_to(venv.resolve())} folder")
    freed = remove(list(removable(venv, site)))
    return Slimmed(freed, compile_imported(modules, site))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m nb2prod_runtime.slim", description=__doc__.splitlines()[0]
    )
    parser.add_argument("venv", type=Path, help="the virtual environment the image serves from")
    parser.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module the service imports (repeat); what it loads is byte-compiled",
    )
    args = parser.parse_args(argv)
    try:
        done = slim(args.venv, args.modules)
    except (OSError, ImportError) as error:
        print(f"slim: {args.venv}: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(
        f"slim: removed {done.removed_bytes / 2**20:.0f} MB the service never reads; "
        f"compiled the {done.compiled_modules} modules it imports"
    )


if __name__ == "__main__":
    main()
