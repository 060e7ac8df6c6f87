"""Assemble the Plan: run each analysis once, in dependency order, and keep every reason."""

from __future__ import annotations

import ast
import hashlib
import keyword as python_keywords
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from nb2prod import __version__
from nb2prod.contract import Contract, load_contract
from nb2prod.errors import InputError, UnservableModel
from nb2prod.frontend.datafiles import data_file_findings, find_data_files
from nb2prod.frontend.dataflow import DataFlow, analyse_dataflow
from nb2prod.frontend.decision_threshold import threshold_findings
from nb2prod.frontend.devices import CPU_FINDING, refuse_gpu_only_code
from nb2prod.frontend.endless_loops import refuse_endless_loops
from nb2prod.frontend.facts import CellFacts, NotebookFacts, gather_facts
from nb2prod.frontend.findings import (
    absolute_path_findings,
    dropped_draw_findings,
    execution_order_findings,
    randomness_findings,
)
from nb2prod.frontend.keras_models import (
    imports_tensorflow,
    is_keras_model,
    keras_backend,
    runs_on_keras,
)
from nb2prod.frontend.library_calls import refuse_calls_the_installed_libraries_reject
from nb2prod.frontend.lineage import RANK, REFITTED, UNKNOWN
from nb2prod.frontend.metrics import Measurement, find_metrics
from nb2prod.frontend.model import (
    candidate_names,
    explicit_model_name,
    find_model,
    refuse_a_model_without_input,
    trees_predicted_with,
)
from nb2prod.frontend.pysyntax import construct, names_in, target_names
from nb2prod.frontend.reader import Notebook, read_notebook
from nb2prod.frontend.requirements import resolve_requirements
from nb2prod.frontend.roles import RoleDecision, assign_roles, is_literal
from nb2prod.frontend.secrets import Secret, find_secrets, scrub, secrets_in_dropped_lines
from nb2prod.frontend.slicing import slice_notebook
from nb2prod.frontend.split_order import ordered_split
from nb2prod.frontend.target_scale import back_transform_findings
from nb2prod.frontend.trackers import refuse_reads_from_trackers, tracker_findings
from nb2prod.frontend.training_loops import (
    answers_with_distribution,
    batch_of_processes,
    drawing_initial_weights,
    is_trained_module,
    module_output,
    trained_modules,
)
from nb2prod.frontend.vocabulary import CLASSIFICATION_METRICS, REGRESSION_METRICS, enables
from nb2prod.plan import (
    DISPLAY_REASON,
    DROPPED_ROLES,
    Block,
    CellDecision,
    DroppedCode,
    EnvironmentVariable,
    Finding,
    Honesty,
    Metric,
    Model,
    NotebookSource,
    Parameter,
    Plan,
    Requirement,
    Step,
    freeze,
)

