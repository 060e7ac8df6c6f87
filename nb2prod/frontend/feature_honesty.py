"""How trustworthy each feature step is on its own: a model is no more validated than its inputs.

A feature step shares the model's validation (the model's held-out metric measures what the
features contribute) unless its code holds a choice no data made: a score whose weights or
thresholds were typed by hand, or missing values filled with a constant. Such a feature is
HEURISTIC whatever the model is, and says which line made it so, so a feature store, a review
or a response can tell an IMPLEMENTED model fed by a hand-made score from one that is not.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nb2prod.frontend.pysyntax import parsed_blocks
from nb2prod.plan import Plan, Step

# Literals this small or this plain guard a division or shift a count; they are not choices.
_PLAIN_NUMBERS = frozenset({0, 1, -1, 2, 100, 1000})
_EPSILON = 1e-3


@dataclass(frozen=True)
class FeatureHonesty:
    implementation_status: str
    validation: str
    reason: str


def feature_honesty(step: Step, plan: Plan) -> FeatureHonesty:
    """The step's own status: the model's, or HEURISTIC with the hand-made choices named."""
    none = str(plan.contract["no_validation_prefix"])
    validated = plan.contract["validation_status_values"][0]
    choices = hand_made_choices(step, plan)
    if choices:
        return FeatureHonesty(
            implementation_status="HEURISTIC",
            validation=f"{none} - hand-made, not validated against outcomes",
            reason="; ".join(choices),
        )
    honesty = plan.honesty
    if honesty.validation_status == validated:
        validation = (
            f"end to end, by the model's {honesty.primary_metric} ({honesty.validation_method})"
        )
    else:
        validation = f"{none} - not validated"
    return FeatureHonesty(
        implementation_status=honesty.implementation_status,
        validation=validation,
        reason="shares the model's validation: no hand-made weights, thresholds or fills",
    )


def hand_made_choices(step: Step, plan: Plan) -> list[str]:
    """'score = 0.4*a + 0.6*b (cell 9)'-style notes for each hand-made choice the step makes,
    in its own cells or in the notebook functions it calls."""
    helpers = _helper_functions(plan)
    found: list[str] = []
    seen: set[str] = set()
    pending = [(block.cell, block.source) for block in step.blocks]
    while pending:
        cell, source = pending.pop(0)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for note in _choices(tree, source):
            found.append(f"{note} (cell {cell})")
        for name in _called_names(tree):
            if name in helpers and name not in seen:
                seen.add(name)
                pending.append(helpers[name])
    return found


def _helper_functions(plan: Plan) -> dict[str, tuple[int, str]]:
    functions: dict[str, tuple[int, str]] = {}
    for block, tree in parsed_blocks(s for s in plan.steps if s.role == "functions"):
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                source = ast.get_source_segment(block.source, node) or ""
                functions[node.name] = (block.cell, source)
    return functions


def _called_names(tree: ast.AST) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def _choices(tree: ast.AST, source: str) -> list[str]:
    notes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            column = _column_name(node.targets[0])
            if column is not None:
                notes.extend(_scored(column, node.value, source))
        elif isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    notes.extend(_scored(f"{node.name}()", inner.value, source))
        elif isinstance(node, ast.Call):
            notes.extend(_assigned_columns(node, source))
            fill = _constant_fill(node, source)
            if fill:
                notes.append(fill)
    return notes


def _assigned_columns(call: ast.Call, source: str) -> list[str]:
    """frame.assign(score=...) keywords, read as column assignments."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "assign"):
        return []
    notes = []
    for keyword in call.keywords:
        if keyword.arg is not None:
            notes.extend(_scored(keyword.arg, keyword.value, source))
    return notes


def _scored(column: str, value: ast.expr, source: str) -> list[str]:
    """A column computed with two or more hand-typed weights, or against a typed threshold."""
    if not _reads_data(value):
        return []
    weights = [n for n in _numbers(value) if _is_choice(n)]
    thresholds = [
        node
        for node in ast.walk(value)
        if isinstance(node, ast.Compare) and any(_is_choice(n) for n in _numbers(node))
    ]
    segment = _segment(source, value)
    if len(weights) >= 2:
        return [f"hand-made score {column} = {segment}"]
    if thresholds:
        return [f"hand-made threshold {column} = {segment}"]
    return []


def _constant_fill(call: ast.Call, source: str) -> str | None:
    """fillna(<constant>) and SimpleImputer(strategy="constant"): a value no data chose."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name == "fillna":
        value = call.args[0] if call.args else _keyword(call, "value")
        if isinstance(value, ast.Constant) and value.value is not None:
            return f"missing values filled with a constant: {_segment(source, call)}"
    if name == "SimpleImputer":
        strategy = _keyword(call, "strategy")
        if isinstance(strategy, ast.Constant) and strategy.value == "constant":
            return f"missing values filled with a constant: {_segment(source, call)}"
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _column_name(target: ast.expr) -> str | None:
    """'score' for frame['score'] = ... or frame.loc[:, 'score'] = ..."""
    if not isinstance(target, ast.Subscript):
        return None
    key = target.slice
    if isinstance(key, ast.Tuple) and key.elts:
        key = key.elts[-1]
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        return key.value
    return None


def _reads_data(value: ast.expr) -> bool:
    return any(isinstance(n, ast.Subscript | ast.Attribute | ast.Name) for n in ast.walk(value))


def _numbers(node: ast.AST) -> list[float]:
    """Numeric literals in an expression, leaving out indexes (frame.iloc[:, 3] picks a column,
    it does not weigh one)."""
    if isinstance(node, ast.Subscript):
        return _numbers(node.value)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return [node.value]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return [-n for n in _numbers(node.operand)]
    return [n for child in ast.iter_child_nodes(node) for n in _numbers(child)]


def _is_choice(number: float) -> bool:
    return number not in _PLAIN_NUMBERS and abs(number) >= _EPSILON


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node) or ast.unparse(node)
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."
