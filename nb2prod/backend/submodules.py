"""Submodules the notebook reaches through its package's attribute, imported by name.

`import tqdm` then `tqdm.notebook.tqdm(...)` works in Jupyter, where something else imported
`tqdm.notebook` first; in a package's training it is an AttributeError. A package does not
import every submodule it has (scikit-learn, tqdm, scipy do not), so a chain such as
`tqdm.notebook.tqdm` read in kept code becomes `import tqdm.notebook` beside the imports when
the installed package, imported in a fresh interpreter, does not have that attribute by itself
(scikit-learn and SciPy load theirs lazily, numpy imports numpy.random: none needed).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys


def submodule_imports(imports: str, sources: list[str]) -> list[str]:
    """`import PKG.SUB` lines the code in `sources` needs beside `imports`."""
    aliases = _plain_imports(imports)
    reached: dict[tuple[str, str], None] = {}
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            chain = _chain(node)
            if len(chain) >= 3 and chain[0] in aliases:
                reached[(aliases[chain[0]], chain[1])] = None
    submodules = [
        (package, name)
        for package, name in reached
        if f"{package}.{name}" not in aliases.values() and _is_submodule(package, name)
    ]
    return [f"import {package}.{name}" for package, name in _not_imported_by_parent(submodules)]


def _plain_imports(imports: str) -> dict[str, str]:
    """`import tqdm` -> {"tqdm": "tqdm"}, `import scipy as sp` -> {"sp": "scipy"}."""
    found = {}
    for statement in ast.parse(imports).body:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    found[alias.asname] = alias.name
                elif "." not in alias.name:
                    found[alias.name] = alias.name
    return found


def _chain(node: ast.AST) -> list[str]:
    """`a.b.c` read as a value (not assigned): ["a", "b", "c"]."""
    names: list[str] = []
    while isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and names:
        return [node.id, *reversed(names)]
    return []


def _is_submodule(package: str, name: str) -> bool:
    try:
        return importlib.util.find_spec(f"{package}.{name}") is not None
    except (ImportError, ValueError):
        return False


def _not_imported_by_parent(submodules: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Those a fresh interpreter does not have once their package is imported: asked of a new
    process, since this one may have imported them for its own reasons (MLflow imports
    tqdm.auto)."""
    if not submodules:
        return []
    probe = "; ".join(
        f"import {package}; print(hasattr({package}, {name!r}))" for package, name in submodules
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    answers = done.stdout.split()
    if done.returncode or len(answers) != len(submodules):
        return []
    return [found for found, had in zip(submodules, answers, strict=True) if had == "False"]
