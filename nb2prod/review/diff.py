"""Which lines of the new side of a unified diff a pull request touched.

GitHub gives each changed file's hunks as `patch` (the part of `git diff` after the file
header); `git diff` gives the same hunks with headers. Both are read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,\d+)? @@")
_NEW_FILE = re.compile(r"^\+\+\+ (?:b/)?(?P<path>.+?)\t?$")


@dataclass(frozen=True)
class ChangedLines:
    """The new side of one file's diff.

    `added` are lines the PR added or rewrote. `touched` adds the lines on either side of a
    deletion, so a finding about something removed (a log call taken out of a run) still
    counts as changed. `commentable` is every new-side line in a hunk, the only lines GitHub
    accepts a review comment on.
    """

    added: frozenset[int] = frozenset()
    touched: frozenset[int] = frozenset()
    commentable: frozenset[int] = frozenset()
    whole_file: bool = False  # no hunks to read (a large diff GitHub omits): every line counts

    def changes(self, first: int, last: int) -> bool:
        """Whether the PR changed any line from `first` to `last` (inclusive)."""
        if self.whole_file:
            return True
        return any(line in self.touched for line in range(first, last + 1))


@dataclass
class _Builder:
    added: set[int] = field(default_factory=set)
    touched: set[int] = field(default_factory=set)
    commentable: set[int] = field(default_factory=set)

    def freeze(self) -> ChangedLines:
        return ChangedLines(
            frozenset(self.added), frozenset(self.touched), frozenset(self.commentable)
        )


def parse_patch(patch: str) -> ChangedLines:
    """The changed lines of one file's hunks (GitHub's `patch` field)."""
    builder = _Builder()
    _read_hunks(patch.splitlines(), builder)
    return builder.freeze()


def parse_git_diff(text: str) -> dict[str, ChangedLines]:
    """Each new-side path of a multi-file `git diff` and its changed lines."""
    files: dict[str, ChangedLines] = {}
    path: str | None = None
    chunk: list[str] = []
    for line in [*text.splitlines(), "diff --git end"]:
        if line.startswith("diff --git "):
            if path is not None:
                builder = _Builder()
                _read_hunks(chunk, builder)
                files[path] = builder.freeze()
            path, chunk = None, []
        elif (match := _NEW_FILE.match(line)) and not chunk:
            new = match["path"]
            path = None if new == "/dev/null" else new
        elif line.startswith("@@") or chunk:
            chunk.append(line)
    return files


def _read_hunks(lines: list[str], builder: _Builder) -> None:
    new_line = 0
    for line in lines:
        if match := _HUNK.match(line):
            new_line = int(match["start"])
            continue
        if not new_line or line.startswith("\\"):  # "\ No newline at end of file"
            continue
        marker = line[:1]
        if marker == "+":
            builder.added.add(new_line)
            builder.touched.add(new_line)
            builder.commentable.add(new_line)
            new_line += 1
        elif marker == "-":
            builder.touched.update({max(new_line - 1, 1), new_line})
        else:  # context (a blank context line may have lost its leading space)
            builder.commentable.add(new_line)
            new_line += 1
