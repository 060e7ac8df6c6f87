"""A decision threshold the notebook applies to the model's probabilities, which the service
does not.

A notebook tunes the cut-off of a classifier (`best_t` maximising F1 on validation rows) and
decides with it: `(model.predict_proba(X)[:, 1] > best_t).astype(int)`. The package serves
`model.predict`, whose classes are decided at 0.5, so its answers are not the notebook's: the
plan says so where the notebook decides, and how to serve the threshold with the model.
"""

from __future__ import annotations

import ast

from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import root_name, target_names
from nb2prod.plan import Finding

_CUTS = (ast.Gt, ast.GtE, ast.Lt, ast.LtE)


def threshold_findings(facts: NotebookFacts, model: str) -> list[Finding]:
    """The first place the notebook decides `model`'s classes at a threshold of its own (not
    in a loop that tries thresholds one by one)."""
    statements = [statement for cell in facts.cells for statement in cell.statements]
    columns = {name for statement in statements for name in _probability_names(statement, model)}
    columns |= _renamed(statements, columns)
    for cell in facts.cells:
        for statement in cell.statements:
            tried = {
                name
                for node in ast.walk(statement)
                if isinstance(node, ast.For | ast.comprehension)
                for name in target_names(node.target)
            }
            for node in ast.walk(statement):
                if not (isinstance(node, ast.Compare) and _decides(node, model, columns, tried)):
                    continue
                cut = ast.unparse(node.comparators[0])
                return [
                    Finding(
                        "threshold-not-served",
                        "warning",
                        f"the notebook decides {model}'s classes at {ast.unparse(node)}; the "
                        f"service answers {model}.predict's classes, decided at 0.5",
                        cell.number,
                        node.lineno,
                        f"fit sklearn.model_selection.FixedThresholdClassifier({model}, "
                        f"threshold={cut}) in the notebook and serve that, or apply {cut} to "
                        "the service's probabilities",
                    )
                ]
    return []


def _renamed(statements: list[ast.stmt], names: set[str]) -> set[str]:
    """Other names the notebook gives the same values (`proba = proba_rf`)."""
    renamed: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in (n for statement in statements for n in ast.walk(statement)):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)):
                continue
            if node.value.id not in names | renamed:
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id not in names | renamed:
                    renamed.add(target.id)
                    changed = True
    return renamed


def _decides(node: ast.Compare, model: str, columns: set[str], tried: set[str]) -> bool:
    if len(node.ops) != 1 or not isinstance(node.ops[0], _CUTS):
        return False
    left, cut = node.left, node.comparators[0]
    probability = _positive_column(left, model) or (
        isinstance(left, ast.Name) and left.id in columns
    )
    if not probability:
        return False
    if isinstance(cut, ast.Constant):
        return cut.value != 0.5
    return not (isinstance(cut, ast.Name) and cut.id in tried)


def _positive_column(node: ast.expr, model: str) -> bool:
    """`model.predict_proba(X)[:, 1]`: the probability of the positive class."""
    if not isinstance(node, ast.Subscript):
        return False
    call = node.value
    index = node.slice
    column = index.elts[-1] if isinstance(index, ast.Tuple) and index.elts else None
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "predict_proba"
        and root_name(call.func.value) == model
        and isinstance(column, ast.Constant)
        and column.value == 1
    )


def _probability_names(statement: ast.stmt, model: str) -> set[str]:
    """Names the statement binds to that probability (`proba = model.predict_proba(X)[:, 1]`)."""
    return {
        name
        for node in ast.walk(statement)
        if isinstance(node, ast.Assign) and _positive_column(node.value, model)
        for target in node.targets
        for name in target_names(target)
    }
