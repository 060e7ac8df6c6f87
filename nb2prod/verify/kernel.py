"""Run a notebook top to bottom in a fresh kernel and read the metrics it computed.

A probe cell after each metric's cell copies the metric's value at that point (a later cell may
rebind the name, as a loop over models does); one last probe prints them all as JSON. Probes
read values, never printed text. The kernel is shut down whatever happens (nbclient's
context), and a failing cell is reported with its number and its error's last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from nb2prod.errors import InputError

MARKER = "NB2PROD_PARITY "
_SETUP = """\
def _nb2prod_capture(*names):
    import numpy

    for name in names:
        try:
            _nb2prod_seen[name] = float(numpy.mean(globals()[name]))
        except Exception:
            _nb2prod_seen[name] = None


def _nb2prod_sample(model, rows, count):
    import numpy

    try:
        model, rows = model(), rows()
        rows = rows.iloc[:count] if hasattr(rows, "iloc") else numpy.asarray(rows)[:count]
        predicted = numpy.asarray(model.predict(rows)).ravel().tolist()
        if hasattr(rows, "to_json"):
            return {"frame": rows.to_json(orient="split"), "predictions": predicted}
        return {"array": rows.tolist(), "predictions": predicted}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


_nb2prod_seen = {}
"""
SAMPLE_ROWS = 20  # rows both models predict on


@dataclass(frozen=True)
class Sample:
    """Rows the notebook's model predicted on, and what it answered (or why it could not)."""

    frame: str | None = None  # pandas' split JSON
    array: list | None = None
    predictions: list | None = None
    error: str | None = None


@dataclass(frozen=True)
class NotebookRun:
    metrics: dict[str, float | None]  # None: the name held no number when its cell had run
    sample: Sample
    seconds: float


def run_notebook(
    path: Path,
    metrics: Iterable[tuple[str, int]],
    cell_timeout: int,
    model: tuple[str, str] | None = None,
) -> NotebookRun:
    """Execute `path` with a probe after each (metric name, code cell number); at the end,
    the notebook's `model` (its name, and the expression it was fitted on) predicts on the
    first rows of that input."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook = nbformat.read(path, as_version=4)
    code_numbers = _code_cell_numbers(notebook)
    probed = _with_probes(notebook, list(metrics), model)
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
        cell = _original_cell(probed, running.get("index"), code_numbers)
        raise InputError(
            path,
            f"ran longer than {cell_timeout} s when the notebook was run top to bottom",
            cell=cell,
            hint="raise --cell-timeout, or make the cell faster",
        ) from None
    except CellExecutionError as error:
        cell = _original_cell(probed, running.get("index"), code_numbers)
        last = (str(error.evalue).strip().splitlines() or [""])[-1]
        raise InputError(
            path,
            f"fails when the notebook is run top to bottom: {error.ename}: {last}",
            cell=cell,
            hint="install what it imports, or fix the cell so the notebook runs from a fresh "
            "kernel",
        ) from None
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
    found = _read_probe(probed)
    return NotebookRun(found.get("metrics", {}), Sample(**found.get("sample", {})), seconds)


def _with_probes(
    notebook: nbformat.NotebookNode,
    metrics: list[tuple[str, int]],
    model: tuple[str, str] | None,
) -> nbformat.NotebookNode:
    """A copy of the notebook with the probe cells in place."""

    def probe(source: str) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_code_cell(source)
        if notebook.nbformat_minor < 5:
            del cell["id"]  # cell ids came with nbformat 4.5
        return cell

    cells = [probe(_SETUP)]
    number = 0
    for cell in notebook.cells:
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        number += 1
        names = [name for name, where in metrics if where == number]
        if names:
            cells.append(probe(f"_nb2prod_capture(*{names!r})"))
    sample = "{}"
    if model is not None:
        name, rows = model
        sample = f"_nb2prod_sample(lambda: {name}, lambda: {rows}, {SAMPLE_ROWS})"
    cells.append(
        probe(
            f"import json\nfound = {{'metrics': _nb2prod_seen, 'sample': {sample}}}\n"
            f"print({MARKER!r} + json.dumps(found))"
        )
    )
    probed = nbformat.from_dict(dict(notebook))
    probed.cells = cells
    return probed


def _read_probe(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    for output in notebook.cells[-1].get("outputs", []):
        text = output.get("text", "")
        for line in text.splitlines():
            if line.startswith(MARKER):
                return json.loads(line[len(MARKER) :])
    return {}


def _code_cell_numbers(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """Each code cell's number among code cells (as plan numbers them), by its id."""
    numbers: dict[str, int] = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            numbers[cell.get("id") or str(id(cell))] = len(numbers) + 1
    return numbers


def _original_cell(
    notebook: nbformat.NotebookNode, index: int | None, numbers: dict[str, int]
) -> int | None:
    if index is None or index >= len(notebook.cells):
        return None
    cell = notebook.cells[index]
    return numbers.get(cell.get("id") or str(id(cell)))
