"""Render the template with the Plan, format it with ruff, and move it into place whole.

The package is built in a staging folder beside the target and only renamed into place once
it is complete and ruff-clean, so a failed conversion never leaves half a package behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nb2prod.backend.codegen import GeneratedCode, fit_keywords, generate
from nb2prod.backend.feature_store import (
    chosen_feature_store,
    feast_requirement,
    feature_store_context,
)
from nb2prod.backend.requirements import runtime_requirements
from nb2prod.backend.runtime_wheel import runtime_version, runtime_wheel, wheel_name
from nb2prod.errors import InputError
from nb2prod.frontend.feature_honesty import feature_honesty
from nb2prod.frontend.planner import build_plan
from nb2prod.lifecycle.record import (
    RECORD_DIR,
    ConvertOptions,
    relative_to_package,
    rendered_files,
    write_record,
)
from nb2prod.lifecycle.replace import refuse_to_replace, replace_render
from nb2prod.plan import Plan
from nb2prod.resources import data_dir


@dataclass(frozen=True)
class Conversion:
    plan: Plan
    code: GeneratedCode
    target: Path
    files: tuple[str, ...]  # relative to target
    lint_debt: tuple[str, ...] = ()  # the notebook's own ruff findings, carried as noqa comments
    replaced: tuple[str, ...] = ()  # files of an earlier render that --force rewrote or removed


@dataclass(frozen=True)
class Render:
    """A package rendered, formatted, linted and recorded in a staging folder, not yet in place."""

    plan: Plan
    code: GeneratedCode
    folder: Path  # the staging copy of the whole package, `.nb2prod/` included
    files: tuple[str, ...]
    lint_debt: tuple[str, ...]


def convert(
    notebook: Path,
    output: Path | None = None,
    *,
    force: bool = False,
    status: str | None = None,
    model_name: str | None = None,
    template: Path | None = None,
    feature_store: str | None = None,
) -> Conversion:
    """Notebook in, a package folder out (or an InputError and nothing written).

    An existing folder is only ever re-rendered, with --force, when it is a package nb2prod
    recorded and nobody edited: what the user changed or added is theirs, and `nb2prod
    update` merges a new render into it instead.
    """
    chosen_feature_store(notebook, feature_store)  # a bad setting is said before the plan runs
    plan = build_plan(notebook, status=status, model_name=model_name)
    target = (output or notebook.parent / plan.package_name).absolute()
    if target.exists() and not force:
        raise InputError(target, "already exists", hint="pass --force to replace it, or -o DIR")
    if target.exists() and not target.is_dir():
        raise InputError(target, "exists and is not a folder", hint="choose another -o DIR")
    if notebook.resolve().is_relative_to(target.resolve()):
        raise InputError(
            target,
            "holds the notebook itself; replacing it would delete the notebook",
            hint="choose another -o DIR",
        )
    if target.exists():
        refuse_to_replace(target)
    options = ConvertOptions(
        status=status,
        model=model_name,
        feature_store=feature_store,
        template=relative_to_package(template, target) if template else None,
    )
    with writing(target), rendering(notebook, target, options, plan=plan) as render:
        replaced: tuple[str, ...] = ()
        if target.exists() and any(target.iterdir()):
            replaced = replace_render(target, render.folder)
        else:
            _move_into_place(render.folder, target)
    return Conversion(render.plan, render.code, target, render.files, render.lint_debt, replaced)


@contextlib.contextmanager
def writing(target: Path) -> Iterator[None]:
    """A failure to write is one line naming the folder, not a traceback."""
    try:
        yield
    except OSError as error:
        raise InputError(
            target,
            f"cannot write the package: {error.strerror or error}",
            hint="check the folder's permissions and free space",
        ) from None


@contextlib.contextmanager
def rendering(
    notebook: Path,
    target: Path,
    options: ConvertOptions,
    *,
    plan: Plan | None = None,
    package_name: str | None = None,
) -> Iterator[Render]:
    """Render the package for `target` in a staging folder beside it, removed on leaving.

    `package_name` keeps the name a package already has (`update` of a package whose notebook
    was renamed); the Plan is built from the notebook when not given.
    """
    template = (target / options.template).resolve() if options.template else None
    store = chosen_feature_store(notebook, options.feature_store)
    if plan is None:
        plan = build_plan(notebook, status=options.status, model_name=options.model)
    if package_name and plan.package_name != package_name:
        plan = replace(plan, package_name=package_name)
    _refuse_what_cannot_train(plan)
    template = template or data_dir("templates")
    if not (template / "cookiecutter.json").is_file():
        raise InputError(template, "is not a cookiecutter template (no cookiecutter.json)")
    code = generate(plan, feature_store=store)
    extras = {}
    if store == "feast":
        pinned = runtime_requirements(plan)["install"]
        extras["feast"] = [feast_requirement(pinned, notebook)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".nb2prod-", dir=target.parent) as staging:
        built = _render(template, plan, code, Path(staging), extras)
        _drop_empty_files(built)
        _copy_data_files(plan, notebook.parent, built / plan.package_name / "data")
        package = built / plan.package_name
        lint_debt = _ruff(
            built,
            [p for p in (package / n for n in _NOTEBOOK_CODE) if p.is_file()],
        )
        _lint_honesty(built)
        files = tuple(rendered_files(built))
        write_record(
            built,
            target,
            notebook=notebook,
            notebook_sha256=plan.notebook.sha256,
            plan_json=plan.to_json(),
            options=options,
            runtime_version=runtime_version(),
        )
        yield Render(plan, code, built, files, tuple(lint_debt))


def _refuse_what_cannot_train(plan: Plan) -> None:
    """A package that converts and then cannot train is the worst outcome: refuse it here."""
    for finding in plan.findings:
        if finding.code in _BLOCKING_FINDINGS:
            raise InputError(
                plan.notebook.path,
                finding.message,
                cell=finding.cell,
                line=finding.line,
                hint=finding.hint,
            )


_BLOCKING_FINDINGS = frozenset(
    {
        "missing-data-file",
        "unresolved-data-path",
        "data-file-outside",
        "unsatisfiable-requirement",
    }
)


def template_context(
    plan: Plan, code: GeneratedCode, extras: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """Everything the template may use: the Plan itself, plus the code generated from it."""
    notebook_name = _printable(Path(plan.notebook.path).name)
    # Versions and digests live in the record, not in every file: a new notebook or nb2prod
    # changes only the files whose content changes, so `update` merges and diffs stay small.
    header = f"Generated by nb2prod from {notebook_name} (what made it: {RECORD_DIR}/record.json)."
    measuring = how_training_measures(plan, code)
    honesty = {
        "generated_by": header,
        "model_name": plan.package_name,
        "model_kind": plan.model.kind,
        "model_class": plan.model.estimator.split("(")[0].rsplit(".", 1)[-1],
        "implementation_status": plan.honesty.implementation_status,
        "status_source": plan.honesty.status_source,
        "status_reason": plan.honesty.reason,
        "validation_method": plan.honesty.validation_method,
        "primary_metric": plan.honesty.primary_metric,
        "greater_is_better": _greater_is_better(plan),
        **measuring,
        "uncertainty": plan.honesty.uncertainty,
        "notebook": notebook_name,
        "notebook_sha256": plan.notebook.sha256,
    }
    return {
        "package_name": plan.package_name,
        "_plan": plan.to_dict(),
        "_code": {
            "header": header,
            "notebook_name": notebook_name,
            "imports": code.imports,
            "helpers": code.helpers,
            "helper_names": code.helper_names,
            "parameters": code.parameters,
            "features": [
                _plain(vars(f)) | {"honesty": _feature_honesty(plan, f.step or f.name)}
                for f in code.features
            ],
            "feature_store": (
                feature_store_context(plan, code.store_step, plan.package_name)
                if code.store_step
                else None
            ),
            "pipeline": [_plain(vars(f)) for f in code.pipeline],
            "raw_route": _plain(vars(code.raw)) if code.raw.cells else None,
            "run_body": code.run_body,
            "as_loaded_import": code.as_loaded_import,
            "honesty_json": json.dumps(honesty, indent=2, ensure_ascii=False),
            "measuring": measuring,
            "contract_json": json.dumps(
                {"generated_by": header, **plan.to_dict()["contract"]},
                indent=2,
                ensure_ascii=False,
            ),
            "requirements": runtime_requirements(plan) | {"extras": extras or {}},
            "trusted_modules": trusted_modules(plan),
            "runtime_version": runtime_version(),
            "runtime_wheel": wheel_name(runtime_version()),
            "runtime_json": _runtime_json(plan, header),
            "serving_imports": serving_imports(plan),
            # torch's CPU wheels in the image: a module, or a Keras network on torch
            "pytorch": any(requirement.name == "torch" for requirement in plan.requirements),
        },
    }


# The MLflow flavour that loads a model whose type comes from this library (as model_io logs it).
_FLAVOUR_MODULES = {
    "xgboost": ("mlflow.xgboost",),
    "lightgbm": ("mlflow.lightgbm",),
    "statsmodels": ("mlflow.statsmodels",),
}
_SKLEARN_FLAVOUR = ("mlflow.sklearn", "skops.io")


def serves_pytorch(plan: Plan) -> bool:
    """Whether the model is served through MLflow's pytorch flavour: a module the notebook
    trains (its own class, torch's, GPyTorch's) or a skorch net."""
    torch_required = any(requirement.name == "torch" for requirement in plan.requirements)
    return torch_required and plan.model.library in (None, "torch", "skorch", "gpytorch")


def serving_imports(plan: Plan) -> list[str]:
    """The modules the service loads before its first answer, byte-compiled in the image.

    Its own ``serve`` module, the MLflow flavour that loads the model and the module the
    model's type comes from (when a requirement brings it); the rest is left uncompiled.
    """
    modules = [f"{plan.package_name}.serve", "mlflow.pyfunc"]
    if plan.model.kind != "fitted":
        return modules
    estimator = plan.model.estimator.split("(")[0]
    library = estimator.split(".")[0]
    if plan.model.backend and plan.model.library in (None, "keras"):
        return [*modules, "mlflow.keras", "keras", plan.model.backend]
    if serves_pytorch(plan):
        return [*modules, "mlflow.pytorch", "torch", "nb2prod_runtime.torch_output"]
    modules += _FLAVOUR_MODULES.get(library, _SKLEARN_FLAVOUR)
    installed = {module for requirement in plan.requirements for module in requirement.modules}
    if "." in estimator and library in installed:
        modules.append(estimator.rsplit(".", 1)[0])
    return list(dict.fromkeys(modules))


def _runtime_json(plan: Plan, header: str) -> str:
    """What nb2prod-runtime reads from the package besides its honesty: runtime.json."""
    settings = {
        "generated_by": header,
        "runtime": runtime_version(),
        "trusted_modules": trusted_modules(plan),
        "requirements": runtime_requirements(plan)["install"],
    }
    return json.dumps(settings, indent=2, ensure_ascii=False)


def _feature_honesty(plan: Plan, step_name: str) -> dict[str, Any]:
    """A feature step's own honesty, as Python literals for features.py."""
    step = next(s for s in plan.steps if s.name == step_name)
    honesty = feature_honesty(step, plan)
    return {
        "implementation_status_literal": json.dumps(honesty.implementation_status),
        "validation_literal": json.dumps(honesty.validation, ensure_ascii=False),
        "reason_literal": json.dumps(honesty.reason, ensure_ascii=False),
        "heuristic": honesty.implementation_status != plan.honesty.implementation_status,
    }


