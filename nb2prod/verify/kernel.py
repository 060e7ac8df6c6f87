"""Run a notebook top to bottom in a fresh kernel and read the metrics it computed.

A probe cell after each metric's cell copies the metric's value at that point (a later cell may
rebind the name, as a loop over models does); one last probe prints them all as JSON. Probes
read values, never printed text: a metric the notebook only prints (`print(f1_score(...))`),
which the package names, is computed again by the probe from the same expression, just before
the statement that prints it (the cell may rebind what it reads further down, as a notebook
comparing models in one cell does), on that statement's own line so that line numbers hold. The
kernel
is shut down whatever happens (nbclient's context), and a failing cell is reported with its
number and its error's last line.

Code the package leaves out (a plot written for an older matplotlib, a statistic a newer
library no longer computes) may fail without stopping the run: its error is a note, as long as
no code the package keeps comes at or after the failing line in that cell (it would not have
run). Any other error stops the run.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from nb2prod.errors import InputError

MARKER = "NB2PROD_PARITY "
ALLOWED_TO_RAISE = "raises-exception"  # nbclient runs on past an error in a cell so tagged
_FAILING_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISE_OR_ASSERT = re.compile(r"(raise|assert)\b")
_SETUP = """\
def _nb2prod_number(value):
    # a number, or the mean of an array of them: a torch or TensorFlow tensor read as numpy's
    import numpy

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, numpy.ndarray):
        value = value.numpy()
    return float(numpy.mean(value))


def _nb2prod_capture(*names):
    for name in names:
        try:
            _nb2prod_seen[name] = _nb2prod_number(globals()[name])
        except Exception:
            _nb2prod_seen[name] = None


def _nb2prod_evaluate(computations):
    for name, compute in computations.items():
        try:
            _nb2prod_seen[name] = _nb2prod_number(compute())
        except Exception:
            _nb2prod_seen[name] = None


def _nb2prod_sample(model, rows, count, answer=None):
    import numpy

    try:
        model, rows = model(), rows()
        if type(model).__module__ != "builtins" and hasattr(model, "_parameters"):
            return _nb2prod_module_sample(model, rows, count, answer)
        if isinstance(rows, dict):  # a formula's data given as columns
            import pandas

            rows = pandas.DataFrame(rows)
        rows = rows.iloc[:count] if hasattr(rows, "iloc") else numpy.asarray(rows)[:count]
        given = rows
        if type(model).__module__.startswith("xgboost") and type(model).__name__ == "Booster":
            import xgboost  # a booster of xgb.train predicts on a DMatrix, as MLflow gives it

            given = xgboost.DMatrix(rows)
        # a Keras network answers with what the notebook makes of its output (`answer`)
        predicted = _nb2prod_per_row(
            model.predict(given) if answer is None else answer(model, rows)
        )
        if hasattr(rows, "to_frame") and getattr(rows, "ndim", 2) == 1:
            rows = rows.to_frame()  # one column (a text Series): sent as a frame of it
        if hasattr(rows, "to_json"):
            # floats also as hex, every bit: JSON's decimals rounded a rolling mean across a
            # tree's threshold, and the package was asked about other rows than the notebook's
            exact = [
                [position, [float(value).hex() for value in rows.iloc[:, position]]]
                for position, kind in enumerate(rows.dtypes)
                if getattr(kind, "kind", "") == "f"
            ]
            return {"frame": rows.to_json(orient="split"), "exact": exact, "predictions": predicted}
        return {"array": rows.tolist(), "predictions": predicted}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


def _nb2prod_head(rows, count):
    # The first rows as they are once the model is fitted on them: a later cell may bind the
    # name to other data (a second example in the same notebook) or change it in place.
    import copy

    try:
        rows = rows()
        if hasattr(rows, "iloc"):
            return rows.iloc[:count].copy()
        if isinstance(rows, dict):  # a formula's data given as columns
            return copy.deepcopy(rows)
        if hasattr(rows, "clone"):  # a torch tensor
            return rows[:count].clone()
        return copy.deepcopy(rows[:count])
    except Exception:
        return None