_STEP_NAMES = {
    "imports": "imports",
    "parameters": "parameters",
    "functions": "helpers",
    "load": "load_data",
    "features": "build_features",
    "train": "train_model",
    "evaluate": "evaluate",
    "inference": "predict",
}
_DEAD_CODE_ROLES = ("load", "features", "inference")
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def build_plan(path: Path, status: str | None = None, model_name: str | None = None) -> Plan:
    """Read `path` and describe the package to build from it; InputError on bad input."""
    notebook = read_notebook(path)
    contract = load_contract()
    facts, model, findings, roles, kept = _servable_model(notebook, model_name)
    refuse_a_model_without_input(path, model, facts)
    refuse_calls_the_installed_libraries_reject(facts, kept)
    refuse_gpu_only_code(facts, kept)
    refuse_endless_loops(facts, kept)
    refuse_reads_from_trackers(facts, kept)
    flow = analyse_dataflow(facts, kept)
    secrets = [secret for cell in facts.cells for secret in find_secrets(cell)]
    parameters = _parameters(facts, roles, kept, {s.holder for s in secrets})
    metric_names = _kale_metric_names(facts, roles)
    measurement = find_metrics(facts, kept, model.name, parameters, metric_names, model.candidates)
    measurement = _in_time_order(measurement, ordered_split(facts, kept))
    removed_imports = _unused_imports(facts, kept)
    blocks = {
        cell.number: _block(cell, removed_imports.get(cell.number, []), secrets)
        for cell in facts.cells
        if cell.number in kept
    }
    kept = {number for number, block in blocks.items() if block is not None}
    imports = _kept_imports(facts, kept, removed_imports)
    backend_only = False  # Keras's backend, which the notebook itself never imports
    if runs_on_keras(facts, model.estimator):
        model, backend_finding = _with_keras_backend(facts, model)
        findings.append(backend_finding)
        backend_only = all(module != model.backend for module, _ in imports)
        imports.append((model.backend or "", model.fitted_in or model.defined_in))
    requirements, local_modules, requirement_findings = resolve_requirements(
        imports,
        [(spec, c.number) for c in facts.cells for spec in c.normalised.requirements],
        notebook.path.resolve().parent,
        {name for cell in facts.cells for name in cell.normalised.local_files},
    )
    if backend_only:
        requirements = tuple(
            replace(r, source=f"Keras's backend (KERAS_BACKEND={model.backend})")
            if model.backend in r.modules
            else r
            for r in requirements
        )
    if model.library:
        model = _with_library(model, requirements)
    if model.task == "unknown":
        model = _with_task_from_metrics(model, measurement.metrics)
    network = is_keras_model(facts, model.estimator)
    if network or is_trained_module(facts, kept, model.name):
        # a prediction slicing left out, as the package does not need it to train, still says
        # what the service answers
        trained_in = model.fitted_in or model.defined_in  # what came before was another model
        predicting = {
            n for n in kept | {c.number for c in facts.cells if c.sliced} if n >= trained_in
        }
        model, output_finding = _with_served_output(
            facts, predicting, kept, model, measurement, network
        )
        findings.append(output_finding)
    model = replace(model, served_trees=trees_predicted_with(facts, kept, model))
    findings += flow.findings
    findings += measurement.findings
    findings += requirement_findings
    findings += execution_order_findings(facts)
    drawing = drawing_initial_weights(facts, trained_modules(facts, kept))
    networks = frozenset({model.name} if is_keras_model(facts, model.estimator) else ())
    findings += randomness_findings(facts, kept, drawing, networks)
    findings += dropped_draw_findings(facts, kept)
    findings += back_transform_findings(facts, kept, model.name)
    findings += threshold_findings(facts, model.name)
    findings += absolute_path_findings(facts, kept)
    findings += _secret_findings(facts, secrets)
    findings += _dropped_syntax_findings(facts)
    findings += _migration_findings(facts, kept)
    findings += tracker_findings(facts)
    data_files = find_data_files(facts, kept)
    findings += data_file_findings(data_files)
    findings += [
        Finding(
            "local-module",
            "info",
            f"imports the local module {m.module!r} ({m.path}); the package must ship it",
            m.cell,
            None,
            None,
        )
        for m in local_modules
    ]
    steps = _steps(facts, roles, kept, blocks, flow, model, measurement.metrics)
    plan = Plan(
        nb2prod_version=__version__,
        notebook=NotebookSource(
            path=str(path),
            sha256=hashlib.sha256(notebook.raw_bytes).hexdigest(),
            nbformat=notebook.nbformat_version,
            upgraded_from=notebook.upgraded_from,
            kernel=notebook.kernel,
            language=notebook.language,
            code_cells=len(notebook.cells),
        ),
        package_name=package_name(path),
        cells=_decisions(facts, roles, kept, removed_imports),
        steps=steps,
        parameters=parameters,
        model=model,
        metrics=measurement.metrics,
        requirements=requirements,
        local_modules=local_modules,
        data_files=data_files,
        environment=tuple(
            EnvironmentVariable(s.env_name, s.cell, f"secret moved out of the code ({s.masked})")
            for s in secrets
            if s.cell in kept
        ),
        findings=tuple(
            sorted(
                dict.fromkeys(findings),
                key=lambda f: (f.cell or 0, f.line or 0, _SEVERITY_ORDER[f.severity], f.code),
            )
        ),
        honesty=_honesty(facts, contract, model, measurement, status),
        contract=freeze(contract.to_dict()),
    )
    return _without_secrets(plan, facts, secrets)


def _migration_findings(facts: NotebookFacts, kept: set[int]) -> list[Finding]:
    """Calls rewritten for the installed library, or without what only shows progress: the
    package's code differs from the notebook's there, so each one is said."""
    return [
        Finding(
            migration.code,
            "warning" if migration.code in ("library-migrated", CPU_FINDING) else "info",
            migration.said,
            cell.number,
            migration.line,
            None,
        )
        for cell in facts.cells
        if cell.number in kept
        for migration in cell.migrated
    ]


