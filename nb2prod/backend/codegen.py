"""Turn the Plan's steps into Python functions with explicit inputs and outputs.

A notebook shares everything through globals; a package must not. Each pipeline step becomes
a function that takes what it reads (data as positional arguments, the notebook's parameters
as keyword arguments) and returns what later steps, training or serving need. Every block
keeps a `# From cell N` marker, so a reviewer (and a failing run) can trace it to the cell.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from nb2prod.backend.hoisting import split_helpers, with_definitions_hoisted, without_names
from nb2prod.backend.raw_features import (
    RAW_FUNCTION,
    find_cut,
    loaded_values,
    split_in_later_step,
    without_split,
)
from nb2prod.backend.submodules import submodule_imports
from nb2prod.errors import InputError
from nb2prod.frontend.model import is_time_series_model, without_input
from nb2prod.frontend.names import scan_names
from nb2prod.frontend.pysyntax import fresh_name, lines_inside_strings, root_name, target_names
from nb2prod.frontend.training_loops import batch_rows
from nb2prod.frontend.vocabulary import enables
from nb2prod.plan import Parameter, Plan, Step

MODULE_ROLES = frozenset({"imports", "functions"})
FEATURE_ROLES = frozenset({"features"})
PIPELINE_ROLES = frozenset({"parameters", "load", "features", "train", "evaluate"})
CELL_MARKER = "# From cell {cell}"


@dataclass
class StepFunction:
    """One step as the generated code calls it."""

    name: str
    role: str
    cells: tuple[int, ...]
    inputs: list[str]  # data, positional
    keywords: list[str]  # the notebook's parameters
    outputs: list[str]
    source: str  # the function definition
    step: str = ""  # the plan's step it comes from, when its name is not the step's


@dataclass(frozen=True)
class RawRoute:
    """What /predict/raw runs before the model: `features_from_raw` over records of a loaded
    table, or why there is no such route."""

    loaded: str = ""  # the loaded table whose records the route takes
    loaded_in: int = 0  # the cell that loads it
    cells: tuple[int, ...] = ()  # the cells of the feature code it runs
    reason: str = ""  # why there is no raw route; empty when there is one


@dataclass
class GeneratedCode:
    imports: str
    helpers: str
    helper_names: list[str]
    parameters: str
    features: list[StepFunction] = field(default_factory=list)
    pipeline: list[StepFunction] = field(default_factory=list)
    run_body: str = ""
    has_fit_data: bool = False  # run() hands training the features and labels at the fit
    # what run() sends through the feature store, the model's fit input first, and the step
    # that computes it; empty without a feature store
    through_store: list[str] = field(default_factory=list)
    store_step: str | None = None
    dropped: list[str] = field(default_factory=list)  # what the package leaves out, and why
    raw: RawRoute = field(default_factory=RawRoute)
    # `from nb2prod_runtime.lineage import as_loaded` when run() keeps a table as it was loaded
    as_loaded_import: str = ""


def generate(plan: Plan, *, feature_store: str | None = None) -> GeneratedCode:
    parameters = {p.name: p for p in plan.parameters}
    paths = {data.path for data in plan.data_files if data.size is not None}
    paths |= {
        f"{data.expression}\0{data.path}"
        for data in plan.data_files
        if data.size is not None and data.expression
    }
    plan, hoisted = _hoist_imports(plan)
    routed_in_step = _route_inside_fit_step(plan) if feature_store else None
    if routed_in_step is not None:
        plan = routed_in_step[0]
    imports = "\n".join(
        [block.source for s in plan.steps if s.role == "imports" for block in s.blocks] + hoisted
    )
    if plan.environment and "import os" not in imports:
        imports = "import os\n" + imports
    step_sources = [_step_source(s) for s in plan.steps if s.role != "imports"]
    imports = "\n".join([imports, *submodule_imports(imports, step_sources)])
    imports = _keep_enabling_imports(imports)
    import_names = set(_defines(imports))
    plan = with_definitions_hoisted(plan, import_names)
    helper_steps, closure_steps = split_helpers(plan.steps, import_names)
    helper_names = sorted({n for s in helper_steps for n in _defines(_step_source(s))})
    module_names = import_names | set(helper_names)
    _check_model_class_is_importable(plan, helper_names)
    code = GeneratedCode(
        imports=imports,
        helpers=_join_blocks(helper_steps, paths),
        helper_names=helper_names,
        parameters=_parameters_class(plan.parameters),
    )
    needed = _needed_in_run(plan, import_names)
    closures = {s.name for s in closure_steps}
    pipeline_steps = _training_steps(plan, closures, needed)
    raw_target = split_in_later_step(plan, pipeline_steps)  # the step with the feature code
    for step in plan.steps:
        if step.role in MODULE_ROLES and step.name not in closures:
            continue
        if step not in pipeline_steps:
            code.dropped.append(
                f"step {step.name} (cells {_cells(step)}, {step.role}): not part of training"
            )
            continue
        later = pipeline_steps[pipeline_steps.index(step) + 1 :]
        wanted = needed | {name for other in later for name in other.inputs}
        if not code.raw.cells and not code.raw.reason:
            target = raw_target[1] if raw_target and raw_target[0] == step.name else None
            if target or not raw_target:
                step = _with_raw_features(
                    code, plan, step, module_names, wanted, feature_store, target
                )
        function = _step_function(step, parameters, module_names, wanted, plan, paths)
        if function is None:
            continue
        (code.features if step.role in FEATURE_ROLES else code.pipeline).append(function)
    if not code.raw.cells and not code.raw.reason:
        code.raw = RawRoute(reason=without_split(plan, loaded_values(plan.steps)))
    functions = _in_order(plan, code)
    routed_in_run: list[str] = []
    if routed_in_step is not None:
        _, code.through_store, code.store_step = routed_in_step
    elif feature_store:
        code.through_store, code.store_step = _store_inputs(functions, plan)
        routed_in_run = code.through_store
    keeper = (
        "as_loaded"
        if "as_loaded" not in module_names
        else fresh_name("kept_as_loaded", module_names)
    )
    code.run_body, code.has_fit_data, keeps = _run_body(
        functions, plan, needed, module_names, routed_in_run, keeper
    )
    if keeps:
        code.as_loaded_import = "from nb2prod_runtime.lineage import as_loaded" + (
            f" as {keeper}" if keeper != "as_loaded" else ""
        )
    return code


def _training_steps(plan: Plan, closures: set[str], needed: set[str]) -> list[Step]:
    """The steps run() calls: every step of the pipeline's roles, and a prediction step whose
    output a later evaluation reads (`preds = clf.predict(X_test)` alone in a cell, then the
    metric in the next): the evaluation needs it, so training runs it too. A prediction that
    only other code reads (a batch scored to a file, read back) is no part of training."""
    chosen = {s.name for s in plan.steps if s.role in PIPELINE_ROLES or s.name in closures}
    read = set(needed)
    for step in reversed(plan.steps):
        if step.name not in chosen and step.role == "inference" and read & set(step.outputs):
            chosen.add(step.name)
        if step.name in chosen and step.role in ("evaluate", "inference"):
            read.update(step.inputs)
    return [s for s in plan.steps if s.name in chosen]


def _with_raw_features(
    code: GeneratedCode,
    plan: Plan,
    step: Step,
    modules: set[str],
    wanted: set[str],
    feature_store: str | None,
    target: str | None,
) -> Step:
    """The step, calling `features_from_raw` where the cut was (added to code.features), or
    unchanged with code.raw saying why not, once a step splits the model's input (or computes
    `target`, which a later step splits)."""
    loaders = {n: s for s in plan.steps if s.role == "load" for n in s.outputs}
    found = find_cut(plan, step, loaded_values(plan.steps), modules, wanted, target)
    if found is None:
        return step
    if isinstance(found, str):
        code.raw = RawRoute(reason=found)
        return step
    if feature_store:
        code.raw = RawRoute(reason="the model's input comes from the feature store")
        return step
    loaded_in = next(
        (b.cell for b in loaders[found.loaded].blocks if found.loaded in _defines(b.source)),
        loaders[found.loaded].blocks[0].cell,
    )
    cells = tuple(dict.fromkeys(cell for cell, _ in found.body))
    summary = (
        f"The feature code of {cell_list(cells)}, from records of `{found.loaded}` as cell "
        f"{loaded_in} loads it to the columns the model reads: training runs it, and so does "
        "the service's /predict/raw."
    )
    docstring = textwrap.fill(summary, 92, initial_indent='    """', subsequent_indent="    ")
    lines = [f"def {RAW_FUNCTION}({found.loaded}: Any) -> Any:", docstring + '"""']
    if found.copies:
        lines.append(
            f"    {found.loaded} = {found.loaded}.copy()  # the caller's records stay as given"
        )
    previous = None
    for cell, source in found.body:
        if cell != previous:
            lines.append("    " + CELL_MARKER.format(cell=cell))
            previous = cell
        lines.append(_indent(source))
    lines.append(f"    return {found.returns}")
    code.features.append(
        StepFunction(
            RAW_FUNCTION,
            step.role,
            cells,
            [found.loaded],
            [],
            [found.returns],
            "\n".join(lines) + "\n",
            step=step.name,
        )
    )
    code.raw = RawRoute(found.loaded, loaded_in, cells)
    return found.step


