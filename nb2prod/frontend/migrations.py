"""Calls written for an older library, rewritten for the one installed when the rewrite is exact.

Notebooks outlive the library versions they were written for: `OneHotEncoder(sparse=False)`
and `mean_squared_error(..., squared=False)` are everywhere in notebooks from before
scikit-learn removed them. The package pins what is installed here, so such a call would fail
when training runs. Where the library's own deprecation note gives an exact replacement, the
call is rewritten on its own lines (line numbers still point at the notebook) and each
rewrite becomes a finding; any other call the installed library refuses is refused at plan
(library_calls). Rewrites apply only when the installed version is one that removed the old
form, read from package metadata without importing the library.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import inspect
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from nb2prod.frontend.installed import installed_signature
from nb2prod.frontend.pysyntax import Aliases, dotted_name
from nb2prod.frontend.vocabulary import FIT_METHODS, TRAIN_FUNCTIONS

_SKLEARN = "scikit-learn"
_STATSMODELS = "statsmodels"
_FORESTS = ("RandomForest", "ExtraTrees")
_TREES = ("DecisionTree", "ExtraTree")
_TASKS = ("Classifier", "Regressor")


@dataclass(frozen=True)
class Migration:
    line: int
    said: str  # what was rewritten, and why
    code: str = "library-migrated"  # the finding it becomes


# Keyword arguments of a fit that only change what it shows: a progress plot (CatBoost's
# `plot=True` needs ipywidgets), progress lines. Dropped from the package's training, whose
# log is not a notebook's output; LightGBM 4 no longer takes `verbose` in fit at all.
DISPLAY_ARGUMENTS = frozenset({"plot", "verbose", "verbose_eval", "silent"})


@dataclass(frozen=True)
class _Rule:
    """`callees` called with `keyword` (set to `old`, when `old` is given) were removed in
    `distribution` `removed_in`. The keyword becomes `new_keyword`, or is dropped when that is
    None; when `old` is given, the value becomes `new`."""

    callees: tuple[str, ...]
    keyword: str
    distribution: str
    removed_in: str
    new_keyword: str | None
    old: object = None
    new: object = None


def _sklearn(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"sklearn.{module}.{name}" for name in names)


def _renamed(callees: tuple[str, ...], old: str, new: str, removed_in: str) -> _Rule:
    return _Rule(callees, old, _SKLEARN, removed_in, new)


def _value(callees: tuple[str, ...], keyword: str, old: str, new: object, removed_in: str) -> _Rule:
    return _Rule(callees, keyword, _SKLEARN, removed_in, keyword, old, new)


_FOREST_CLASSIFIERS = _sklearn("ensemble", *(f"{f}Classifier" for f in _FORESTS))
_FOREST_REGRESSORS = _sklearn("ensemble", *(f"{f}Regressor" for f in _FORESTS))
_TREE_REGRESSORS = _sklearn("tree", *(f"{t}Regressor" for t in _TREES))
_META_ESTIMATORS = (
    *_sklearn("ensemble", *(f"{m}{t}" for m in ("AdaBoost", "Bagging") for t in _TASKS)),
    *_sklearn("calibration", "CalibratedClassifierCV"),
)
# The forms scikit-learn's deprecation notes give an exact replacement for, and the version
# that removed each (so a notebook run against it fails).
_RULES = (
    _renamed(_sklearn("preprocessing", "OneHotEncoder"), "sparse", "sparse_output", "1.4"),
    _renamed(_META_ESTIMATORS, "base_estimator", "estimator", "1.4"),
    _renamed(_sklearn("manifold", "TSNE"), "n_iter", "max_iter", "1.7"),
    _renamed(_sklearn("cluster", "AgglomerativeClustering"), "affinity", "metric", "1.4"),
    _value(_sklearn("linear_model", "LogisticRegression"), "penalty", "none", None, "1.4"),
    _value(_FOREST_CLASSIFIERS, "max_features", "auto", "sqrt", "1.3"),
    _value(_FOREST_REGRESSORS, "max_features", "auto", 1.0, "1.3"),
    _value(
        _sklearn("ensemble", "GradientBoostingClassifier"), "loss", "deviance", "log_loss", "1.3"
    ),
    _value(_sklearn("linear_model", "SGDClassifier"), "loss", "log", "log_loss", "1.3"),
    _value(
        _sklearn("linear_model", "SGDRegressor"), "loss", "squared_loss", "squared_error", "1.2"
    ),
    *(
        _value(callees, "criterion", old, new, "1.2")
        for callees in (_TREE_REGRESSORS, _FOREST_REGRESSORS)
        for old, new in (("mse", "squared_error"), ("mae", "absolute_error"))
    ),
    # statsmodels 0.15 removed old_names; False was the behaviour it kept
    _Rule(
        ("statsmodels.tsa.ar_model.ar_select_order", "statsmodels.tsa.ar_model.AutoReg"),
        "old_names",
        _STATSMODELS,
        "0.15",
        None,
        False,
    ),
)
# `mean_squared_error(y, p, squared=False)` is the root of `mean_squared_error(y, p)`.
_SQUARED = (*_sklearn("metrics", "mean_squared_error", "mean_squared_log_error"),)
_SQUARED_REMOVED_IN = "1.6"


def migrate_calls(
    source: str, statements: list[ast.stmt], aliases: Aliases
) -> tuple[str, list[Migration]]:
    """The cell's source with every call it has a rule for rewritten, and what was done."""
    edits: list[tuple[int, int, str]] = []
    done: list[Migration] = []
    offsets = Offsets(source)
    built = _built_in(statements, aliases)
    for statement in statements:
        for node in ast.walk(statement):
            if not isinstance(node, ast.Call):
                continue
            callee = dotted_name(node.func)
            qualified = aliases.imported(callee) if callee else None
            for item in _display_arguments(node, qualified, built):
                edits.append(_without(node, item, offsets))
                shown = f"{item.arg}={ast.unparse(item.value)}"
                what = f"{callee}()" if callee else "the fit"
                said = f"{shown} dropped from {what}: it only changes what training shows"
                done.append(Migration(item.lineno, said, "display-argument"))
            if callee is None or qualified is None:
                continue
            for item in node.keywords:
                change = _rewrite(qualified, node, item, offsets)
                if change is not None:
                    new_edits, said = change
                    edits += new_edits
                    done.append(Migration(item.lineno, f"{callee}(): {said}"))
    return apply_edits(source, edits), done