def _servable_model(
    notebook: Notebook, model_name: str | None
) -> tuple[NotebookFacts, Model, list[Finding], list[RoleDecision], set[int]]:
    """The model, the cells it needs and their roles.

    When the candidate the notebook ends with cannot be served (a formula that calls a
    notebook function, a forecaster nb2prod cannot serve) and the notebook fitted another
    that can, that one is chosen and the reason the first was passed over becomes a
    finding. A model the user named is never replaced. Slicing trims the facts it is given,
    so each choice starts from facts of its own.
    """
    refusals: list[UnservableModel] = []
    while True:
        facts = gather_facts(notebook)
        explicit = explicit_model_name(facts, model_name)
        model_names = candidate_names(facts) | ({explicit[0]} if explicit else set())
        roles = assign_roles(facts, model_names)
        kept = {
            cell.number
            for cell, role in zip(facts.cells, roles, strict=True)
            if role.role not in DROPPED_ROLES and cell.kept_statements
        }
        try:
            model, findings = find_model(facts, kept, model_name, [r.model for r in refusals])
            roles, kept = _slice(facts, roles, kept, model)
            _refuse_formula_functions(facts, kept, model)
        except UnservableModel as refusal:
            if explicit is not None:
                raise
            refusals.append(refusal)
            continue
        except InputError:
            if refusals:
                raise refusals[0] from None  # nothing else serves: the first reason stands
            raise
        if refusals:
            unservable = ", ".join(refusal.model for refusal in refusals)
            model = replace(
                model,
                reason=f"{model.reason}, among those nb2prod can serve ({unservable}: see "
                "findings)",
                candidates=tuple(dict.fromkeys((*model.candidates, *(r.model for r in refusals)))),
            )
        passed_over = [
            Finding(
                "model-unservable",
                "warning",
                f"{refusal.model} is not the model: {refusal.message}",
                refusal.cell,
                refusal.line,
                refusal.hint,
            )
            for refusal in refusals
        ]
        return facts, model, passed_over + findings, roles, kept


def _with_served_output(
    facts: NotebookFacts,
    predicting: set[int],
    kept: set[int],
    model: Model,
    measurement: Measurement,
    network: bool = False,
) -> tuple[Model, Finding]:
    """A PyTorch module or a Keras `network` answers with what the notebook makes of its
    output before measuring it (labels from logits, say), so the claim is about what the
    service returns. The value may be made in any cell that `predicts`; the other modules it
    reads must be `kept`. What the claim's metric reads comes first, then what any does."""
    distribution = answers_with_distribution(facts, model.estimator) is not None
    held_out = [m for m in measurement.metrics if m.held_out]
    primary = _primary_metric(facts, model, held_out, measurement.measures)
    output = None
    for metrics, through in [
        (metrics, through)
        for metrics in ([primary] if primary else [], measurement.metrics)
        for through in (False, True)  # what a metric reads, then what that was made from
    ]:
        measured = _read_by_metrics(facts, metrics, through=through)
        output = output or module_output(
            facts,
            predicting,
            model.name,
            measured,
            distribution=distribution,
            predicts=network,
            metric_lines={(metric.cell, metric.line) for metric in metrics},
        )
    in_package = {name for number in kept for name in facts.cell(number).names.defines}
    if output is not None and not set(output.uses) <= in_package:
        output = None  # `likelihood2(model(x))` with likelihood2 left out of the package
    if output is None:
        called = f"{model.name}.predict(inputs)" if network else f"{model.name}(inputs)"
        return model, Finding(
            "module-output-served",
            "info",
            f"the service answers with what {called} returns; no value the "
            f"notebook measures is made from {model.name}'s output alone",
            model.fitted_in,
            None,
            f"measure a value made from the output alone ({_made_alone(model.task)}) to "
            "serve that instead",
        )
    # a batch's mean is (processes, rows): a row's answer is a value per process
    batched = distribution and batch_of_processes(facts, model.estimator) is not None
    expression = f"{output.expression}.transpose(-1, -2)" if batched else output.expression
    served = replace(
        model, served_output=expression, served_with=output.uses, batch_of_processes=batched
    )
    per_process = ", a value per process of the batch for each row" if batched else ""
    return served, Finding(
        "module-output-served",
        "info",
        f"the service answers with {output.name} as the notebook makes it from "
        f"{model.name}'s output{per_process}: {expression}",
        output.cell,
        output.line,
        None,
    )


