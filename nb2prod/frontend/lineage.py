"""Which model a metric measures: the one the package serves, or another.

A notebook often measures several models before it settles on one, under different names
(`baseline`, `model`) or under the same name bound again (`clf = KNN(3)`, measured, then
`clf = KNN(30)`, measured), or under weights put back after a loop measured others (a best
epoch's, see checkpoints). Only a metric computed from the served model as the package holds
it, the name's last binding, may be quoted as its accuracy. Each name is followed through the
kept code in notebook order with the models it was computed from: a model name at a given
binding and fit (`y_pred = clf.predict(X_test)` comes from clf's current one), what an
assignment reads (`proba = y_pred[:, 1]`), and, for a model bound from another object
(`model = search.best_estimator_`), that object.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from nb2prod.frontend.checkpoints import beside_snapshots, restore, snapshot
from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import names_in, root_name, target_names
from nb2prod.frontend.vocabulary import FIT_METHODS

# What a metric measures, best first: the served model after its last fit (or, for
# cross-validation, its last binding, which is refitted fold by fold); the served model
# before a later fit (refitted on more data); a metric that reads no model the notebook fits,
# so it cannot be told; another model, or an earlier binding of the served name.
SERVED = "served"
REFITTED = "refitted"
UNKNOWN = "unknown"
OTHER = "other"
RANK = {SERVED: 0, REFITTED: 1, UNKNOWN: 2, OTHER: 3}

Version = tuple[str, int, int]  # a model name, which binding of it, how many fits since


class _Lineage:
    def __init__(self, models: set[str]) -> None:
        self.models = models
        self.version: dict[str, tuple[int, int]] = {}
        self.sources: dict[str, frozenset[Version]] = {}
        # names bound to a literal of models (`models = {"lr": LogisticRegression(), ...}`):
        # an item taken from one is one of several models, never the collection itself
        self.collections: set[str] = set()

    def origin(self, node: ast.AST) -> frozenset[Version]:
        return self._held_by(names_in(node))

    def _held_by(self, names: Iterable[str]) -> frozenset[Version]:
        """The model versions these names are, or hold values computed from."""
        found: set[Version] = set()
        for name in names:
            if name in self.models:
                found.add((name, *self.version.get(name, (0, 0))))
            found |= self.sources.get(name, frozenset())
        return frozenset(found)

    def fit(self, statement: ast.stmt) -> None:
        for node in _walk_here(statement):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in FIT_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in self.models
            ):
                binding, fits = self.version.get(node.func.value.id, (0, 0))
                self.version[node.func.value.id] = (binding, fits + 1)

    def restored(self, name: str) -> Version:
        """The model's weights put back to a best epoch's: what it holds now is no longer
        what the loop measured last, as if bound again."""
        binding, _ = self.version.get(name, (0, 0))
        self.version[name] = (binding + 1, 0)
        self.sources[name] = frozenset()
        return (name, binding + 1, 0)

    def bind(
        self,
        targets: Iterable[ast.expr],
        value: ast.expr | None,
        update: bool,
        maybe: bool,
        each: bool = False,
    ) -> None:
        """Bind `targets` to `value`; `update` adds to what they hold (`+=`), `maybe` is a
        binding that may not run (in a branch): a model name then holds either object. `each`:
        a loop binds them to each item of `value` in turn (`for name, model in models.items()`,
        or `models[name]` in such a loop), not to one chosen after it."""
        origin = self.origin(value) if value is not None else frozenset()
        taken_from = self._collection_of(value)
        if taken_from is not None:  # an item of a collection of models: which one, unknown
            binding, fits = self.version.get(taken_from, (0, 0))
            origin = frozenset({(f"{taken_from}[{'each' if each else 'one'}]", binding, fits)})
        if value is not None and _holds_models(value, self.models):
            self.collections.update(n for t in targets for n in target_names(t))
        for target in targets:
            names = target_names(target)
            if not names:  # `preds["lr"] = lr.predict(X)`: the container now holds it too
                root = root_name(target)
                if root is not None and root not in self.models:
                    self.sources[root] = self.sources.get(root, frozenset()) | origin
                continue
            for name in names:
                if name in self.models and _roots(value) == {name}:
                    continue  # `model = model.fit(X, y)`: the same model (its fit is counted)
                if name in self.models and maybe:
                    self.sources[name] = self.sources.get(name, frozenset()) | self._aliased(value)
                elif name in self.models:
                    binding, _ = self.version.get(name, (0, 0))
                    fitted = value is not None and _fits_in(value)
                    self.version[name] = (binding + 1, 1 if fitted else 0)
                    self.sources[name] = origin if taken_from else self._aliased(value)
                elif update:
                    self.sources[name] = self.sources.get(name, frozenset()) | origin
                else:
                    self.sources[name] = origin

    def _collection_of(self, value: ast.expr | None) -> str | None:
        """The collection of models `value` takes an item from: `models[name]`,
        `models.get(name)`, `models.items()`, `models.values()`, `models` itself when looped."""
        node = value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr not in ("get", "items", "values", "pop"):
                return None
            node = node.func.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.collections:
            return node.id
        return None

    def _aliased(self, value: ast.expr | None) -> frozenset[Version]:
        """The model another model name holds, when a binding takes it from one
        (`search.best_estimator_`, `search.fit(X, y)`), not when it builds a new one from
        others (`VotingClassifier([("lr", lr), ...])`)."""
        return self._held_by(_roots(value))


def measured_models(
    facts: NotebookFacts, kept: set[int], served: str, models: set[str], metrics: dict[int, bool]
) -> dict[int, str]:
    """What each metric call measures (SERVED, REFITTED, UNKNOWN or OTHER), by the id of its
    call node; `metrics` tells, for each, whether it is cross-validation."""
    lineage = _Lineage(models | {served})
    origins: dict[int, frozenset[Version]] = {}
    in_loops: set[str] = set()  # the keys of weights a loop kept (a best epoch's)
    kept_with: dict[str, list[int]] = {}  # such a key -> the metrics bound beside it
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        beside = beside_snapshots(cell.kept_statements, lineage.models)
        for statement, maybe, looped in _in_order(cell.kept_statements, False):
            lineage.fit(statement)
            put_back = restore(statement, lineage.models)
            if put_back is not None and put_back[1] in in_loops:
                version = lineage.restored(put_back[0])
                origins |= {key: frozenset({version}) for key in kept_with.get(put_back[1], [])}
            for node in _walk_here(statement):
                if id(node) in metrics:
                    origins[id(node)] = lineage.origin(node)
                    if id(statement) in beside:
                        kept_with.setdefault(beside[id(statement)], []).append(id(node))
            taken = snapshot(statement, lineage.models)
            if taken is not None and looped:
                in_loops.add(taken[1])
            _bind(lineage, statement, maybe, looped)
    binding, fits = lineage.version.get(served, (0, 0))
    aliases = lineage.sources.get(served, frozenset())
    found = {}
    for key, cross_validation in metrics.items():
        origin = origins.get(key)
        if origin is None:
            found[key] = UNKNOWN  # not in the kept code's flow (inside a function)
        elif any(
            item in aliases
            or (item[:2] == (served, binding) and (cross_validation or item[2] == fits))
            for item in origin
        ):
            found[key] = SERVED
        elif any(item[:2] == (served, binding) for item in origin):
            found[key] = REFITTED
        elif origin:
            found[key] = OTHER
        else:
            found[key] = UNKNOWN
    return found


def _holds_models(value: ast.expr, models: set[str]) -> bool:
    """A dict, list or tuple literal whose items are built by calls or are model names."""
    if isinstance(value, ast.Dict):
        items = [v for v in value.values if v is not None]
    elif isinstance(value, ast.List | ast.Tuple):
        items = [i.elts[-1] if isinstance(i, ast.Tuple) and i.elts else i for i in value.elts]
    else:
        return False
    return bool(items) and all(
        isinstance(i, ast.Call) or (isinstance(i, ast.Name) and i.id in models) for i in items
    )


def _bind(lineage: _Lineage, statement: ast.stmt, maybe: bool, each: bool = False) -> None:
    if isinstance(statement, ast.Assign):
        lineage.bind(statement.targets, statement.value, False, maybe, each)
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        lineage.bind([statement.target], statement.value, False, maybe)
    elif isinstance(statement, ast.AugAssign):
        lineage.bind([statement.target], statement.value, True, maybe)
    elif isinstance(statement, ast.For | ast.AsyncFor):
        lineage.bind([statement.target], statement.iter, False, maybe, each=True)
    elif isinstance(statement, ast.With | ast.AsyncWith):
        for item in statement.items:
            if item.optional_vars is not None:
                lineage.bind([item.optional_vars], item.context_expr, False, maybe)
    for node in _walk_here(statement):
        if isinstance(node, ast.NamedExpr):
            lineage.bind([node.target], node.value, False, maybe)


def _in_order(
    statements: list[ast.stmt], maybe: bool, looped: bool = False
) -> Iterator[tuple[ast.stmt, bool, bool]]:
    """Statements in the order they run, those inside loops, branches and `with` blocks
    included (once), those inside function and class definitions not; each with whether it
    may not run (in a branch of `if`, `try` or `match`) and whether it runs in a loop."""
    for statement in statements:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        yield statement, maybe, looped
        branches = isinstance(statement, ast.If | ast.Try | ast.TryStar | ast.Match)
        body_maybe = maybe or isinstance(statement, ast.If)
        body_looped = looped or isinstance(statement, ast.For | ast.AsyncFor | ast.While)
        yield from _in_order(getattr(statement, "body", []) or [], body_maybe, body_looped)
        yield from _in_order(getattr(statement, "orelse", []) or [], maybe or branches, looped)
        yield from _in_order(getattr(statement, "finalbody", []) or [], maybe, looped)
        for handler in getattr(statement, "handlers", []) or []:
            yield from _in_order(handler.body, True, looped)
        for case in getattr(statement, "cases", []) or []:
            yield from _in_order(case.body, True, looped)


def _walk_here(statement: ast.stmt) -> Iterator[ast.AST]:
    """The nodes of a statement itself: not of the statements nested in it, nor of the
    functions and lambdas defined in it."""
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt | ast.Lambda | ast.excepthandler | ast.match_case):
                continue
            stack.append(child)


def _fits_in(value: ast.expr) -> bool:
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in FIT_METHODS
        for node in ast.walk(value)
    )


def _roots(value: ast.AST | None) -> set[str]:
    """The variables an expression takes its object from through attributes, items and method
    calls (`search.fit(X, y).best_estimator_`), either branch of `a if c else b`; none for a
    call of a function or class."""
    node = value
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Attribute):
                return set()
            node = node.func.value
        else:
            node = node.value
    if isinstance(node, ast.IfExp):
        return _roots(node.body) | _roots(node.orelse)
    return {node.id} if isinstance(node, ast.Name) else set()