def apply_edits(source: str, edits: list[tuple[int, int, str]]) -> str:
    """`source` with each (start, end, text) edit made; the edits must not overlap."""
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source


def _display_arguments(
    call: ast.Call, qualified: str | None, built: dict[str, str]
) -> list[ast.keyword]:
    """The display-only keywords of a fit (`model.fit(..., verbose=100)`) or a booster's
    train function (`xgb.train(..., verbose_eval=10)`) to drop: all but those that silence
    the call where the installed callable takes them."""
    fits = isinstance(call.func, ast.Attribute) and call.func.attr in FIT_METHODS
    if not fits and qualified not in TRAIN_FUNCTIONS:
        return []
    callee = qualified
    if isinstance(call.func, ast.Attribute) and fits:
        receiver = call.func.value
        owner = built.get(receiver.id) if isinstance(receiver, ast.Name) else None
        callee = f"{owner}.{call.func.attr}" if owner else None
    return [
        item
        for item in call.keywords
        if item.arg in DISPLAY_ARGUMENTS and not _keeps_quiet(item, callee)
    ]


def _keeps_quiet(item: ast.keyword, callee: str | None) -> bool:
    """`verbose_eval=False`, `verbose=0`, `verbose=-1`: a keyword that silences the call,
    which the installed callable takes. Dropped, the library's default would print every
    round of training."""
    value = _literal(item.value)
    quiet = (
        value is None
        or value is False
        or (isinstance(value, int) and not isinstance(value, bool) and value <= 0)
    )
    if not quiet or callee is None:
        return False
    signature = installed_signature(callee)
    if signature is None:  # not asked of a deep-learning library: it ran in the notebook
        return True
    return isinstance(signature, inspect.Signature) and item.arg in signature.parameters