# Libraries whose types are plain data or whose code the package never needs to rebuild a model.
_NEVER_TRUSTED = frozenset({"os", "sys", "subprocess", "pickle", "builtins", "mlflow", "requests"})


def trusted_modules(plan: Plan) -> list[str]:
    """The libraries the notebook builds its model from, as module prefixes skops may trust.

    They are the package's own pinned requirements: their code already runs whenever the
    package does, so a model made of their types (an imbalanced-learn pipeline, a LightGBM
    regressor) loads without each type being named by hand. Anything else still must be.
    """
    modules = {
        module
        for requirement in plan.requirements
        for module in requirement.modules
        if module.isidentifier() and module not in _NEVER_TRUSTED
    }
    return sorted(f"{module}." for module in modules - {"sklearn", "numpy", "scipy"})


def how_training_measures(plan: Plan, code: GeneratedCode) -> dict[str, Any]:
    """How the package may measure the model by itself (measure.py), or why it may not."""
    primary = next((m for m in plan.metrics if m.name == plan.honesty.primary_metric), None)
    if plan.model.kind != "fitted":
        why = "hand-written rules: nothing to refit on folds"
        if primary is None:
            why += ", and the notebook never compares their output with labels"
        return {"cross_validation": None, "cross_validation_note": why}
    if not code.has_fit_data:
        fitted_on = ", ".join(plan.model.fit_inputs) or "data the notebook hands it elsewhere"
        why = (
            f"what the model is fitted on ({fitted_on}, cell {plan.model.fitted_in}) stays "
            "inside the training step, which does not hand it back, so the model cannot be "
            "refitted on folds"
        )
        return {"cross_validation": None, "cross_validation_note": why}
    if plan.model.backend and plan.model.library in (None, "keras"):  # not a wrapper's
        why = "a Keras network is not a scikit-learn estimator that can be refitted on folds"
        return {"cross_validation": None, "cross_validation_note": why}
    left_out = fit_keywords(plan)
    if left_out:  # early stopping on an eval set, weights: folds would measure another model
        why = (
            f"the notebook fits the model with {', '.join(left_out)} (cell "
            f"{plan.model.fitted_in}), which a refit on folds would leave out"
        )
        return {"cross_validation": None, "cross_validation_note": why}
    if primary is None:  # never evaluated by the notebook: the estimator's own score
        spec = {"scorer": "", "keywords": {}, "response_method": "predict", "metric": None}
        return {"cross_validation": spec, "cross_validation_note": None}
    if primary.validation == "cross-validation":
        why = f"the notebook cross-validates {primary.name} itself (cell {primary.cell})"
        return {"cross_validation": None, "cross_validation_note": why}
    if primary.scorer is None:
        why = (
            f"the notebook computes {primary.name} in cell {primary.cell} with code the package "
            "cannot repeat on folds (not a scikit-learn metric called with literal options)"
        )
        return {"cross_validation": None, "cross_validation_note": why}
    spec = {
        "scorer": primary.scorer.function,
        "keywords": dict(primary.scorer.keywords),
        "response_method": primary.scorer.response_method,
        "metric": primary.name,
    }
    if primary.ordered:  # folds that keep the rows' order, as the notebook's split did
        spec["ordered"] = primary.ordered
    return {"cross_validation": spec, "cross_validation_note": None}