def cell_list(cells: tuple[int, ...]) -> str:
    """ "cell 8", or "cells 3, 4", as every docstring and report line names them."""
    return f"cell {cells[0]}" if len(cells) == 1 else "cells " + ", ".join(map(str, cells))


def _store_inputs(functions: list[StepFunction], plan: Plan) -> tuple[list[str], str]:
    """The model's inputs run() holds before the step that fits the model reads them (what it
    is fitted on, then what it predicts on), and the step that computes the first: they go
    through the store between the two."""
    model = plan.model
    if is_time_series_model(model.estimator):
        raise InputError(
            plan.notebook.path,
            f"--feature-store: {model.name} is a forecaster fitted on a series; it reads no "
            "features a feature store could keep",
            cell=model.fitted_in or model.defined_in,
            hint="convert without --feature-store",
        )
    made = next((i for i, f in enumerate(functions) if _fits_the_model(f, plan)), None)
    fitting = functions[made] if made is not None else None
    held = {name: f for f in functions[:made] for name in f.outputs}
    wanted = [*model.fit_inputs[:1], *model.predict_inputs[:1]]
    names = [n for n in dict.fromkeys(wanted) if n.isidentifier() and n in held]
    if not names or fitting is None or names[0] not in fitting.inputs:
        what = model.fit_inputs[0] if model.fit_inputs else "its input"
        raise InputError(
            plan.notebook.path,
            f"--feature-store: the cell that fits {model.name} computes {what} where the "
            "package cannot hand it to the feature store (inside a loop, a function, or "
            "after the fit)",
            cell=model.fitted_in or model.defined_in,
            hint=f"compute {what} in a cell above the one that fits {model.name}",
        )
    return names, held[names[0]].name