def _built_in(statements: list[ast.stmt], aliases: Aliases) -> dict[str, str]:
    """`model = xgb.XGBClassifier(...)` in the cell: each name, with the class it is built
    from, so that its fit's installed signature can be asked."""
    found: dict[str, str] = {}
    for statement in statements:
        if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)):
            continue
        callee = dotted_name(statement.value.func)
        qualified = aliases.imported(callee) if callee else None
        for target in statement.targets:
            if isinstance(target, ast.Name) and qualified:
                found[target.id] = qualified
    return found


def _rewrite(
    qualified: str, call: ast.Call, item: ast.keyword, offsets: Offsets
) -> tuple[list[tuple[int, int, str]], str] | None:
    value = _literal(item.value)
    if _names_one_of(qualified, _SQUARED) and item.arg == "squared" and value in (True, False):
        if not _removed(_SKLEARN, _SQUARED_REMOVED_IN):
            return None
        edits = [_without(call, item, offsets)]
        if value is False:  # the root of the mean: what squared=False returned
            edits += [(offsets.start(call),) * 2 + ("(",), (offsets.end(call),) * 2 + (") ** 0.5",)]
        said = "squared=" + repr(value)
        return edits, f"{said} was removed in scikit-learn {_SQUARED_REMOVED_IN}; " + (
            "the square root of the result is taken instead" if value is False else "dropped"
        )
    for rule in _RULES:
        if not _names_one_of(qualified, rule.callees) or item.arg != rule.keyword:
            continue
        if rule.old is not None and value != rule.old:
            continue
        if isinstance(rule.old, bool) and not isinstance(value, bool):
            continue
        if not _removed(rule.distribution, rule.removed_in):
            return None
        return _apply(rule, call, item, offsets)
    return None


def _apply(
    rule: _Rule, call: ast.Call, item: ast.keyword, offsets: Offsets
) -> tuple[list[tuple[int, int, str]], str]:
    old = f"{rule.keyword}={ast.unparse(item.value)}"
    removed = f"was removed in {rule.distribution} {rule.removed_in}"
    if rule.new_keyword is None:
        said = f"{old} {removed}, which always behaves so now: dropped"
        return [_without(call, item, offsets)], said
    edits = []
    if rule.new_keyword != rule.keyword:
        start = offsets.start(item)
        edits.append((start, start + len(rule.keyword), rule.new_keyword))
    if rule.old is not None:
        edits.append((offsets.start(item.value), offsets.end(item.value), repr(rule.new)))
        new = f"{rule.new_keyword}={rule.new!r}"
    else:
        new = f"{rule.new_keyword}={ast.unparse(item.value)}"
    return edits, f"{old} {removed}; written as {new}, its replacement"


def _without(call: ast.Call, item: ast.keyword, offsets: Offsets) -> tuple[int, int, str]:
    """The edit that removes one keyword argument with its comma."""
    arguments = sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))
    index = arguments.index(item)
    if index > 0:
        return offsets.end(arguments[index - 1]), offsets.end(item), ""
    if len(arguments) > 1:
        return offsets.start(item), offsets.start(arguments[1]), ""
    return offsets.start(item), offsets.end(item), ""


def _names_one_of(qualified: str, callees: tuple[str, ...]) -> bool:
    """`qualified` is one of `callees`, reached through any module of the same library
    (`sm.tsa.AutoReg` is statsmodels.tsa.ar_model.AutoReg)."""
    top, name = qualified.partition(".")[0], qualified.rpartition(".")[2]
    return any(c.partition(".")[0] == top and c.rpartition(".")[2] == name for c in callees)


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _NOT_LITERAL


_NOT_LITERAL = object()


@functools.cache
def _removed(distribution: str, version: str) -> bool:
    """Whether the installed `distribution` is at or past the version that removed a form."""
    try:
        return Version(importlib.metadata.version(distribution)) >= Version(version)
    except (importlib.metadata.PackageNotFoundError, InvalidVersion):
        return False


class Offsets:
    """Positions in the cell's text from ast's (line, UTF-8 byte column) pairs."""

    def __init__(self, source: str) -> None:
        self.lines = source.split("\n")
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def at(self, line: int, column: int) -> int:
        text = self.lines[line - 1]
        return self.starts[line - 1] + len(text.encode()[:column].decode(errors="ignore"))

    def start(self, node: ast.AST) -> int:
        return self.at(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.at(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
