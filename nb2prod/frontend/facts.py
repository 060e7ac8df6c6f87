"""One pass over every cell: parse it, split display from code, and record what it calls.

The analyses after this (roles, model, metrics, parameters, findings) read these facts and
never re-parse a cell.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass, field
from functools import cached_property

from nb2prod.frontend.computed_metrics import bound_values
from nb2prod.frontend.devices import run_on_cpu
from nb2prod.frontend.display import PLOTTING_MODULES, DisplayTracker
from nb2prod.frontend.magics import NormalisedCell, normalise
from nb2prod.frontend.migrations import Migration, migrate_calls
from nb2prod.frontend.names import CellNames, scan_names
from nb2prod.frontend.printed_metrics import LiftedMetric, lift_printed_metrics
from nb2prod.frontend.pruning import NestedDrop, prune_nested_display
from nb2prod.frontend.pysyntax import (
    Aliases,
    construct,
    dotted_name,
    fresh_name,
    nodes_run_now,
    numeric_core,
    parse_cell,
    root_name,
    target_names,
)
from nb2prod.frontend.reader import CodeCell, Notebook
from nb2prod.frontend.visualizers import UnwrappedCall, unwrap_visualizers
from nb2prod.frontend.vocabulary import is_metric_function

# Methods whose result is the object itself, refitted or moved (torch's `.to(device)`).
_SAME_OBJECT_METHODS = frozenset(
    {"fit", "fit_transform", "partial_fit", "to", "cuda", "cpu", "double", "float", "half"}
)
_KEPT_DRAW_COMMENT = "# drawn to be shown; the seeded draws after it depend on it"
_DIRECTIVE = re.compile(r"^\s*#\s*nb2prod\s*:\s*(?P<body>.+?)\s*$")


@dataclass(frozen=True)
class CallSite:
    qualified: str  # callee with imports resolved: 'sklearn.metrics.f1_score', 'model.fit'
    method: str | None  # the attribute called, for method calls
    receiver: str | None  # the variable the method is called on
    node: ast.Call
    line: int
    assigned_to: tuple[str, ...]  # names bound by `x = call(...)`
    in_display: bool  # or otherwise left out of the package
    statement: int = 0  # index of its top-level statement in the cell
    assigned_whole: bool = False  # `x = call(...)`, not `x = call(...) ** 0.5`


@dataclass
class CellFacts:
    cell: CodeCell
    normalised: NormalisedCell
    statements: list[ast.stmt]
    display: list[bool]
    names: CellNames  # over the kept (non-display) statements
    calls: list[CallSite]
    directive: str | None
    classes: dict[str, set[str]] = field(default_factory=dict)  # class -> method names
    functions: set[str] = field(default_factory=set)
    lifted: list[LiftedMetric] = field(default_factory=list)  # printed metrics kept
    unwrapped: list[UnwrappedCall] = field(default_factory=list)  # visualizers' fits kept
    nested_drops: list[NestedDrop] = field(default_factory=list)  # display inside kept code
    migrated: list[Migration] = field(default_factory=list)  # calls rewritten for the library
    sliced: dict[int, str] = field(default_factory=dict)  # statement index -> why it goes
    # display statements whose draws from a seeded generator are kept: (line, construct)
    kept_draws: list[tuple[int, str]] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.cell.number

    @cached_property
    def kept_statements(self) -> list[ast.stmt]:
        return [
            s
            for index, (s, shown) in enumerate(zip(self.statements, self.display, strict=True))
            if not shown and index not in self.sliced
        ]

    def drop_statements(self, reasons: dict[int, str]) -> None:
        """Leave statements out of the package (the slice found nothing that needs them)."""
        self.sliced.update(reasons)
        self.__dict__.pop("kept_statements", None)
        self.names = scan_names(self.kept_statements)
        self.calls = [
            dataclasses.replace(call, in_display=True)
            if call.statement in self.sliced and not call.in_display
            else call
            for call in self.calls
        ]

    def keep_statement(self, index: int, statement: ast.stmt) -> None:
        """Keep a statement the package would leave out; a display statement runs as
        `statement` instead, its draws without the display (`ax.plot(arma.generate_sample(50))`
        runs `_ = arma.generate_sample(50)`), on its own first line so lines still match."""
        if self.display[index]:
            shown = self.statements[index]
            lines = self.normalised.source.split("\n")
            for line in range(shown.lineno, (shown.end_lineno or shown.lineno) + 1):
                lines[line - 1] = ""
            lines[shown.lineno - 1] = f"{ast.unparse(statement)}  {_KEPT_DRAW_COMMENT}"
            self.normalised = dataclasses.replace(self.normalised, source="\n".join(lines))
            self.kept_draws.append((shown.lineno, construct(shown)))
            self.statements[index] = statement
            self.display[index] = False
        self.sliced.pop(index, None)
        self.__dict__.pop("kept_statements", None)
        self.names = scan_names(self.kept_statements)

    @property
    def is_empty(self) -> bool:
        return not self.statements

    def only(self, *kinds: type) -> bool:
        """Whether every non-display statement is one of `kinds` (and there is one)."""
        kept = [s for s in self.kept_statements if not _is_docstring(s)]
        return bool(kept) and all(isinstance(s, kinds) for s in kept)


@dataclass
class NotebookFacts:
    notebook: Notebook
    cells: list[CellFacts]
    aliases: Aliases
    constructors: dict[str, str]  # variable -> qualified constructor it was last built with
    constructor_calls: dict[str, ast.Call]
    figure_names: set[str]
    # notebook functions that return only tuples, lists, dicts or text: never a metric's value
    # (`def score_monolithic(...): return {"rows": ..., "runtime_s": ...}, preview`)
    returns_no_number: set[str] = field(default_factory=set)
    # notebook functions whose every return is a metric's value, whatever their name
    # (`def evaluate(y_true, y_pred): rmse = np.sqrt(mean_squared_error(...)); return rmse`)
    returns_a_metric: set[str] = field(default_factory=set)

    def cell(self, number: int) -> CellFacts:
        return self.cells[number - 1]


def gather_facts(notebook: Notebook) -> NotebookFacts:
    """Normalise and parse every code cell once, then classify its statements."""
    aliases = Aliases()
    parsed: list[tuple[CodeCell, NormalisedCell, ast.Module]] = []
    for cell in notebook.cells:
        normalised = normalise(cell.source)
        tree = parse_cell(normalised.source, notebook.path, cell.number)
        aliases.add_imports(tree)
        parsed.append((cell, normalised, tree))
    tracker = DisplayTracker(
        aliases, _functions_returning_values(parsed) | _plotting_functions(parsed, aliases)
    )
    notebook_functions = {
        s.name for _, _, tree in parsed for s in tree.body if isinstance(s, ast.FunctionDef)
    }
    returning_no_number = _functions_returning_no_number(parsed)
    taken = {
        node.id for _, _, tree in parsed for node in ast.walk(tree) if isinstance(node, ast.Name)
    } | notebook_functions
    constructors: dict[str, str] = {}
    constructor_calls: dict[str, ast.Call] = {}
    visualized_model = fresh_name("model", taken)  # a model built inside a visualizer's call
    cells = []
    for cell, normalised, tree in parsed:
        source, migrated = migrate_calls(normalised.source, tree.body, aliases)
        if migrated:
            normalised = dataclasses.replace(normalised, source=source)
            tree = parse_cell(source, notebook.path, cell.number)
        source, moved = run_on_cpu(normalised.source, tree.body, aliases)
        migrated += moved
        if moved:
            normalised = dataclasses.replace(normalised, source=source)
            tree = parse_cell(source, notebook.path, cell.number)
        source, unwrapped = unwrap_visualizers(
            normalised.source, tree.body, aliases, visualized_model, tracker.figure_names
        )
        if unwrapped:
            normalised = dataclasses.replace(normalised, source=source)
            tree = parse_cell(source, notebook.path, cell.number)
        source, lifted = lift_printed_metrics(
            normalised.source,
            tree.body,
            tracker.is_display,
            aliases,
            notebook_functions - returning_no_number,
            taken,
        )
        if lifted:
            normalised = dataclasses.replace(normalised, source=source)
            tree = parse_cell(source, notebook.path, cell.number)
        statements = [s for s in tree.body if not _is_ipython_call(s)]
        timed = set(normalised.timing_lines)
        display = [tracker.is_display(s) or s.lineno in timed for s in statements]
        nested: list[NestedDrop] = []
        for index, (statement, shown) in enumerate(zip(statements, display, strict=True)):
            if not shown:
                statements[index], drops = prune_nested_display(
                    statement, tracker.is_display, tracker.figure_names
                )
                nested += drops
        kept = [s for s, shown in zip(statements, display, strict=True) if not shown]
        facts = CellFacts(
            cell=cell,
            normalised=normalised,
            statements=statements,
            display=display,
            names=scan_names(kept),
            calls=list(_calls(statements, display, aliases)),
            directive=_directive(cell.source),
            lifted=lifted,
            unwrapped=unwrapped,
            nested_drops=nested,
            migrated=migrated,
        )
        for statement in kept:
            _record_definitions(statement, facts, aliases, constructors, constructor_calls)
        cells.append(facts)
    return NotebookFacts(
        notebook,
        cells,
        aliases,
        constructors,
        constructor_calls,
        tracker.figure_names,
        returning_no_number,
        _functions_returning_a_metric(parsed, aliases) - returning_no_number,
    )


_NOT_NUMBERS = (ast.Tuple, ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.JoinedStr)


def _functions_returning_no_number(
    parsed: list[tuple[CodeCell, NormalisedCell, ast.Module]],
) -> set[str]:
    """Notebook functions every `return` of which is a container, text or a value per row
    (`((recon - X) ** 2).mean(dim=1)`), or that return nothing (`def plot_loss(history):`
    draws): whatever their name says (`score_...`, `..._metrics`, `reconstruction_error`,
    `..._loss`), what they compute is not one number to claim."""
    names = set()
    for _, _, tree in parsed:
        for statement in tree.body:
            if not isinstance(statement, ast.FunctionDef):
                continue
            values = [n.value for n in ast.walk(statement) if isinstance(n, ast.Return)]
            text = [v for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            # `out = {}`, then `out[name] = mean_absolute_error(...)`, then `return out`
            built = _containers_bound_in(statement)
            containers = [
                v
                for v in values
                if isinstance(v, _NOT_NUMBERS)
                or _per_row(v)
                or (isinstance(v, ast.Name) and v.id in built)
            ]
            nothing = [v for v in values if v is None or _is_none(v)]
            if len(text) + len(containers) + len(nothing) == len(values):
                names.add(statement.name)
    return names


def _containers_bound_in(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names the function binds only to containers (`out = {}`, `rows = list()`)."""
    bound: dict[str, bool] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    value = node.value
                    container = isinstance(value, _NOT_NUMBERS) or (
                        isinstance(value, ast.Call)
                        and isinstance(value.func, ast.Name)
                        and value.func.id in ("dict", "list", "set", "tuple")
                    )
                    bound[target.id] = bound.get(target.id, True) and container
    return {name for name, container in bound.items() if container}