def _keep_enabling_imports(imports: str) -> str:
    """Each enabling import on a line of its own, marked so that ruff does not remove it as
    unused."""
    lines = imports.split("\n")
    for statement in reversed(ast.parse(imports).body):
        if enables(statement):
            first, last = statement.lineno, statement.end_lineno or statement.lineno
            lines[first - 1 : last] = [
                f"{ast.unparse(statement)}  # noqa: F401 (imported for its effect)"
            ]
    return "\n".join(lines)


def _hoist_imports(plan: Plan) -> tuple[Plan, list[str]]:
    """Imports in any kept cell go to the module's top: an imported name is never a value
    that one step returns to another, whichever cell the notebook imported it in. Settings of
    the process environment go with them, in the notebook's order, since a library may read
    them when it is imported (`os.environ["KERAS_BACKEND"] = "torch"` before `import keras`)."""
    hoisted: list[str] = []
    steps = []
    for step in plan.steps:
        if step.role == "imports":
            steps.append(step)
            continue
        blocks = []
        for block in step.blocks:
            lines = block.source.split("\n")
            for statement in ast.parse(block.source).body:
                if isinstance(statement, ast.Import | ast.ImportFrom) or _sets_environment_once(
                    statement
                ):
                    first, last = statement.lineno, statement.end_lineno or statement.lineno
                    hoisted.append("\n".join(lines[first - 1 : last]))
                    lines[first - 1 : last] = [""] * (last - first + 1)
            source = "\n".join(lines)
            if source.strip():
                blocks.append(dataclasses.replace(block, source=source.strip("\n") + "\n"))
        if blocks:
            steps.append(dataclasses.replace(step, blocks=tuple(blocks)))
    imported = set(_defines("\n".join(hoisted))) if hoisted else set()
    return dataclasses.replace(plan, steps=without_names(steps, imported)), hoisted