def _greater_is_better(plan: Plan) -> bool:
    primary = next((m for m in plan.metrics if m.name == plan.honesty.primary_metric), None)
    return primary is None or primary.greater_is_better is not False


def _printable(text: str) -> str:
    """File names go into comments and strings: keep them on one line and quote-free."""
    return "".join(ch for ch in text if ch.isprintable() and ch not in "\"'\\`{}%#")


def _render(
    template: Path,
    plan: Plan,
    code: GeneratedCode,
    staging: Path,
    extras: dict[str, list[str]] | None = None,
) -> Path:
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter

    config = staging / "cookiecutter-config.json"
    config.write_text(
        json.dumps({"replay_dir": str(staging / "replay"), "cookiecutters_dir": str(staging)})
    )
    try:
        rendered = cookiecutter(
            str(template),
            no_input=True,
            extra_context=template_context(plan, code, extras),
            output_dir=str(staging / "out"),
            config_file=str(config),
        )
    except (CookiecutterException, OSError, ValueError) as error:
        reason = str(error).split(" Context:")[0].replace("\n", " ")
        raise InputError(
            template,
            f"the template failed to render: {reason[:300]}",
            hint="fix the template; nothing was written",
        ) from None
    _vendor_runtime(Path(rendered))
    return Path(rendered)


