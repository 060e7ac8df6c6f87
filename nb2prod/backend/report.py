"""What `convert` tells the user: what it wrote, where each cell went, and what to run next."""

from __future__ import annotations

import os
from pathlib import Path

from nb2prod.backend.codegen import cell_list
from nb2prod.backend.render import Conversion, how_training_measures
from nb2prod.plan import ROLE_TITLES


def render_report(conversion: Conversion) -> str:
    plan, code = conversion.plan, conversion.code
    target = shown_path(conversion.target)
    status = plan.honesty.implementation_status
    mark = plan.contract["statuses"][status]["mark"]
    functions = {cell: f.name for f in [*code.features, *code.pipeline] for cell in f.cells}
    lines = [
        f"Wrote {target}/ ({len(conversion.files)} files) from {plan.notebook.path}",
        *(
            [
                f"  over the earlier render: {len(conversion.replaced)} of its files rewritten or "
                "removed, yours kept"
            ]
            if conversion.replaced
            else []
        ),
        "",
        "Files",
        *(f"  {name}" for name in conversion.files),
        "",
        "Cells",
    ]
    for cell in plan.cells:
        if not cell.kept:
            where = f"dropped: {cell.reason}"
        elif cell.role == "imports":
            where = "module imports"
        elif cell.role == "functions":
            where = "helpers.py"
        elif cell.cell in functions:
            module = "features.py" if cell.role == "features" else "pipeline.py"
            where = f"{module}: {functions[cell.cell]}()"
        elif cell.role == "parameters":
            where = "pipeline.Parameters (train options)"
        else:
            where = f"not part of training ({ROLE_TITLES[cell.role]})"
        lines.append(f"  cell {cell.cell:>3}  {where}")
    shipped = list({d.path: d for d in reversed(plan.data_files) if d.size is not None}.values())
    shipped.reverse()
    if shipped:
        lines += ["", "Data files (shipped in the package; DATA_DIR overrides their folder)"]
        lines += [
            f"  {d.path} -> {plan.package_name}/data/{d.path} (cell {d.cell})" for d in shipped
        ]
    lines += ["", "Honesty"]
    lines.append(
        f"  {mark} {status}: {plan.honesty.status_source}: {plan.honesty.reason}; validation: "
        f"{plan.honesty.validation_method}"
    )
    lines.append(f"  claim: {_claim(conversion)}")
    if plan.findings:
        lines += ["", f"Findings ({len(plan.findings)})"]
        for finding in plan.findings:
            where = f"cell {finding.cell}" if finding.cell else "notebook"
            lines.append(f"  {finding.severity:<7} {where:<9} {finding.code}: {finding.message}")
    if conversion.lint_debt:
        lines += ["", f"Notebook lint debt carried as '# noqa' ({len(conversion.lint_debt)})"]
        lines += [f"  {violation}" for violation in conversion.lint_debt]
    lines += ["", "Serving", *_routes(conversion)]
    promote = "promote --allow-heuristic" if status == "HEURISTIC" else "promote"
    store = conversion.code.store_step
    if store:
        lines += [
            "",
            "Feature store",
            f"  feature_repo/: a Feast repository; view {store} carries its honesty in its tags",
        ]
    extras = "test,feast" if store else "test"
    lines += [
        "",
        "Next",
        f"  cd {target}",
        f'  python -m pip install -e ".[{extras}]"',
        f"  python -m {plan.package_name}.train",
        *([f"  python -m {plan.package_name}.features materialize"] if store else []),
        f"  python -m {plan.package_name}.{promote}",
        f"  uvicorn {plan.package_name}.serve:app",
        "  python -m pytest",
    ]
    return "\n".join(lines) + "\n"


def _routes(conversion: Conversion) -> list[str]:
    """What each prediction route takes: a user must know whether a client sends the data the
    notebook loaded or the columns its feature code computed."""
    raw = conversion.code.raw
    lines = ["  POST /predict      the model's input, as the model was fitted on it"]
    if raw.cells:
        lines.append(
            f"  POST /predict/raw  records of {raw.loaded} as cell {raw.loaded_in} loads it, "
            f"through the feature code of {cell_list(raw.cells)}, for each version training "
            "finds it row-wise"
        )
    else:
        lines.append(f"  no /predict/raw: {raw.reason}")
    return lines


def shown_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _claim(conversion: Conversion) -> str:
    """What training will quote as the model's accuracy, and how it will measure it."""
    measuring = how_training_measures(conversion.plan, conversion.code)
    spec, why = measuring["cross_validation"], measuring["cross_validation_note"]
    primary = conversion.plan.honesty.primary_metric
    if spec is not None:
        metric = spec["metric"] or "the model's own score"
        return f"{metric} by k-fold cross-validation at training (5 folds unless told otherwise)"
    if primary is not None:
        return f"the notebook's {primary}, as training measures it ({why})"
    return f"not measured ({why})"
