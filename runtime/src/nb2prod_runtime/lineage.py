"""Where a run came from: the exact data, the code version, and the cell behind a failure."""

from __future__ import annotations

import hashlib
import json
import linecache
import re
import subprocess
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_CELL_MARKER = re.compile(r"^\s*# From cell (\d+)\s*$")


def as_loaded(value: Any) -> Any:
    """The loaded data kept as it was loaded while later steps change it in place
    (`df["ratio"] = ...`): a pandas frame or series as a shallow copy, which copy-on-write keeps
    apart from the original. Any other value as it is: copying a CatBoost Pool fails, and a
    shallow copy of an XGBoost DMatrix shares its native handle, which both would free."""
    if isinstance(value, pd.DataFrame | pd.Series):
        return value.copy(deep=False)
    return value


def canonical_bytes(value: Any) -> bytes:
    """The bytes a digest is taken over: CSV for frames, raw buffers for arrays."""
    if isinstance(value, pd.Series):
        value = value.to_frame()
    if isinstance(value, pd.DataFrame):
        return value.to_csv(index=True).encode("utf-8")
    if isinstance(value, np.ndarray):
        header = f"{value.dtype.str}{value.shape}".encode()
        return header + np.ascontiguousarray(value).tobytes()
    if isinstance(value, bytes):
        return value
    return json.dumps(value, sort_keys=True, default=repr).encode("utf-8")


def data_digest(values: Mapping[str, Any]) -> str:
    """SHA-256 over the loaded data, name by name, so any change to any byte shows."""
    digest = hashlib.sha256()
    for name, value in values.items():
        digest.update(name.encode() + b"\0" + canonical_bytes(value) + b"\0")
    return digest.hexdigest()


def dataset(values: Mapping[str, Any], digest: str) -> Any | None:
    """The loaded data as an MLflow dataset input, when MLflow knows its type."""
    import mlflow.data

    for name, value in values.items():
        if isinstance(value, pd.DataFrame):
            return mlflow.data.from_pandas(value, name=name, digest=digest[:32])  # type: ignore[attr-defined]
        if isinstance(value, np.ndarray):
            return mlflow.data.from_numpy(value, name=name, digest=digest[:32])  # type: ignore[attr-defined]
    return None


def code_version(package_dir: Path) -> str:
    """The git commit when the package is in a repository, else a digest of its sources."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=package_dir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=package_dir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return f"git:{commit}" + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        digest = hashlib.sha256()
        for path in sorted(package_dir.rglob("*")):
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
        return f"sha256:{digest.hexdigest()}"


def notebook_cell(error: BaseException, package_dir: Path) -> tuple[int | None, str]:
    """The notebook cell whose code raised `error`, and the package line it is now on."""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        path = Path(frame.filename)
        if path.parent != package_dir or frame.lineno is None:
            continue
        for lineno in range(frame.lineno, 0, -1):
            match = _CELL_MARKER.match(linecache.getline(frame.filename, lineno))
            if match:
                return int(match.group(1)), f"{path.name}:{frame.lineno}"
        return None, f"{path.name}:{frame.lineno}"
    return None, "outside the package"