def _read_by_metrics(
    facts: NotebookFacts, metrics: Iterable[Metric], *, through: bool = False
) -> set[str]:
    """The names the statements computing `metrics` read or bind (the innermost statement on
    the metric's line, not the whole training loop it may sit in, whose `out = model(X)` the
    metric does not read); `through`: the names those were computed from too (`rmse` reads
    `error = predicted - y_test`, which reads `predicted`)."""
    read = {
        node.id
        for metric in metrics
        for statement in facts.cell(metric.cell).kept_statements
        if statement.lineno <= metric.line <= (statement.end_lineno or statement.lineno)
        for node in ast.walk(_innermost(statement, metric.line))
        if isinstance(node, ast.Name)
    }
    if not through:
        return read
    assignments = [
        (targets, names_in(node.value))
        for cell in facts.cells
        for statement in cell.kept_statements
        for node in ast.walk(statement)
        if isinstance(node, ast.Assign)
        for targets in [{n for t in node.targets for n in target_names(t)}]
    ]
    grown = True
    while grown:
        grown = False
        for targets, values in assignments:
            if targets & read and not values <= read:
                read |= values
                grown = True
    return read


def _innermost(statement: ast.stmt, line: int) -> ast.stmt:
    """The smallest statement within `statement` that spans `line`."""
    for inner in ast.iter_child_nodes(statement):
        if isinstance(inner, ast.stmt) and inner.lineno <= line <= (inner.end_lineno or line):
            return _innermost(inner, line)
    return statement


def _with_keras_backend(facts: NotebookFacts, model: Model) -> tuple[Model, Finding]:
    """A Keras network with the backend the package runs it on (its library a requirement),
    and a finding that says which, and what the service answers."""
    backend = keras_backend(facts)
    model = replace(model, backend=backend.name)
    where = model.fitted_in or model.defined_in
    if backend.chosen_at is not None:
        message = f"the notebook runs Keras on {backend.name}, and so does the package"
        where = backend.chosen_at[0]
    else:
        message = (
            f"the notebook leaves Keras's backend to its default; the package runs Keras on "
            f"{backend.name}, the first of tensorflow, jax and torch installed here"
            if imports_tensorflow(facts) is None
            else "the notebook runs Keras through TensorFlow, and so does the package"
        )
    return model, Finding(
        "keras-backend",
        "info",
        message,
        where,
        None,
        'set os.environ["KERAS_BACKEND"] before import keras to choose the backend',
    )


def _refuse_formula_functions(facts: NotebookFacts, kept: set[int], model: Model) -> None:
    """A statsmodels formula is evaluated again when the saved model is loaded, in a place
    where the notebook's own functions do not exist: training would pass, serving would not."""
    if model.library != "statsmodels":
        return
    functions = {name for cell in facts.cells if cell.number in kept for name in cell.functions}
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for use in cell.names.formula_calls:
            if use.name in functions:
                raise UnservableModel(
                    facts.notebook.path,
                    model.name,
                    f"the model's formula calls {use.name}(), a function the notebook defines; "
                    "statsmodels evaluates a formula again when the saved model is loaded, "
                    "where that function does not exist",
                    cell=cell.number,
                    line=use.line,
                    hint=f"compute {use.name}(...) into a column before the fit and name the "
                    "column in the formula",
                )


def _without_secrets(plan: Plan, facts: NotebookFacts, secrets: list[Secret]) -> Plan:
    """Belt and braces: no secret value survives anywhere in the Plan (reasons, dropped code)."""
    values = {s.value for s in secrets}
    values |= {value for cell in facts.cells for *_, value in secrets_in_dropped_lines(cell)}
    if not values:
        return plan
    return Plan.from_json(scrub(plan.to_json(indent=None), values))


# A cell kept for its draws takes the role of the kept step before it, so it runs in that step.
_STEP_ROLES = frozenset({"load", "features", "train", "evaluate", "inference"})
REVIVED_REASON = (
    "draws from a global random generator that kept code seeds and draws from again later: "
    "kept, so those draws get the notebook's numbers"
)
KEPT_DRAW_REASON = (
    "showing dropped; its draw from the seeded global random generator is kept, so later "
    "kept draws get the notebook's numbers"
)


def _slice(
    facts: NotebookFacts, roles: list[RoleDecision], kept: set[int], model: Model
) -> tuple[list[RoleDecision], set[int]]:
    """Leave out what the model, its metrics and its input do not depend on (see slicing)."""
    explicit = {cell.number for cell, role in zip(facts.cells, roles, strict=True) if role.explicit}
    roles, kept = list(roles), set(kept)
    sliced = slice_notebook(facts, kept, explicit, model)
    for number, statements in sliced.revived.items():
        cell = facts.cell(number)
        for index, statement in statements.items():
            cell.keep_statement(index, statement)
        if number not in kept:
            before = [roles[n - 1].role for n in sorted(kept) if n < number]
            role = before[-1] if before and before[-1] in _STEP_ROLES else "load"
            roles[number - 1] = RoleDecision(role, REVIVED_REASON)
            kept.add(number)
    for number, reasons in sliced.dropped.items():
        cell = facts.cell(number)
        cell.drop_statements(reasons)
        if not cell.kept_statements:
            kept.discard(number)
            reason = (
                next(iter(reasons.values()))
                if len(reasons) == 1
                else "nothing the model, its metrics or its input depends on"
            )
            roles[number - 1] = RoleDecision("explore", reason)
    return roles, kept


