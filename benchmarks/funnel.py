"""The funnel: how far each corpus notebook gets from `plan` to a clean, trained package.

Why
---
The design's invariant is that ``convert`` either refuses in one line or writes a package that
installs, trains, passes its own tests and lints clean. This script measures that on the
public corpus (``benchmarks/corpus.py fetch`` first). For each notebook that the corpus did not
set aside, in a fresh temporary WORK folder:

1. ``plan``    ``nb2prod plan NB --json`` (gives the package name);
2. ``convert`` ``nb2prod convert NB -o WORK/pkg --force``;
3. ``train``   ``python -m PKG.train`` in WORK, with ``MLFLOW_TRACKING_URI=sqlite:///WORK/mlflow.db``;
4. ``tests``   ``python -m pytest -q -x`` in WORK/pkg;
5. ``lint``    ``nb2prod lint WORK/pkg`` (exit 0 = clean);
6. ``parity``  with ``--verify``, for a notebook that passed 1-5: ``nb2prod verify NB WORK/pkg``
   (ok when every metric and prediction agrees, ``mismatch`` with the causes verify names;
   the notebook runs in its own folder in the cache, as verify always does).

The package is never installed: stages 3-5 run with ``PYTHONPATH=WORK/pkg``, because the
shared runtime already carries every dependency the generated packages declare, and installing
~100 editable packages into one environment would make them shadow each other. Stages are
sequential (a stage is reached only when the one before passed), except ``lint``, which runs
whenever ``convert`` passed, since a package that fails to train can still be checked.

Each stage records ok/failed, the exit code, the seconds and a one-line reason: the error line
of a ``plan``/``convert`` exit 2, else the last non-empty stderr line (stdout when stderr is
empty). Failure classes: ``refused`` (``plan``/``convert`` exit 2 with one line, which the
invariant allows), ``traceback`` (any ``Traceback (most recent call last)`` in the stage's
stderr), ``internal-error`` (a one-line exit 2 that nb2prod itself calls a bug), ``timeout``
and ``error``. A notebook that the corpus's static rule says trains no
model passes when ``plan`` refuses it. The worst outcome, converted but failed to train or
test, is listed first.

Usage (from the repository root)::

    python benchmarks/funnel.py [--cache DIR] [--jobs 2] [--only GLOB] [--json out.json]
                                [--keep DIR] [--subset ci] [--half development] [--verify]
    python benchmarks/funnel.py --report out.json.partial.jsonl   # a run still going
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # a sibling script, not a package

STAGES = ("plan", "convert", "train", "tests", "lint", "parity")
# Options every conversion gets (--feature-store feast: run the funnel with Feast's Python)
CONVERT_OPTIONS: list[str] = []
TIMEOUTS = {"plan": 120, "convert": 180, "train": 600, "tests": 900, "lint": 120, "parity": 1200}
TRACEBACK = "Traceback (most recent call last)"


@dataclass
class StageResult:
    """One stage of one notebook."""

    stage: str
    status: str  # ok | failed | refused
    exit_code: int | None
    seconds: float
    reason: str = ""
    failure_class: str = ""  # refused | traceback | timeout | error


@dataclass
class NotebookResult:
    """All stages of one notebook, and what they add up to."""

    id: str
    notebook: str
    trains_model: bool
    half: str = ""  # development | evaluation (corpus.py's split)
    frameworks: list[str] = field(default_factory=list)  # deep-learning and booster imports
    package: str = ""
    stages: list[StageResult] = field(default_factory=list)
    outcome: str = ""


# --------------------------------------------------------------------------- running


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def error_line(stderr: str) -> str:
    """The tool's own one-line error (``nb2prod X: error: ...``), else the last line."""
    for line in stderr.splitlines():
        if ": error: " in line:
            return line.strip()
    return last_line(stderr)


def is_one_line(stderr: str) -> bool:
    return len([ln for ln in stderr.splitlines() if ln.strip()]) == 1


