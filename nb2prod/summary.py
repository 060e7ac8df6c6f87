"""The readable form of a Plan: what each cell became and why, then what to look at."""

from __future__ import annotations

import textwrap

from nb2prod.plan import ROLE_TITLES, Plan

_SEVERITY_WIDTH = 7


def render_summary(plan: Plan) -> str:
    notebook = plan.notebook
    status = plan.honesty.implementation_status
    contract_statuses = plan.contract["statuses"]
    mark = contract_statuses[status]["mark"] if status in contract_statuses else ""
    lines = [
        f"{notebook.path}  (nbformat {notebook.nbformat}"
        + (f", upgraded from v{notebook.upgraded_from}" if notebook.upgraded_from else "")
        + f", kernel {notebook.kernel or 'unnamed'}, sha256 {notebook.sha256[:12]})",
        f"package: {plan.package_name}",
        "",
        "Cells (numbered among code cells; [n] is the execution count)",
    ]
    for cell in plan.cells:
        count = f"[{cell.execution_count}]" if cell.execution_count is not None else "[ ]"
        verdict = "kept   " if cell.kept else "dropped"
        step = f" -> {_step_of(plan, cell.cell)}" if cell.kept else ""
        lines.append(
            f"  cell {cell.cell:>3} {count:>6}  {verdict}  {ROLE_TITLES[cell.role]:<21} "
            f"{cell.reason}{step}"
        )
        for dropped in cell.dropped:
            lines.append(f"{'':>20}line {dropped.line}: {dropped.construct}: {dropped.reason}")
    model = plan.model
    lines += ["", "Model"]
    lines.append(
        f"  {model.name} = {model.estimator} ({model.kind}, {model.task}"
        + (f", {model.library}" if model.library else "")
        + f"), cell {model.fitted_in or model.defined_in}: {model.reason}"
    )
    lines += ["", "Metrics"]
    if not plan.metrics:
        lines.append("  none: nothing in the notebook measures the model")
    for metric in plan.metrics:
        folds = f", {metric.folds} folds" if metric.folds else ""
        how = f"{metric.function}(...)"
        if metric.expression is not None:  # computed by the notebook's own code
            shown = textwrap.shorten(metric.expression, 60, placeholder="...")
            how = f"{shown}, {metric.function} by hand,"
        lines.append(f"  {metric.name} = {how} on {metric.validation}{folds} (cell {metric.cell})")
    lines += ["", "Parameters"]
    if not plan.parameters:
        lines.append("  none")
    for parameter in plan.parameters:
        lines.append(
            f"  {parameter.name}: {parameter.type} = {parameter.default!r} (cell {parameter.cell})"
        )
    lines += ["", "Requirements"]
    for requirement in plan.requirements:
        lines.append(f"  {requirement.name}{requirement.specifier}  <- {requirement.source}")
    for module in plan.local_modules:
        lines.append(f"  local module {module.module} ({module.path}), cell {module.cell}")
    honesty = plan.honesty
    lines += [
        "",
        "Honesty",
        f"  implementation_status: {mark} {status} ({honesty.status_source}: {honesty.reason})",
        f"  validation_method: {honesty.validation_method}",
        f"  validation_status: {honesty.validation_status}"
        + (f", claim from {honesty.primary_metric}" if honesty.primary_metric else ""),
    ]
    lines += ["", f"Findings ({len(plan.findings)})"]
    if not plan.findings:
        lines.append("  none")
    for finding in plan.findings:
        where = f"cell {finding.cell}" if finding.cell else "notebook"
        if finding.line:
            where += f":{finding.line}"
        hint = f" -> {finding.hint}" if finding.hint else ""
        lines.append(
            f"  {finding.severity:<{_SEVERITY_WIDTH}} {where:<12} {finding.code}: "
            f"{finding.message}{hint}"
        )
    return "\n".join(lines) + "\n"


def _step_of(plan: Plan, cell: int) -> str:
    for step in plan.steps:
        if any(block.cell == cell for block in step.blocks):
            return step.name
    return "?"