def _sets_environment_once(statement: ast.stmt) -> bool:
    """`os.environ[...] = ...` with literals only: the same wherever it runs, so it may run
    where the imports do."""
    if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
        return False
    target = statement.targets[0]
    return (
        isinstance(target, ast.Subscript)
        and ast.unparse(target.value) == "os.environ"
        and isinstance(target.slice, ast.Constant)
        and isinstance(statement.value, ast.Constant)
    )


def _in_order(plan: Plan, code: GeneratedCode) -> list[StepFunction]:
    by_name = {f.name: f for f in [*code.features, *code.pipeline]}
    return [by_name[s.name] for s in plan.steps if s.name in by_name]


def _step_source(step: Step) -> str:
    return "\n".join(block.source for block in step.blocks)


def rewrite_data_paths(source: str, paths: set[str]) -> str:
    """`pd.read_csv("train.csv")` -> `pd.read_csv(data_path("train.csv"))`: the package ships
    the file, so the code must find it wherever training runs. A path the notebook builds
    (`DATA + "train.csv"`) is written as `"expression\0path"` and replaced whole."""
    if not paths:
        return source
    built = dict(entry.split("\0", 1) for entry in paths if "\0" in entry)
    lines = source.split("\n")
    hits: list[tuple[ast.expr, str]] = []
    for call in ast.walk(ast.parse(source)):
        if not isinstance(call, ast.Call):
            continue
        for node in [*call.args[:1], *(k.value for k in call.keywords)]:
            if node.lineno != node.end_lineno:
                continue
            if isinstance(node, ast.Constant) and node.value in paths:
                hits.append((node, f"data_path({ast.unparse(node)})"))
            elif not isinstance(node, ast.Constant) and ast.unparse(node) in built:
                hits.append((node, f"data_path({built[ast.unparse(node)]!r})"))
    for node, replacement in sorted(
        hits, key=lambda h: (h[0].lineno, h[0].col_offset), reverse=True
    ):
        raw = lines[node.lineno - 1].encode()
        start, end = node.col_offset, node.end_col_offset or node.col_offset
        lines[node.lineno - 1] = raw[:start].decode() + replacement + raw[end:].decode()
    return "\n".join(lines)


def _defines(source: str) -> list[str]:
    return list(scan_names(ast.parse(source).body).defines)


def _join_blocks(steps: list[Step], paths: set[str]) -> str:
    parts = []
    for step in steps:
        for block in step.blocks:
            source = rewrite_data_paths(block.source, paths)
            parts.append(CELL_MARKER.format(cell=block.cell) + "\n" + source.rstrip() + "\n")
    return "\n\n".join(parts)


def _needed_in_run(plan: Plan, modules: set[str]) -> set[str]:
    """Names training needs after the steps ran: the model, its metrics, its input, the data."""
    needed = {plan.model.name, *plan.model.served_with, *(m.name for m in plan.metrics)}
    needed.update(_model_input(plan, modules)[:1])
    needed.update(n for s in plan.steps if s.role == "load" for n in s.outputs)
    # `fit(train[features], ...)`: the columns too, so the input example is what the model saw
    if read := _input_expression_names(plan, modules):
        steps = [s for s in plan.steps if s.role in PIPELINE_ROLES]
        needed.update(read & {n for s in steps for n in _defines(_step_source(s))})
    return needed


def _input_expression_names(plan: Plan, modules: set[str]) -> set[str]:
    """The variables the model's first fit input reads: `train` and `features` in
    `train[features]`."""
    for text in plan.model.fit_inputs[:1]:
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            return set()
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        return names - modules - _BUILTINS
    return set()


