"""Plan throughput: how long `nb2prod plan` takes next to `jupyter nbconvert --to script`.

What it measures
----------------
For each size in ``--cells`` (default 200 and 2,000 code cells) the script writes a synthetic
but realistic ML notebook with nbformat into a temporary directory: an imports cell
(``%matplotlib inline``, numpy, pandas, scikit-learn), a ``parameters``-tagged cell, an iris
loading cell, then repeating blocks of feature-engineering, helper-function, display, plot
and magic cells (with markdown headings between them), and finally a split, a train and an
evaluation cell. Every name a cell reads is defined in an earlier cell, so the notebook is one
``nb2prod plan`` accepts. Each file is then timed, in the same run:

* ``nb2prod plan FILE --json``: a fresh ``python -m nb2prod`` process, wall clock
  (``time.perf_counter``), interpreter start-up and imports included;
* ``jupyter nbconvert --to script FILE``: a fresh ``python -m nbconvert`` process, measured the
  same way, as the baseline for "reading a notebook and writing its code out";
* ``build_plan(path)`` in this process, after one warm-up call, so imports and one-off caches
  are excluded: the planner's own cost, which is what should grow with the number of cells.

Each measurement is repeated ``--repeat`` times; the table shows medians (and minima for the
subprocesses). Only local files are touched; no network access is needed.

How to read it
--------------
* ``ratio plan/nbconvert``: the target is <= 2.0 at every size.
* ``us per cell``: in-process ``build_plan`` time divided by the number of code cells. Roughly
  constant across sizes means linear cost.
* ``linear growth``: in-process time at the largest size divided by the time at the smallest,
  printed next to the ratio of cell counts (10x for 200 -> 2,000). A time ratio close to the
  cell ratio is linear; one well above it (more than 1.5x the cell ratio here) points at
  super-linear work in the planner. Subprocess times include a fixed start-up cost, so they
  grow more slowly than the cell count and are not used for this verdict.

Run it from the repository root::

    python benchmarks/plan_bench.py [--cells 200 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PLAN_TARGET = 2.0  # nb2prod plan may take at most this many times nbconvert's time
LINEAR_TOLERANCE = 1.5  # time ratio up to this many times the cell ratio counts as linear
MARKDOWN_EVERY = 8  # a markdown heading before every this many generated code cells
BASE_COLUMNS = (
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
)

IMPORTS = """\
%matplotlib inline
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score"""

PARAMETERS = """\
test_size = 0.25
n_bins = 10
smoothing = 1e-6
clip_quantile = 0.99"""

LOAD = """\
df = load_iris(as_frame=True).frame
print(df.shape)"""

SPLIT = """\
X = df.drop(columns=["target"])
y = df["target"]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=test_size, random_state=0, stratify=y
)"""

TRAIN = """\
model = LogisticRegression(max_iter=200, random_state=0)
model.fit(X_train, y_train)"""

EVALUATE = """\
accuracy = accuracy_score(y_test, model.predict(X_test))
print(f"accuracy = {accuracy:.3f}")"""


@dataclass
class _FeatureState:
    """Names the generated cells have defined so far, so later cells only read defined names."""

    columns: list[str]
    series: list[str]
    functions: list[str]

    def column(self, i: int) -> str:
        return self.columns[(i * 7) % len(self.columns)]

    def latest(self) -> str:
        return self.columns[-1]


def _column_feature(i: int, s: _FeatureState) -> str:
    name = f"f_{i}"
    source = f'df["{name}"] = df["{s.column(i)}"] * {i % 17 + 1} + df["{s.latest()}"]'
    s.columns.append(name)
    return source


def _series_feature(i: int, s: _FeatureState) -> str:
    name = f"centred_{i}"
    col = s.column(i)
    s.series.append(name)
    return f'{name} = df["{col}"] - df["{col}"].mean()'


def _use_series(i: int, s: _FeatureState) -> str:
    if not s.series:
        return _series_feature(i, s)
    name = f"z_{i}"
    source = f'df["{name}"] = {s.series[-1]} / (df["{s.column(i)}"].std() + smoothing)'
    s.columns.append(name)
    return source


def _define_function(i: int, s: _FeatureState) -> str:
    name = f"min_max_{i}"
    s.functions.append(name)
    return (
        f"def {name}(frame, column):\n"
        f'    """Scale `column` of `frame` into [0, 1]."""\n'
        f"    values = frame[column].clip(upper=frame[column].quantile(clip_quantile))\n"
        f"    return (values - values.min()) / (values.max() - values.min() + smoothing)"
    )


def _use_function(i: int, s: _FeatureState) -> str:
    if not s.functions:
        return _define_function(i, s)
    name = f"scaled_{i}"
    source = f'df["{name}"] = {s.functions[-1]}(df, "{s.column(i)}")'
    s.columns.append(name)
    return source


def _numpy_feature(i: int, s: _FeatureState) -> str:
    name = f"log_{i}"
    source = f'df["{name}"] = np.log1p(df["{s.column(i)}"].abs())'
    s.columns.append(name)
    return source


def _pandas_feature(i: int, s: _FeatureState) -> str:
    name = f"bin_{i}"
    source = f'df["{name}"] = pd.cut(df["{s.column(i)}"], bins=n_bins, labels=False)'
    s.columns.append(name)
    return source


def _block_number(i: int) -> int:
    """Which repetition of BLOCK cell `i` is in, so alternating cells vary between blocks."""
    return i // len(BLOCK)


def _display(i: int, s: _FeatureState) -> str:
    options = (
        "df.head()",
        f'df[["{s.latest()}", "target"]].describe()',
        f'df.groupby("target")["{s.column(i)}"].mean()',
    )
    return options[(_block_number(i) + i) % len(options)]


def _plot(i: int, s: _FeatureState) -> str:
    col = s.column(i)
    return (
        "fig, ax = plt.subplots(figsize=(4, 3))\n"
        f'ax.hist(df["{col}"], bins=n_bins)\n'
        f'ax.set_title("{col}")\n'
        "plt.show()"
    )


def _magic(i: int, s: _FeatureState) -> str:
    if _block_number(i) % 2:
        return "!pip install -q numpy"
    name = f"stats_{i}"
    return f'%time {name} = df["{s.latest()}"].describe()\n{name}'


BLOCK: tuple[Callable[[int, _FeatureState], str], ...] = (
    _column_feature,
    _series_feature,
    _display,
    _define_function,
    _use_series,
    _plot,
    _use_function,
    _numpy_feature,
    _magic,
    _pandas_feature,
    _column_feature,
    _display,
)


def notebook_sources(code_cells: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(cell_type, source, tags) for a notebook with exactly `code_cells` code cells."""
    head = [IMPORTS, PARAMETERS, LOAD]
    tail = [SPLIT, TRAIN, EVALUATE]
    middle = code_cells - len(head) - len(tail)
    if middle < 0:
        raise ValueError(f"need at least {len(head) + len(tail)} code cells, got {code_cells}")
    state = _FeatureState(columns=list(BASE_COLUMNS), series=[], functions=[])
    cells: list[tuple[str, str, tuple[str, ...]]] = [
        ("markdown", "# Iris classifier, scaled up\n\nA generated benchmark notebook.", ()),
        ("code", IMPORTS, ()),
        ("code", PARAMETERS, ("parameters",)),
        ("code", LOAD, ()),
    ]
    for i in range(middle):
        if i % MARKDOWN_EVERY == 0:
            cells.append(("markdown", f"## Feature block {i // MARKDOWN_EVERY + 1}", ()))
        cells.append(("code", BLOCK[i % len(BLOCK)](i, state), ()))
    cells.append(("markdown", "## Train and evaluate", ()))
    cells += [("code", source, ()) for source in tail]
    return cells