def run_stage(
    stage: str, cmd: list[str], cwd: Path, env: dict[str, str], timeout: int
) -> tuple[StageResult, str]:
    """Run one stage's command; return its result and its stdout."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        seconds = time.perf_counter() - start
        return StageResult(
            stage, "failed", None, seconds, f"timed out after {timeout}s", "timeout"
        ), ""
    seconds = round(time.perf_counter() - start, 2)
    return classify(stage, proc.returncode, proc.stdout, proc.stderr, seconds), proc.stdout


def classify(stage: str, code: int, stdout: str, stderr: str, seconds: float) -> StageResult:
    """ok / refused / failed, with the one-line reason and the failure class."""
    if code == 0:
        return StageResult(stage, "ok", code, seconds)
    if TRACEBACK in stderr:
        return StageResult(stage, "failed", code, seconds, last_line(stderr), "traceback")
    if stage in ("plan", "convert") and code == 2 and is_one_line(stderr):
        if ": internal error: " in stderr:  # one line, but nb2prod says it is its own bug
            return StageResult(stage, "failed", code, seconds, last_line(stderr), "internal-error")
        return StageResult(stage, "refused", code, seconds, error_line(stderr), "refused")
    if stage in ("plan", "convert"):
        reason = error_line(stderr)
    elif stage == "tests":
        reason = first_failed_test(stdout) or last_line(stderr)
    else:
        reason = last_line(stderr)
    return StageResult(stage, "failed", code, seconds, reason or last_line(stdout), "error")


def first_failed_test(stdout: str) -> str:
    """pytest's ``FAILED test::name - Error: message`` line: what broke, not the tally."""
    for line in stdout.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.strip()
    return ""


def base_env(work: Path, pkg_dir: Path) -> dict[str, str]:
    """The environment of the generated package: its folder on the path, a private store."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pkg_dir), env.get("PYTHONPATH", "")) if p)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def nb2prod_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "nb2prod", *args]


def run_notebook(
    entry: dict[str, Any], cache: Path, keep: Path | None, verify: bool = False
) -> NotebookResult:
    """Every stage of one notebook, in its own WORK folder."""
    nb = cache / entry["notebook"]
    result = NotebookResult(
        entry["id"], str(nb), entry["trains_model"], entry["half"], entry["frameworks"]
    )
    work = Path(tempfile.mkdtemp(prefix="nb2prod-funnel-"))
    try:
        run_stages(result, nb, work, verify)
    finally:
        if keep is not None:
            target = keep / entry["id"].replace("/", "__")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(work, target, symlinks=True)
        shutil.rmtree(work, ignore_errors=True)
    result.outcome = outcome(result)
    return result


def run_stages(result: NotebookResult, nb: Path, work: Path, verify: bool = False) -> None:
    pkg_dir = work / "pkg"
    env = base_env(work, pkg_dir)
    plan, out = run_stage(
        "plan", nb2prod_cmd("plan", str(nb), "--json"), work, env, TIMEOUTS["plan"]
    )
    result.stages.append(plan)
    if plan.status != "ok":
        return
    try:
        result.package = json.loads(out)["package_name"]
    except (ValueError, KeyError):
        plan.status, plan.failure_class, plan.reason = (
            "failed",
            "error",
            "plan --json: no package_name",
        )
        return
    convert, _ = run_stage(
        "convert",
        nb2prod_cmd("convert", str(nb), "-o", str(pkg_dir), "--force", *CONVERT_OPTIONS),
        work,
        env,
        TIMEOUTS["convert"],
    )
    result.stages.append(convert)
    if convert.status != "ok":
        return
    train, _ = run_stage(
        "train", [sys.executable, "-m", f"{result.package}.train"], work, env, TIMEOUTS["train"]
    )
    result.stages.append(train)
    if train.status == "ok":
        tests, _ = run_stage(
            "tests",
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"],
            pkg_dir,
            env,
            TIMEOUTS["tests"],
        )
        result.stages.append(tests)
    lint, _ = run_stage("lint", nb2prod_cmd("lint", str(pkg_dir)), work, env, TIMEOUTS["lint"])
    result.stages.append(lint)
    if verify and outcome(result) == "pass":
        result.stages.append(parity_stage(nb, pkg_dir, work, env))


def parity_stage(nb: Path, pkg_dir: Path, work: Path, env: dict[str, str]) -> StageResult:
    """`nb2prod verify`: ok when every metric and prediction agrees; a mismatch carries the
    causes verify names. (The notebook runs in its own folder in the cache, as verify does.)"""
    parity, out = run_stage(
        "parity",
        nb2prod_cmd("verify", str(nb), str(pkg_dir)),  # verify's own cell timeout, as users get
        work,
        env,
        TIMEOUTS["parity"],
    )
    if parity.exit_code == 0 and "parity: nothing to compare" in out:
        parity.status = "nothing"  # no metric, no prediction on rows: not counted as agreeing
    if parity.exit_code == 1:
        parity.status, parity.failure_class = "mismatch", "mismatch"
        parity.reason = mismatch_reason(out)
    return parity


def mismatch_reason(out: str) -> str:
    """The causes verify names, then what differs: each metric that does not agree, and the
    predictions or forecast when some of their rows or steps differ."""
    causes = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("cause:")]
    differ = [ln for ln in out.splitlines() if ln.rstrip().endswith(" NO")]
    differ += [
        ln
        for ln in out.splitlines()
        if ln.startswith(("predictions:", "forecast:")) and re.search(r" \d+ of \d+ \w+ differ", ln)
    ]
    return "; ".join([*causes, *(d.split()[0] for d in differ)])[:400]


def stage(result: NotebookResult, name: str) -> StageResult | None:
    return next((s for s in result.stages if s.stage == name), None)


def outcome(result: NotebookResult) -> str:
    """One word per notebook: the funnel's verdict."""
    plan, convert = stage(result, "plan"), stage(result, "convert")
    if plan is None or plan.status == "failed":
        return "plan-failed"
    if plan.status == "refused":
        return "refused-no-model" if not result.trains_model else "refused"
    if convert is None or convert.status == "failed":
        return "convert-failed"
    if convert.status == "refused":
        return "refused"
    train, tests, lint = stage(result, "train"), stage(result, "tests"), stage(result, "lint")
    if train is None or train.status != "ok" or tests is None or tests.status != "ok":
        return "converted-but-failed"
    if lint is None or lint.status != "ok":
        return "lint-findings"
    return "pass"