def _model_input(plan: Plan, modules: set[str]) -> tuple[str, ...]:
    """The variables holding what the model takes: `X` for `fit(X[:n], y[:n])`,
    `np.asarray(X)` and `X.reshape(-1, 1)` too."""
    roots = []
    for text in [*plan.model.fit_inputs[:1], *plan.model.predict_inputs[:1]]:
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            continue
        while isinstance(node, ast.Subscript | ast.Attribute | ast.Call):
            if not isinstance(node, ast.Call):
                node = node.value
            elif isinstance(node.func, ast.Attribute) and root_name(node.func) not in modules:
                node = node.func.value  # X.reshape(-1, 1): X
            else:
                node = node.args[0] if node.args else node.func  # np.asarray(X): X
        if isinstance(node, ast.Name):
            roots.append(node.id)
    return tuple(roots)


_BUILTINS = frozenset(dir(builtins))


def _model_input_expression(plan: Plan, available: set[str], modules: set[str]) -> str | None:
    """What the model takes, as run() can compute it from the steps' results and the imports:
    `df[["a", "b"]]`, `X.reshape(-1, 1)`; else the variable at its root."""
    for text in [*plan.model.fit_inputs[:1], *plan.model.predict_inputs[:1]]:
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            continue
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if names & available and names <= available | modules | _BUILTINS:
            return text
    return next((n for n in _model_input(plan, modules) if n in available), None)


def _step_function(
    step: Step,
    parameters: dict[str, Parameter],
    module_names: set[str],
    needed: set[str],
    plan: Plan,
    paths: set[str],
) -> StepFunction | None:
    statements = []
    for block in step.blocks:
        body = rewrite_data_paths(block.source, paths)
        if step.role == "parameters":
            body = _without_literal_parameters(body, parameters)
            if not body.strip():
                continue
        statements.append((block.cell, body))
    if not statements:
        return None
    source = "\n".join(body for _, body in statements)
    defined = _defines(source)
    outputs = [n for n in dict.fromkeys(defined) if n in needed and n not in parameters]
    if step.role == "parameters" and not outputs:
        return None  # configuration nothing reads, e.g. a tracking URI for the notebook
    reads = [n for n in step.inputs if n not in module_names]
    keywords = [n for n in reads if n in parameters]
    inputs = [n for n in reads if n not in parameters]
    name = "configure" if step.role == "parameters" else step.name
    signature = _signature(inputs, keywords, parameters)
    returns = "None" if not outputs else "Any" if len(outputs) == 1 else "tuple[Any, ...]"
    cells = tuple(cell for cell, _ in statements)
    lines = [f"def {name}({signature}) -> {returns}:", f'    """{_docstring(step, cells)}"""']
    for cell, body in statements:
        lines.append("    " + CELL_MARKER.format(cell=cell))
        lines.append(_indent(body))
    if outputs:
        lines.append(f"    return {', '.join(outputs)}")
    return StepFunction(name, step.role, cells, inputs, keywords, outputs, "\n".join(lines) + "\n")


def _without_literal_parameters(source: str, parameters: dict[str, Parameter]) -> str:
    """Drop `NAME = literal` lines that became fields of `Parameters`."""
    lines = source.split("\n")
    for statement in ast.parse(source).body:
        if (
            isinstance(statement, ast.Assign | ast.AnnAssign)
            and isinstance(target := _single_target(statement), ast.Name)
            and target.id in parameters
        ):
            for index in range(statement.lineno - 1, statement.end_lineno or statement.lineno):
                lines[index] = ""
    return "\n".join(line for line in lines if line.strip())


def _single_target(statement: ast.Assign | ast.AnnAssign) -> ast.expr | None:
    if isinstance(statement, ast.AnnAssign):
        return statement.target
    return statement.targets[0] if len(statement.targets) == 1 else None


def _signature(inputs: list[str], keywords: list[str], parameters: dict[str, Parameter]) -> str:
    parts = [f"{name}: Any" for name in inputs]
    if keywords:
        parts.append("*")
        parts += [f"{name}: {_annotation(parameters[name])}" for name in keywords]
    return ", ".join(parts)


