"""Requirements from the notebook's imports and `!pip install` lines, pinned to what is installed.

A generated package must install the libraries the notebook really ran with, so each import
is mapped to its distribution (`sklearn` -> `scikit-learn`) and pinned to the version
installed where nb2prod runs. An explicit pin in the notebook (`!pip install x==1`) wins.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as Spec
from packaging.utils import canonicalize_name

from nb2prod.plan import Finding, LocalModule, Requirement

# Import names whose distribution differs, for when the package is not installed here.
_KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "PyYAML",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "Bio": "biopython",
    "google.protobuf": "protobuf",
    "lgb": "lightgbm",
    "xgb": "xgboost",
    "attr": "attrs",
    "jwt": "PyJWT",
    "OpenSSL": "pyOpenSSL",
    "mpl_toolkits": "matplotlib",
}


@dataclass
class _Entry:
    name: str
    specifier: str
    sources: dict[str, list[int]] = field(default_factory=dict)  # "import numpy" -> cells
    modules: list[str] = field(default_factory=list)


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _installed_version(distribution: str) -> str | None:
    """The installed release, without a local label: `torch 2.13.0+cpu` is pinned as 2.13.0,
    which an index serves (a `+cpu` build exists only on PyTorch's own index)."""
    try:
        return metadata.version(distribution).partition("+")[0]
    except metadata.PackageNotFoundError:
        return None


def resolve_requirements(
    imports: list[tuple[str, int]],
    pip_lines: list[tuple[str, int]],
    notebook_dir: Path,
    written_files: set[str],
) -> tuple[tuple[Requirement, ...], tuple[LocalModule, ...], list[Finding]]:
    """Map (top-level module, cell) imports and (spec, cell) pip lines to pinned requirements."""
    entries: dict[str, _Entry] = {}
    local: dict[str, LocalModule] = {}
    findings: list[Finding] = []
    for module, cell in imports:
        if module in sys.stdlib_module_names or module == "__future__" or module in local:
            continue
        path = _local_path(module, notebook_dir, written_files)
        if path is not None:
            local[module] = LocalModule(module, path, cell)
            continue
        installed = _distributions().get(module)
        distribution = installed[0] if installed else _KNOWN_DISTRIBUTIONS.get(module, module)
        key = canonicalize_name(distribution)
        version = _installed_version(distribution)
        entry = entries.setdefault(key, _Entry(distribution, f"=={version}" if version else ""))
        entry.modules.append(module)
        first_sighting = not entry.sources
        entry.sources.setdefault(f"import {module}", []).append(cell)
        if version is None and first_sighting:
            findings.append(
                Finding(
                    "unpinned-requirement",
                    "warning",
                    f"{module!r} is not installed where nb2prod runs, so {distribution!r} "
                    "cannot be pinned",
                    cell,
                    None,
                    "install the notebook's environment, then run nb2prod again",
                )
            )
    for line, cell in pip_lines:
        _add_pip_requirement(line, cell, entries, findings)
    requirements = tuple(
        Requirement(
            e.name,
            e.specifier,
            "; ".join(f"{what} ({_cells(cells)})" for what, cells in e.sources.items()),
            tuple(dict.fromkeys(e.modules)),
        )
        for e in sorted(entries.values(), key=lambda e: canonicalize_name(e.name))
    )
    return requirements, tuple(local.values()), findings


def _add_pip_requirement(
    line: str, cell: int, entries: dict[str, _Entry], findings: list[Finding]
) -> None:
    try:
        spec = Spec(line)
    except InvalidRequirement:
        findings.append(
            Finding(
                "unreadable-requirement",
                "warning",
                f"cannot read {line[:60]!r} as a requirement; it was left out",
                cell,
                None,
                "add it to the generated package's requirements by hand",
            )
        )
        return
    key = canonicalize_name(spec.name)
    pinned = str(spec.specifier)
    installed = _installed_version(spec.name)
    if pinned and installed and not spec.specifier.contains(installed, prereleases=True):
        findings.append(
            Finding(
                "unsatisfiable-requirement",
                "error",
                f"the notebook installs {spec.name}{pinned}, but {spec.name} {installed} is "
                "installed where nb2prod runs: the package's other pins and the checks of its "
                "calls come from here, so with it they were never installed or run together",
                cell,
                None,
                f"install {spec.name}{pinned} where nb2prod runs and convert again, or drop the "
                "constraint from the notebook",
            )
        )
    entry = entries.get(key)
    if entry is None:
        version = _installed_version(spec.name)
        entry = entries[key] = _Entry(spec.name, pinned or (f"=={version}" if version else ""))
    elif pinned:
        entry.specifier = pinned
    if spec.extras and "[" not in entry.name:
        entry.name = f"{entry.name}[{','.join(sorted(spec.extras))}]"
    entry.sources.setdefault("!pip install", []).append(cell)


def _cells(numbers: list[int]) -> str:
    numbers = sorted(set(numbers))
    if len(numbers) == 1:
        return f"cell {numbers[0]}"
    shown = ", ".join(map(str, numbers[:3]))
    return f"cells {shown}" + (f" and {len(numbers) - 3} more" if len(numbers) > 3 else "")


def _local_path(module: str, notebook_dir: Path, written_files: set[str]) -> str | None:
    """A module that lives beside the notebook (Python imports it before site-packages)."""
    for candidate in (f"{module}.py", f"{module}/__init__.py"):
        if candidate in written_files or (notebook_dir / candidate).is_file():
            return candidate
    return f"{module}/" if (notebook_dir / module).is_dir() else None