def _vendor_runtime(package: Path) -> None:
    """The package carries the runtime wheel it was generated with: the runtime is on no
    registry, and `pip install .` and the image build both install it from `vendor/`."""
    wheel = runtime_wheel()
    (package / "vendor").mkdir(exist_ok=True)
    shutil.copyfile(wheel, package / "vendor" / wheel.name)


_NOTEBOOK_CODE = ("pipeline.py", "features.py", "helpers.py")
MAX_DATA_FILE_BYTES = 100 * 1024 * 1024


def _copy_data_files(plan: Plan, notebook_dir: Path, data_dir: Path) -> None:
    """Ship the files the notebook reads, so training runs anywhere; refuse what cannot ship."""
    for data in plan.data_files:
        if data.size is None:
            continue
        source = (notebook_dir / data.path).resolve()
        if not source.is_relative_to(notebook_dir.resolve()):
            raise InputError(
                plan.notebook.path,
                f"reads {data.path!r}, outside the notebook's folder: it cannot be shipped",
                cell=data.cell,
                hint="move the file beside the notebook",
            )
        if data.size > MAX_DATA_FILE_BYTES:
            raise InputError(
                plan.notebook.path,
                f"reads {data.path!r} ({data.size // 2**20} MiB), too large to ship in a package",
                cell=data.cell,
                hint="load it from a data store, or pass a smaller sample",
            )
        target = data_dir / data.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _drop_empty_files(root: Path) -> None:
    """A template file that renders to nothing does not apply to this model (e.g. rule_model.py),
    nor does a folder left with nothing in it (feature_repo/ without a feature store)."""
    for path in root.rglob("*"):
        if path.is_file() and not path.read_bytes().strip():
            path.unlink()
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()