def _annotation(parameter: Parameter) -> str:
    return {
        "int": "int",
        "float": "float",
        "str": "str",
        "bool": "bool",
        "list": "tuple[Any, ...]",
        "dict": "dict[str, Any]",
    }.get(parameter.type, "Any")


def _docstring(step: Step, cells: tuple[int, ...]) -> str:
    what = {
        "parameters": "Configuration the later steps read",
        "load": "Load the data",
        "features": "Feature engineering",
        "train": "Train the model",
        "evaluate": "Measure the model on held-out data",
        "inference": "Predict with the model for the evaluation",
        "functions": "Define the helpers that read the notebook's variables",
    }[step.role]
    return f"{what}, as the notebook does in {cell_list(cells)}."


def _indent(source: str) -> str:
    """Indent code into a function body, leaving multi-line string contents untouched."""
    inside = lines_inside_strings(source)
    lines = source.rstrip("\n").split("\n")
    return "\n".join(
        line if (number in inside or not line.strip()) else "    " + line
        for number, line in enumerate(lines, start=1)
    )


def _parameters_class(parameters: tuple[Parameter, ...]) -> str:
    if not parameters:
        return "    pass\n"
    lines = []
    for parameter in parameters:
        lines.append(f"    {parameter.name}: {_annotation(parameter)} = {_default(parameter)}")
    return "\n".join(lines) + "\n"


def _default(parameter: Parameter) -> str:
    value = parameter.default
    if parameter.type == "list":
        return repr(tuple(value))
    if parameter.type == "dict":
        return f"field(default_factory=lambda: {dict(value)!r})"
    return repr(value)


def _fits_the_model(function: StepFunction, plan: Plan) -> bool:
    """The step that fits the model (or, for rules, makes it): where its input must exist."""
    if plan.model.fitted_in is not None:
        return plan.model.fitted_in in function.cells
    return plan.model.name in function.outputs


def _route_inside_fit_step(plan: Plan) -> tuple[Plan, list[str], str] | None:
    """When the cell that fits the model also computes its input (a notebook in one cell, say),
    the features go through the store inside that step, just before the fit statement. Returns
    the plan with the call added, what is routed and the step; None when an earlier step
    computes the input, and run() routes it between steps."""
    fit_input = next(iter(plan.model.fit_inputs), "")
    step = next(
        (s for s in plan.steps if any(b.cell == plan.model.fitted_in for b in s.blocks)), None
    )
    if step is None or not fit_input.isidentifier() or fit_input in step.inputs:
        return None
    bound = set(step.inputs)
    blocks = list(step.blocks)
    for index, block in enumerate(blocks):
        tree = ast.parse(block.source)
        for statement in tree.body:
            if block.cell == plan.model.fitted_in and _fits_on(statement, fit_input, plan):
                names = [
                    n
                    for n in dict.fromkeys([fit_input, *plan.model.predict_inputs[:1]])
                    if n in bound
                ]
                if fit_input not in names:
                    return None
                lines = block.source.split("\n")
                lines[statement.lineno - 1 : statement.lineno - 1] = _store_line(
                    names, plan, loaded=False
                ).split("\n")
                blocks[index] = dataclasses.replace(block, source="\n".join(lines))
                routed = dataclasses.replace(step, blocks=tuple(blocks))
                steps = tuple(routed if s is step else s for s in plan.steps)
                return dataclasses.replace(plan, steps=steps), names, step.name
            for node in ast.walk(statement):
                if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    bound.update(n for t in targets for n in target_names(t))
    return None


def fit_keywords(plan: Plan) -> list[str]:
    """The keyword arguments of the notebook's fit of the model (`eval_set`, `callbacks`,
    `sample_weight`...): what refitting a fresh copy on folds, `fit(X, y)`, would leave out."""
    found: list[str] = []
    for block in (b for s in plan.steps for b in s.blocks if b.cell == plan.model.fitted_in):
        try:
            tree = ast.parse(block.source)
        except SyntaxError:
            continue
        for statement in tree.body:
            for call in _model_fits(statement, plan):
                if call.func.attr == "fit":  # type: ignore[attr-defined]
                    found += [
                        f"{k.arg}=" if k.arg else f"**{ast.unparse(k.value)}" for k in call.keywords
                    ]
    return list(dict.fromkeys(found))


