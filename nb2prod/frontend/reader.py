"""Read a notebook file with nbformat and refuse, in one line, anything that is not one.

Notebooks in the wild carry metadata that other tools left behind (extra keys, widget
state, attachments, no kernelspec). Those are accepted: the schema's extra properties are
dropped rather than rejected. What cannot be converted (not JSON, not a notebook, another
language, no code) is refused with the file named and a way forward.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import validator

from nb2prod.errors import InputError

_RESAVE = "re-save it from Jupyter"
_CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


@dataclass(frozen=True)
class CodeCell:
    """A code cell as the rest of the frontend sees it."""

    number: int  # 1-based among code cells, as ruff and nbQA count them
    source: str
    tags: tuple[str, ...]
    execution_count: int | None


@dataclass(frozen=True)
class Notebook:
    """What the frontend needs from a notebook file, detached from nbformat's nodes."""

    path: Path
    nbformat_version: str
    upgraded_from: int | None
    language: str
    kernel: str | None
    metadata: dict[str, Any]
    cells: tuple[CodeCell, ...]
    raw_bytes: bytes


def read_notebook(path: Path) -> Notebook:
    """Load, upgrade and validate `path`; raise InputError for anything unusable."""
    raw = _read_bytes(path)
    data = _parse_json(path, raw)
    node, upgraded_from = _to_v4(path, data)
    metadata = dict(node.get("metadata") or {})
    language, kernel = _kernel_language(metadata)
    if language != "python":
        raise InputError(
            path,
            f"the notebook's kernel language is {language!r}"
            + (f" (kernel {kernel!r})" if kernel else "")
            + "; nb2prod converts Python notebooks only",
            hint="port the notebook to a Python kernel first",
        )
    cells = _code_cells(node)
    if not any(cell.source.strip() for cell in cells):
        raise InputError(
            path, "the notebook has no code", hint="add the notebook's code cells, then retry"
        )
    return Notebook(
        path=path,
        nbformat_version=f"{node.nbformat}.{node.nbformat_minor}",
        upgraded_from=upgraded_from,
        language=language,
        kernel=kernel,
        metadata=metadata,
        cells=cells,
        raw_bytes=raw,
    )


def _read_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise InputError(path, "is a directory, not a notebook", hint="pass a .ipynb file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file", hint="check the path") from None
    except OSError as error:
        raise InputError(path, f"cannot be read: {error.strerror}") from None


def _parse_json(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text, so not a notebook", hint=_RESAVE) from None
    if not text.strip():
        raise InputError(path, "is empty, not a notebook", hint=_RESAVE)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            path,
            f"is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})",
            hint="the file may be truncated; " + _RESAVE,
        ) from None
    except RecursionError:
        raise InputError(path, "is JSON nested too deeply to be a notebook") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise InputError(
            path,
            "is JSON but not a Jupyter notebook (no 'nbformat' key)",
            hint="pass the .ipynb file",
        )
    return data


def _to_v4(path: Path, data: dict[str, Any]) -> tuple[nbformat.NotebookNode, int | None]:
    """Bring any supported version to v4.x, dropping the extra keys the schema forbids."""
    major = data.get("nbformat")
    if major not in (3, 4):
        raise InputError(
            path,
            f"uses nbformat version {major!r}; nb2prod reads versions 3 and 4",
            hint="open and re-save it with a current Jupyter",
        )
    if major == 4:
        _repair_cell_ids(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat's warnings are about what we repair
            node = nbformat.versions[major].to_notebook_json(data)
            if major == 3:
                nbformat.validate(node, version=3, relax_add_props=True)
                node = nbformat.convert(node, 4)
            _, repaired = validator.normalize(
                node, relax_add_props=True, strip_invalid_metadata=True
            )
            node = nbformat.from_dict(repaired)
            nbformat.validate(node, relax_add_props=True)
    except nbformat.ValidationError as error:
        raise InputError(
            path, f"is not a valid notebook: {_schema_error(error)}", hint=_RESAVE
        ) from None
    except Exception as error:  # nbformat raises a zoo of types on malformed structures
        raise InputError(
            path, f"is not a valid notebook ({type(error).__name__}: {error})", hint=_RESAVE
        ) from None
    return node, (3 if major == 3 else None)


def _repair_cell_ids(data: dict[str, Any]) -> None:
    """Give cells valid, unique ids (v4.5+), as Jupyter does on save, instead of refusing."""
    cells = data.get("cells")
    if not isinstance(cells, list) or not isinstance(data.get("nbformat_minor"), int):
        return
    if data["nbformat_minor"] < 5:
        return
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        cell_id = cell.get("id")
        if not (isinstance(cell_id, str) and _CELL_ID.match(cell_id)) or cell_id in seen:
            cell_id = f"nb2prod-{index}"
            cell["id"] = cell_id
        seen.add(cell_id)


def _schema_error(error: nbformat.ValidationError) -> str:
    where = "/".join(str(part) for part in getattr(error, "absolute_path", ()) or ())
    message = str(getattr(error, "message", error)).splitlines()[0]
    return f"{where}: {message}" if where else message


def _kernel_language(metadata: dict[str, Any]) -> tuple[str, str | None]:
    """The language the notebook says it is written in; Python when it says nothing."""
    kernelspec = metadata.get("kernelspec") if isinstance(metadata.get("kernelspec"), dict) else {}
    info = metadata.get("language_info") if isinstance(metadata.get("language_info"), dict) else {}
    kernel = kernelspec.get("name") if isinstance(kernelspec.get("name"), str) else None
    for declared in (info.get("name"), kernelspec.get("language"), metadata.get("language")):
        if isinstance(declared, str) and declared.strip():
            language = declared.strip().lower()
            return ("python" if language.startswith("python") else declared.strip()), kernel
    return "python", kernel


def _code_cells(node: nbformat.NotebookNode) -> tuple[CodeCell, ...]:
    cells = []
    for cell in node.cells:
        if cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        cells.append(
            CodeCell(
                number=len(cells) + 1,
                source=cell.get("source") or "",
                tags=tuple(str(tag) for tag in tags if isinstance(tag, str)),
                execution_count=cell.get("execution_count"),
            )
        )
    return tuple(cells)
