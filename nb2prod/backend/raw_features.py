"""The raw-record route's cut: the notebook's code from the table it loaded to the model's input.

A client holds records of the data the notebook loaded, not the columns the notebook's feature
code computed from them; asking it to re-implement that code is train/serve skew, which voids
the claim. Where the model's input is split off (``train_test_split``) from a value computed
from one loaded table, the statements computing it become ``features_from_raw(table)``, which
the step then calls: training and the service's ``/predict/raw`` run the same function. Whether
that function is row-wise is for training to show on the data (``nb2prod_runtime.raw_input``);
this module finds the cut, or says in one line why there is none.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
from dataclasses import dataclass

from nb2prod.frontend.model import is_time_series_model
from nb2prod.frontend.pysyntax import root_name, target_names
from nb2prod.frontend.roles import is_literal
from nb2prod.frontend.vocabulary import FIT_METHODS, SPLIT_FUNCTIONS
from nb2prod.plan import Block, Plan, Step

RAW_FUNCTION = "features_from_raw"
_SPLITTERS = frozenset(name.rsplit(".", 1)[-1] for name in SPLIT_FUNCTIONS)
# what learns from the data it is given: a model's fits, and a transformer's or sampler's
_FITS = FIT_METHODS | {"fit_transform", "fit_resample"}
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class RawCut:
    """The statements that become ``features_from_raw``, and the step that now calls it."""

    step: Step  # rewritten: one call where the statements were
    body: tuple[tuple[int, str], ...]  # (cell, source) of the statements, in order
    loaded: str  # the loaded table the function takes
    returns: str  # what it returns, as the step names it
    copies: bool  # it changes the table in place, so it works on a copy


@dataclass(frozen=True)
class _Statement:
    block: int  # index into the step's blocks
    cell: int
    node: ast.stmt
    source: str


def find_cut(
    plan: Plan,
    step: Step,
    loaded: set[str],
    modules: set[str],
    wanted: set[str],
    target: str | None = None,
) -> RawCut | str | None:
    """The cut in `step`, a reason when the step splits the model's input but cannot be cut,
    or None when the model's input is not split off in this step. With `target`, the step
    computes the value a later step splits (`split_in_later_step`): the cut computes it."""
    statements = _statements(step)
    if not statements:
        return None
    if target is None:
        found = _split_of(plan, statements)
        if found is None or isinstance(found, str):
            return found
        split, features = found
    else:
        split, features = len(statements), target
    where = f"cell {statements[min(split, len(statements) - 1)].cell}"
    before = statements[:split]
    included = _backward_slice(before, features)
    if not included and features in loaded:
        changed = _changed_in_place(plan, step, features)
        if changed is not None:
            return (
                f"the model's input is taken from {features} as cell {changed} changes it in "
                "place, in a step of its own; send the model's input to /predict"
            )
        return f"the model takes {features} as the notebook loads it: /predict takes its records"
    if not included:
        return f"the model's input {features} comes from an earlier step, not from {where}"
    for statement in included:
        fitted = _fitted_object(statement.node)
        if fitted:
            return (
                f"cell {statement.cell} fits {fitted} outside the model: a value learnt from "
                "the whole data set, which one record cannot reproduce"
            )
    free = _free_reads(included) - modules - _BUILTINS
    tables = free & loaded
    if not tables:
        return (
            f"the model's input {features} is not computed from a table the notebook loads "
            f"({where})"
        )
    if len(tables) != 1 or free - tables:
        others = ", ".join(sorted(free - tables)) or ", ".join(sorted(tables))
        return (
            f"the model's input {features} reads {others} besides one loaded table ({where}); "
            "send the model's input to /predict"
        )
    (table,) = tables
    others = [s for s in statements if s not in included]
    live = set(wanted) | {name for s in others for name in _reads(s.node)}
    prefix, returns = _prefix(included, live, features)
    if prefix is None:
        return (
            f"the code computing {features} in {where} also computes values other code reads; "
            "send the model's input to /predict"
        )
    if _interleaved(statements, prefix):
        return f"code between the feature statements of {where} reads what they compute"
    copies = table in {n for s in prefix for n in _mutated(s.node)}
    body = tuple((s.cell, s.source) for s in prefix)
    return RawCut(_rewritten(step, prefix, returns, table), body, table, returns, copies)


def _changed_in_place(plan: Plan, step: Step, name: str, after: Step | None = None) -> int | None:
    """The cell of an earlier step (after `after`, when given), not the one loading it, that
    changes `name` in place."""
    started = after is None
    for earlier in plan.steps:
        if earlier.name == step.name:
            break
        if not started:
            started = earlier.name == after.name
            continue
        if earlier.role == "load" or name not in earlier.inputs:
            continue
        for statement in _statements(earlier):
            if name in _defines(statement.node):
                return statement.cell
    return None


def split_in_later_step(plan: Plan, steps: list[Step]) -> tuple[str, str] | None:
    """(the step, the name) when a step splits the model's input off a value an earlier step
    computes: that earlier step holds the feature code (a notebook that splits in its training
    cell)."""
    for index, step in enumerate(steps):
        statements = _statements(step)
        found = _split_of(plan, statements)
        if found is None or isinstance(found, str):
            continue
        split, features = found
        if any(features in _defines(s.node) for s in statements[:split]):
            return None
        earlier = [s for s in steps[:index] if features in s.outputs]
        if not earlier or _changed_in_place(plan, step, features, after=earlier[-1]):
            return None  # the step that splits says why it cannot be cut
        return earlier[-1].name, features
    return None


def _split_of(plan: Plan, statements: list[_Statement]) -> tuple[int, str] | str | None:
    """Where the model's input is split off and what is split: the first split of a chain
    (train, then calibration...) whose last part the model is fitted on; a reason when the step
    splits but that cannot serve records; None when it does not split."""
    splits = [i for i, s in enumerate(statements) if _split_input(s.node)]
    if not splits:
        return None
    where = f"cell {statements[splits[0]].cell}"
    if is_time_series_model(plan.model.estimator):
        return f"a forecaster is asked for a horizon, not for records ({where})"
    fitted_on = _fitted_on(plan)
    split = next((i for i in splits if fitted_on in _assigned(statements[i].node)), None)
    whole = next((i for i in splits if _split_input(statements[i].node) == fitted_on), None)
    if split is None and whole is not None:  # refitted on all the rows the split divided
        return whole, fitted_on
    if split is None:
        return (
            f"the model is fitted on {fitted_on}, computed after the split in {where}; only code "
            "before the split runs on a record"
        )
    changed = _changed_after_split(plan, statements, split, fitted_on)
    if changed is not None:
        return (
            f"the model is fitted on {fitted_on} as cell {changed} changes it after the split "
            f"in {where}; only code before the split runs on a record"
        )
    features = _split_input(statements[split].node) or ""
    for earlier in reversed([i for i in splits if i < split]):
        if features in _assigned(statements[earlier].node):
            split, features = earlier, _split_input(statements[earlier].node) or ""
    return split, features


def _changed_after_split(
    plan: Plan, statements: list[_Statement], split: int, fitted_on: str
) -> int | None:
    """The cell that changes the split's output before the model is fitted on it (`X_train =
    scaler.fit_transform(X_train)`), which a record sent to /predict/raw would skip: the
    model would get other columns than it was fitted on. Converting the same rows to an array
    or tensor changes nothing a record needs."""
    cell = statements[split].cell
    after = [statement for statement in statements[split + 1 :] if statement.cell == cell] + [
        statement for step in plan.steps for statement in _statements(step) if statement.cell > cell
    ]
    for statement in after:
        if _fits_on(statement.node, fitted_on):
            return None
        if _changes(statement.node, fitted_on):
            return statement.cell
    return None


def _fits_on(node: ast.stmt, name: str) -> bool:
    return any(
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in FIT_METHODS
        and any(root_name(argument) == name for argument in call.args)
        for call in ast.walk(node)
    )


def _changes(node: ast.stmt, name: str) -> bool:
    """Binds `name` to other values, or changes its object in place."""
    if isinstance(node, ast.Assign) and name in {
        n for target in node.targets for n in target_names(target)
    }:
        return not _same_rows(node.value, name)
    for child in ast.walk(node):
        if isinstance(child, ast.Subscript | ast.Attribute) and isinstance(child.ctx, ast.Store):
            if root_name(child) == name:
                return True
        elif isinstance(child, ast.AugAssign) and name in target_names(child.target):
            return True
        elif isinstance(child, ast.Expr) and isinstance(child.value, ast.Call):
            func = child.value.func
            if isinstance(func, ast.Attribute) and root_name(func.value) == name:
                return True  # `X_train.fillna(0, inplace=True)`
    return False


# `X_train.values`, `X_train.to_numpy()`, `X_train.astype("float32")`, `np.asarray(X_train)`,
# `torch.tensor(X_train.values, dtype=...)`: the same rows, handed over as another type.
_CONVERSIONS = frozenset({"values", "to_numpy", "astype", "copy", "array", "asarray", "tensor"})
_CONVERSIONS |= {"from_numpy", "as_tensor", "FloatTensor", "float", "double", "convert_to_tensor"}


def _same_rows(value: ast.expr, name: str) -> bool:
    node = value
    while True:
        if isinstance(node, ast.Name):
            return node.id == name
        if isinstance(node, ast.Attribute) and node.attr in _CONVERSIONS:
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if callee not in _CONVERSIONS:
                return False
            if isinstance(node.func, ast.Attribute) and root_name(node.func.value) == name:
                node = node.func.value
            elif node.args:
                node = node.args[0]
            else:
                return False
        else:
            return False


def loaded_values(steps: tuple[Step, ...]) -> set[str]:
    """What the load steps bind to data: not the constants they also set (a seed, a size)."""
    names: set[str] = set()
    for step in steps:
        if step.role != "load":
            continue
        for block in step.blocks:
            for node in ast.walk(ast.parse(block.source)):
                if isinstance(node, ast.Assign) and not is_literal(node.value):
                    names.update(n for t in node.targets for n in target_names(t))
    return names & set(s for step in steps if step.role == "load" for s in step.outputs)


def without_split(plan: Plan, loaded: set[str]) -> str:
    """Why there is no raw route when no step splits the model's input off."""
    fitted_on = _fitted_on(plan)
    if fitted_on in loaded:
        return f"the model takes {fitted_on} as the notebook loads it: /predict takes its records"
    return (
        "the model's input is not split off (train_test_split) from a table the notebook loads; "
        "send the model's input to /predict"
    )


def _fitted_on(plan: Plan) -> str:
    """The name the model is fitted on: `X_train` also for `X_train.values` or
    `X_train.to_numpy()`, which hand the same rows over as an array."""
    text = next(iter(plan.model.fit_inputs), "")
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return text
    if isinstance(node, ast.Call) and not node.args and isinstance(node.func, ast.Attribute):
        node = node.func if node.func.attr == "to_numpy" else node
    if isinstance(node, ast.Attribute) and node.attr in ("values", "to_numpy"):
        node = node.value
    return node.id if isinstance(node, ast.Name) else text


def _statements(step: Step) -> list[_Statement]:
    found = []
    for index, block in enumerate(step.blocks):
        lines = block.source.split("\n")
        for node in ast.parse(block.source).body:
            end = node.end_lineno or node.lineno
            source = "\n".join(lines[node.lineno - 1 : end])
            found.append(_Statement(index, block.cell, node, source))
    return found


def _split_input(node: ast.stmt) -> str | None:
    """`X` in `X_train, X_test, ... = train_test_split(X, y, ...)`; the table `df` when the
    columns are taken from it in the call (`df[features]`, `df.drop(columns="y")`): the route
    takes the model's columns from the table the feature code returns."""
    if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
        return None
    call = node.value
    callee = (
        call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    )
    if callee not in _SPLITTERS or not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Subscript):
        first = first.value
    elif (
        isinstance(first, ast.Call)
        and isinstance(first.func, ast.Attribute)
        and first.func.attr == "drop"
    ):
        first = first.func.value
    return first.id if isinstance(first, ast.Name) else None


def _assigned(node: ast.stmt) -> set[str]:
    """Names the statement binds with `=` (including inside loops and conditions)."""
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def _mutated(node: ast.stmt) -> set[str]:
    """Names whose object the statement may change in place: item and attribute assignment,
    a method called as a statement, a name passed to a call made as a statement."""
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Subscript | ast.Attribute) and isinstance(
            child.ctx, ast.Store | ast.Del
        ):
            names.add(root_name(child) or "")
        elif isinstance(child, ast.Expr) and isinstance(child.value, ast.Call):
            call = child.value
            if isinstance(call.func, ast.Attribute):
                names.add(root_name(call.func.value) or "")
            names.update(a.id for a in call.args if isinstance(a, ast.Name))
        elif isinstance(child, ast.AugAssign):
            names.update(target_names(child.target))
    names.discard("")
    return names


def _defines(node: ast.stmt) -> set[str]:
    return _assigned(node) | _mutated(node)


def _reads(node: ast.stmt) -> set[str]:
    """Names the statement reads, less those a loop, comprehension or lambda inside it binds
    (`for column in skewed: df[column] = np.log1p(df[column])` reads skewed and df)."""
    inner: set[str] = set()
    read: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.comprehension | ast.For | ast.AsyncFor):
            inner.update(target_names(child.target))
        elif isinstance(child, ast.Lambda):
            inner.update(a.arg for a in [*child.args.posonlyargs, *child.args.args])
        elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            read.add(child.id)
    return read - inner


def _backward_slice(statements: list[_Statement], name: str) -> list[_Statement]:
    """The statements `name` may depend on. A name once wanted stays wanted, so every earlier
    change to it is kept: keeping a needless line is safe, dropping a needed one is the bug."""
    wanted = {name}
    included = []
    for statement in reversed(statements):
        if _defines(statement.node) & wanted:
            included.append(statement)
            wanted |= _reads(statement.node)
    included.reverse()
    return included


def _free_reads(statements: list[_Statement]) -> set[str]:
    """Names read before these statements bind them: what the function must be given."""
    bound: set[str] = set()
    free: set[str] = set()
    for statement in statements:
        free |= _reads(statement.node) - bound
        bound |= _assigned(statement.node)
    return free


def _prefix(
    included: list[_Statement], live: set[str], features: str
) -> tuple[list[_Statement], str] | tuple[None, str]:
    """The statements the function holds and the one value it returns: all of them and the
    model's input when nothing else reads their values; else the ones up to the last that
    computes a value other code reads, when that leaves exactly one value to return."""
    defined = {n for s in included for n in _defines(s.node)}
    shared = (defined & live) - {features}
    if not shared:
        return included, features
    last = max(i for i, s in enumerate(included) if _defines(s.node) & shared)
    prefix = included[: last + 1]
    later = live | {n for s in included[last + 1 :] for n in _reads(s.node)}
    out = {n for s in prefix for n in _defines(s.node)} & later
    if len(out) != 1:
        return None, ""
    return prefix, next(iter(out))


def _interleaved(statements: list[_Statement], prefix: list[_Statement]) -> bool:
    """A statement left in place between the first and last moved one that reads what they
    compute would see another value once they run as one call before it."""
    first, last = statements.index(prefix[0]), statements.index(prefix[-1])
    moved = {n for s in prefix for n in _defines(s.node)}
    between = [s for s in statements[first:last] if s not in prefix]
    return any(_reads(s.node) & moved or _defines(s.node) & _free_reads(prefix) for s in between)


def _fitted_object(node: ast.stmt) -> str | None:
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Call)
            and isinstance(child.func, ast.Attribute)
            and child.func.attr in _FITS
        ):
            return ast.unparse(child.func.value)
    return None


def _rewritten(step: Step, prefix: list[_Statement], returns: str, table: str) -> Step:
    """The step with the moved statements replaced by one call, where the first one was."""
    drop: dict[int, list[tuple[int, int]]] = {}
    for statement in prefix:
        end = statement.node.end_lineno or statement.node.lineno
        drop.setdefault(statement.block, []).append((statement.node.lineno, end))
    call = f"{returns} = {RAW_FUNCTION}({table})"
    blocks: list[Block] = []
    for index, block in enumerate(step.blocks):
        lines = block.source.split("\n")
        for start, end in sorted(drop.get(index, []), reverse=True):
            first_of_all = index == prefix[0].block and start == prefix[0].node.lineno
            lines[start - 1 : end] = [call] if first_of_all else []
        source = "\n".join(lines).strip("\n")
        if source.strip():
            blocks.append(dataclasses.replace(block, source=source))
    return dataclasses.replace(step, blocks=tuple(blocks))