def _in_time_order(measurement: Measurement, ordered: str | None) -> Measurement:
    """Held-out metrics measured on rows after those the model learned from say so."""
    if ordered is None:
        return measurement
    metrics = tuple(
        replace(metric, ordered=ordered) if metric.validation == "holdout" else metric
        for metric in measurement.metrics
    )
    return replace(measurement, metrics=metrics)


def package_name(path: Path) -> str:
    """A Python package name from the notebook's file name, safe to put in code and paths."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", path.stem).strip("_").lower()
    if not name or not name[0].isalpha():
        name = f"nb_{name}".rstrip("_")
    if python_keywords.iskeyword(name) or name in {"test", "tests", "mlflow", "nb2prod"}:
        name = f"{name}_model"
    return name[:60]


def _parameters(
    facts: NotebookFacts, roles: list[RoleDecision], kept: set[int], secret_holders: set[str]
) -> tuple[Parameter, ...]:
    found: dict[str, Parameter] = {}
    for cell, role in zip(facts.cells, roles, strict=True):
        if role.role != "parameters" or cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
            elif isinstance(statement, ast.AnnAssign):
                target = statement.target
            else:
                continue
            value = statement.value
            if not isinstance(target, ast.Name) or value is None or not is_literal(value):
                continue
            if target.id in secret_holders:
                continue
            default = ast.literal_eval(value)
            found[target.id] = Parameter(
                name=target.id,
                type=_type_name(default),
                default=freeze(list(default) if isinstance(default, tuple | set) else default),
                cell=cell.number,
                line=statement.lineno,
            )
    return tuple(found.values())


def _type_name(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple | set):
        return "list"
    return type(value).__name__


def _kale_metric_names(facts: NotebookFacts, roles: list[RoleDecision]) -> set[str]:
    names: set[str] = set()
    for cell in facts.cells:
        if "pipeline-metrics" in cell.cell.tags:
            for statement in cell.statements:
                names.update(
                    n.id
                    for n in ast.walk(statement)
                    if isinstance(n, ast.Name) and n.id not in {"print", "display"}
                )
    return names


def _unused_imports(facts: NotebookFacts, kept: set[int]) -> dict[int, list[ast.stmt]]:
    """Import statements whose names only dropped code reads (plots, exploration)."""
    read: set[str] = set()
    for cell in facts.cells:
        if cell.number in kept:
            for statement in cell.kept_statements:
                if not isinstance(statement, ast.Import | ast.ImportFrom):
                    read.update(n.id for n in ast.walk(statement) if isinstance(n, ast.Name))
    removed: dict[int, list[ast.stmt]] = {}
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                bound = {(a.asname or a.name).split(".")[0] for a in statement.names}
                if "*" not in bound and not bound & read and not enables(statement):
                    removed.setdefault(cell.number, []).append(statement)
    return removed


def _kept_imports(
    facts: NotebookFacts, kept: set[int], removed: dict[int, list[ast.stmt]]
) -> list[tuple[str, int]]:
    modules = []
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        gone = {id(s) for s in removed.get(cell.number, [])}
        for statement in cell.kept_statements:
            if id(statement) in gone:
                continue
            for node in ast.walk(statement):
                if isinstance(node, ast.Import):
                    modules += [(a.name.split(".")[0], cell.number) for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.append((node.module.split(".")[0], cell.number))
    return modules


def _block(cell: CellFacts, removed: list[ast.stmt], secrets: list[Secret]) -> Block | None:
    """The cell's production code: display statements and unused imports blanked, secrets out."""
    lines = cell.normalised.source.split("\n")
    dropped = [
        s
        for index, (s, shown) in enumerate(zip(cell.statements, cell.display, strict=True))
        if shown or index in cell.sliced
    ]
    gone: set[int] = set()  # 0-based lines of statements left out whole
    for statement in [*dropped, *removed]:
        first = _first_line(statement)
        gone.update(range(first - 1, (statement.end_lineno or first)))
    for index in gone:
        lines[index] = ""
    nested_drops = [n for n in cell.nested_drops if n.line - 1 not in gone]
    for nested in nested_drops:
        for index in range(nested.line - 1, nested.end_line):
            lines[index] = ""
    for nested in nested_drops:
        if nested.pass_indent is not None:
            lines[nested.line - 1] = " " * nested.pass_indent + "pass"
        if nested.replacement is not None:
            lines[nested.line - 1] = nested.replacement
    for secret in sorted(
        (s for s in secrets if s.cell == cell.number), key=lambda s: (-s.line, -s.col)
    ):
        _redact(lines, secret)
    first = next((i for i, text in enumerate(lines) if text.strip()), None)
    if first is None:
        return None
    last = max(i for i, text in enumerate(lines) if text.strip())
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(text.rstrip() for text in lines[first : last + 1]))
    if not _has_code(body):
        return None
    return Block(cell=cell.number, first_line=first + 1, source=body + "\n", last_line=last + 1)