def _nb2prod_module_sample(module, rows, count, answer):
    # A PyTorch module answers for float rows as the package serves it: no gradients, and
    # what the notebook makes of its output when the package serves that (`answer`).
    import numpy
    import torch

    if isinstance(rows, torch.Tensor):
        rows = rows.detach().cpu().numpy()
    rows = numpy.asarray(rows, dtype="float32")[:count]
    with torch.no_grad():
        given = torch.from_numpy(rows)
        output = answer(module, given) if answer is not None else module(given)
    predicted = _nb2prod_per_row(output.cpu() if hasattr(output, "cpu") else output)
    return {"array": rows.tolist(), "predictions": predicted}


def _nb2prod_per_row(values):
    # One answer per row: a number, or the row's list of numbers (a probability per class)
    import numpy

    values = numpy.asarray(values)
    return values.reshape(len(values), -1).tolist() if values.ndim > 1 else values.tolist()


def _nb2prod_forecast(model, count):
    import numpy

    try:
        model = model()
        observed = len(model.model.endog)
        exog = getattr(model.model.data, "orig_exog", None)
        width = getattr(model.model, "k_exog", None)
        ahead = exog is None or width == 0
        start = max(0, observed - (count // 2 if ahead else count))
        end = observed - 1 + (count - count // 2 if ahead else 0)
        if hasattr(model, "predict"):
            values = model.predict(start=start, end=end)
        else:
            values = model.get_prediction(start=start, end=end).predicted_mean
        predicted = numpy.asarray(values, dtype=float).ravel().tolist()
        return {"stretch": [start, end], "predictions": predicted}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


def _nb2prod_stream(cell):
    # The state of the global random generators (numpy's, Python's, torch's) once imported:
    # a cell whose state after differs from its state before drew from them.
    import sys

    states = {}
    if "numpy" in sys.modules:
        state = sys.modules["numpy"].random.get_state()
        states["numpy's"] = hash((state[1].tobytes(), state[2]))
    if "random" in sys.modules:
        states["Python's random"] = hash(sys.modules["random"].getstate())
    if "torch" in sys.modules:
        states["torch's"] = hash(sys.modules["torch"].random.get_rng_state().numpy().tobytes())
    _nb2prod_streams.setdefault(cell, []).append(states)


_nb2prod_seen = {}
_nb2prod_rows = None
_nb2prod_streams = {}
_nb2prod_answer_reads = {}
"""
SAMPLE_ROWS = 20  # rows both models predict on; steps a forecaster forecasts


@dataclass(frozen=True)
class ModelProbe:
    """The notebook's model by name, and the expression it was fitted on; a forecaster has no
    rows to predict on (`rows` is None): it answers a stretch of its series instead."""

    name: str
    rows: str | None
    answer: str | None = None  # a PyTorch module's served output, in terms of model(inputs)
    # the other objects `answer` reads (a GP's likelihood), as they are once the cell that
    # makes the served output has run: a later cell may bind the name to something else
    answer_reads: tuple[str, ...] = ()
    answer_cell: int | None = None
    # the model as the package serves it, as an expression of the notebook's (a booster cut
    # to the trees the notebook predicts with); None: the model by its name
    served: str | None = None
    # the code cell that fits the model: its rows are read once that cell has run, as the
    # model saw them; None: once the notebook has run
    fitted_in: int | None = None


@dataclass(frozen=True)
class Sample:
    """Rows the notebook's model predicted on, or the stretch of its series a forecaster
    forecast (the last fitted steps, and as many after them when no exogenous data is needed),
    and what it answered (or why it could not)."""

    frame: str | None = None  # pandas' split JSON
    exact: list | None = None  # its float columns to the bit: [position, [float.hex, ...]]
    array: list | None = None
    stretch: tuple[int, int] | None = None  # start, end: positions in the fitted series
    predictions: list | None = None
    error: str | None = None


@dataclass(frozen=True)
class LeftOutCode:
    """A cell's code the package leaves out (display code, a statistic nothing reads): an error
    raised there cannot change what the package computes, unless code the package keeps was
    still to run in that cell (the run went no further)."""

    whole_cell: str | None  # why the whole cell is left out; None when some of it is kept
    statements: tuple[tuple[int, str], ...]  # each statement left out: first line, why
    last_kept: int  # the cell's last line the package keeps; 0 for none

    def why(self, line: int | None) -> str | None:
        """Why the statement an error on `line` raised in is left out; None when code the
        package keeps is at or after that line, or the line is not known."""
        if line is None or self.last_kept >= line:
            return None
        started = [reason for first, reason in self.statements if first <= line]
        return started[-1] if started else self.whole_cell


@dataclass(frozen=True)
class NotebookRun:
    metrics: dict[str, float | None]  # None: the name held no number when its cell had run
    sample: Sample
    seconds: float
    notes: tuple[str, ...] = ()  # errors in code the package leaves out, which the run passed
    # cells the package leaves out that drew from a global generator -> which generators
    drew: dict[int, list[str]] = field(default_factory=dict)


def run_notebook(
    path: Path,
    metrics: Iterable[tuple[str, int]],
    cell_timeout: int,
    model: ModelProbe | None = None,
    left_out_code: Mapping[int, LeftOutCode] | None = None,
    expressions: Mapping[str, tuple[str, int]] | None = None,
    dropped: Iterable[int] = (),
    seeding: str = "",
    left_out: Mapping[int, Iterable[int]] | None = None,
) -> NotebookRun:
    """Execute `path` with a probe after each (metric name, code cell number); at the end,
    the notebook's `model` predicts on the first rows of its input (a forecaster forecasts
    the stretch around the end of its series). An error in code the package leaves out
    (`left_out_code`, by code cell number) is a note; any other error stops the run. A
    metric the notebook's cell does not bind is computed from its `expressions` (the
    package's name for a printed metric -> its expression, and the line of its cell that
    prints it). Around each cell the package
    leaves out (`dropped`), the global random generators' state is read: the run says which
    of them drew. `seeding` runs before the notebook's first cell. The lines in `left_out` (by
    code cell number) do not run: package managers' lines, which would change the environment
    both sides run in."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook = nbformat.read(path, as_version=4)
    left_out_code = left_out_code or {}
    probed, origin = _with_probes(
        notebook,
        list(metrics),
        model,
        set(left_out_code),
        dict(expressions or {}),
        set(dropped),
        seeding,
        {cell: set(lines) for cell, lines in (left_out or {}).items()},
    )
    os.environ.setdefault("MPLBACKEND", "Agg")  # the kernel inherits it: no window to draw in
    client = NotebookClient(
        probed,
        timeout=cell_timeout,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # its own chatter is not the user's
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    running: dict[str, int] = {}
    client.on_cell_start = lambda cell, cell_index: running.update(index=cell_index)
    started = time.perf_counter()
    try:
        # The kernel process's own output (not the cells') is not the user's to read, and
        # Ctrl-C is for verify, which then shuts the kernel down, not for the kernel.
        client.execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except CellTimeoutError:
        cell = origin.get(running.get("index", -1))
        raise InputError(
            path,
            f"ran longer than {cell_timeout} s when the notebook was run top to bottom",
            cell=cell,
            hint="raise --cell-timeout, or make the cell faster",
        ) from None
    except CellExecutionError as error:
        cell = origin.get(running.get("index", -1))
        raise _cell_failed(path, cell, None, error.ename, error.evalue) from None
    except DeadKernelError as error:
        raise InputError(path, f"the kernel died while running the notebook: {error}") from None
    except AssertionError:
        if client.km is not None:
            raise
        # Ctrl-C or SIGTERM: nbclient's own handler shuts the kernel down, then its cleanup
        # trips on the kernel being gone. The kernel is down: stop as interrupted.
        raise KeyboardInterrupt from None
    except NoSuchKernel:
        raise InputError(
            path,
            "cannot run the notebook: no Python kernel in this environment",
            hint="install ipykernel into it (pip install 'nb2prod[verify]')",
        ) from None
    seconds = time.perf_counter() - started
    notes = _errors_passed(path, probed, origin, left_out_code)
    found = _read_probe(probed)
    sample = found.get("sample", {})
    if "stretch" in sample:
        sample["stretch"] = tuple(sample["stretch"])
    drew = {}
    for cell, (before, after, *_) in found.get("streams", {}).items():
        changed = [name for name, state in after.items() if before.get(name, state) != state]
        if changed:
            drew[int(cell)] = changed
    return NotebookRun(found.get("metrics", {}), Sample(**sample), seconds, tuple(notes), drew)


def _errors_passed(
    path: Path,
    notebook: nbformat.NotebookNode,
    origin: dict[int, int],
    left_out_code: Mapping[int, LeftOutCode],
) -> list[str]:
    """The errors in code the package leaves out that the run went past, as notes; an
    InputError for the first error anywhere else (cells with code the package leaves out run
    on past an error, the others stop). The notebook's own `raise` or `assert` failing says
    the notebook must stop there, wherever it is: that stops the run too."""
    notes = []
    for index, cell in enumerate(notebook.cells):
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if error is None:
            continue
        number = origin.get(index)
        found = _FAILING_LINE.search(_ANSI.sub("", "\n".join(error.get("traceback", []))))
        line = int(found.group(1)) + _leading_blank_lines(cell.source) if found else None
        where = left_out_code.get(number or 0)
        why = where.why(line) if where is not None else None
        if why is None or _stops_on_purpose(cell.source, line):
            raise _cell_failed(path, number, line, error.get("ename"), error.get("evalue", ""))
        last = _last_line(error.get("evalue", ""))
        notes.append(
            f"cell {number} line {line}: code the package leaves out ({why}) raised "
            f"{error.get('ename')}: {last}; the run went on past it"
        )
    return notes


def _stops_on_purpose(source: str, line: int | None) -> bool:
    """Whether the cell's failing line is the notebook's own `raise` or `assert`."""
    lines = source.split("\n")
    if line is None or not 0 < line <= len(lines):
        return False
    return _RAISE_OR_ASSERT.match(lines[line - 1].lstrip()) is not None


def _with_probes(
    notebook: nbformat.NotebookNode,
    metrics: list[tuple[str, int]],
    model: ModelProbe | None,
    may_raise: set[int],
    expressions: dict[str, tuple[str, int]],
    dropped: Set[int] = frozenset(),
    seeding: str = "",
    left_out: Mapping[int, Set[int]] | None = None,
) -> tuple[nbformat.NotebookNode, dict[int, int]]:
    """A copy of the notebook with the probe cells in place, and the notebook's code cell
    number of each cell of the copy that is one; the cells in `may_raise` are tagged so that
    an error in them does not stop the run."""

    def probe(source: str) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_code_cell(source)
        if notebook.nbformat_minor < 5:
            del cell["id"]  # cell ids came with nbformat 4.5
        return cell

    cells = [probe(_SETUP + seeding)]
    origin: dict[int, int] = {}
    number = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        number += 1
        if number in may_raise:
            cell = nbformat.from_dict(dict(cell))  # a copy: the tag is for this run only
            cell.metadata = nbformat.from_dict({**cell.get("metadata", {})})
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), ALLOWED_TO_RAISE]
        names = [name for name, where in metrics if where == number]
        bound = _bound_names(cell.source)
        computed = {n: expressions[n] for n in names if n not in bound and n in expressions}
        names = [n for n in names if n not in computed]
        computed, source = _evaluated_in_place(cell.source, computed)
        source = _without_lines(source, (left_out or {}).get(number, set()))
        if source != cell.source:
            cell = nbformat.from_dict(dict(cell))  # a copy: the probes are for this run only
            cell.source = source
        if number in dropped:
            cells.append(probe(f"_nb2prod_stream({number})"))
        origin[len(cells)] = number
        cells.append(cell)
        if number in dropped:
            cells.append(probe(f"_nb2prod_stream({number})"))
        if model is not None and model.answer_reads and number == model.answer_cell:
            held = ", ".join(f"{name!r}: {name}" for name in model.answer_reads)
            cells.append(probe(f"_nb2prod_answer_reads = {{{held}}}"))
        if model is not None and model.rows is not None and number == model.fitted_in:
            cells.append(
                probe(f"_nb2prod_rows = _nb2prod_head(lambda: {model.rows}, {SAMPLE_ROWS})")
            )
        if names:
            cells.append(probe(f"_nb2prod_capture(*{names!r})"))
        if computed:
            cells.append(probe(_evaluation(computed)))
    sample = "{}"
    if model is not None and model.rows is None:
        sample = f"_nb2prod_forecast(lambda: {model.name}, {SAMPLE_ROWS})"
    elif model is not None:
        answer = _answer(model)
        rows = f"_nb2prod_rows if _nb2prod_rows is not None else ({model.rows})"
        sample = (
            f"_nb2prod_sample(lambda: {model.served or model.name}, lambda: {rows}, "
            f"{SAMPLE_ROWS}, {answer})"
        )
    cells.append(
        probe(
            f"import json\nfound = {{'metrics': _nb2prod_seen, 'sample': {sample}, "
            "'streams': _nb2prod_streams}\n"
            f"print({MARKER!r} + json.dumps(found))"
        )
    )
    probed = nbformat.from_dict(dict(notebook))
    probed.cells = cells
    return probed, origin


