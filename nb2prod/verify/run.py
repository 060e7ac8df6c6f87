"""The whole check: plan, run the notebook, train the package, compare, report."""

from __future__ import annotations

import ast
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nb2prod.frontend.devices import CPU_FINDING
from nb2prod.frontend.magics import PACKAGE_MANAGER_REASONS
from nb2prod.frontend.model import is_time_series_model
from nb2prod.frontend.planner import build_plan
from nb2prod.frontend.pysyntax import parsed_blocks
from nb2prod.frontend.training_loops import batch_rows
from nb2prod.lifecycle.record import has_record, read_record
from nb2prod.plan import Plan
from nb2prod.verify.compare import (
    Predictions,
    Row,
    causes,
    compare_predictions,
    numbers_only,
    rows,
    table,
)
from nb2prod.verify.devices import cpu_source
from nb2prod.verify.kernel import LeftOutCode, ModelProbe, NotebookRun, run_notebook
from nb2prod.verify.package_run import PackageRun, PredictionFailed, Training, require_package
from nb2prod.verify.seeds import DEFAULT_SEED, described, seeded_libraries, seeding_source


@dataclass(frozen=True)
class Verdict:
    rows: list[Row]
    predictions: Predictions | None
    verified: bool
    report: str


def verify(
    notebook: Path,
    package_dir: Path | None,
    *,
    cell_timeout: int,
    rtol: float,
    atol: float,
    tracking_uri: str | None,
    model_name: str | None = None,
    seed: int | None = DEFAULT_SEED,
) -> Verdict:
    """Run both sides and compare; InputError when either side cannot run."""
    plan = build_plan(notebook, model_name=model_name)
    package_dir = (package_dir or notebook.parent / plan.package_name).absolute()
    require_package(package_dir, plan.package_name)
    stale = notebook_changed_since(package_dir, plan)
    metrics = [(m.name, m.cell) for m in plan.metrics]
    predicting = _predicting(plan)
    model = predicting if isinstance(predicting, ModelProbe) else None
    dropped = [cell.cell for cell in plan.cells if not cell.kept]
    installs = package_manager_lines(plan)
    if plan.model.backend:  # the notebook's network runs on the package's Keras backend
        os.environ.setdefault("KERAS_BACKEND", plan.model.backend)
    libraries = seeded_libraries(plan)
    seeding = "" if seed is None else seeding_source(seed, libraries)
    with tempfile.TemporaryDirectory(prefix="nb2prod-verify-") as scratch:
        uri = tracking_uri or f"sqlite:///{Path(scratch) / 'mlflow.db'}"
        # A run into the scratch store is read for its metrics and predictions, then thrown
        # away: the cross-validation its claim's spread comes from would only cost time there.
        # A run recorded in the team's store is a whole training.
        folds = () if tracking_uri else ("--cross-validation-folds", "0")
        training = Training(package_dir, plan.package_name, uri, seeding, folds)  # meanwhile:
        try:
            ran = run_notebook(
                notebook,
                metrics,
                cell_timeout,
                model,
                left_out_code(plan),
                metric_expressions(plan),
                dropped,
                seeding + cpu_source(plan),
                {cell: [line for line, _ in lines] for cell, lines in installs.items()},
            )
            trained = training.result()
            compared, no_numbers = numbers_only(rows(plan, ran.metrics, trained.metrics))
            predictions, not_compared = (
                _predictions(training, trained, ran, rtol, atol)
                if model is not None
                else (None, str(predicting))
            )
            agree = all(row.agrees(rtol, atol) for row in compared) and not (
                predictions and predictions.differing
            )
            verified = agree and (bool(compared) or predictions is not None)
            deltas = {row.metric: row.delta for row in compared if row.delta is not None}
            training.record_parity(trained, verified, deltas, rtol, seed)
        except BaseException:
            training.stop()  # the notebook failed, verify was stopped, or the package failed
            raise
    lines = [
        f"verify {notebook.name} against {package_dir.name}/ "
        f"(notebook {ran.seconds:.1f} s, package training {trained.seconds:.1f} s)",
        f"seed: {described(seed, libraries)}",
        *_devices_line(plan),
        "",
    ]
    if compared:
        lines += [table(compared, rtol, atol), ""]
    else:
        lines += ["metrics: the notebook measures nothing, so none are compared", ""]
    if predictions is not None:
        lines += [predictions.line(), ""]
    elif not_compared:
        lines += [f"predictions: not compared ({not_compared})", ""]
    known = ([stale] if stale else []) + causes(plan) + _dropped_draws(plan, ran)
    if verified:
        what = (
            "every metric and prediction"
            if compared and predictions
            else ("every metric" if compared else "every prediction")
        )
        lines.append(f"parity: {what} agrees within rtol {rtol:g} (atol {atol:g})")
        lines += [f"  note: {cause}" for cause in known]
        if seed is not None and any(c.startswith("unseeded-random") for c in known):
            lines.append(
                f"  note: the two agree from seed {seed}; as written, each training of the "
                "package draws other numbers (seed the notebook where named above)"
            )
    elif not agree:
        lines.append(f"parity: NOT verified (rtol {rtol:g}, atol {atol:g})")
        lines += [f"  cause: {cause}" for cause in known] or [
            "  cause: none known: the package computes differently from the notebook (a "
            "dropped cell that mattered, or data the notebook changed in place)"
        ]
    else:
        lines.append("parity: nothing to compare (no metric, no prediction on rows)")
        lines += [f"  note: {cause}" for cause in known]
    lines += [f"  note: {note}" for note in ran.notes]
    lines += [
        f"  note: {name} holds no number on either side, so it is no metric and not compared"
        for name in no_numbers
    ]
    lines += [
        f"  note: cell {cell} line {line}: its {construct} line did not run: both sides run on "
        "the libraries installed here, and verify does not change them"
        for cell, found in sorted(installs.items())
        for line, construct in found
    ]
    if tracking_uri:
        lines.append(
            f"recorded on run {trained.run_id} (version {trained.version}): parity_verified="
            f"{'true' if verified else 'false'}"
        )
    return Verdict(compared, predictions, verified, "\n".join(lines) + "\n")


