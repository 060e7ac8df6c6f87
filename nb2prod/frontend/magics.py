"""Turn a code cell's IPython dialect into plain Python, keeping what it means.

IPython syntax (line and cell magics, `!` shell escapes, `obj?` help, `get_ipython()` calls)
is not Python and must never reach generated code. Each construct is unwrapped when it wraps
Python (`%time x = f()`, `%%capture`), turned into a requirement when it installs one
(`!pip install x==1`), and otherwise dropped with a reason a reviewer can read.

Removed lines become blank lines, so line numbers still point at the notebook's own lines.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass

from nb2prod.frontend.pysyntax import lines_inside_strings

# Cell magics whose body is Python: the body is kept and analysed.
_UNWRAPPED_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "memit", "debug"})
# Line magics that only configure the interactive session: removed without a warning.
_SESSION_MAGICS = frozenset(
    {
        "matplotlib",
        "load_ext",
        "reload_ext",
        "unload_ext",
        "autoreload",
        "aimport",
        "config",
        "precision",
        "xmode",
        "pylab",
        "who",
        "whos",
        "who_ls",
        "pwd",
        "ls",
        "history",
        "hist",
        "lsmagic",
        "magic",
        "pinfo",
        "pinfo2",
        "pdef",
        "pdoc",
        "psource",
        "page",
        "clear",
        "colors",
        "doctest_mode",
        "automagic",
        "autocall",
        "notebook",
        "qtconsole",
        "connect_info",
        "alias_magic",
        "reset_selective",
        "tb",
        "pdb",
        "rehashx",
        "autosave",
        "edit",
        "recall",
        "rerun",
        "save",
        "logstart",
        "logstop",
        "logon",
        "logoff",
    }
)
# Line magics that change state the production code would then lack: dropped with a warning.
_STATEFUL_MAGICS = {
    "cd": "changes the working directory",
    "env": "sets environment variables",
    "set_env": "sets environment variables",
    "run": "runs another file",
    "store": "restores variables stored by another notebook",
    "reset": "clears the namespace",
    "sx": "runs a shell command",
    "system": "runs a shell command",
    "bash": "runs a shell command",
    "sh": "runs a shell command",
    "load": "loads code from another file",
}
_UNWRAPPED_LINE_MAGICS = frozenset({"time", "timeit", "prun", "memit"})
# Magics that run their statement to measure it: analysed, but not production code.
_TIMING_MAGICS = frozenset({"timeit", "prun", "memit"})
_INSTALLERS = ("pip", "pip3", "conda", "mamba", "uv")
BECAME_A_REQUIREMENT = "became a requirement"
PACKAGE_MANAGER_COMMAND = "package manager command"
INSTALLS_FROM_A_FILE = "installs from a file"
# what a package manager's line is dropped for: each changes (or lists) the environment
PACKAGE_MANAGER_REASONS = (BECAME_A_REQUIREMENT, PACKAGE_MANAGER_COMMAND, INSTALLS_FROM_A_FILE)
_TIMEIT_FLAGS_WITH_VALUE = frozenset({"-n", "-r", "-p"})

_MAGIC_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<bang>%%?|!!?)(?P<rest>.*)$")
_ASSIGNED_MAGIC = re.compile(
    r"^(?P<indent>[ \t]*)(?P<target>[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*"
    r"(?P<bang>%|!)(?P<rest>.*)$"
)
_HELP_LINE = re.compile(r"^[ \t]*(\?\??[\w.]+|[\w.]+\?\??|%?pinfo2?\s+.*)\s*$")
_GET_IPYTHON = re.compile(
    r"^(?P<indent>[ \t]*)(?:(?P<target>[A-Za-z_]\w*)\s*=\s*)?get_ipython\(\)\."
    r"(?P<method>run_line_magic|run_cell_magic|magic|system|getoutput)\((?P<args>.*)\)\s*$"
)


@dataclass(frozen=True)
class Dropped:
    """A line or cell removed from the Python, and why; the text itself is never kept."""

    line: int
    construct: str  # e.g. "%matplotlib", "!ls", "%%bash"
    reason: str
    warn: bool


@dataclass(frozen=True)
class NormalisedCell:
    """A cell as plain Python, with what its IPython syntax asked for."""

    source: str
    requirements: tuple[str, ...]
    dropped: tuple[Dropped, ...]
    names_from_shell: tuple[str, ...]  # bound by `x = !cmd`: gone from the Python
    whole_cell_dropped: bool
    local_files: tuple[str, ...]  # written by %%writefile or run by %run
    timing_lines: tuple[int, ...] = ()  # statements only run to be timed (%timeit)


def normalise(source: str) -> NormalisedCell:
    """Return the cell's Python with IPython syntax unwrapped or dropped."""
    source = without_leading_indent(source)
    lines = source.splitlines()
    first = next((i for i, text in enumerate(lines) if text.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        cell_magic = _cell_magic(lines, first)
        if cell_magic is not None:
            return cell_magic
    state = _State()
    parses = _parses(source)
    inside_strings = set() if parses else lines_inside_strings(source)
    index = 0
    while index < len(lines):
        text = lines[index]
        if index + 1 in inside_strings:
            state.out.append(text)
            index += 1
            continue
        end = index
        while lines[end].rstrip().endswith("\\") and end + 1 < len(lines) and not parses:
            end += 1
        logical = " ".join(part.rstrip().rstrip("\\") for part in lines[index : end + 1])
        replacement = _get_ipython_line(logical, index + 1, state)
        if replacement is None and not parses:
            replacement = _ipython_line(logical, index + 1, state)
        if replacement is None:
            state.out.append(text)
        else:
            state.out.append(replacement)
            state.out.extend("" for _ in range(end - index))
            index = end
        index += 1
    return NormalisedCell(
        source="\n".join(state.out),
        requirements=tuple(state.requirements),
        dropped=tuple(state.dropped),
        names_from_shell=tuple(state.shell_names),
        whole_cell_dropped=False,
        local_files=tuple(state.local_files),
        timing_lines=tuple(state.timing_lines),
    )


def without_leading_indent(source: str) -> str:
    """The cell as IPython runs it when its first line is indented: that indentation removed
    from every line that starts with it (IPython's `leading_indent` transform)."""
    lines = source.splitlines()
    first = next((text for text in lines if text.strip()), "")
    indent = first[: len(first) - len(first.lstrip(" \t"))]
    if not indent:
        return source
    return "\n".join(text.removeprefix(indent) for text in lines)


class _State:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.requirements: list[str] = []
        self.dropped: list[Dropped] = []
        self.shell_names: list[str] = []
        self.local_files: list[str] = []
        self.timing_lines: list[int] = []


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def _cell_magic(lines: list[str], first: int) -> NormalisedCell | None:
    head = lines[first].strip()[2:]
    name, _, args = head.partition(" ")
    if name in _UNWRAPPED_CELL_MAGICS:
        body = [*([""] * (first + 1)), *lines[first + 1 :]]
        inner = normalise("\n".join(body))
        if name == "capture" and args.split() and not args.split()[0].startswith("-"):
            target = args.split()[0]
            inner_dropped = (Dropped(first + 1, f"%%capture {target}", "captured output", False),)
        else:
            inner_dropped = (
                Dropped(first + 1, f"%%{name}", f"unwrapped: the body of %%{name} is kept", False),
            )
        timed = range(first + 2, len(lines) + 1) if name in _TIMING_MAGICS else ()
        return NormalisedCell(
            source=inner.source,
            requirements=inner.requirements,
            dropped=inner_dropped + inner.dropped,
            names_from_shell=inner.names_from_shell,
            whole_cell_dropped=False,
            local_files=inner.local_files,
            timing_lines=(*inner.timing_lines, *timed),
        )
    local_files: tuple[str, ...] = ()
    if name == "writefile":
        target = [word for word in args.split() if not word.startswith("-")]
        local_files = tuple(target[:1])
        reason = f"writes the file {target[0] if target else '?'}; commit that file instead"
    else:
        reason = "its body is not Python"
    return NormalisedCell(
        source="",
        requirements=(),
        dropped=(Dropped(first + 1, f"%%{name}", reason, True),),
        names_from_shell=(),
        whole_cell_dropped=True,
        local_files=local_files,
    )


def _get_ipython_line(text: str, line: int, state: _State) -> str | None:
    """Rewrite `get_ipython().run_line_magic('x', 'y')` (as jupytext exports) as `%x y`."""
    match = _GET_IPYTHON.match(text)
    if match is None:
        return None
    try:
        args = ast.literal_eval(f"({match['args']},)")
    except (SyntaxError, ValueError):
        args = ()
    method = match["method"]
    if method in ("run_line_magic", "magic") and args:
        command = "%" + " ".join(str(arg) for arg in args if str(arg)).strip()
    elif method in ("system", "getoutput") and args:
        command = "!" + str(args[0])
    else:
        state.dropped.append(Dropped(line, "get_ipython()", "IPython-only call", True))
        return ""
    if match["target"]:
        command = f"{match['target']} = {command}"
    return _ipython_line(match["indent"] + command, line, state) or ""


def _ipython_line(text: str, line: int, state: _State) -> str | None:
    """Return the Python replacing one IPython line, or None when the line is plain Python."""
    if _HELP_LINE.match(text):
        state.dropped.append(Dropped(line, "?", "interactive help", False))
        return _blank(text)
    assigned = _ASSIGNED_MAGIC.match(text)
    if assigned is not None and not _parses(text.strip()):
        return _assigned_magic(assigned, line, state)
    match = _MAGIC_LINE.match(text)
    if match is None:
        return None
    indent, bang, rest = match["indent"], match["bang"], match["rest"].strip()
    if bang.startswith("!"):
        return _shell(indent, rest, line, state)
    if bang == "%%":  # a cell magic that is not on the first line is not a magic at all
        state.dropped.append(Dropped(line, "%%" + rest.split(" ")[0], "misplaced cell magic", True))
        return _blank(text)
    name, _, args = rest.partition(" ")
    if name in _INSTALLERS:
        return _install(indent, f"{name} {args}", line, state, f"%{name}")
    if name in _UNWRAPPED_LINE_MAGICS:
        if name in _TIMING_MAGICS:
            state.timing_lines.append(line)
            reason = "only times the statement: analysed, not kept"
        else:
            reason = "unwrapped: the statement is kept"
        state.dropped.append(Dropped(line, f"%{name}", reason, False))
        return indent + _strip_magic_options(name, args)
    if name in _STATEFUL_MAGICS:
        if name == "run":
            state.local_files.extend(w for w in args.split()[:1] if w.endswith(".py"))
        state.dropped.append(Dropped(line, f"%{name}", _STATEFUL_MAGICS[name], True))
        return _blank(text, indent)
    warn = name not in _SESSION_MAGICS
    reason = "configures the interactive session" if not warn else "unknown magic"
    state.dropped.append(Dropped(line, f"%{name}", reason, warn))
    return _blank(text, indent)


def _assigned_magic(match: re.Match[str], line: int, state: _State) -> str:
    indent, target, bang, rest = match["indent"], match["target"], match["bang"], match["rest"]
    name, _, args = rest.strip().partition(" ")
    if bang == "%" and name in _UNWRAPPED_LINE_MAGICS:
        state.dropped.append(Dropped(line, f"%{name}", "unwrapped: the statement is kept", False))
        return f"{indent}{target} = {_strip_magic_options(name, args)}"
    construct = f"!{name}" if bang == "!" else f"%{name}"
    names = [part.strip() for part in target.split(",")]
    state.shell_names.extend(names)
    state.dropped.append(
        Dropped(line, construct, f"assigns shell output to {', '.join(names)}", True)
    )
    return _blank(match.string, indent)


def _shell(indent: str, command: str, line: int, state: _State) -> str:
    words = _split(command)
    program = words[0] if words else ""
    if program in _INSTALLERS or words[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"]):
        return _install(indent, command, line, state, f"!{program}")
    state.dropped.append(Dropped(line, f"!{program}", "shell command", True))
    return _blank(indent, indent)


def _install(indent: str, command: str, line: int, state: _State, construct: str) -> str:
    """Record the packages of `pip install ...` as requirements."""
    words = _split(command)
    if "install" not in words:
        state.dropped.append(Dropped(line, construct, PACKAGE_MANAGER_COMMAND, True))
        return _blank(indent, indent)
    args = words[words.index("install") + 1 :]
    skip_next = False
    for word in args:
        if skip_next:
            skip_next = False
            continue
        if word in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable"):
            state.dropped.append(
                Dropped(line, construct, f"{INSTALLS_FROM_A_FILE} ({word}); list it by hand", True)
            )
            skip_next = True
            continue
        if word.startswith("-"):
            skip_next = word in ("-i", "--index-url", "--extra-index-url", "-f", "--find-links")
            continue
        state.requirements.append(word)
    state.dropped.append(Dropped(line, construct, BECAME_A_REQUIREMENT, False))
    return _blank(indent, indent)


def _strip_magic_options(name: str, args: str) -> str:
    """`%timeit -n 10 -r 3 f(x)` -> `f(x)`: options precede the statement."""
    words = args.strip().split(" ")
    while words and words[0].startswith("-") and name != "time":
        flag = words.pop(0)
        if flag in _TIMEIT_FLAGS_WITH_VALUE and words:
            words.pop(0)
    return " ".join(words).strip()


def _split(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _blank(text: str, indent: str | None = None) -> str:
    """A removed line: empty at top level, `pass` inside a block so the block stays valid."""
    indent = indent if indent is not None else text[: len(text) - len(text.lstrip())]
    return f"{indent}pass" if indent else ""
