"""What made a package, kept in the package: `.nb2prod/`.

`record.json` says which nb2prod made the package, from which notebook (path and sha256) and
with which options, and lists every file it wrote with the sha256 of the bytes it wrote.
`plan.json` is the Plan the package was rendered from. `base/` keeps the text of every file as
rendered, stored by its sha256 as git stores objects (no `.py` suffix, so no linter, test
runner or import sees a second copy of the package).

That render is the base of `nb2prod update`'s three-way merge: it is kept, never re-rendered
from an old template (copier's history shows an old render cannot be reproduced reliably).
The sha256 of each file tells what the user edited, so nothing nb2prod did not write, and
nothing the user changed, is ever removed without a word.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2prod import __version__
from nb2prod.errors import InputError

RECORD_DIR = ".nb2prod"
RECORD_FILE = "record.json"
PLAN_FILE = "plan.json"
BASE_DIR = "base"
FORMAT = 1
# Folders nb2prod never writes into and never reads as part of a package's files.
NOT_RENDERED = frozenset({RECORD_DIR, ".git"})


@dataclass(frozen=True)
class ConvertOptions:
    """The options a package was converted with, as given (None: not given), so `update`
    resolves them again with the same precedence (a flag, then the notebook's metadata)."""

    status: str | None = None
    model: str | None = None
    feature_store: str | None = None
    template: str | None = None  # a team's fork, as a path from the package's folder

    def to_dict(self) -> dict[str, str | None]:
        return {
            "status": self.status,
            "model": self.model,
            "feature_store": self.feature_store,
            "template": self.template,
        }


@dataclass(frozen=True)
class PackageRecord:
    """A package's `.nb2prod/record.json`, read back and checked."""

    nb2prod_version: str
    package_name: str
    notebook_path: str  # from the package's folder, or absolute when no relative path exists
    notebook_sha256: str
    options: ConvertOptions
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of the rendered bytes
    runtime_version: str | None = None

    def notebook(self, package: Path) -> Path:
        """The notebook the package was made from, wherever the package is now."""
        return (package / self.notebook_path).resolve()

    def template(self, package: Path) -> Path | None:
        return (package / self.options.template).resolve() if self.options.template else None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_text(data: bytes) -> bool:
    """Text nb2prod can merge line by line: UTF-8 without NUL bytes."""
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def rendered_files(root: Path) -> list[str]:
    """Every file of a render (or a package), relative and in POSIX form, outside `.nb2prod/`
    and `.git/`."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (Path(folder) == root and d in NOT_RENDERED))
        found += [Path(folder, name).relative_to(root).as_posix() for name in files]
    return sorted(found)


def relative_to_package(path: Path, package: Path) -> str:
    """`path` as the record keeps it: from the package's folder, so the two can move together."""
    try:
        return Path(os.path.relpath(path.resolve(), package.resolve())).as_posix()
    except ValueError:  # another drive
        return str(path.resolve())


def write_record(
    render: Path,
    package: Path,
    *,
    notebook: Path,
    notebook_sha256: str,
    plan_json: str,
    options: ConvertOptions,
    runtime_version: str | None = None,
) -> None:
    """Record the render in `render/.nb2prod/`, as it will sit at `package` once in place."""
    folder = render / RECORD_DIR
    (folder / BASE_DIR).mkdir(parents=True, exist_ok=True)
    files = {}
    for name in rendered_files(render):
        data = (render / name).read_bytes()
        files[name] = digest = sha256(data)
        if is_text(data):
            (folder / BASE_DIR / digest).write_bytes(data)
    record = {
        "format": FORMAT,
        "nb2prod_version": __version__,
        "runtime_version": runtime_version,
        "package_name": json.loads(plan_json)["package_name"],
        "notebook": {
            "path": relative_to_package(notebook, package),
            "sha256": notebook_sha256,
        },
        "options": options.to_dict(),
        "files": files,
    }
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (folder / PLAN_FILE).write_text(plan_json + "\n", encoding="utf-8")
    (folder / ".gitattributes").write_text(
        "# the render nb2prod update merges from: never merged or diffed as text by git\n"
        "base/* -diff -merge linguist-generated\n",
        encoding="utf-8",
    )


def has_record(package: Path) -> bool:
    return (package / RECORD_DIR / RECORD_FILE).is_file()


def read_record(package: Path) -> PackageRecord:
    """The package's record, or one line saying why there is none to trust."""
    path = package / RECORD_DIR / RECORD_FILE
    if not path.is_file():
        raise InputError(
            package,
            f"is not a package made by nb2prod (no {RECORD_DIR}/{RECORD_FILE}; packages made "
            "before nb2prod 0.2.0 have none)",
            hint="pass the folder nb2prod convert wrote, or convert the notebook again into a "
            "new folder and move your edits over",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _parse(data)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(
            path,
            f"is not a record nb2prod can read ({reason})",
            hint=f"restore it from version control (git checkout -- {RECORD_DIR}), or convert "
            "the notebook again into a new folder",
        ) from None


def _parse(data: Any) -> PackageRecord:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"format is {data.get('format')!r}, not {FORMAT}")
    notebook, options, files = data["notebook"], data["options"], data["files"]
    texts = [data["nb2prod_version"], data["package_name"], notebook["path"], notebook["sha256"]]
    if not all(isinstance(text, str) and text for text in texts):
        raise ValueError("nb2prod_version, package_name and notebook must be non-empty strings")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in files.items()
    ):
        raise ValueError("files must map each path to its sha256")
    if any(Path(name).is_absolute() or ".." in Path(name).parts for name in files):
        raise ValueError("files must stay inside the package")
    if not data["package_name"].isidentifier():
        raise ValueError("package_name is not a Python identifier")
    known = set(ConvertOptions().to_dict())
    if not isinstance(options, dict) or not set(options) <= known:
        raise ValueError(f"options must be among {sorted(known)}")
    if not all(value is None or isinstance(value, str) for value in options.values()):
        raise ValueError("each option is a string or null")
    runtime = data.get("runtime_version")
    return PackageRecord(
        nb2prod_version=data["nb2prod_version"],
        package_name=data["package_name"],
        notebook_path=notebook["path"],
        notebook_sha256=notebook["sha256"],
        options=ConvertOptions(**options),
        files=dict(files),
        runtime_version=runtime if isinstance(runtime, str) else None,
    )


def base_text(package: Path, digest: str) -> bytes | None:
    """The recorded render of a file by its sha256; None for a binary file (not kept) or a
    base that went missing."""
    path = package / RECORD_DIR / BASE_DIR / digest
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if sha256(data) == digest else None


def edited_files(package: Path, record: PackageRecord) -> list[str]:
    """The recorded files the user changed or deleted since nb2prod wrote them."""
    edited = []
    for name, digest in record.files.items():
        path = package / name
        if not path.is_file() or file_sha256(path) != digest:
            edited.append(name)
    return edited
