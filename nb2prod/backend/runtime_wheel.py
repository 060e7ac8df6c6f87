"""The nb2prod-runtime wheel a generated package carries in `vendor/`, built from the runtime
sources this nb2prod ships.

The runtime is not on a package registry, so each package carries the wheel it was generated
with. The wheel is built once per content of the sources (cached), from a clean copy of them
(no stray `__pycache__` or editor files), with a fixed SOURCE_DATE_EPOCH: the same sources give
the same bytes, so a package re-rendered by a newer nb2prod changes `vendor/` only when the
runtime did.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from nb2prod.errors import InputError
from nb2prod.resources import data_dir

# Any fixed instant would do; it is the one every wheel file carries as its time.
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest a zip file can say
_VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.M)


def _sources(root: Path) -> list[Path]:
    """What goes into the wheel: the build metadata, the README and the library's own files."""
    files = [root / "pyproject.toml", root / "README.md"]
    library = root / "src" / "nb2prod_runtime"
    files += sorted(
        path
        for path in library.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed")
    )
    return files


@cache
def runtime_version(root: Path | None = None) -> str:
    """The runtime's version, read from its sources (not from what happens to be installed)."""
    root = root or data_dir("runtime")
    text = (root / "src" / "nb2prod_runtime" / "__init__.py").read_text(encoding="utf-8")
    match = _VERSION.search(text)
    if match is None:
        raise InputError(root, "has no __version__ in src/nb2prod_runtime/__init__.py")
    return match.group(1)


def wheel_name(version: str) -> str:
    return f"nb2prod_runtime-{version}-py3-none-any.whl"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nb2prod" / "runtime-wheels"


@cache
def runtime_wheel(root: Path | None = None) -> Path:
    """The wheel of the runtime sources under `root` (default: the ones nb2prod ships)."""
    root = root or data_dir("runtime")
    files = _sources(root)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    version = runtime_version(root)
    cached = _cache_root() / digest.hexdigest()[:24] / wheel_name(version)
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nb2prod-runtime-") as scratch:
        source = Path(scratch) / "runtime"
        for path in files:
            target = source / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        out = Path(scratch) / "dist"
        built = subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
            cwd=source,
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
            capture_output=True,
            text=True,
            check=False,
        )
        wheel = out / wheel_name(version)
        if built.returncode != 0 or not wheel.is_file():
            last = (built.stderr or built.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise InputError(root, f"cannot build the runtime wheel: {last[0]}")
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(wheel, partial)
        os.replace(partial, cached)  # another convert building the same wheel is not harmed
    return cached