# --------------------------------------------------------------------------- reporting

NORMALISERS = (
    (re.compile(r"(?<![\w.])(?:/[^\s:'\",()]+)+"), "<path>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<q>"),
    (re.compile(r"\bcells? \d+(?:, line \d+)?"), "cell N"),
    (re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*){2,}\b"), "<name>"),
    (re.compile(r"(?<=needs )[\w.]+(?:, [\w.]+)*(?=, but\b)"), "<names>"),
    (re.compile(r"(?<=vouch for )[^;]*?(?= in the model)"), "<names>"),
    (re.compile(r"(?<=the model )(\w+) any data \(no \1\.fit\(X, \.\.\.\) or \1\."), "<name> ... "),
    (re.compile(r"\w+ \(cell N\)(?:, \w+ \(cell N\))*"), "<names> (cells)"),
    (re.compile(r"\b\d+(?:\.\d+)?"), "N"),
    (re.compile(r" \(N:N:N\)$"), ""),
)


def normalise(message: str) -> str:
    """A message with its specifics removed, so that one kind of failure groups together."""
    text = message
    for pattern, repl in NORMALISERS:
        text = pattern.sub(repl, text)
    return text[:160]


def failures(results: list[NotebookResult]) -> dict[tuple[str, str, str], list[tuple[str, str]]]:
    """(stage, class, normalised reason) -> [(notebook id, reason)] over every non-ok stage."""
    groups: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
    for r in results:
        for s in r.stages:
            if s.status not in ("ok", "nothing"):
                groups[(s.stage, s.failure_class, normalise(s.reason))].append((r.id, s.reason))
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def stage_counts(results: list[NotebookResult]) -> list[tuple[str, int, int, int]]:
    """(stage, reached, passed, refused) for each stage."""
    rows = []
    for name in STAGES:
        reached = [s for r in results if (s := stage(r, name))]
        rows.append(
            (
                name,
                len(reached),
                sum(s.status == "ok" for s in reached),
                sum(s.status == "refused" for s in reached),
            )
        )
    return rows