def _has_code(source: str) -> bool:
    try:
        return bool(ast.parse(source).body)
    except SyntaxError:
        return True


def _first_line(statement: ast.stmt) -> int:
    decorators = getattr(statement, "decorator_list", [])
    return min([statement.lineno, *(d.lineno for d in decorators)])


def _redact(lines: list[str], secret: Secret) -> None:
    replacement = f'os.environ["{secret.env_name}"]'
    start = lines[secret.line - 1].encode()
    end = lines[secret.end_line - 1].encode()
    head = start[: secret.col].decode()
    tail = end[secret.end_col :].decode()
    lines[secret.line - 1] = head + replacement + tail
    for index in range(secret.line, secret.end_line):
        lines[index] = ""


def _steps(
    facts: NotebookFacts,
    roles: list[RoleDecision],
    kept: set[int],
    blocks: dict[int, Block | None],
    flow: DataFlow,
    model: Model,
    metrics: tuple[Metric, ...],
) -> tuple[Step, ...]:
    groups: list[tuple[RoleDecision, list[int]]] = []
    fitted_in = model.defined_in if model.fitted_in is None else model.fitted_in
    model_reads = _names_read(*model.fit_inputs[:1], *model.predict_inputs[:1])
    for cell, role in zip(facts.cells, roles, strict=True):
        if cell.number not in kept:
            continue
        same_role = groups and (groups[-1][0].role, groups[-1][0].step) == (role.role, role.step)
        # a cell rebinding what the model was fitted on starts a step of its own, so run() can
        # take the model's input example and fit data as they were at the fit
        rebinds_model_input = (
            groups
            and groups[-1][1][-1] == fitted_in
            and bool(model_reads & set(cell.names.defines))
        )
        if same_role and not rebinds_model_input:
            groups[-1][1].append(cell.number)
        else:
            groups.append((role, [cell.number]))
    owner = {number: index for index, (_, cells) in enumerate(groups) for number in cells}
    used_later: dict[int, set[str]] = {index: set() for index in range(len(groups))}
    inputs: dict[int, set[str]] = {index: set() for index in range(len(groups))}
    for reader, sources in flow.reads_from.items():
        if reader not in owner:
            continue
        for name, source in sources.items():
            if source in owner and owner[source] != owner[reader]:
                inputs[owner[reader]].add(name)
                used_later[owner[source]].add(name)
    # a step is a function of the package's pipeline: never one of the notebook's own names
    # (`def evaluate(model, loader)`, `def train_model(...)`), which its code still calls
    taken = {n for cell in facts.cells for n in (*cell.names.defines, *cell.functions)}
    steps = []
    for index, (role, cells) in enumerate(groups):
        base = _identifier(role.step) if role.step else _STEP_NAMES.get(role.role, role.role)
        name, suffix = base, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        defined = {n for number in cells for n in facts.cell(number).names.defines}
        outputs = used_later[index] | ({model.name, *(m.name for m in metrics)} & defined)
        order = [n for number in cells for n in facts.cell(number).names.defines]
        steps.append(
            Step(
                name=name,
                role=role.role,
                blocks=tuple(b for number in cells if (b := blocks[number]) is not None),
                inputs=tuple(sorted(inputs[index])),
                outputs=tuple(n for n in dict.fromkeys(order) if n in outputs),
                after=role.after,
            )
        )
    return tuple(steps)


def _names_read(*expressions: str) -> set[str]:
    """The variables the expressions read (`X_train` of `X_train[:, :2]`)."""
    names: set[str] = set()
    for text in expressions:
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError:
            continue
        names |= names_in(tree)
    return names


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text).strip("_").lower() or "step"
    return name if name[0].isalpha() else f"step_{name}"


