"""Find secrets written into cells, report them masked, and keep them out of every output.

A secret in a notebook has usually leaked already (outputs, git history); nb2prod's job is
to say so and to make sure the generated package reads it from the environment instead of
copying it a second time.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

from nb2prod.frontend.facts import CellFacts

_SECRET_NAME = re.compile(
    r"(^|_)(api_?key|apikey|secret(_?key)?|client_?secret|token|access_?token|auth_?token|"
    r"bearer|password|passwd|pwd|credentials?|private_?key|access_?key(_?id)?)$",
    re.IGNORECASE,
)
_TOKEN_PATTERNS = re.compile(
    r"(AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|"
    r"sk-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|"
    r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----)"
)
_PLACEHOLDER = re.compile(r"(your|xxx|<|changeme|example|placeholder|\*\*\*|\.\.\.|todo)", re.I)
_MIN_LENGTH = 6


@dataclass(frozen=True)
class Secret:
    cell: int
    line: int
    col: int
    end_line: int
    end_col: int
    holder: str  # the variable or keyword that held it ('' when only its shape gave it away)
    masked: str
    env_name: str
    value: str = field(repr=False)  # kept only to scrub it from every output; never serialised


def mask(value: str) -> str:
    """Enough to recognise the secret, never enough to use it."""
    return value[:4] + "********" if len(value) > 8 else "********"


def find_secrets(cell: CellFacts) -> list[Secret]:
    found: dict[tuple[int, int], Secret] = {}
    for statement in cell.statements:
        for node in ast.walk(statement):
            for holder, value in _held_strings(node):
                if _looks_secret(holder, value.value):
                    key = (value.lineno, value.col_offset)
                    found.setdefault(key, _secret(cell, value, holder, len(found)))
    for node in (n for s in cell.statements for n in ast.walk(s)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            key = (node.lineno, node.col_offset)
            if key not in found and _TOKEN_PATTERNS.search(node.value):
                found[key] = _secret(cell, node, "", len(found))
    return sorted(found.values(), key=lambda s: (s.line, s.col))


def secrets_in_dropped_lines(cell: CellFacts) -> list[tuple[int, str, str]]:
    """Tokens in lines that never reach Python (shell escapes): (line, masked, value)."""
    hits = []
    for number, text in enumerate(cell.cell.source.splitlines(), start=1):
        if text.lstrip().startswith(("!", "%")):
            hits.extend((number, mask(m[0]), m[0]) for m in _TOKEN_PATTERNS.finditer(text))
    return hits


def scrub(text: str, values: set[str]) -> str:
    """Replace every secret value in a JSON text by its masked form."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(json.dumps(value)[1:-1], mask(value))
    return text


def _held_strings(node: ast.AST):
    """(holder name, string constant) pairs: `x = "..."`, `f(key="...")`, `{"key": "..."}`."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Name | ast.Attribute) and _is_str(node.value):
                yield _name_of(target), node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None and _is_str(node.value):
        yield _name_of(node.target), node.value
    elif isinstance(node, ast.keyword) and node.arg and _is_str(node.value):
        yield node.arg, node.value
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if _is_str(key) and _is_str(value):
                yield key.value, value  # type: ignore[union-attr]


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _name_of(target: ast.AST) -> str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return ""


def _looks_secret(holder: str, value: str) -> bool:
    if not _SECRET_NAME.search(holder) or len(value) < _MIN_LENGTH:
        return False
    return not _PLACEHOLDER.search(value) and " " not in value.strip()


def _secret(cell: CellFacts, node: ast.Constant, holder: str, index: int) -> Secret:
    env = (
        re.sub(r"\W", "_", holder).upper()
        if holder
        else f"NB2PROD_SECRET_{cell.number}_{index + 1}"
    )
    return Secret(
        cell=cell.number,
        line=node.lineno,
        col=node.col_offset,
        end_line=node.end_lineno or node.lineno,
        end_col=node.end_col_offset or node.col_offset,
        holder=holder,
        masked=mask(node.value),
        env_name=env,
        value=node.value,
    )