def write_notebook(path: Path, code_cells: int) -> Path:
    """Write the generated notebook to `path`: no outputs, execution counts 1..N."""
    notebook = new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {
                "name": "python",
                "file_extension": ".py",
                "mimetype": "text/x-python",
                "pygments_lexer": "ipython3",
                "version": "3.11",
            },
        }
    )
    count = 0
    for cell_type, source, tags in notebook_sources(code_cells):
        if cell_type == "markdown":
            notebook.cells.append(new_markdown_cell(source))
            continue
        count += 1
        metadata = {"tags": list(tags)} if tags else {}
        notebook.cells.append(new_code_cell(source, execution_count=count, metadata=metadata))
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return path


@dataclass(frozen=True)
class Timing:
    median: float
    minimum: float


def run_checked(command: Sequence[str]) -> float:
    """Run `command` with stdout discarded; return its wall-clock seconds; exit if it fails."""
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(
            f"plan_bench: {' '.join(command)} exited {result.returncode}:\n{result.stderr.strip()}"
        )
    return elapsed


def time_repeated(action: Callable[[], float], repeat: int) -> Timing:
    samples = [action() for _ in range(repeat)]
    return Timing(statistics.median(samples), min(samples))


def time_plan(notebook: Path, repeat: int) -> Timing:
    command = [sys.executable, "-m", "nb2prod", "plan", str(notebook), "--json"]
    return time_repeated(lambda: run_checked(command), repeat)