def groups(results: list[NotebookResult]) -> dict[str, list[NotebookResult]]:
    """The notebooks that train a model, by half of the corpus, and those with a deep-learning
    or booster library on their own: what the invariant and the issue's targets are about."""
    training = [r for r in results if r.trains_model]
    chosen = {f"{half} half": [r for r in training if r.half == half] for half in corpus.HALVES}
    chosen["deep learning and boosters"] = [r for r in training if r.frameworks]
    return chosen


def group_summary(members: list[NotebookResult]) -> dict[str, int]:
    """How a group of training notebooks ended: the figures the targets are stated in."""
    outcomes = Counter(r.outcome for r in members)
    return {
        "train a model": len(members),
        "pass": outcomes["pass"],
        "refused": outcomes["refused"],
        "converted-but-failed": outcomes["converted-but-failed"],
        "tracebacks": sum(any(s.failure_class == "traceback" for s in r.stages) for r in members),
    }


def report(results: list[NotebookResult], skipped: list[dict[str, Any]]) -> str:
    lines = []
    outcomes = Counter(r.outcome for r in results)
    worst = [r for r in results if r.outcome == "converted-but-failed"]
    lines.append(f"notebooks run: {len(results)} (set aside by the corpus: {len(skipped)})")
    lines.append(
        f"trains a model (static rule): {sum(r.trains_model for r in results)}; outcomes: "
        + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
    )
    for name, members in groups(results).items():
        figures = group_summary(members)
        share = f" ({figures['pass'] / len(members):.0%})" if members else ""
        lines.append(
            f"  {name}: {figures['train a model']} train a model, {figures['pass']} pass{share}, "
            f"{figures['refused']} refused, {figures['converted-but-failed']} converted but "
            f"failed, {figures['tracebacks']} with a traceback"
        )
    lines.append("")
    lines.append(f"CONVERTED BUT FAILED TO TRAIN/TEST (worst outcome): {len(worst)}")
    for r in worst:
        bad = next(s for s in r.stages if s.stage in ("train", "tests") and s.status != "ok")
        lines.append(f"  {r.id}\n    {bad.stage} [{bad.failure_class}] {bad.reason[:200]}")
    lines.append("")
    lines.append(f"{'stage':10}{'reached':>9}{'passed':>9}{'refused':>9}")
    for name, reached, passed, refused in stage_counts(results):
        lines.append(f"{name:10}{reached:9}{passed:9}{refused:9}")
    checked = [s for r in results if (s := stage(r, "parity"))]
    if checked:
        agree = sum(s.status == "ok" for s in checked)
        differ = sum(s.status == "mismatch" for s in checked)
        nothing = sum(s.status == "nothing" for s in checked)
        lines.append(
            f"parity (nb2prod verify on the packages that pass): {len(checked)} checked, "
            f"{agree} agree ({agree / len(checked):.0%}), {differ} differ, {nothing} with "
            f"nothing to compare, {len(checked) - agree - differ - nothing} could not run"
        )
    lines.append("")
    lines.append("failure classes (stage, class, normalised reason: count, examples)")
    for (st, cls, norm), items in failures(results).items():
        lines.append(f"  {len(items):3}  {st}/{cls}: {norm}")
        for nb_id, reason in items[:3]:
            lines.append(f"         {nb_id}: {reason[:160]}")
    lines.append("")
    lines.append("per notebook")
    for r in sorted(results, key=lambda r: r.id):
        marks = " ".join(f"{s.stage}={s.status}" for s in r.stages)
        lines.append(f"  {r.outcome:22} {r.id}  [{marks}]")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def select(
    entries: list[dict[str, Any]],
    only: list[str] | None,
    subset: str | None,
    half: str | None = None,
) -> list[dict[str, Any]]:
    chosen = [e for e in entries if not only or any(fnmatch.fnmatch(e["id"], g) for g in only)]
    chosen = [e for e in chosen if half is None or e["half"] == half]
    return [e for e in chosen if subset is None or subset in e.get("subsets", [])]


