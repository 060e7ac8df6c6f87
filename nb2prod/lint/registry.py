"""Load the rules: one module per rule under the `rules/` folder, beside the contract.

Rules live with the contract because they are driven by it; a team that forks the contract
can read, fork and add rules in the same place.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path

from nb2prod.lint.rule import LintRule
from nb2prod.resources import data_dir

_PACKAGE = "nb2prod_rules"


@cache
def all_rules(folder: Path | None = None) -> tuple[type[LintRule], ...]:
    """Every rule class in the rules folder, sorted by code."""
    folder = folder or data_dir("rules")
    found: dict[str, type[LintRule]] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _load(path)
        for value in vars(module).values():
            defined_here = getattr(value, "__module__", None) == module.__name__
            if isinstance(value, type) and issubclass(value, LintRule) and defined_here:
                found[value.CODE] = value
    return tuple(found[code] for code in sorted(found))


def rules_folder(rules: tuple[type[LintRule], ...] | list[type[LintRule]]) -> Path:
    """The folder the given rules were loaded from (the default one when there are none)."""
    for rule in rules:
        module = sys.modules.get(rule.__module__)
        if module is not None and getattr(module, "__file__", None):
            return Path(module.__file__).parent
    return data_dir("rules")


def _load(path: Path):
    name = f"{_PACKAGE}.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def select_rules(
    rules: tuple[type[LintRule], ...], select: list[str] | None, ignore: list[str]
) -> tuple[type[LintRule], ...]:
    """Rules whose code starts with a selected prefix and with no ignored prefix."""

    def chosen(rule: type[LintRule]) -> bool:
        selected = not select or any(rule.CODE.startswith(prefix) for prefix in select)
        return selected and not any(rule.CODE.startswith(prefix) for prefix in ignore)

    return tuple(rule for rule in rules if chosen(rule))
