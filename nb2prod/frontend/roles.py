"""Give each code cell a role, and say why.

The sources are read in a fixed order, the first that speaks wins: the cell's tags
(nb2prod's own `nb2prod:ROLE`, Kale's and papermill's), a first-line directive comment
(`# nb2prod: train`), Kale's rule that an untagged cell belongs to the step above it, and
last heuristics on the code. Every decision carries the reason a reviewer will read.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from nb2prod.errors import InputError
from nb2prod.frontend.computed_metrics import Parts, bound_values, hand_metric, named_values
from nb2prod.frontend.facts import CallSite, CellFacts, NotebookFacts
from nb2prod.frontend.pysyntax import dotted_name, nodes_run_now
from nb2prod.frontend.training_loops import TrainedModule, module_calls, trained_modules
from nb2prod.frontend.vocabulary import (
    CV_FUNCTIONS,
    FIT_METHODS,
    PREDICT_METHODS,
    SPLIT_FUNCTIONS,
    TRAIN_FUNCTIONS,
    is_load_call,
    is_metric_function,
    is_transformer,
    through_setters,
)
from nb2prod.plan import DISPLAY_REASON, ROLES

_ROLE_ALIASES = {
    **{role: role for role in ROLES},
    "import": "imports",
    "params": "parameters",
    "parameter": "parameters",
    "function": "functions",
    "helpers": "functions",
    "data": "load",
    "load_data": "load",
    "feature": "features",
    "preprocess": "features",
    "training": "train",
    "eval": "evaluate",
    "evaluation": "evaluate",
    "metrics": "evaluate",
    "predict": "inference",
    "exploration": "explore",
    "display": "explore",
    "drop": "skip",
}
_KALE_TAGS = {
    "imports": "imports",
    "functions": "functions",
    "pipeline-parameters": "parameters",
    "pipeline-metrics": "evaluate",
    "skip": "skip",
}
_PAPERMILL_TAGS = {"parameters": "parameters", "injected-parameters": "parameters"}
_STEP_WORDS = (
    ("train", "train"),
    ("fit", "train"),
    ("model", "train"),
    ("eval", "evaluate"),
    ("metric", "evaluate"),
    ("score", "evaluate"),
    ("test", "evaluate"),
    ("predict", "inference"),
    ("infer", "inference"),
    ("serv", "inference"),
    ("load", "load"),
    ("read", "load"),
    ("data", "load"),
    ("ingest", "load"),
    ("fetch", "load"),
    ("feature", "features"),
    ("prep", "features"),
    ("clean", "features"),
    ("transform", "features"),
    ("split", "features"),
    ("import", "imports"),
    ("param", "parameters"),
    ("function", "functions"),
)


@dataclass(frozen=True)
class RoleDecision:
    role: str
    reason: str
    step: str | None = None  # Kale step name
    after: tuple[str, ...] = ()
    explicit: bool = False  # the user said so (tag or directive): heuristics never override it


def parse_role_word(word: str, facts: NotebookFacts, cell: int, where: str) -> str:
    role = _ROLE_ALIASES.get(word.strip().lower())
    if role is None:
        raise InputError(
            facts.notebook.path,
            f"unknown nb2prod role {word!r} in {where}",
            cell=cell,
            hint=f"use one of {', '.join(ROLES)}",
        )
    return role


@dataclass
class _Context:
    """What the heuristics know of the cells above the current one, kept up to date in one pass."""

    model_names: set[str]
    functions: set[str]  # every function the notebook defines
    predictions: set[str] = field(default_factory=set)  # names bound from .predict(...) above
    data: set[str] = field(default_factory=set)  # names bound above by cells that hold data
    # PyTorch modules an optimizer steps, and where: found once for the whole notebook
    modules: list[TrainedModule] = field(default_factory=list)
    # what each name is bound to anywhere in the notebook, to read metrics computed by hand
    parts: Parts = field(default_factory=dict)

    def advance(self, cell: CellFacts) -> None:
        self.predictions.update(
            name
            for call in cell.calls
            if call.method in PREDICT_METHODS
            for name in call.assigned_to
        )
        definitions_only = cell.only(ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
        if not definitions_only and not _only_literal_assignments(cell):
            self.data.update(cell.names.defines)


def assign_roles(facts: NotebookFacts, model_names: set[str]) -> list[RoleDecision]:
    decisions: list[RoleDecision] = []
    kale_block: RoleDecision | None = None
    context = _Context(
        model_names,
        {name for cell in facts.cells for name in cell.functions} - facts.returns_no_number,
        modules=trained_modules(facts, None),
        parts=bound_values(statement for cell in facts.cells for statement in cell.statements),
    )
    for cell in facts.cells:
        decision = _from_tags(cell, facts) or _from_directive(cell, facts)
        if decision is not None:
            if any(
                tag.startswith(("step:", "block:")) or tag in _KALE_TAGS for tag in cell.cell.tags
            ):
                kale_block = decision
        elif cell.is_empty:
            decision = RoleDecision("explore", _empty_reason(cell))
        elif all(cell.display):
            decision = RoleDecision("explore", _display_reason(cell))
        elif kale_block is not None and kale_block.role != "skip":
            decision = RoleDecision(
                kale_block.role,
                f"untagged, so part of the Kale block above ({kale_block.step or kale_block.role})",
                kale_block.step,
                kale_block.after,
            )
        else:
            decision = _from_code(cell, facts, context)
        decisions.append(decision)
        context.advance(cell)
    return decisions


def _from_tags(cell: CellFacts, facts: NotebookFacts) -> RoleDecision | None:
    tags = cell.cell.tags
    step = next((t.split(":", 1)[1] for t in tags if t.startswith(("step:", "block:"))), None)
    after = tuple(t.split(":", 1)[1] for t in tags if t.startswith("prev:"))
    for tag in tags:
        if tag.startswith("nb2prod:"):
            word = tag.split(":", 1)[1]
            if "=" in word:
                continue  # nb2prod:model=NAME, nb2prod:status=...: not a role
            role = parse_role_word(word, facts, cell.number, f"tag {tag!r}")
            return RoleDecision(role, f"tagged {tag!r}", step, after, explicit=True)
    for tag in tags:
        if tag in _KALE_TAGS:
            return RoleDecision(_KALE_TAGS[tag], f"tagged {tag!r} (Kale)", step, after, True)
        if tag in _PAPERMILL_TAGS:
            return RoleDecision("parameters", f"tagged {tag!r} (papermill)", step, after, True)
    if step is not None:
        role = _role_from_step_name(step)
        if role is None:
            heuristic = _from_code(cell, facts, _Context(set(), set()))
            reason = f"tagged 'step:{step}' (Kale); {heuristic.reason}"
            return RoleDecision(heuristic.role, reason, step, after, explicit=True)
        return RoleDecision(role, f"tagged 'step:{step}' (Kale)", step, after, explicit=True)
    return None


def _from_directive(cell: CellFacts, facts: NotebookFacts) -> RoleDecision | None:
    if cell.directive is None:
        return None
    words = [word for word in cell.directive.split() if "=" not in word]
    if not words:
        return None
    role = parse_role_word(words[0], facts, cell.number, "the '# nb2prod:' directive")
    return RoleDecision(role, f"directive '# nb2prod: {cell.directive}'", explicit=True)


def _role_from_step_name(step: str) -> str | None:
    lowered = step.lower()
    for word, role in _STEP_WORDS:
        if word in lowered:
            return role
    return None


def _empty_reason(cell: CellFacts) -> str:
    constructs = sorted({d.construct for d in cell.normalised.dropped})
    if constructs:
        return "no Python left once IPython syntax is removed (" + ", ".join(constructs) + ")"
    return "empty cell"


def _display_reason(cell: CellFacts) -> str:
    if cell.normalised.timing_lines:
        return "only times code (%timeit)"
    return f"{DISPLAY_REASON}: {_shown(cell)}"


def _shown(cell: CellFacts) -> str:
    text = ast.unparse(cell.statements[0]).splitlines()[0]
    if len(text) > 40:
        text = text[:37] + "..."
    return text + (f" (+{len(cell.statements) - 1} more)" if len(cell.statements) > 1 else "")


def _fitted_class(facts: NotebookFacts, call: CallSite) -> str | None:
    """The class a fit call fits, by name or where it is built (`StandardScaler().fit(X)`)."""
    fitted = getattr(call.node.func, "value", None)
    built = through_setters(fitted) if fitted is not None else None
    if isinstance(built, ast.Call) and (callee := dotted_name(built.func)):
        return facts.aliases.resolve(callee)
    return facts.constructors.get(call.receiver or "")


def _from_code(cell: CellFacts, facts: NotebookFacts, context: _Context) -> RoleDecision:
    """Heuristics, strongest signal first."""
    model_names = context.model_names
    if cell.only(ast.Import, ast.ImportFrom):
        return RoleDecision("imports", "only imports")
    if cell.only(ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
        names = sorted(cell.functions | set(cell.classes))
        return RoleDecision("functions", f"only defines {', '.join(names)}")
    if _only_literal_assignments(cell):
        return RoleDecision("parameters", "only assigns literal values")
    calls = cell.calls
    for call in calls:
        if call.method in FIT_METHODS and not is_transformer(_fitted_class(facts, call)):
            return RoleDecision("train", f"calls {call.receiver}.{call.method}(...)")
        if call.qualified in TRAIN_FUNCTIONS:
            return RoleDecision("train", f"calls {call.qualified}(...)")
    steps = [module for module in context.modules if module.cell == cell.number]
    if steps:
        return RoleDecision("train", f"steps {steps[0].optimizer} over {steps[0].name}")
    built = sorted(set(cell.names.defines) & model_names)
    if built:
        return RoleDecision("train", f"builds the model {built[0]}")
    for call in calls:
        defined_here = call.qualified in context.functions
        if is_metric_function(call.qualified, defined_here) or (
            call.qualified in facts.returns_a_metric
        ):
            return RoleDecision("evaluate", f"computes {call.qualified.rsplit('.', 1)[-1]}(...)")
        if call.method == "score" and call.receiver in model_names:
            return RoleDecision("evaluate", f"calls {call.receiver}.score(...)")
    models = model_names | {module.name for module in context.modules}
    for statement in cell.kept_statements:
        for node in nodes_run_now(statement):
            for name, value in named_values(node):
                quantity = hand_metric(name, value, context.parts, models)
                if quantity is not None:
                    return RoleDecision("evaluate", f"computes {quantity} by hand")
    for call in calls:
        if is_load_call(call.qualified):
            return RoleDecision("load", f"loads data with {call.qualified.rsplit('.', 1)[-1]}(...)")
    for call in calls:
        if call.method in PREDICT_METHODS:
            return RoleDecision("inference", f"calls {call.receiver}.{call.method}(...)")
    trained = {module.name for module in context.modules}
    for statement in cell.kept_statements:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue  # `def predict(model, x): return model(x)` predicts only when called
        called = [name for name in sorted(trained) if module_calls(statement, name)]
        if called:
            return RoleDecision("inference", f"predicts with {called[0]}(...)")
    read = sorted({use.name for use in cell.names.uses} & context.predictions)
    if read:
        return RoleDecision("inference", f"works on the predictions {', '.join(read)}")
    for call in calls:
        if call.qualified in SPLIT_FUNCTIONS or call.qualified in CV_FUNCTIONS:
            return RoleDecision("features", "splits the data")
    reads = {use.name for use in cell.names.uses if not use.deferred}
    if cell.names.defines and not reads & context.data:
        produced = ", ".join(cell.names.defines[:3])
        return RoleDecision("load", f"creates the data ({produced}) from no earlier data")
    return RoleDecision(
        "features", "transforms data (code that neither loads, trains nor evaluates)"
    )


def _only_literal_assignments(cell: CellFacts) -> bool:
    kept = cell.kept_statements
    if not kept:
        return False
    for statement in kept:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            return False
        if not isinstance(target, ast.Name) or not is_literal(value):
            return False
    return True


def is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True