def _without_lines(source: str, lines: Set[int]) -> str:
    """`source` with the given lines (1-based) replaced by `pass` at their indentation: the
    cell's other lines keep their numbers, and a block keeps a body."""
    if not lines:
        return source
    kept = source.split("\n")
    for number in lines:
        if 0 < number <= len(kept):
            text = kept[number - 1]
            indent = text[: len(text) - len(text.lstrip())]
            kept[number - 1] = f"{indent}pass  # left out by nb2prod verify"
    return "\n".join(kept)


def _answer(model: ModelProbe) -> str:
    """The served output as a function of the module and its inputs, reading the other objects
    it needs as they were where the notebook made it (as the package keeps them), else as the
    notebook leaves them."""
    if not model.answer:
        return "None"
    if not model.answer_reads:
        return f"lambda model, inputs: {model.answer}"
    defaults = ", ".join(f"{name}={name}" for name in model.answer_reads)
    return f"(lambda {defaults}: lambda model, inputs: {model.answer})(**_nb2prod_answer_reads)"


def _evaluation(computed: Mapping[str, tuple[str, int]]) -> str:
    pairs = ", ".join(f"{name!r}: lambda: {text}" for name, (text, _) in computed.items())
    return f"_nb2prod_evaluate({{{pairs}}})"