def notebook_changed_since(package_dir: Path, plan: Plan) -> str | None:
    """Why the two sides may differ before either runs: the package's record says it was made
    from another version of the notebook (None when it was not, or when it has no record)."""
    if not has_record(package_dir):
        return None
    record = read_record(package_dir)
    if record.notebook_sha256 == plan.notebook.sha256:
        return None
    return (
        f"the notebook changed since the package was made (sha256 {record.notebook_sha256[:12]} "
        f"then, {plan.notebook.sha256[:12]} now): run 'nb2prod update {package_dir.name}' to "
        "carry the change into the package"
    )


def metric_expressions(plan: Plan) -> dict[str, tuple[str, int]]:
    """What each metric is computed from, as the package's code says, and the line of its cell
    it comes from: for a metric the notebook only prints, the probe computes the same expression
    in the notebook's kernel, where the notebook prints it."""
    found: dict[str, tuple[str, int]] = {}
    wanted = {m.name: m.cell for m in plan.metrics}
    lines = {m.name: m.line for m in plan.metrics}
    for block, tree in parsed_blocks(plan.steps):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(target := node.targets[0], ast.Name)
                and wanted.get(target.id) == block.cell
            ):
                found[target.id] = (ast.unparse(node.value), lines[target.id])
    return found


def _dropped_draws(plan: Plan, ran: NotebookRun) -> list[str]:
    """Cells the package leaves out that the run saw draw from a global random generator, as
    causes: the kept code that draws after them gets other numbers than in the notebook
    (whatever library drew: the run shows it, the Plan cannot always tell). A cell the Plan
    already names for this is not named twice, nor one after the last code the package keeps."""
    named = {f.cell for f in plan.findings if f.code == "dropped-random-draw"}
    last_kept = max((cell.cell for cell in plan.cells if cell.kept), default=0)
    return [
        f"dropped-random-draw (cell {cell}): the notebook's run shows this cell, which the "
        f"package leaves out, drawing from {' and '.join(generators)} global random generator: "
        "code the package keeps that draws after it gets other numbers than in the notebook"
        for cell, generators in sorted(ran.drew.items())
        if cell not in named and cell < last_kept
    ]


def _devices_line(plan: Plan) -> list[str]:
    """What the report says when the notebook was written for a GPU."""
    if not any(f.code == CPU_FINDING for f in plan.findings):
        return []
    return ["devices: the notebook's moves to a GPU ran on the CPU, as the package's do"]


def package_manager_lines(plan: Plan) -> dict[int, list[tuple[int, str]]]:
    """The notebook's package-manager lines (`!pip install ...`), by cell: (line, construct).
    The package's requirements hold what they install; run in verify, they would change the
    environment both sides are compared in (and reach the network)."""
    found: dict[int, list[tuple[int, str]]] = {}
    for cell in plan.cells:
        for dropped in cell.dropped:
            if dropped.reason.startswith(PACKAGE_MANAGER_REASONS):
                found.setdefault(cell.cell, []).append((dropped.line, dropped.construct))
    return found


def left_out_code(plan: Plan) -> dict[int, LeftOutCode]:
    """The code the package leaves out, by cell, with why (the Plan's decisions)."""
    last_kept: dict[int, int] = {}
    for step in plan.steps:
        for block in step.blocks:
            last_kept[block.cell] = max(last_kept.get(block.cell, 0), block.last_line)
    found = {}
    for cell in plan.cells:
        whole = None if cell.kept else cell.reason
        statements = tuple(sorted((d.line, d.reason) for d in cell.dropped))
        if whole is not None or statements:
            found[cell.cell] = LeftOutCode(whole, statements, last_kept.get(cell.cell, 0))
    return found


def _predicting(plan: Plan) -> ModelProbe | str:
    """The notebook's model and the rows it was fitted on (none for a forecaster); or why
    its predictions cannot be compared."""
    model = plan.model
    if model.kind != "fitted":
        return "a rule-based model has no training input to draw rows from"
    if is_time_series_model(model.estimator):
        return ModelProbe(model.name, None)
    if not model.fit_inputs:
        return "what the model was fitted on is not known"
    made_in = next(
        (f.cell for f in plan.findings if f.code == "module-output-served" and f.line), None
    )
    # a batch of processes: the rows the package serves, at each of which every process answers
    rows = batch_rows(model.fit_inputs[0]) if model.batch_of_processes else model.fit_inputs[0]
    return ModelProbe(
        model.name,
        rows,
        model.served_output,
        model.served_with,
        made_in,
        model.served_trees,
        model.fitted_in,
    )


def _predictions(
    training: Training,
    trained: PackageRun,
    ran: NotebookRun,
    rtol: float,
    atol: float,
) -> tuple[Predictions | None, str]:
    """Both models on the notebook's rows (or over the same stretch of the series); or why
    they were not compared."""
    sample = ran.sample
    if sample.predictions is None:
        return None, sample.error or "the model does not predict on rows of its input"
    try:
        ours = training.predictions(trained, sample)
    except PredictionFailed as error:
        return None, f"the package's model did not predict on them: {error}"
    return compare_predictions(sample.predictions, ours, rtol, atol, sample.stretch), ""