def run_all(
    entries: list[dict[str, Any]],
    cache: Path,
    jobs: int,
    keep: Path | None,
    partial: Path | None = None,
    verify: bool = False,
) -> list[NotebookResult]:
    """Run the notebooks ``jobs`` at a time; append each result to ``partial`` as it ends,
    so a long run can be read before it finishes."""
    results = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_notebook, e, cache, keep, verify): e["id"] for e in entries}
        for n, fut in enumerate(as_completed(futures), 1):
            res = fut.result()
            results.append(res)
            if partial is not None:
                with partial.open("a") as fh:
                    fh.write(json.dumps(asdict(res)) + "\n")
            print(f"[{n}/{len(entries)}] {res.outcome:22} {res.id}", file=sys.stderr, flush=True)
    return sorted(results, key=lambda r: r.id)


def load_partial(path: Path) -> list[NotebookResult]:
    """Results from a run's ``.partial.jsonl``, so a long run can be reported mid-way."""
    results = []
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        stages = [StageResult(**s) for s in raw.pop("stages")]
        results.append(NotebookResult(**raw, stages=stages))
    return sorted(results, key=lambda r: r.id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="funnel.py", description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--only", action="append", default=None, help="glob on notebook ids (repeatable)"
    )
    parser.add_argument("--subset", default=None, help="a subset named in the manifest")
    parser.add_argument(
        "--frameworks",
        action="store_true",
        help="only the notebooks that import a deep-learning or booster library",
    )
    parser.add_argument(
        "--half",
        choices=corpus.HALVES,
        default=None,
        help="only one half of the corpus (fix classes on the development half)",
    )
    parser.add_argument("--json", type=Path, default=None, dest="json_out")
    parser.add_argument("--keep", type=Path, default=None, help="copy each WORK folder here")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="run `nb2prod verify` on every notebook that passes: the parity column",
    )
    parser.add_argument(
        "--feature-store",
        default=None,
        help="convert with --feature-store NAME (feast: run with the Python .ci/feast-env makes)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="print the report of a .partial.jsonl, run nothing",
    )
    args = parser.parse_args(argv)
    if args.feature_store:
        CONVERT_OPTIONS[:] = ["--feature-store", args.feature_store]
    if args.report is not None:
        print(report(load_partial(args.report), []))
        return 0
    cache = (args.cache or corpus.default_cache()).expanduser().resolve()
    try:
        entries = corpus.read_index(cache)
    except corpus.CorpusError as exc:
        print(f"funnel.py: error: {exc}", file=sys.stderr)
        return 2
    chosen = select(entries, args.only, args.subset, args.half)
    if args.frameworks:
        chosen = [e for e in chosen if e["frameworks"]]
    runnable = [e for e in chosen if not e["set_aside"]]
    skipped = [e for e in chosen if e["set_aside"]]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    partial = None
    if args.json_out is not None:
        partial = args.json_out.with_name(args.json_out.name + ".partial.jsonl")
        partial.unlink(missing_ok=True)
    results = run_all(runnable, cache, max(1, args.jobs), args.keep, partial, args.verify)
    print(report(results, skipped))
    if args.json_out is not None:
        payload = {
            "stages": [
                dict(zip(("stage", "reached", "passed", "refused"), row, strict=True))
                for row in stage_counts(results)
            ],
            "outcomes": dict(Counter(r.outcome for r in results)),
            "groups": {name: group_summary(m) for name, m in groups(results).items()},
            "failure_classes": [
                {
                    "stage": st,
                    "class": cls,
                    "normalised": norm,
                    "count": len(items),
                    "notebooks": [{"id": i, "reason": m} for i, m in items],
                }
                for (st, cls, norm), items in failures(results).items()
            ],
            "set_aside": [
                {"id": e["id"], "rule": e["set_aside"], "detail": e["set_aside_detail"]}
                for e in skipped
            ],
            "notebooks": [asdict(r) for r in results],
        }
        args.json_out.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
