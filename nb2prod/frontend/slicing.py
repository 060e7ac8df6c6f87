"""A backward slice: keep the statements the model, its metrics and its input depend on.

Cell roles say what a cell is for; they cannot say which of its statements matter. A cell
that fits the model may also build a mesh grid for a decision-boundary plot, a colormap, or
a second model the notebook only compares against. What a package needs is what the model's
fit, its measurements and its input depend on, statement by statement across cells (static
def-use, as Soorgeon does; LineaPy gets the same by tracing). Everything else is left out,
and each statement left out says why.

Reaching definitions are found by walking back from each use: a statement that binds the
name outright ends the walk; one that may change the object (`model.fit(...)`,
`df["a"] = ...`, `df.dropna(inplace=True)`, a binding inside a loop or a branch) is kept
and the walk goes on. Statements with effects the slice cannot see through, such as seeding
a global random generator, are kept as they are.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import inspect
import re
from collections.abc import Collection
from dataclasses import dataclass, replace

from nb2prod.frontend.computed_metrics import (
    Parts,
    bound_values,
    cross_validation_score,
    hand_metric,
    named_values,
)
from nb2prod.frontend.facts import CellFacts, NotebookFacts
from nb2prod.frontend.findings import call_draws, drawing_functions, global_draws
from nb2prod.frontend.installed import installed_object
from nb2prod.frontend.names import scan_names
from nb2prod.frontend.pysyntax import (
    Aliases,
    dotted_name,
    keyword,
    lines_per_statement,
    nodes_run_now,
    numeric_core,
    root_name,
)
from nb2prod.frontend.training_loops import (
    STEP_METHODS,
    optimized_modules,
    optimizers_in_function,
)
from nb2prod.frontend.vocabulary import CV_FUNCTIONS, FIT_METHODS, is_metric_function
from nb2prod.plan import Model

_MUTATING_METHODS = FIT_METHODS | {
    "fit_transform",
    "fit_resample",
    "set_params",
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "update",
    "add",
    "discard",
    "setdefault",
    "sort",
    "reverse",
    "compile",
    "load_state_dict",
}
# Methods that ask rather than change: a bare call to one is there to show its answer.
_QUERY = re.compile(
    r"^(predict\w*|score\w*|\w+_test|test\w*|summary\w*|get_\w+|describe|conf_int|"
    r"evaluate\w*|transform|decision_function|plot\w*|show\w*)$"
)
_GLOBAL_EFFECTS = ("seed", "set_config", "manual_seed", "set_random_seed", "use_deterministic")
_STRONG = (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class _Effect:
    """What calling a notebook function may change: globals, and the arguments it is given
    for these parameters (`def clean(df): df["x"] = ...` changes whatever `clean(train)` passes)."""

    globals: frozenset[str]
    parameters: tuple[str, ...]
    changed_parameters: frozenset[str]


# Names a container literal holds: `frames = [train, test]` -> {"frames": {"train", "test"}}.
_Containers = dict[str, frozenset[str]]


@dataclass(frozen=True)
class _Unit:
    cell: int
    index: int  # the statement's index in its cell
    defines: frozenset[str]
    strong: bool  # binds its names outright, whatever they held before
    uses: tuple[str, ...]
    deferred: frozenset[str]  # read only when a function it defines runs
    mutates: frozenset[str]
    statement: ast.stmt
    # in a kept cell and not display: what the slice chooses from. A display statement's
    # draws, without the display, are there only to be revived (_draws_before_kept_draws).
    in_scope: bool = True


@dataclass(frozen=True)
class Sliced:
    """What the slice leaves out of kept cells, and what it revives from code the package
    would leave out: cell -> statement index -> why it goes, or what runs instead."""

    dropped: dict[int, dict[int, str]]
    revived: dict[int, dict[int, ast.stmt]]


def slice_notebook(
    facts: NotebookFacts, kept: set[int], explicit: set[int], model: Model
) -> Sliced:
    """For each kept cell, the statements nothing needed reads, with the reason; and the
    draws from a seeded global generator, outside what is kept, that kept draws depend on."""
    containers = _containers(facts, kept)
    stepped = optimized_modules(facts)
    function_effects = _function_effects(facts, kept, containers)
    drawing = drawing_functions(facts)
    units = []
    for cell in facts.cells:
        if cell.number in explicit and cell.number not in kept:
            continue  # the user left it out
        occupied = lines_per_statement(cell.statements)
        for index, statement in enumerate(cell.statements):
            if cell.display[index]:  # only its draws count, and only for the draws after it
                draws = _shown_draws(statement, facts, drawing, occupied)
                if draws is None:
                    continue
                unit = _unit(
                    cell, index, draws, facts.aliases, function_effects, containers, stepped
                )
                units.append(replace(unit, in_scope=False))
            elif cell.number in kept:
                units.append(
                    _unit(
                        cell, index, statement, facts.aliases, function_effects, containers, stepped
                    )
                )
    scope = [position for position, unit in enumerate(units) if unit.in_scope]
    needed = _seeds(facts, units, explicit, model)
    end_uses = {model.name, *_roots(model.fit_inputs[:1]), *_roots(model.predict_inputs[:1])}
    by_name = _positions(units, scope)
    work = [(len(units), name) for name in end_uses]
    for position in needed:
        work += _reads(position, units[position])
    _walk_back(work, units, by_name, needed)
    drawn = _draws_before_kept_draws(facts, units, needed, drawing)
    needed |= {position for position in drawn if units[position].in_scope}
    revived: dict[int, dict[int, ast.stmt]] = {}
    for position in sorted(drawn - set(scope)):
        unit = units[position]
        revived.setdefault(unit.cell, {})[unit.index] = unit.statement
    dropped: dict[int, dict[int, str]] = {}
    for position, unit in enumerate(units):
        if position in needed or not unit.in_scope:
            continue
        if isinstance(unit.statement, ast.Import | ast.ImportFrom):
            continue
        dropped.setdefault(unit.cell, {})[unit.index] = _reason(unit, facts.aliases)
    return Sliced(dropped, revived)


def _shown_draws(
    statement: ast.stmt, facts: NotebookFacts, drawing: dict[str, str], occupied: dict[int, int]
) -> ast.stmt | None:
    """The draws a display statement makes, as a statement of their own:
    `ax.plot(arma.generate_sample(nsample=50))` -> `_ = arma.generate_sample(nsample=50)`. None
    when it draws nothing, or draws where taking the call out would change how often it runs
    (in a loop, a comprehension, a branch) or shares its lines with another statement."""
    if not isinstance(statement, ast.Expr | ast.Assign):
        return None
    first, last = statement.lineno, statement.end_lineno or statement.lineno
    if any(occupied.get(line, 0) > 1 for line in range(first, last + 1)):
        return None
    calls: list[ast.expr] = []

    def visit(node: ast.AST) -> bool:
        if isinstance(node, ast.Call) and _draws(node, facts, drawing):
            calls.append(node)
            return True
        if isinstance(node, _CONDITIONAL):
            return not any(
                isinstance(inner, ast.Call) and _draws(inner, facts, drawing)
                for inner in ast.walk(node)
            )
        return all(visit(child) for child in ast.iter_child_nodes(node))

    if not visit(statement.value) or not calls:
        return None
    value = calls[0] if len(calls) == 1 else ast.Tuple(elts=calls, ctx=ast.Load())
    # bound to `_`, as Python discards a value: a bare method call reads as a change to its
    # object (`table.sample(3)` to `table`), which code that follows the table would take in
    discarded = ast.Assign(targets=[ast.Name("_", ast.Store())], value=value)
    return ast.fix_missing_locations(ast.copy_location(discarded, statement))


# Where a call may run other than once: loops in comprehensions, branches, deferred bodies.
_CONDITIONAL = (
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.IfExp,
    ast.BoolOp,
    ast.Lambda,
    ast.NamedExpr,
)


def _draws(call: ast.Call, facts: NotebookFacts, drawing: dict[str, str]) -> bool:
    found = call_draws(call, facts, drawing)
    return found is not None and found[1] != "seed"


def _draws_before_kept_draws(
    facts: NotebookFacts, units: list[_Unit], needed: set[int], drawing: dict[str, str]
) -> set[int]:
    """Draws from a global random generator that nothing reads, before a kept draw from the
    same generator (since the last seeding), with what they read: the global generator is
    state the kept draw reads. Left out, they would move the kept draw along the stream (a
    shuffle of indices for a plot, then the training split unseeded), so the package's data
    would differ from the notebook's from the same seed.

    Draws the package would leave out as display count too, once kept code has seeded the
    generator: `ax.plot(arma.generate_sample(50))` gets its draw alone revived, in a cell
    left out whole or not. A draw stays out when what it reads cannot be found (a name only
    display code binds)."""
    by_name = _positions(units, range(len(units)))
    pending: dict[str, list[int]] = {}  # generator -> draws left out since its last seeding
    seeded: set[str] = set()  # generators kept code seeds
    added: set[int] = set()
    for position, unit in enumerate(units):
        for generator, what, _ in global_draws(unit.statement, facts, drawing):
            if what == "seed":
                if unit.in_scope:
                    pending[generator] = []
                    seeded.add(generator)
            elif position in needed or position in added:
                for earlier in pending.pop(generator, []):
                    reached = _slice_from(earlier, units, by_name)
                    if reached is not None:
                        added |= reached
            elif (
                (unit.in_scope or generator in seeded)
                and not _draws_only_when_fitted(what)
                and position not in pending.get(generator, [])
            ):
                pending.setdefault(generator, []).append(position)
    return added - needed


def _draws_only_when_fitted(what: str) -> bool:
    """`RandomForestClassifier(...)`: a class left with no random_state draws when fitted,
    not when made."""
    return inspect.isclass(installed_object(what.removesuffix("(...)")))


def _slice_from(start: int, units: list[_Unit], by_name: dict[str, list[int]]) -> set[int] | None:
    """The statement at `start` and every statement it depends on; None when one of them
    reads a name no statement of the slice binds (nor Python does)."""
    reached = {start}
    unbound = _walk_back(_reads(start, units[start]), units, by_name, reached)
    return None if unbound - _BUILTINS else reached


def _walk_back(
    work: list[tuple[int, str]], units: list[_Unit], by_name: dict[str, list[int]], kept: set[int]
) -> set[str]:
    """Add to `kept` every statement the (position, name) reads in `work` reach, and what
    those read in turn; the names no statement before binds."""
    unbound: set[str] = set()
    seen: set[tuple[int, str]] = set()
    while work:
        position, name = work.pop()
        if (position, name) in seen:
            continue
        seen.add((position, name))
        found = _reaching(by_name.get(name, []), units, position, name)
        if found is None:
            unbound.add(name)
            continue
        if found not in kept:
            kept.add(found)
            work += _reads(found, units[found])
        unit = units[found]
        if found < position and not (name in unit.defines and unit.strong):
            work.append((found, name))  # it may only change the object: look further back
    return unbound


_BUILTINS = frozenset(dir(builtins))


def _reads(position: int, unit: _Unit) -> list[tuple[int, str]]:
    """What a kept statement needs: what it reads, what it changes, what its functions read."""
    return [(position, name) for name in (*unit.uses, *unit.mutates, *sorted(unit.deferred))]


def _seeds(facts: NotebookFacts, units: list[_Unit], explicit: set[int], model: Model) -> set[int]:
    """Statements kept for their own sake: tagged by the user, measuring the model, or seeding."""
    derived = {model.name}
    seeds: set[int] = set()
    # a function named for a score that returns a table or text measures nothing (as metrics)
    notebook_functions = {name for cell in facts.cells for name in cell.functions}
    notebook_functions -= facts.returns_no_number
    parts = bound_values(unit.statement for unit in units if unit.in_scope)
    for position, unit in enumerate(units):
        if not unit.in_scope:
            continue
        reads = set(unit.uses) | unit.mutates
        touches_model = bool(reads & derived)
        if touches_model:
            derived |= unit.defines
        if (
            unit.cell in explicit
            or _has_global_effect(unit.statement, facts.aliases)
            or (
                touches_model
                and _measures(
                    unit.statement,
                    facts.aliases,
                    notebook_functions,
                    parts,
                    model.name,
                    facts.returns_a_metric,
                )
            )
        ):
            seeds.add(position)
    return seeds


def _measures(
    statement: ast.stmt,
    aliases: Aliases,
    notebook_functions: set[str],
    parts: Parts,
    model: str,
    measuring: Collection[str] = (),  # notebook functions that return a metric's value
) -> bool:
    """Whether the statement assigns a metric, as the plan reads metrics (`acc = f1(...)`, or
    by hand: `acc = (pred == y_test).mean()`).

    A metric computed only to be drawn (`{"precision": [precision_score(...) for t in ts]}`
    beside a plot) is not one the package can log, and does not keep its loop alive.
    """
    for node in nodes_run_now(statement):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call | ast.BinOp)):
            continue
        if any(
            hand_metric(name, value, parts, [model]) or cross_validation_score(value)
            for name, value in named_values(node)
        ):
            return True
        if not all(isinstance(target, ast.Name | ast.Tuple) for target in node.targets):
            continue
        call = numeric_core(node.value, aliases)
        if not isinstance(call, ast.Call):
            continue
        callee = dotted_name(call.func)
        if callee is not None:
            qualified = aliases.resolve(callee)
            last = qualified.rsplit(".", 1)[-1]
            if (
                qualified in CV_FUNCTIONS
                or qualified in measuring
                or is_metric_function(qualified, last in notebook_functions)
            ):
                return True
        if isinstance(call.func, ast.Attribute) and call.func.attr == "score":
            return True
    return False


def _has_global_effect(statement: ast.stmt, aliases: Aliases) -> bool:
    if sets_environment(statement, aliases):
        return True
    if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
        return False
    callee = dotted_name(statement.value.func)
    if callee is None:
        return False
    last = aliases.resolve(callee).rsplit(".", 1)[-1]
    return any(word in last for word in _GLOBAL_EFFECTS)


def sets_environment(statement: ast.stmt, aliases: Aliases) -> bool:
    """`os.environ["KERAS_BACKEND"] = "torch"`, `os.environ.update(...)`, `os.putenv(...)`:
    libraries read the process environment (often when imported), which no name shows."""
    if isinstance(statement, ast.Assign):
        return any(
            isinstance(target, ast.Subscript)
            and aliases.resolve(dotted_name(target.value) or "") == "os.environ"
            for target in statement.targets
        )
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        callee = aliases.resolve(dotted_name(statement.value.func) or "")
        return callee in _ENVIRONMENT_SETTERS
    return False


_ENVIRONMENT_SETTERS = frozenset(
    {"os.environ.update", "os.environ.setdefault", "os.putenv", "os.environ.__setitem__"}
)


def _unit(
    cell: CellFacts,
    index: int,
    statement: ast.stmt,
    aliases: Aliases,
    function_effects: dict[str, _Effect],
    containers: _Containers,
    stepped: _Containers,
) -> _Unit:
    names = scan_names([statement])
    strong = isinstance(statement, _STRONG) and not _targets_are_partial(statement)
    return _Unit(
        cell=cell.number,
        index=index,
        defines=frozenset(names.defines),
        strong=strong,
        uses=tuple(dict.fromkeys(u.name for u in names.uses if not u.deferred)),
        deferred=frozenset(u.name for u in names.uses if u.deferred),
        mutates=frozenset(_mutated(statement, aliases, function_effects, containers, stepped)),
        statement=statement,
    )


def _targets_are_partial(statement: ast.stmt) -> bool:
    """`a, b[0] = ...` binds `a` but also changes `b`: not an outright binding of all."""
    if isinstance(statement, ast.Assign):
        return any(
            isinstance(node, ast.Subscript | ast.Attribute)
            for target in statement.targets
            for node in ast.walk(target)
        )
    return False


def _mutated(
    statement: ast.stmt,
    aliases: Aliases,
    function_effects: dict[str, _Effect],
    containers: _Containers,
    stepped: _Containers | None = None,
) -> set[str]:
    """Names whose object the statement may change without rebinding them, aliases included:
    changing a loop variable changes what it iterates over (`for df in [train, test]:`), and
    stepping an optimizer changes the modules whose parameters it holds (`optimizer.step()`)."""
    changed = _changed_directly(statement, aliases, function_effects)
    for node in nodes_run_now(statement):
        if (
            stepped
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in STEP_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in stepped
        ):
            changed |= {node.func.value.id, *stepped[node.func.value.id]}
    for loop in nodes_run_now(statement):
        if not isinstance(loop, ast.For | ast.AsyncFor | ast.comprehension):
            continue
        bound = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
        if changed & bound:
            changed |= _held(loop.iter, containers)
    return changed


def _held(iterable: ast.expr, containers: _Containers) -> set[str]:
    """The names whose objects a loop over `iterable` may hand out: every name in it that is
    not a function called (`zip(names, [train, test])`), with what containers they are hold."""
    called = {id(n.func) for n in ast.walk(iterable) if isinstance(n, ast.Call)}
    held: set[str] = set()
    for node in ast.walk(iterable):
        if isinstance(node, ast.Name) and id(node) not in called:
            held |= {node.id, *containers.get(node.id, ())}
    return held


def _containers(facts: NotebookFacts, kept: set[int]) -> _Containers:
    """`frames = [train, test]` (a list, tuple, set or dict literal of names) anywhere kept."""
    found: dict[str, set[str]] = {}
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.statements:
            for node in nodes_run_now(statement):
                if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                    continue
                target, value = node.targets[0], node.value
                if not isinstance(target, ast.Name):
                    continue
                if isinstance(value, ast.List | ast.Tuple | ast.Set):
                    items = value.elts
                elif isinstance(value, ast.Dict):
                    items = value.values
                else:
                    continue
                names = {item.id for item in items if isinstance(item, ast.Name)}
                if names:
                    found.setdefault(target.id, set()).update(names)
    return {name: frozenset(held) for name, held in found.items()}


def _changed_directly(
    statement: ast.stmt, aliases: Aliases, function_effects: dict[str, _Effect]
) -> set[str]:
    """Names whose object the statement may change, as written (no aliases followed)."""
    changed: set[str] = set()
    targets: list[ast.expr] = []
    for node in nodes_run_now(statement):
        if isinstance(node, ast.Assign):
            targets += node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets.append(node.target)
        elif isinstance(node, ast.Delete):
            targets += node.targets
        elif isinstance(node, ast.Call):
            changed |= _call_changes(node, aliases, function_effects)
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Subscript | ast.Attribute):
                root = root_name(node)
                if root is not None:
                    changed.add(root)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        call = statement.value  # a call made for its effect: it may change what it touches
        if isinstance(call.func, ast.Attribute) and _QUERY.match(call.func.attr):
            return changed  # `res.t_test("x1=x2")`: asks, and the notebook shows the answer
        if saves_to_file(call, aliases):
            return changed  # `joblib.dump(model, "m.pkl")`: reads what it writes out
        if isinstance(call.func, ast.Attribute):
            root = root_name(call.func.value)
            if root is not None and not aliases.is_module_alias(root):
                changed.add(root)
        changed |= {arg.id for arg in call.args if isinstance(arg, ast.Name)}
    return changed


def _call_changes(
    call: ast.Call, aliases: Aliases, function_effects: dict[str, _Effect]
) -> set[str]:
    if isinstance(call.func, ast.Name) and call.func.id in function_effects:
        effect = function_effects[call.func.id]
        given = dict(zip(effect.parameters, call.args, strict=False))
        given |= {item.arg: item.value for item in call.keywords if item.arg}
        passed = {
            root
            for parameter, value in given.items()
            if parameter in effect.changed_parameters and (root := root_name(value))
        }
        return set(effect.globals) | passed
    if not isinstance(call.func, ast.Attribute):
        return set()
    root = root_name(call.func.value)
    if root is None or aliases.is_module_alias(root):
        return set()
    inplace = keyword(call, "inplace")
    if call.func.attr in _MUTATING_METHODS or (
        isinstance(inplace, ast.Constant) and inplace.value is True
    ):
        return {root}
    return set()


def _function_effects(
    facts: NotebookFacts, kept: set[int], containers: _Containers
) -> dict[str, _Effect]:
    """What a notebook function may change when called: globals (`def train(): model.fit(X,
    y)`) and the objects passed for the parameters it changes (`def clean(df): df.x = 0`)."""
    effects: dict[str, _Effect] = {}
    notebook_optimizers = optimized_modules(facts)  # a step() changes their modules
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            if isinstance(statement, ast.FunctionDef):
                arguments = statement.args
                parameters = tuple(a.arg for a in [*arguments.posonlyargs, *arguments.args])
                local = {*parameters, *(a.arg for a in arguments.kwonlyargs)}
                body_changes: set[str] = set()
                stepped = optimizers_in_function(facts, statement, notebook_optimizers)
                for inner in statement.body:
                    body_changes |= _mutated(inner, facts.aliases, effects, containers, stepped)
                    if isinstance(inner, ast.Global):
                        body_changes |= set(inner.names)
                effects[statement.name] = _Effect(
                    globals=frozenset(body_changes - local),
                    parameters=(*parameters, *(a.arg for a in arguments.kwonlyargs)),
                    changed_parameters=frozenset(body_changes & local),
                )
    return effects


def _positions(units: list[_Unit], among: Collection[int]) -> dict[str, list[int]]:
    by_name: dict[str, list[int]] = {}
    for position in among:
        unit = units[position]
        for name in unit.defines | unit.mutates:
            by_name.setdefault(name, []).append(position)
    return by_name


def _reaching(positions: list[int], units: list[_Unit], before: int, name: str) -> int | None:
    """The nearest statement before `before` that binds or may change `name`."""
    index = bisect.bisect_left(positions, before)
    if index:
        return positions[index - 1]
    # read only by a function body, defined further down: it runs later
    later = (p for p in positions[index:] if name in units[p].defines)
    return next(later, None)


def _roots(expressions: tuple[str, ...]) -> list[str]:
    roots = []
    for text in expressions:
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            continue
        root = root_name(node)
        if root is not None:
            roots.append(root)
    return roots


def saves_to_file(call: ast.Call, aliases: Aliases) -> bool:
    """`joblib.dump(model, path)`, `df.to_csv(path)`, `booster.save_model(path)`: a copy the
    notebook keeps on disk. The package logs its model and data to MLflow instead, and its
    training must not write into the folder it runs in (a read-only container, say)."""
    if isinstance(call.func, ast.Attribute) and call.func.attr in _SAVE_METHODS:
        root = root_name(call.func.value)
        return root is not None and not aliases.is_module_alias(root)
    callee = dotted_name(call.func)
    return callee is not None and aliases.resolve(callee) in _SAVE_FUNCTIONS


_SAVE_METHODS = frozenset(
    {"to_csv", "to_parquet", "to_excel", "to_json", "to_pickle", "to_feather", "to_hdf"}
    | {"save_model", "save"}
)
_SAVE_FUNCTIONS = frozenset(
    {"joblib.dump", "pickle.dump", "dill.dump", "cloudpickle.dump", "json.dump", "numpy.save"}
    | {"numpy.savez", "numpy.savetxt", "skops.io.dump"}
)


def _reason(unit: _Unit, aliases: Aliases) -> str:
    statement = unit.statement
    call = statement.value if isinstance(statement, ast.Expr) else None
    if isinstance(call, ast.Call) and saves_to_file(call, aliases):
        return "saves to a file; the package logs the model and its data to MLflow"
    if isinstance(unit.statement, ast.FunctionDef | ast.ClassDef):
        return f"defines {unit.statement.name}, which nothing the model needs calls"
    names = sorted(unit.defines)
    if names:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return f"computes {shown}, which nothing the model, its metrics or its input reads"
    return "nothing the model, its metrics or its input depends on"