def _decisions(
    facts: NotebookFacts,
    roles: list[RoleDecision],
    kept: set[int],
    removed: dict[int, list[ast.stmt]],
) -> tuple[CellDecision, ...]:
    decisions = []
    for cell, role in zip(facts.cells, roles, strict=True):
        dropped = [DroppedCode(d.line, d.construct, d.reason) for d in cell.normalised.dropped]
        for index, (statement, shown) in enumerate(zip(cell.statements, cell.display, strict=True)):
            if role.role in DROPPED_ROLES and cell.number not in kept and not cell.sliced:
                break
            if shown:
                dropped.append(DroppedCode(statement.lineno, construct(statement), DISPLAY_REASON))
            elif index in cell.sliced:
                dropped.append(
                    DroppedCode(statement.lineno, construct(statement), cell.sliced[index])
                )
        for nested in cell.nested_drops:
            if cell.number in kept:
                dropped.append(DroppedCode(nested.line, nested.construct, nested.reason))
        for lifted in cell.lifted:
            dropped.append(
                DroppedCode(
                    lifted.line,
                    lifted.construct,
                    f"printing dropped; the metric it shows is kept as {', '.join(lifted.names)}"
                    if lifted.names
                    else "showing dropped; the fit it shows is kept",
                )
            )
        for line, shown in cell.kept_draws:
            dropped.append(DroppedCode(line, shown, KEPT_DRAW_REASON))
        for unwrapped in cell.unwrapped:
            dropped.append(
                DroppedCode(
                    unwrapped.line,
                    unwrapped.construct,
                    f"drawing dropped; the visualizer's fit and score are done on "
                    f"{unwrapped.model} itself",
                )
            )
        for statement in removed.get(cell.number, []):
            dropped.append(
                DroppedCode(
                    statement.lineno, construct(statement), "imported only for dropped code"
                )
            )
        reason = role.reason
        if role.role not in DROPPED_ROLES and cell.number not in kept:
            reason += "; nothing left to keep once display code is dropped"
        decisions.append(
            CellDecision(
                cell=cell.number,
                execution_count=cell.cell.execution_count,
                tags=cell.cell.tags,
                role=role.role,
                reason=reason,
                kept=cell.number in kept,
                step=role.step,
                defines=cell.names.defines,
                uses=tuple(dict.fromkeys(u.name for u in cell.names.uses)),
                dropped=tuple(sorted(dropped, key=lambda d: d.line)),
            )
        )
    return tuple(decisions)


def _secret_findings(facts: NotebookFacts, secrets: list[Secret]) -> list[Finding]:
    findings = [
        Finding(
            "secret",
            "error",
            f"{s.holder or 'a string'} holds what looks like a secret ({s.masked}); nb2prod "
            f"never copies it: generated code that needs it reads ${s.env_name}",
            s.cell,
            s.line,
            "revoke it, remove it from the notebook and its history, and set it in the environment",
        )
        for s in secrets
    ]
    for cell in facts.cells:
        for line, masked, _ in secrets_in_dropped_lines(cell):
            findings.append(
                Finding(
                    "secret",
                    "error",
                    f"a shell or magic line holds what looks like a secret ({masked})",
                    cell.number,
                    line,
                    "revoke it and remove it from the notebook",
                )
            )
    return findings


def _dropped_syntax_findings(facts: NotebookFacts) -> list[Finding]:
    findings = []
    for cell in facts.cells:
        for dropped in cell.normalised.dropped:
            if not dropped.warn:
                continue
            code = "shell-escape" if dropped.construct.startswith("!") else "dropped-magic"
            findings.append(
                Finding(
                    code,
                    "warning",
                    f"{dropped.construct} dropped: {dropped.reason}",
                    cell.number,
                    dropped.line,
                    "do this in Python, or in the package's setup, if production needs it",
                )
            )
    return findings


def _with_library(model: Model, requirements: tuple[Requirement, ...]) -> Model:
    """Name the model's library by its distribution ('scikit-learn', not 'sklearn')."""
    for requirement in requirements:
        if model.library in requirement.modules:
            return replace(model, library=requirement.name)
    return model


def _with_task_from_metrics(model: Model, metrics: tuple[Metric, ...]) -> Model:
    """A model whose class says nothing of its task is known by what it is measured with."""
    for metric in metrics:
        if CLASSIFICATION_METRICS.search(metric.function):
            return replace(model, task="classification")
        if REGRESSION_METRICS.search(metric.function):
            return replace(model, task="regression")
    return model


