"""`[tool.nb2prod.lint]` in pyproject.toml: which rules, which files, which contract.

The nearest `pyproject.toml` at or above the current folder that has a `[tool.nb2prod]`
table is used (ruff likewise skips pyproject files without `[tool.ruff]`, so a sub-package's
own pyproject does not hide the repository's settings); `--config FILE` names one instead.
Paths and globs in it are relative to the folder of that file, the project root. A broken
configuration stops the run with one line, because linting with half a configuration would
report findings the team has switched off, or miss ones it has asked for.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb2prod.errors import InputError
from nb2prod.lint.violation import UNUSED_CODE, FileResult

if TYPE_CHECKING:
    from nb2prod.contract import Contract
    from nb2prod.lint.rule import LintRule

_KEYS = frozenset({"select", "ignore", "per-file-ignores", "exclude", "contract", "cache-dir"})
_CODE = re.compile(r"^[A-Z]+[0-9]*$")


@dataclass(frozen=True)
class LintConfig:
    """The effective lint settings; `root` anchors every relative path and glob."""

    root: Path
    select: tuple[str, ...] = ()  # empty: every rule
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = ()
    contract: Path | None = None  # None: the contract shipped with nb2prod
    cache_dir: Path | None = None
    _specs: dict[tuple[str, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def contract_file(self) -> Path:
        from nb2prod.resources import contract_path

        return self.contract or contract_path()

    def contract_bytes(self) -> bytes:
        """The contract's bytes, for the cache key: read without parsing it (no TOML)."""
        try:
            return self.contract_file.read_bytes()
        except OSError as error:
            raise InputError(
                self.contract_file, f"cannot read the contract ({error.strerror})"
            ) from None

    def load_rules(self) -> tuple[tuple[type[LintRule], ...], Contract]:
        """The selected rules and the contract. Loading rules imports libcst, so this runs
        only when a file must really be linted; a selector that matches no rule is an error
        here (a typo in `select` would otherwise switch the linter off in silence)."""
        from nb2prod.contract import load_contract
        from nb2prod.lint.registry import all_rules, select_rules

        rules = all_rules()
        known = {rule.CODE for rule in rules} | {UNUSED_CODE}
        per_file = [code for _, codes in self.per_file_ignores for code in codes]
        for prefix in (*self.select, *self.ignore, *per_file):
            if prefix != "ALL" and not any(code.startswith(prefix) for code in known):
                raise InputError(prefix, "matches no rule", hint="'nb2prod rules' lists them")
        select = [code for code in self.select if code != "ALL"]
        chosen = select_rules(rules, select or None, list(self.ignore))
        return chosen, load_contract(self.contract_file)

    def keep(self, result: FileResult) -> FileResult:
        """`result` without the findings these settings switch off: per-file ignores, and
        unused-suppression reports when NBH900 is not selected (ruff does so for RUF100)."""
        if not result.violations:
            return result
        off = (*self.ignore, *self.ignored_codes(result.path))
        select = () if "ALL" in self.select else self.select
        kept = tuple(
            v
            for v in result.violations
            if (not select or v.code.startswith(select)) and not v.code.startswith(off)
        )
        return result if len(kept) == len(result.violations) else replace(result, violations=kept)

    def relative(self, path: Path | str) -> str:
        """`path` as a posix path relative to the project root (for glob matching)."""
        full = os.path.abspath(path)
        try:
            return os.path.relpath(full, self.root).replace(os.sep, "/")
        except ValueError:  # another drive on Windows
            return full.replace(os.sep, "/")

    def is_excluded(self, path: Path | str) -> bool:
        return bool(self.exclude) and self._spec(self.exclude).match_file(self.relative(path))

    def ignored_codes(self, path: Path | str) -> tuple[str, ...]:
        """The code prefixes `per-file-ignores` switches off for this file."""
        if not self.per_file_ignores:
            return ()
        where = self.relative(path)
        return tuple(
            code
            for pattern, codes in self.per_file_ignores
            if self._spec((pattern,)).match_file(where)
            for code in codes
        )

    def _spec(self, patterns: tuple[str, ...]) -> Any:
        if patterns not in self._specs:
            import pathspec  # only when a setting needs it

            self._specs[patterns] = pathspec.PathSpec.from_lines("gitwildmatch", patterns)
        return self._specs[patterns]


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` with a `[tool.nb2prod]` table."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _has_section(candidate):
            return candidate
    return None


def _has_section(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if "nb2prod" not in text:  # the common case, without parsing TOML
        return False
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return True  # it means to configure nb2prod: report the broken file, do not skip it
    return isinstance(tool, dict) and isinstance(tool.get("nb2prod"), dict)


def load_config(config_file: Path | None = None, cwd: Path | None = None) -> LintConfig:
    """The settings from `config_file`, else from the nearest pyproject.toml, else defaults."""
    cwd = Path(os.path.abspath(cwd or Path.cwd()))
    path = config_file if config_file is not None else find_pyproject(cwd)
    if path is None:
        return LintConfig(root=cwd)
    path = Path(os.path.abspath(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such configuration file") from None
    except OSError as error:
        raise InputError(path, f"cannot read the configuration ({error.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(path, f"is not valid TOML: {error}") from None
    tool = data.get("tool", {})
    table = tool.get("nb2prod", {}) if isinstance(tool, dict) else None
    table = table.get("lint", {}) if isinstance(table, dict) else None
    if not isinstance(table, dict):
        raise InputError(path, "[tool.nb2prod.lint] must be a table")
    return _parse(table, path)


def _parse(table: dict[str, Any], path: Path) -> LintConfig:
    def fail(message: str) -> InputError:
        return InputError(path, f"[tool.nb2prod.lint] {message}")

    unknown = sorted(set(table) - _KEYS)
    if unknown:
        known = ", ".join(sorted(_KEYS))
        raise fail(f"has an unknown key '{unknown[0]}' (known keys: {known})")

    def strings(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(f"'{key}' must be a list of strings")
        return tuple(value)

    def codes(key: str, value: Any) -> tuple[str, ...]:
        found = tuple(v.strip().upper() for v in strings(key, value))
        for code in found:
            if not _CODE.match(code):
                raise fail(f"'{key}' has '{code}', which is not a rule code or prefix")
        return found

    ignores = table.get("per-file-ignores", {})
    if not isinstance(ignores, dict):
        raise fail("'per-file-ignores' must be a table of glob = [codes]")
    root = path.parent
    contract = table.get("contract")
    if contract is not None and not isinstance(contract, str):
        raise fail("'contract' must be a path (a string)")
    cache_dir = table.get("cache-dir")
    if cache_dir is not None and not isinstance(cache_dir, str):
        raise fail("'cache-dir' must be a path (a string)")
    return LintConfig(
        root=root,
        select=codes("select", table.get("select", [])),
        ignore=codes("ignore", table.get("ignore", [])),
        per_file_ignores=tuple(
            (glob, codes(f"per-file-ignores.{glob}", value)) for glob, value in ignores.items()
        ),
        exclude=strings("exclude", table.get("exclude", [])),
        contract=root / contract if contract else None,
        cache_dir=root / cache_dir if cache_dir else None,
    )


def parse_codes(text: str | None) -> tuple[str, ...] | None:
    """Comma-separated codes from the command line; None when the flag was not given."""
    if text is None:
        return None
    found = tuple(code.strip().upper() for code in text.split(",") if code.strip())
    for code in found:
        if not _CODE.match(code):
            hint = "'nb2prod rules' lists them"
            raise InputError(code, "is not a rule code or prefix", hint=hint)
    return found