def _is_none(value: ast.expr) -> bool:
    return isinstance(value, ast.Constant) and value.value is None


_REDUCTIONS = frozenset({"mean", "sum", "std", "var", "norm", "max", "min", "median"})
_LEAVING = frozenset({"numpy", "cpu", "detach", "tolist"})


def _per_row(value: ast.expr | None) -> bool:
    """`errors.mean(dim=1).numpy()`, `np.mean(errors, axis=1)`: a reduction along an axis,
    which leaves one value per row, not one number."""
    while (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in _LEAVING
        and not value.args
    ):
        value = value.func.value
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
        return False
    if value.func.attr not in _REDUCTIONS:
        return False
    along = [k.value for k in value.keywords if k.arg in ("axis", "dim")]
    if not along and value.args and isinstance(value.func.value, ast.Name | ast.Attribute):
        # `x.mean(1)` on a tensor or array; `np.mean(x, 1)` names the axis second
        along = value.args[1:2] if dotted_name(value.func.value) in _NUMPY else value.args[:1]
    return any(not (isinstance(a, ast.Constant) and a.value is None) for a in along)


_NUMPY = frozenset({"np", "numpy", "torch"})


def _functions_returning_a_metric(
    parsed: list[tuple[CodeCell, NormalisedCell, ast.Module]], aliases: Aliases
) -> set[str]:
    """Notebook functions every `return` of which is what a metric function computes, directly
    or through a name the function binds to it (`rmse = np.sqrt(mean_squared_error(y, p))`)."""
    names = set()
    for _, _, tree in parsed:
        for statement in tree.body:
            if not isinstance(statement, ast.FunctionDef):
                continue
            body = [node for inner in statement.body for node in nodes_run_now(inner)]
            bound = bound_values(statement.body)
            values = [node.value for node in body if isinstance(node, ast.Return)]
            if values and all(_a_metric(value, bound, aliases) for value in values):
                names.add(statement.name)
    return names