def _honesty(
    facts: NotebookFacts,
    contract: Contract,
    model: Model,
    measurement: Measurement,
    override: str | None,
) -> Honesty:
    held_out = [m for m in measurement.metrics if m.held_out]
    primary = _primary_metric(facts, model, held_out, measurement.measures)
    of_others = list(dict.fromkeys(m.name for m in measurement.others if m.held_out))
    declared = _declared_status(facts, override)
    if declared is not None:
        value, source = declared
        try:
            status = contract.status(value)
        except KeyError as error:
            raise InputError(facts.notebook.path, f"{source}: {error.args[0]}") from None
        reason = f"declared by {source}"
    elif model.kind == "fitted" and primary is not None:
        status = contract.status("IMPLEMENTED")
        refitted = measurement.measures.get(primary.name) == REFITTED
        reason = (
            f"a fitted {model.estimator.rsplit('.', 1)[-1]} evaluated on held-out data "
            f"({primary.name}{', before it is fitted again' if refitted else ''}); the "
            "pipeline confirms it when it measures the metric"
        )
    elif model.kind == "fitted":
        status = contract.status("HEURISTIC")
        reason = "a fitted model never evaluated on held-out data: not validated"
        if of_others:
            reason += (
                f" ({', '.join(of_others)} {'measures' if len(of_others) == 1 else 'measure'}"
                f" another model than {model.name} as the package serves it)"
            )
    else:
        status = contract.status("HEURISTIC")
        reason = f"hand-written rules ({model.estimator.rsplit('.', 1)[-1]}) with no fitted model"
    if primary is None:
        method = (
            f"{contract.no_validation_prefix} - pattern-based heuristic"
            if model.kind == "rule-based"
            else f"{contract.no_validation_prefix} - no held-out evaluation"
        )
    elif primary.validation == "cross-validation":
        method = f"{primary.folds}-fold cross-validation"
    elif (share := measurement.holdout_shares.get(primary.name)) is not None:
        method = f"holdout {round(share * 100, 2):g}%"
    elif measurement.holdout_fraction is not None:
        method = f"holdout {measurement.holdout_fraction * 100:g}%"
    else:
        method = "holdout"
    validated = primary is not None and status.name == "IMPLEMENTED"
    return Honesty(
        implementation_status=status.name,
        status_source="derived" if declared is None else declared[1],
        reason=reason,
        validation_method=method,
        validation_status=contract.validation_status_values[0 if validated else 1],
        primary_metric=primary.name if primary else None,
        threshold=status.min_metric,
        uncertainty=status.uncertainty,
    )


def _made_alone(task: str) -> str:
    """An example of a value made from a module's output alone, for its task."""
    if task == "classification":
        return "predicted = model(X).argmax(1)"
    return "predicted = model(X).squeeze(-1)"


def _primary_metric(
    facts: NotebookFacts, model: Model, held_out: list[Metric], measures: dict[str, str]
) -> Metric | None:
    """The metric a claim is made from, among those of the served model (the metrics of another
    model are not in the Plan): the served model after its last fit first, then one measured
    after its training over one measured while it trained (an epoch's validation accuracy,
    on rows that may steer the training), then higher-is-better, cross-validation preferred."""
    ranked = sorted(
        held_out,
        key=lambda m: (
            RANK[measures.get(m.name, UNKNOWN)],
            _inside_training_loop(facts, model, m),
            not m.greater_is_better,
            m.validation != "cross-validation",
            m.cell,
            m.line,
        ),
    )
    return ranked[0] if ranked else None


def _inside_training_loop(facts: NotebookFacts, model: Model, metric: Metric) -> bool:
    """The metric is computed inside a loop of the cell that fits the model (epochs, folds):
    it measures the model while it trains, not as the loop leaves it."""
    if metric.cell != model.fitted_in:
        return False
    return any(
        isinstance(statement, ast.For | ast.While)
        and statement.lineno < metric.line <= (statement.end_lineno or statement.lineno)
        for statement in facts.cell(metric.cell).statements
    )


def _declared_status(facts: NotebookFacts, override: str | None) -> tuple[str, str] | None:
    if override:
        return override, "--status"
    declared = facts.notebook.metadata.get("nb2prod")
    if isinstance(declared, dict) and isinstance(declared.get("implementation_status"), str):
        return declared["implementation_status"], "notebook metadata nb2prod.implementation_status"
    for cell in facts.cells:
        for tag in cell.cell.tags:
            if tag.startswith("nb2prod:status="):
                return tag.split("=", 1)[1], f"cell {cell.number} tag {tag!r}"
    return None
