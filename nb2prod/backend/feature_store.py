"""Whether the package keeps its features in a feature store, and what the template needs for it.

The choice comes from `--feature-store`, else the notebook's metadata (`nb2prod.feature_store`),
else `feature-store` under `[tool.nb2prod]` in the nearest pyproject.toml, so a team sets it
once for every notebook of a repository. Feast is the one supported: the package pins the Feast
installed here, and convert refuses when that Feast and the package's own pins cannot be
installed together (Feast 0.67 needs pandas<3), instead of writing a package pip will reject.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nb2prod.errors import InputError
from nb2prod.frontend.feature_honesty import FeatureHonesty, feature_honesty
from nb2prod.frontend.pysyntax import parsed_blocks
from nb2prod.lint.config import find_pyproject
from nb2prod.plan import Plan

FEATURE_STORES = ("feast",)
ROW_KEY = "row_id"
_ID_COLUMN = re.compile(r"^(id|.+_id|.+Id|.+ID)$")


def chosen_feature_store(notebook: Path, flag: str | None) -> str | None:
    """The feature store asked for, or None; an unknown name is an input error."""
    if flag is not None:
        return _known(flag, "--feature-store", notebook)
    declared = _notebook_setting(notebook)
    if declared is not None:
        return _known(declared, "notebook metadata nb2prod.feature_store", notebook)
    pyproject = find_pyproject(notebook.parent.absolute())
    if pyproject is None:
        return None
    try:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["nb2prod"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return None
    value = table.get("feature-store") if isinstance(table, dict) else None
    return None if value is None else _known(value, "[tool.nb2prod] feature-store", pyproject)


def _notebook_setting(notebook: Path) -> Any:
    try:
        document = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # reading the notebook reports it
    settings = document.get("metadata", {}).get("nb2prod") if isinstance(document, dict) else None
    return settings.get("feature_store") if isinstance(settings, dict) else None


def _known(value: Any, source: str, where: Path) -> str | None:
    if value in (None, "none", ""):
        return None
    if value not in FEATURE_STORES:
        raise InputError(
            where,
            f"{source}: unknown feature store {value!r}",
            hint=f"use one of: {', '.join(FEATURE_STORES)} (or none)",
        )
    return str(value)


def feast_requirement(pinned: list[str], where: Path) -> str:
    """`feast==X`, the Feast installed here, checked against the package's other pins."""
    try:
        version = metadata.version("feast")
    except metadata.PackageNotFoundError:
        raise InputError(
            where,
            "--feature-store feast: Feast is not installed where nb2prod runs, so the package "
            "cannot pin a Feast that works with its other pins",
            hint="pip install feast, then convert again",
        ) from None
    pins = {}
    for text in pinned:
        requirement = Requirement(text)
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        if exact:
            pins[canonicalize_name(requirement.name)] = exact[0]
    for text in metadata.requires("feast") or []:
        try:
            needed = Requirement(text)
        except InvalidRequirement:
            continue
        if needed.marker is not None and not needed.marker.evaluate({"extra": ""}):
            continue
        have = pins.get(canonicalize_name(needed.name))
        if have is not None and not needed.specifier.contains(have, prereleases=True):
            raise InputError(
                where,
                f"--feature-store feast: Feast {version} needs {needed.name}{needed.specifier}, "
                f"but the package pins {needed.name}=={have} (the version installed here)",
                hint=f"convert from an environment where Feast {version} is installed with "
                "its own dependencies (pip install feast), so the pins agree",
            )
    return f"feast=={version}"


def feature_store_context(plan: Plan, store_step: str, package: str) -> dict[str, Any]:
    """What definitions.py and feature_store.py are rendered from."""
    step = next(s for s in plan.steps if s.name == store_step)
    honesty = feature_honesty(step, plan)
    if step.role == "features":
        origin = f"the notebook's feature step {step.name} ({_cells(step)})"
    elif step.role == "load":
        origin = f"the data the notebook loads ({_cells(step)})"
        honesty = FeatureHonesty(
            implementation_status=honesty.implementation_status,
            validation=honesty.validation,
            reason=f"the notebook's columns as loaded ({_cells(step)}), with no feature code "
            "of their own",
        )
    else:
        origin = f"the code that computes the model's input with its fit ({_cells(step)})"
    key = id_column(plan)
    if key is None:
        entity = {
            "name": "row",
            "join_key": ROW_KEY,
            "from_notebook": False,
            "description": "A row of the notebook's data. The notebook has no id column, so "
            "the pipeline adds this key: the row's label in the data it loads, or its "
            "position where the model's input has no labels.",
        }
    else:
        entity = {
            "name": _entity_name(key),
            "join_key": key,
            "from_notebook": True,
            "description": f"The notebook's own id column, {key}.",
        }
    entity["description_literal"] = _literal(entity["description"])
    view = {
        "name": step.name,
        "cells": [block.cell for block in step.blocks],
        "origin_literal": _literal(f"Written by training from {origin}."),
        "description_literal": _literal(f"The model's input, from {origin}."),
        "implementation_status": honesty.implementation_status,
        "implementation_status_literal": _literal(honesty.implementation_status),
        "validation_method_literal": _literal(honesty.validation),
        "reason_literal": _literal(honesty.reason),
    }
    return {"kind": "feast", "entity": entity, "view": view, "service": package}


def id_column(plan: Plan) -> str | None:
    """The notebook's id column, when its kept code names one: the index it sets
    (`set_index("customer_id")`, `index_col="customer_id"`), or an id-like column it drops
    from the model's input (`drop(columns=["customer_id", ...])`)."""
    dropped = None
    steps = [s for s in plan.steps if s.role in ("load", "features")]
    for _, tree in parsed_blocks(steps):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name == "set_index" and node.args and _string(node.args[0]):
                return _string(node.args[0])
            index_col = next((k.value for k in node.keywords if k.arg == "index_col"), None)
            if index_col is not None and _string(index_col):
                return _string(index_col)
            if name == "drop" and dropped is None:
                dropped = next((c for c in _dropped(node) if _ID_COLUMN.match(c)), None)
    return dropped


def _dropped(call: ast.Call) -> list[str]:
    given = [k.value for k in call.keywords if k.arg == "columns"] or call.args[:1]
    names: list[str] = []
    for value in given:
        items = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
        names.extend(s for s in map(_string, items) if s)
    return names


def _string(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
        return node.value
    return None


def _entity_name(key: str) -> str:
    for suffix in ("_id", "Id", "ID", "_key"):
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)].lower()
    return f"{key}_entity" if key == "id" else key


def _cells(step: Any) -> str:
    cells = [str(block.cell) for block in step.blocks]
    return f"cell{'s' if len(cells) > 1 else ''} {', '.join(cells)}"


def _literal(text: str) -> str:
    """A Python string literal for the text, whatever quotes or backslashes it holds."""
    return json.dumps(text, ensure_ascii=False)