def _a_metric(
    value: ast.expr | None, bound: dict[str, tuple[ast.expr, ...]], aliases: Aliases
) -> bool:
    if isinstance(value, ast.Name):  # the name's last binding in the function
        value = bound.get(value.id, (None,))[-1]
    if value is None:
        return False
    core = numeric_core(value, aliases)
    callee = dotted_name(core.func) if isinstance(core, ast.Call) else None
    return callee is not None and is_metric_function(aliases.resolve(callee), False)


_PLOTTING_NAMES = re.compile(r"^_?(plot|show|draw|display|visuali[sz]e|render)(_|$)", re.I)


def _plotting_functions(
    parsed: list[tuple[CodeCell, NormalisedCell, ast.Module]], aliases: Aliases
) -> set[str]:
    """Notebook functions made to draw (`def plot_decision_function(X, y, clf, ax)`).

    A call to one is display, as a call to `plt.plot` is: it returns nothing, fits nothing,
    and either says it plots in its name or calls a plotting library.
    """
    names = set()
    for _, _, tree in parsed:
        for statement in tree.body:
            if not isinstance(statement, ast.FunctionDef):
                continue
            nodes = list(ast.walk(statement))
            if any(isinstance(n, ast.Return) and n.value is not None for n in nodes):
                continue
            calls = [n for n in nodes if isinstance(n, ast.Call)]
            if any(isinstance(c.func, ast.Attribute) and c.func.attr == "fit" for c in calls):
                continue
            plots = any(
                aliases.resolve(callee).startswith(PLOTTING_MODULES)
                for c in calls
                if (callee := dotted_name(c.func))
            )
            if plots or _PLOTTING_NAMES.match(statement.name):
                names.add(statement.name)
    return names