def time_nbconvert(notebook: Path, output_dir: Path, repeat: int) -> Timing:
    command = [
        sys.executable,
        "-m",
        "nbconvert",
        "--to",
        "script",
        str(notebook),
        "--output-dir",
        str(output_dir),
    ]
    return time_repeated(lambda: run_checked(command), repeat)


def time_build_plan(notebook: Path, repeat: int) -> Timing:
    """In-process build_plan, after one warm-up call (imports and caches excluded)."""
    from nb2prod.frontend.planner import build_plan

    build_plan(notebook)

    def once() -> float:
        start = time.perf_counter()
        build_plan(notebook)
        return time.perf_counter() - start

    return time_repeated(once, repeat)


@dataclass(frozen=True)
class Row:
    cells: int
    plan: Timing
    nbconvert: Timing
    in_process: Timing

    @property
    def ratio(self) -> float:
        return self.plan.median / self.nbconvert.median

    @property
    def us_per_cell(self) -> float:
        return self.in_process.median / self.cells * 1e6


def measure(cells: int, workdir: Path, repeat: int) -> Row:
    notebook = write_notebook(workdir / f"bench_{cells}_cells.ipynb", cells)
    output_dir = workdir / f"nbconvert_{cells}"
    output_dir.mkdir()
    return Row(
        cells=cells,
        plan=time_plan(notebook, repeat),
        nbconvert=time_nbconvert(notebook, output_dir, repeat),
        in_process=time_build_plan(notebook, repeat),
    )


def render_table(rows: Sequence[Row]) -> str:
    header = (
        f"{'cells':>6} | {'nb2prod plan, median s':>22} | "
        f"{'nbconvert --to script, median s':>31} | {'plan/nbconvert':>14} | "
        f"{'in-process build_plan s':>23} | {'us per cell':>11}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        plan = f"{row.plan.median:.3f} (min {row.plan.minimum:.3f})"
        nbconvert = f"{row.nbconvert.median:.3f} (min {row.nbconvert.minimum:.3f})"
        lines.append(
            f"{row.cells:>6} | {plan:>22} | {nbconvert:>31} | {row.ratio:>13.2f}x | "
            f"{row.in_process.median:>23.4f} | {row.us_per_cell:>11.1f}"
        )
    return "\n".join(lines)


def render_verdicts(rows: Sequence[Row]) -> str:
    worst = max(rows, key=lambda row: row.ratio)
    met = all(row.ratio <= PLAN_TARGET for row in rows)
    lines = [
        f"plan <= {PLAN_TARGET:g}x nbconvert: {'met' if met else 'not met'} "
        f"(worst {worst.ratio:.2f}x at {worst.cells} cells)"
    ]
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        growth = large.in_process.median / small.in_process.median
        cells_ratio = large.cells / small.cells
        linear = growth <= cells_ratio * LINEAR_TOLERANCE
        lines.append(
            f"linear growth: in-process {large.cells}/{small.cells} = {growth:.1f}x for "
            f"{cells_ratio:g}x cells: {'met' if linear else 'not met'} "
            f"(limit {cells_ratio * LINEAR_TOLERANCE:.1f}x)"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--cells", type=int, nargs="+", default=[200, 2000], help="code cell counts to time"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if min(args.cells) < 6:
        parser.error("--cells must each be at least 6 (imports, parameters, load, split, ...)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"python {sys.version.split()[0]}, {args.repeat} runs per measurement")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nb2prod-plan-bench-") as tmp:
        for cells in sorted(set(args.cells)):
            print(f"timing {cells} code cells ...", flush=True)
            rows.append(measure(cells, Path(tmp), args.repeat))
    print()
    print(render_table(rows))
    print()
    print(render_verdicts(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
