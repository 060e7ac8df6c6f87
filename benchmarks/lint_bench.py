"""Lint speed: `nb2prod lint` against Fixit 2 on the installed mlflow package's source tree.

What it measures
----------------
The corpus is a copy of the installed ``mlflow`` package's source tree (the folder of
``mlflow/__init__.py``, found without importing mlflow; ``__pycache__`` folders are left out),
made in a temporary folder: about 1,250 ``.py`` files and 370k lines. On that one corpus, in one
run, every measurement is a fresh subprocess timed with ``time.perf_counter`` (wall clock,
interpreter start and imports included, output captured):

* ``nb2prod cold``: ``python -m nb2prod lint corpus`` with a new, empty ``--cache-dir`` each
  time: what a first run costs, writing the cache included. ``nb2prod cold --no-cache`` is the
  same without any cache, for reference.
* ``Fixit cold``: ``fixit --rules fixit_mlflow_rule:MlflowRunWithoutHonestyRule lint corpus``
  with the single rule in ``benchmarks/fixit_mlflow_rule.py`` (the equivalent of nb2prod's
  NBH101), imported as a module from ``benchmarks/`` put on ``PYTHONPATH``. Fixit 2 keeps no
  cache of lint results, so every Fixit run is cold; nothing had to be switched off. Fixit's
  own "local rule" loading (``.module`` names) re-imports the rule for every file, which is
  slower, so the module form is the fairer one to Fixit. A ``fixit.toml`` with ``root = true``
  in the temporary folder stops Fixit's configuration search there; ``--rules`` replaces
  Fixit's built-in rules with the one rule. Fixit, like nb2prod, lints files in a process pool.
* ``nb2prod warm``: the same command again, same ``--cache-dir``, corpus unchanged.
* ``nb2prod one file``: ``python -m nb2prod lint FILE`` with one file path, as pre-commit runs
  it, after a one-line edit to FILE (so the cache cannot answer for it). FILE is the corpus
  file that starts an MLflow run (so the rules must parse it) with the median line count among
  such files; the largest such file is timed too, as the worst case.
* imports: ``python -X importtime -m nb2prod lint FILE`` on a ``.py`` file and on a small
  notebook; every module imported is listed, and mlflow, fastapi, pandas, nbconvert must be
  absent.

nb2prod runs are repeated ``--repeat`` times (default 3) and Fixit ``--fixit-repeat`` times
(default 1: one cold Fixit run takes minutes); the table shows the median and the fastest run.
The two tools' MLflow-run findings are compared by (file, line) as a check that the rules are
equivalent. Only local files are touched; no network is needed.

How to read it
--------------
``target`` is the goal from the linter issue on a 2-core machine, ``ok`` whether the median
meets it: cold at least 10x faster than Fixit (the ratio ``Fixit / nb2prod``, judged on the
``cold`` row with its cache write); warm second run under 0.5 s; one changed file under 0.3 s
(the median-size file; the largest file is shown without a target); no heavy import.

Fixit is not a dependency of nb2prod. Install it apart, for example::

    python -m venv --system-site-packages /tmp/fixitvenv && /tmp/fixitvenv/bin/pip install fixit
    python benchmarks/lint_bench.py --fixit /tmp/fixitvenv/bin/fixit [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CORPUS = Path("corpus")  # every command runs in the temporary folder and names it so
FIXIT_RULE = "fixit_mlflow_rule:MlflowRunWithoutHonestyRule"
COLD_RATIO_TARGET = 10.0  # Fixit cold / nb2prod cold must be at least this
WARM_TARGET_S = 0.5
ONE_FILE_TARGET_S = 0.3
FORBIDDEN_IMPORTS = ("mlflow", "fastapi", "pandas", "nbconvert")
# Imported by the lint path, worth naming when present (they cost start-up time).
NOTABLE_IMPORTS = (
    "numpy",
    "sklearn",
    "pydantic",
    "starlette",
    "nbformat",
    "jsonschema",
    "jinja2",
    "cookiecutter",
    "yaml",
    "requests",
)
RUN_TRIGGER = "start_run"
NB2PROD_FINDING = re.compile(r"^(?P<path>.+?):(?P<line>\d+):\d+:? (?P<code>NBH101)\b")
FIXIT_FINDING = re.compile(r"^(?P<path>.+?)@(?P<line>\d+):\d+ MlflowRunWithoutHonesty:")
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")
INSTALL_FIXIT = """\
Fixit was not found (no --fixit PATH, and no `fixit` on PATH). It is not a dependency of
nb2prod; install it apart, without touching this environment, e.g.:

    python -m venv --system-site-packages /tmp/fixitvenv
    /tmp/fixitvenv/bin/pip install fixit
    python benchmarks/lint_bench.py --fixit /tmp/fixitvenv/bin/fixit