def _functions_returning_values(
    parsed: list[tuple[CodeCell, NormalisedCell, ast.Module]],
) -> set[str]:
    """Notebook functions that return a value and train nothing: a bare call to one is there
    to show it. A training step that returns its loss (`def train_step(x, y): ...
    optimizer.apply_gradients(...); return loss`) is called for what it changes."""
    names = set()
    for _, _, tree in parsed:
        for statement in tree.body:
            if not isinstance(statement, ast.FunctionDef):
                continue
            nodes = list(ast.walk(statement))
            returns = any(isinstance(n, ast.Return) and n.value is not None for n in nodes)
            trains = any(
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in _TRAINING_METHODS
                for n in nodes
            )
            if returns and not trains and not any(isinstance(n, ast.Global) for n in nodes):
                names.add(statement.name)
    return names


# calls that change a model: an optimizer's step (torch, Pyro, TensorFlow), a backward pass, a fit
_TRAINING_METHODS = frozenset(
    {"step", "apply_gradients", "minimize", "backward", "fit", "partial_fit"}
)


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _is_ipython_call(statement: ast.stmt) -> bool:
    """`get_ipython()...` left in a statement the line rewriter could not read."""
    return isinstance(statement, ast.Expr) and root_name(statement.value) == "get_ipython"


def _directive(source: str) -> str | None:
    for line in source.splitlines():
        if line.strip():
            match = _DIRECTIVE.match(line)
            return match["body"] if match else None
    return None


def _calls(statements: list[ast.stmt], display: list[bool], aliases: Aliases):
    for index, (statement, shown) in enumerate(zip(statements, display, strict=True)):
        assigned: dict[int, tuple[str, ...]] = {}
        whole: set[int] = set()
        nodes = nodes_run_now(statement) if isinstance(statement, _BLOCKS) else [statement]
        for node in nodes:  # `acc = f1(...)` in a loop body too
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call | ast.BinOp):
                names = [n for target in node.targets for n in target_names(target)]
                assigned[id(node.value)] = tuple(names)
                whole.add(id(node.value))
                assigned[id(numeric_core(node.value, aliases))] = tuple(names)
        for node in ast.walk(statement):
            if not isinstance(node, ast.Call):
                continue
            callee = dotted_name(node.func)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else None
            receiver = root_name(node.func.value) if isinstance(node.func, ast.Attribute) else None
            if callee is not None:
                qualified = aliases.resolve(callee)
            elif method is not None:
                qualified = f"{receiver or '?'}.{method}"
            else:
                qualified = "?"
            yield CallSite(
                qualified=qualified,
                method=method,
                receiver=receiver,
                node=node,
                line=node.lineno,
                assigned_to=assigned.get(id(node), ()),
                in_display=shown,
                statement=index,
                assigned_whole=id(node) in whole,
            )


_BLOCKS = (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try)


def _record_definitions(
    statement: ast.stmt,
    facts: CellFacts,
    aliases: Aliases,
    constructors: dict[str, str],
    constructor_calls: dict[str, ast.Call],
) -> None:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        facts.functions.add(statement.name)
    elif isinstance(statement, ast.ClassDef):
        facts.classes[statement.name] = {
            item.name
            for item in statement.body
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
        }
    elif isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call):
        callee = dotted_name(statement.value.func)
        inner = statement.value.func
        while callee is None and isinstance(inner, ast.Attribute):
            inner = inner.value  # results = sm.OLS(y, X).fit(): built by sm.OLS
            if isinstance(inner, ast.Call):
                callee = dotted_name(inner.func)
                inner = inner.func
        if callee is None:
            return
        refit = callee.rsplit(".", 1)
        if len(refit) == 2 and refit[1] in _SAME_OBJECT_METHODS:
            return  # model = model.fit(X), net = net.to(device): still what it was built as
        targets = [t.id for t in statement.targets if isinstance(t, ast.Name)]
        if len(refit) == 2 and refit[0] in constructors and targets == [refit[0]]:
            return  # inference = inference.append_simulations(...): a fluent API's same object
        for target in statement.targets:
            if isinstance(target, ast.Name):
                constructors[target.id] = aliases.resolve(callee)
                constructor_calls[target.id] = statement.value