def _fits_on(statement: ast.stmt, fit_input: str, plan: Plan) -> bool:
    """A top-level statement that fits the model on `fit_input`: `model.fit(X, ...)` (or
    `fit_conformalize`...), or `model = Estimator(...).fit(X, ...)`; a scaler's
    `fit_transform(X)` is not the model's fit."""
    return any(
        call.args and isinstance(call.args[0], ast.Name) and call.args[0].id == fit_input
        for call in _model_fits(statement, plan)
    )


def _model_fits(statement: ast.stmt, plan: Plan) -> list[ast.Call]:
    """The calls in a top-level statement that fit the model: a `fit...` method called on it,
    or on anything when the statement assigns the model (`model = Estimator(...).fit(X, y)`)."""
    assigns_model = isinstance(statement, ast.Assign) and plan.model.name in {
        n for t in statement.targets for n in target_names(t)
    }
    return [
        node
        for node in ast.walk(statement)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr.startswith("fit")
        and (assigns_model or root_name(node.func.value) == plan.model.name)
    ]


def _run_body(
    functions: list[StepFunction],
    plan: Plan,
    needed: set[str],
    modules: set[str],
    through_store: list[str],
    keeper: str = "as_loaded",
) -> tuple[str, bool, bool]:
    """run()'s body, whether it hands training the data the model was fitted on, and whether
    it keeps a loaded table as loaded (with `keeper`: the runtime's `as_loaded`, which the
    module then imports).

    A loaded table that a later step reads (and may change in place: `df["c"] = ...`) or
    returns again (`df = pd.get_dummies(df)`) is kept as it was loaded (a frame's shallow copy:
    pandas copies on write), since training logs the loaded data as the run's input and the raw
    route runs the feature code on it."""
    lines = []
    available: set[str] = set()
    as_loaded: dict[str, str] = {}  # a loaded name a later step reads -> its kept name
    taken = {n for f in functions for n in (*f.inputs, *f.outputs)} | modules
    # where the model is last fitted: the line of run() after it, the step after it, and what
    # exists there
    at_fit: tuple[int, int, set[str]] | None = None
    routed = False  # the model's inputs went through the feature store
    for index, function in enumerate(functions):
        arguments = [*function.inputs, *(f"{k}=params.{k}" for k in function.keywords)]
        missing = [name for name in function.inputs if name not in available]
        if missing:
            raise InputError(
                plan.notebook.path,
                f"step {function.name} reads {', '.join(missing)}, which no earlier step returns",
                cell=function.cells[0],
                hint="move the code that defines it into a cell above",
            )
        call = f"{function.name}({', '.join(arguments)})"
        if through_store and _fits_the_model(function, plan) and not routed:
            lines.append(_store_line(through_store, plan))
            routed = True
        if not function.outputs:
            lines.append(call)
        else:
            lines.append(f"{', '.join(function.outputs)} = {call}")
        available.update(function.outputs)
        # a later step that reads a loaded table may change it in place (`df["c"] = ...`,
        # a function handed it) or return it again: training logs it as loaded
        later = {n for f in functions[index + 1 :] for n in (*f.inputs, *f.outputs)}
        for name in function.outputs if function.role == "load" else []:
            if name in later and name not in as_loaded:
                as_loaded[name] = fresh_name(f"{name}_as_loaded", taken)
                lines.append(f"{as_loaded[name]} = {keeper}({name})")
        if plan.model.name in function.outputs:
            at_fit = (len(lines), index + 1, set(available))
    absent = sorted(n for n in needed if n not in available)
    if absent:
        raise InputError(
            plan.notebook.path,
            f"training needs {', '.join(absent)}, but no pipeline step produces it",
            hint="tag the cell that defines it with its role (e.g. 'nb2prod:train')",
        )
    model_input = _model_input_expression(plan, at_fit[2] if at_fit else available, modules)
    if model_input is not None and at_fit is not None:
        later = {n for f in functions[at_fit[1] :] for n in f.outputs}
        read = {
            n.id for n in ast.walk(ast.parse(model_input, mode="eval")) if isinstance(n, ast.Name)
        }
        if read & later:  # a later step rebinds it: keep what the model was fitted on
            lines.insert(at_fit[0], f"input_at_fit = {model_input}")
            model_input = "input_at_fit"
    if model_input is None:
        raise without_input(Path(plan.notebook.path), plan.model)
    if plan.model.batch_of_processes:
        rows = fresh_name("input_rows", taken)
        lines.append(
            "# every process of the batch answers at each row: the inputs as rows of features\n"
            f"{rows} = {batch_rows(model_input)}"
        )
        model_input = rows
    fit_data = _fit_data_expression(plan, at_fit[2] if at_fit else set(), modules)
    if fit_data is not None and at_fit is not None:
        lines.insert(at_fit[0], f"data_at_fit = {fit_data}")
        fit_data = "data_at_fit"
    data = ", ".join(
        f'"{n}": {as_loaded.get(n, n)}' for s in plan.steps if s.role == "load" for n in s.outputs
    )
    metrics = ", ".join(f'"{m.name}": {m.name}' for m in plan.metrics)
    lines.append(
        "return PipelineResult(\n"
        f"    model={_served_model(plan)},\n"
        f"    metrics={{{metrics}}},\n"
        f"    data={{{data}}},\n"
        f"    model_input={model_input},\n"
        f"    fit_data={fit_data},\n"
        ")"
    )
    body = textwrap.indent("\n".join(lines), "    ") + "\n"
    return body, fit_data is not None, bool(as_loaded)


