"""A cache that makes a re-run on unchanged files nearly free, as ruff's does.

One JSON file per run key holds `{absolute path: [sha256 of the file's bytes, error,
violations]}`. The run key covers everything else a result depends on: the nb2prod version
and code, the rule modules, the contract's bytes and the selected/ignored codes. A run whose
files all hit never loads the rules, so it never imports libcst (about 100 ms on its own):
the check is hashing bytes and reading one JSON file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb2prod import __version__
from nb2prod.lint.violation import FileResult, Violation

if TYPE_CHECKING:
    from nb2prod.contract import Contract
    from nb2prod.lint.rule import LintRule

CACHE_DIR_NAME = ".nb2prod_cache"
_FORMAT = 1  # bump when the entry layout changes
_STALE_AFTER = 30 * 24 * 3600  # cache files of other run keys unused this long are removed
_NB2PROD_DIR = Path(__file__).resolve().parents[1]

Entry = list[Any]  # [digest, error | None, [[line, col, end_line, end_col, code, name, msg, cell]]]
RuleLoader = Callable[[], "tuple[Sequence[type[LintRule]], Contract]"]


def run_key(
    rules_dir: Path, contract_bytes: bytes, select: Sequence[str], ignore: Sequence[str]
) -> str:
    """What, besides a file's bytes, decides its result. nb2prod's own sources are hashed
    too (40 small files, about 1 ms), so an editable install never serves stale results."""
    digest = hashlib.sha256(f"{_FORMAT}\0{__version__}\0".encode())
    for folder in (_NB2PROD_DIR, rules_dir):
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    digest.update(b"\0contract\0" + contract_bytes)
    digest.update(json.dumps([list(select), list(ignore)]).encode())
    return digest.hexdigest()


class LintCache:
    """The entries of one run key, read at start and written back once if anything changed."""

    SAY_UNWRITABLE = True  # `nb2prod lint` warns once when it cannot write its cache

    def __init__(self, folder: Path, key: str) -> None:
        self.folder = folder
        self.file = folder / f"lint-{key[:32]}.json"
        self.entries: dict[str, Entry] = self._read()
        self.changed = False

    def _read(self) -> dict[str, Entry]:
        try:
            data = json.loads(self.file.read_bytes())
        except (OSError, ValueError):
            return {}  # missing or corrupt: start afresh
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            return {}
        files = data.get("files")
        return files if isinstance(files, dict) else {}

    def get(self, key: str, digest: str) -> Entry | None:
        entry = self.entries.get(key)
        return entry if isinstance(entry, list) and entry and entry[0] == digest else None

    def put(self, key: str, digest: str, result: FileResult) -> None:
        self.entries[key] = encode(digest, result)
        self.changed = True

    def save(self) -> None:
        """Write atomically; entries of deleted files and stale run keys are dropped here."""
        if not self.changed:
            return
        import tempfile  # only when writing

        entries = self._kept()
        text = json.dumps({"format": _FORMAT, "files": entries}, separators=(",", ":"))
        temporary = None
        try:
            self._prepare()
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)  # one write: json.dump's many small ones cost 3x more
            os.chmod(temporary, 0o644)  # mkstemp makes it private; a cache is not a secret
            os.replace(temporary, self.file)
        except OSError as error:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            if not self.SAY_UNWRITABLE:
                return
            print(
                f"nb2prod lint: warning: cannot write the cache in {self.folder} "
                f"({error.strerror or error}); use --no-cache or --cache-dir",
                file=sys.stderr,
            )
            return
        self._prune()

    def _kept(self) -> dict[str, Entry]:
        """What is written back: the entries of files that still exist."""
        return {path: entry for path, entry in self.entries.items() if os.path.exists(path)}

    def _prepare(self) -> None:
        if self.folder.is_dir():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / ".gitignore").write_text("# Created by nb2prod.\n*\n", encoding="utf-8")
        (self.folder / "CACHEDIR.TAG").write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by nb2prod.\n",
            encoding="utf-8",
        )

    def _prune(self) -> None:
        cutoff = time.time() - _STALE_AFTER
        for other in self.folder.glob("lint-*.json"):
            with contextlib.suppress(OSError):
                if other != self.file and other.stat().st_mtime < cutoff:
                    other.unlink()


class RenderCache(LintCache):
    """Results keyed by a file's place in its package and its bytes, wherever the package lies.

    convert lints each render in a new temporary folder before moving it into place, so the
    paths never repeat; the files do, whenever the same notebook is converted again (or
    updated). Kept in the user's cache folder, the most recent LIMIT entries.
    """

    LIMIT = 2000
    SAY_UNWRITABLE = False  # a render is checked whether or not it can be remembered

    @classmethod
    def for_run(cls, key: str) -> RenderCache | None:
        from nb2prod.resources import user_cache_dir

        folder = user_cache_dir()
        return cls(folder / "convert-lint", key) if folder is not None else None

    def get(self, key: str, digest: str) -> Entry | None:
        return super().get(f"{key}@{digest}", digest)

    def put(self, key: str, digest: str, result: FileResult) -> None:
        super().put(f"{key}@{digest}", digest, result)

    def _kept(self) -> dict[str, Entry]:
        return dict(list(self.entries.items())[-self.LIMIT :])


def encode(digest: str, result: FileResult) -> Entry:
    violations = [
        [v.line, v.column, v.end_line, v.end_column, v.code, v.name, v.message, v.cell]
        for v in result.violations
    ]
    return [digest, result.error, violations]


def decode(shown: str, entry: Entry) -> FileResult:
    _, error, rows = entry
    violations = tuple(
        Violation(shown, line, column, code, name, message, end_line, end_column, cell)
        for line, column, end_line, end_column, code, name, message, cell in rows
    )
    return FileResult(shown, violations, error)


def lint_with_cache(
    files: Sequence[Path],
    load: RuleLoader,
    cache: LintCache | None,
    key_of: Callable[[Path], str] = os.path.abspath,
) -> list[FileResult]:
    """Lint `files`, answering from `cache` where a file's bytes are unchanged.

    `load` returns (rules, contract) and is called only when some file misses, because
    loading the rules imports libcst, which costs more than the whole cached run. `key_of`
    names a file in the cache: its absolute path, or its place in a package (RenderCache).
    """
    results: list[FileResult | None] = [None] * len(files)
    misses: list[tuple[int, str, str | None]] = []
    for index, path in enumerate(files):
        key = key_of(path)
        digest = _digest(path) if cache is not None else None
        entry = cache.get(key, digest) if cache is not None and digest else None
        if entry is not None:
            results[index] = decode(str(path), entry)
        else:
            misses.append((index, key, digest))
    if misses:
        from nb2prod.lint.engine import lint_files  # imports libcst: only for misses

        rules, contract = load()
        fresh = lint_files([files[index] for index, _, _ in misses], rules, contract)
        for (index, key, digest), result in zip(misses, fresh, strict=True):
            results[index] = result
            if cache is not None and digest and not _transient(result):
                cache.put(key, digest, result)
    if cache is not None:
        cache.save()
    return [result for result in results if result is not None]


def _digest(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None  # unreadable: linted (and reported) afresh every time


def _transient(result: FileResult) -> bool:
    """A read failure may be gone next run; everything else follows from the bytes."""
    return bool(result.error and result.error.startswith("cannot be read"))