def _evaluated_in_place(
    source: str, computed: dict[str, tuple[str, int]]
) -> tuple[dict[str, tuple[str, int]], str]:
    """The cell's source with each printed metric computed at the start of the line of the
    statement that prints it (`_nb2prod_evaluate(...); print(...)`), and the metrics left to
    compute once the cell has run: those whose line starts no statement of the cell's own."""
    starts = _statement_starts(source)
    lines = source.split("\n")
    left: dict[str, tuple[str, int]] = {}
    at: dict[int, dict[str, tuple[str, int]]] = {}
    for name, (text, line) in computed.items():
        if line in starts:
            at.setdefault(line, {})[name] = (text, line)
        else:
            left[name] = (text, line)
    for line, here in at.items():
        lines[line - 1] = f"{_evaluation(here)}; {lines[line - 1]}"
    return left, "\n".join(lines)


def _statement_starts(source: str) -> set[int]:
    """The lines on which a top-level statement of the cell starts, alone on its lines; none
    when the cell does not parse (IPython lines left out) or is a cell magic."""
    if source.lstrip().startswith("%%"):
        return set()
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.split("\n")]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set()
    taken: dict[int, int] = {}
    for statement in tree.body:
        for line in range(statement.lineno, (statement.end_lineno or statement.lineno) + 1):
            taken[line] = taken.get(line, 0) + 1
    return {
        s.lineno
        for s in tree.body
        if s.col_offset == 0
        and all(taken[n] == 1 for n in range(s.lineno, (s.end_lineno or s.lineno) + 1))
    }


def _cell_failed(
    path: Path, cell: int | None, line: int | None, name: object, value: object
) -> InputError:
    """A cell raised when the notebook was run: where, and the error's last line."""
    return InputError(
        path,
        f"fails when the notebook is run top to bottom: {name}: {_last_line(value)}",
        cell=cell,
        line=line,
        hint="install what it imports, or fix the cell so the notebook runs from a fresh kernel",
    )


def _last_line(value: object) -> str:
    return (str(value).strip().splitlines() or [""])[-1]


def _leading_blank_lines(source: str) -> int:
    """IPython drops a cell's leading blank lines before it runs it, so its traceback's line
    numbers start after them; the Plan counts every line of the cell."""
    lines = source.split("\n")
    return next((i for i, text in enumerate(lines) if text.strip()), len(lines))


def _bound_names(source: str) -> set[str]:
    """The names a cell's own code binds (IPython lines left out); all names when it does not
    parse, so that nothing is computed in its place."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return {n.group() for n in re.finditer(r"\w+", source)}
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }


def _read_probe(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    for output in notebook.cells[-1].get("outputs", []):
        text = output.get("text", "")
        for line in text.splitlines():
            if line.startswith(MARKER):
                return json.loads(line[len(MARKER) :])
    return {}