or pass --skip-fixit to time nb2prod alone."""


@dataclass(frozen=True)
class Run:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Row:
    name: str
    times: tuple[float, ...]
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run_timed(
    command: Sequence[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    ok_codes: Sequence[int] = (0, 1),
    tracebacks: bool = False,
) -> Run:
    """Run `command` as a subprocess; wall-clock seconds, process start included. An exit
    code outside `ok_codes`, or a traceback unless `tracebacks` allows them, stops the run."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    crashed = not tracebacks and "Traceback (most recent call last)" in done.stderr
    if done.returncode not in ok_codes or crashed:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{tail}")
    return Run(seconds, done.returncode, done.stdout, done.stderr)


def mlflow_source() -> Path:
    """The installed mlflow package folder, found without importing mlflow."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or spec.origin is None:
        raise SystemExit("mlflow is not installed here: `pip install mlflow` gives the corpus")
    return Path(spec.origin).parent


def copy_corpus(source: Path, target: Path) -> tuple[int, int]:
    """Copy the tree; return its number of .py files and their total line count."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    files = lines = 0
    for path in target.rglob("*.py"):
        files += 1
        lines += path.read_bytes().count(b"\n")
    return files, lines


def one_file_targets(corpus: Path) -> tuple[Path, Path]:
    """Files that start an MLflow run: the one of median length, and the longest."""
    sized = []
    for path in corpus.rglob("*.py"):
        text = path.read_text(encoding="utf-8", errors="replace")
        if RUN_TRIGGER in text:
            sized.append((text.count("\n"), str(path)))
    if not sized:
        raise SystemExit(f"no corpus file mentions {RUN_TRIGGER!r}")
    sized.sort()
    return Path(sized[len(sized) // 2][1]), Path(sized[-1][1])


def findings(pattern: re.Pattern[str], output: str) -> set[tuple[str, int]]:
    """(path relative to the work folder, line) of each MLflow-run finding in `output`."""
    found = set()
    for line in output.splitlines():
        match = pattern.match(line.strip())
        if match:
            found.add((os.path.normpath(match["path"]), int(match["line"])))
    return found


def lint_flags(nb2prod: Sequence[str], cwd: Path) -> set[str]:
    """Which of --no-cache / --cache-dir this nb2prod's `lint` accepts."""
    usage = run_timed([*nb2prod, "lint", "--help"], cwd, ok_codes=(0,)).stdout
    return {flag for flag in ("--no-cache", "--cache-dir") if flag in usage}


def imported_modules(
    nb2prod: Sequence[str], path: Path, cwd: Path, no_cache: bool
) -> dict[str, int]:
    """Modules `nb2prod lint PATH` imports, each with its cumulative import time in us."""
    flags = ["--no-cache"] if no_cache else []
    command = [sys.executable, "-X", "importtime", *nb2prod[1:], "lint", *flags, str(path)]
    done = run_timed(command, cwd)
    modules: dict[str, int] = {}
    for line in done.stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            modules[match[4]] = int(match[2])
    return modules


def write_notebook(path: Path) -> None:
    """A small valid notebook (nbformat 4) with one MLflow run, written as plain JSON."""
    cell: dict[str, object] = {
        "cell_type": "code",
        "execution_count": None,
        "id": "run",
        "metadata": {},
        "outputs": [],
        "source": [
            "import mlflow\n",
            "with mlflow.start_run():\n",
            "    mlflow.log_metric('a', 1)",
        ],
    }
    notebook = {
        "cells": [cell],
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def verdict(ok: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[ok]


def print_table(rows: Sequence[Row]) -> None:
    header = ("measurement", "runs", "median", "fastest", "target", "ok", "note")
    table = [header] + [
        (
            row.name,
            str(len(row.times)),
            seconds(row.median),
            seconds(min(row.times)),
            row.target,
            verdict(row.ok),
            row.note,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for n, line in enumerate(table):
        cells = [line[i].ljust(widths[i]) for i in range(len(widths))]
        print("  ".join([*cells, line[-1]]).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * len(header[-1]))


def time_cold(nb2prod: list[str], work: Path, repeat: int, cached: bool) -> tuple[list[Row], Run]:
    """Cold runs: a new empty cache folder each time, then (if there is a cache) --no-cache.
    Returns their rows and the first run, whose findings are compared with Fixit's."""
    cold: list[Run] = []
    for n in range(repeat):
        fresh = ["--cache-dir", str(work / f"cache-cold-{n}")] if cached else []
        cold.append(run_timed([*nb2prod, "lint", *fresh, str(CORPUS)], work))
    summary = cold[0].stdout.strip().splitlines()[-1:] or ["no output"]
    note = ("empty --cache-dir each run; " if cached else "no cache in this nb2prod; ") + summary[0]
    rows = [Row("nb2prod cold, all rules", tuple(r.seconds for r in cold), note=note)]
    if cached:
        command = [*nb2prod, "lint", "--no-cache", str(CORPUS)]
        no_cache = [run_timed(command, work) for _ in range(repeat)]
        rows.append(Row("nb2prod cold --no-cache", tuple(r.seconds for r in no_cache)))
    return rows, cold[0]


def time_fixit(fixit: str, work: Path, repeat: int, cold: Sequence[Row]) -> tuple[Row, Run]:
    """Fixit with the one rule, imported as a module from benchmarks/ (see the docstring)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH_DIR), env.get("PYTHONPATH")) if p)
    command = [fixit, "--rules", FIXIT_RULE, "lint", str(CORPUS)]
    # Fixit exits 1 for findings, 2 for a file it could not lint (still a timed run).
    runs = [
        run_timed(command, work, env=env, ok_codes=(0, 1, 2, 3), tracebacks=True)
        for _ in range(repeat)
    ]
    median = statistics.median(r.seconds for r in runs)
    ratios = [
        f"Fixit / {row.name.removeprefix('nb2prod ')} = {median / row.median:.1f}x" for row in cold
    ]
    row = Row(
        "Fixit cold, 1 rule",
        tuple(r.seconds for r in runs),
        target=f"nb2prod >= {COLD_RATIO_TARGET:.0f}x faster",
        ok=median / cold[0].median >= COLD_RATIO_TARGET,
        note="; ".join(ratios),
    )
    return row, runs[0]


def time_warm(nb2prod: list[str], work: Path, repeat: int, cold: Row) -> Row:
    """Re-runs on the unchanged corpus with the cache a first run filled."""
    command = [*nb2prod, "lint", "--cache-dir", str(work / "cache"), str(CORPUS)]
    prime = run_timed(command, work)  # fills the cache: the warm runs must print the same
    warm = [run_timed(command, work) for _ in range(repeat)]
    median = statistics.median(r.seconds for r in warm)
    same = all(r.stdout == prime.stdout for r in warm)
    return Row(
        "nb2prod warm, unchanged corpus",
        tuple(r.seconds for r in warm),
        target=f"< {WARM_TARGET_S} s",
        ok=median < WARM_TARGET_S and same,
        note=f"cold / warm = {cold.median / median:.0f}x; "
        + ("same output as the run that filled the cache" if same else "OUTPUT DIFFERS"),
    )


def time_one_file(
    nb2prod: list[str], work: Path, path: Path, repeat: int, cached: bool, label: str, target: bool
) -> Row:
    """`nb2prod lint FILE` after a one-line edit to FILE, as a pre-commit hook runs it."""
    original = path.read_bytes()
    cache = ["--cache-dir", str(work / "cache")] if cached else []
    times = []
    try:
        for n in range(repeat):
            path.write_bytes(original + f"# lint_bench edit {n}\n".encode())
            command = [*nb2prod, "lint", *cache, str(path.relative_to(work))]
            times.append(run_timed(command, work).seconds)
    finally:
        path.write_bytes(original)
    median = statistics.median(times)
    size = original.count(b"\n")
    return Row(
        f"nb2prod one changed file ({label})",
        tuple(times),
        target=f"< {ONE_FILE_TARGET_S} s" if target else "",
        ok=median < ONE_FILE_TARGET_S if target else None,
        note=f"{path.relative_to(work / CORPUS)}, {size:,} lines",
    )


def report_imports(modules: dict[str, int]) -> None:
    top = {name.split(".")[0] for name in modules}
    heavy = [name for name in FORBIDDEN_IMPORTS if name in top]
    notable = [name for name in NOTABLE_IMPORTS if name in top]
    print(
        "imports of `nb2prod lint FILE` (a .py file and a notebook): "
        f"{len(modules)} modules, {len(top)} top-level packages"
    )
    print(f"  forbidden ({', '.join(FORBIDDEN_IMPORTS)}): {', '.join(heavy) or 'none'}")
    print(f"  other heavy packages imported: {', '.join(notable) or 'none'}")
    top_level = [(us, name) for name, us in modules.items() if "." not in name]
    slowest = sorted(top_level, reverse=True)[:8]
    listed = ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in slowest)
    print(f"  slowest top-level imports (cumulative): {listed}")
    print(f"  target: no forbidden import ... ok: {verdict(not heavy)}")


def report_equivalence(nb2prod_output: str, fixit_output: str) -> None:
    mine = findings(NB2PROD_FINDING, nb2prod_output)
    theirs = findings(FIXIT_FINDING, fixit_output)
    same = "the same (file, line) pairs" if mine == theirs else "DIFFERENT findings"
    print(f"equivalence: NBH101 findings {len(mine)}, Fixit rule findings {len(theirs)}: {same}")
    for path, line in sorted(mine ^ theirs):
        owner = "nb2prod only" if (path, line) in mine else "Fixit only"
        print(f"  {owner}: {path}:{line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixit", help="the fixit executable (default: `fixit` on PATH)")
    parser.add_argument("--skip-fixit", action="store_true", help="time nb2prod alone")
    parser.add_argument("--repeat", type=int, default=3, help="runs per nb2prod measurement")
    parser.add_argument("--fixit-repeat", type=int, default=1, help="Fixit runs (minutes each)")
    args = parser.parse_args()

    fixit = None if args.skip_fixit else (args.fixit or shutil.which("fixit"))
    if not args.skip_fixit and (fixit is None or not Path(fixit).exists()):
        print(INSTALL_FIXIT, file=sys.stderr)
        return 2
    nb2prod = [sys.executable, "-m", "nb2prod"]

    with tempfile.TemporaryDirectory(prefix="lint_bench_") as folder:
        work = Path(folder)
        source = mlflow_source()
        files, lines = copy_corpus(source, work / CORPUS)
        # Stops Fixit's search for configuration files at the temporary folder.
        (work / "fixit.toml").write_text("[tool.fixit]\nroot = true\n", encoding="utf-8")
        cached = {"--no-cache", "--cache-dir"} <= lint_flags(nb2prod, work)
        fixit_version = "Fixit not run"
        if fixit:
            fixit_version = run_timed([fixit, "--version"], work, ok_codes=(0,)).stdout.strip()
        print(f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs")
        print(f"nb2prod {version('nb2prod')}, libcst {version('libcst')}, {fixit_version}")
        print(f"corpus: mlflow {version('mlflow')} source, {files:,} .py files, {lines:,} lines")
        print(f"        copied from {source}")
        print(f"load average at the start: {load_average()}")
        if not cached:
            print("NOTE: `nb2prod lint` has no --no-cache/--cache-dir yet: no cache to warm")
        print()

        rows, cold_run = time_cold(nb2prod, work, args.repeat, cached)
        fixit_run = None
        if fixit:
            fixit_row, fixit_run = time_fixit(fixit, work, args.fixit_repeat, rows)
            rows.append(fixit_row)
        if cached:
            rows.append(time_warm(nb2prod, work, args.repeat, rows[0]))
        typical, largest = one_file_targets(work / CORPUS)
        rows.append(time_one_file(nb2prod, work, typical, args.repeat, cached, "typical", True))
        rows.append(time_one_file(nb2prod, work, largest, args.repeat, cached, "largest", False))

        notebook = work / "small.ipynb"
        write_notebook(notebook)
        modules: dict[str, int] = {}
        for path in (typical, notebook):
            modules |= imported_modules(nb2prod, path, work, cached)

    print_table(rows)
    print(f"load average at the end: {load_average()} (other work on the machine skews the times)")
    print()
    report_imports(modules)
    if fixit_run is not None:
        print()
        report_equivalence(cold_run.stdout, fixit_run.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