def _ruff(root: Path, notebook_code: list[Path]) -> list[str]:
    """Format and fix the package, then insist it is clean: generated code is read by people.

    The notebook's own lint debt (an unused variable, `== None`) is the notebook's, not a
    reason to refuse it: what ruff cannot fix in code taken from cells is marked `# noqa`
    where it stands, visibly, and listed. Anything else unclean is a bug in nb2prod.
    """
    from ruff.__main__ import find_ruff_bin

    ruff = find_ruff_bin()
    quiet = {"capture_output": True, "check": False}
    subprocess.run([ruff, "check", "--no-cache", "--fix", "--quiet", str(root)], **quiet)
    subprocess.run([ruff, "format", "--no-cache", "--quiet", str(root)], **quiet)
    carried = _violations(ruff, root, notebook_code)
    if carried:
        subprocess.run(
            [ruff, "check", "--no-cache", "--add-noqa", *map(str, notebook_code)], **quiet
        )
        subprocess.run([ruff, "format", "--no-cache", "--quiet", str(root)], **quiet)
    remaining = _violations(ruff, root, [root])
    if remaining:
        first = remaining[0]
        raise InputError(
            first.split(":")[0],
            f"the generated code is not ruff-clean: {first}",
            hint="a bug in nb2prod or its template; nothing was written",
        )
    return carried


def _lint_honesty(root: Path) -> None:
    """The package must pass nb2prod's own honesty rules: one it rejects is a generator bug."""
    findings = honesty_findings(root)
    if findings:
        where, what = findings[0]
        raise InputError(
            where,
            f"the generated package fails nb2prod lint: {what}",
            hint="a bug in nb2prod or its template; nothing was written",
        )


def honesty_findings(root: Path, rendered: Path | None = None) -> list[tuple[str, str]]:
    """nb2prod lint over a package: (`path:line` from `root`, `CODE message`) per finding.

    With `rendered`, a render that passed the rules, files identical to it are not linted
    again: every rule reads one file, so only the others (a user's edits) can fail now. A file
    linted before with the same bytes at the same place is answered from the user's cache
    (RenderCache): converting a notebook again costs no lint of what did not change.
    """
    from nb2prod.lint.cache import RenderCache, lint_with_cache, run_key
    from nb2prod.lint.config import load_config
    from nb2prod.lint.discovery import find_files
    from nb2prod.resources import data_dir

    config = load_config(cwd=root)
    files, _ = find_files([root], config.exclude)
    if rendered is not None:
        files = [path for path in files if not _same_file(path, rendered / path.relative_to(root))]
    key = run_key(data_dir("rules"), config.contract_bytes(), config.select, config.ignore)
    results = lint_with_cache(
        files,
        config.load_rules,
        RenderCache.for_run(key),
        key_of=lambda path: path.relative_to(root).as_posix(),
    )
    return [
        (f"{Path(v.path).relative_to(root)}:{v.line}", f"{v.code} {v.message}")
        for result in results
        for v in result.violations
    ]


def _same_file(path: Path, other: Path) -> bool:
    return other.is_file() and other.read_bytes() == path.read_bytes()


def _violations(ruff: str, root: Path, paths: list[Path]) -> list[str]:
    """ruff's findings, one per line, with paths relative to the package."""
    if not paths:
        return []
    relative = [str(path.relative_to(root)) for path in paths]
    check = subprocess.run(
        [ruff, "check", "--no-cache", "--quiet", "--output-format", "concise", *relative],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode == 0:
        return []
    lines = [line for line in check.stdout.splitlines() if line.strip()]
    return lines or [check.stderr.strip().splitlines()[0]]


def _move_into_place(built: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(built, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(built, target)


def _plain(value: Any) -> Any:
    """JSON-shaped data: cookiecutter hands tuples to Jinja as strings."""
    return json.loads(json.dumps(value))