def _served_model(plan: Plan) -> str:
    """The model training logs: a PyTorch module wrapped so it answers as the notebook reads
    its output (pipeline.answer), an XGBoost booster cut to the trees the notebook predicts
    with, else the model itself."""
    if plan.model.served_output:
        others = "".join(f", {name}={name}" for name in plan.model.served_with)
        return f"Answering({plan.model.name}, answer{others})"
    return plan.model.served_trees or plan.model.name


def _store_line(names: list[str], plan: Plan, *, loaded: bool = True) -> str:
    """The model's inputs, replaced by what the feature store holds for them; `loaded`: the
    data the load steps return is at hand (for an id column or a timestamp)."""
    values = ", ".join(f'"{n}": {n}' for n in names)
    frames = [n for s in plan.steps if s.role == "load" for n in s.outputs] if loaded else []
    loaded_data = ", ".join(f'"{n}": {n}' for n in frames)
    targets = f"({names[0]},)" if len(names) == 1 else ", ".join(names)
    return (
        "# The model's inputs as the Feast repository holds them (feature_store.through_store)\n"
        f"{targets} = feature_store.through_store({{{values}}}, loaded={{{loaded_data}}})"
    )


def _fit_data_expression(plan: Plan, available: set[str], modules: set[str]) -> str | None:
    """`(X_train, y_train)`: the features and labels the model was fitted on, as they were at
    the fit, so the package can cross-validate the model by itself; None for a model fitted
    without labels or on values run() does not hold."""
    if plan.model.kind != "fitted" or len(plan.model.fit_inputs) != 2:
        return None
    parts = []
    for text in plan.model.fit_inputs:
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            return None
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if not names & available or not names <= available | modules | _BUILTINS:
            return None
        parts.append(text)
    return f"({parts[0]}, {parts[1]})"


def _check_model_class_is_importable(plan: Plan, helper_names: list[str]) -> None:
    """MLflow loads a rule-based model from code, so its class must be importable."""
    if plan.model.kind != "rule-based" or plan.model.estimator in helper_names:
        return
    raise InputError(
        plan.notebook.path,
        f"the rule-based model's class {plan.model.estimator} must be defined in a helper "
        "cell that reads no notebook variables",
        cell=plan.model.defined_in,
        hint="move the class into its own cell and pass values through its constructor",
    )


def _cells(step: Step) -> str:
    return ", ".join(str(block.cell) for block in step.blocks)
