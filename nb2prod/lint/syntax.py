"""Small libcst helpers the rules share, so each rule module holds only its own logic."""

from __future__ import annotations

import itertools

import libcst as cst


def string_value(node: cst.BaseExpression | None) -> str | None:
    """The text of a plain string literal, None for anything else (f-strings included)."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def callee_name(call: cst.Call) -> str | None:
    """The last name of what is called: `log_params` in `mlflow.log_params(...)`."""
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    """The value passed to keyword argument `name`, if any."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def values_given(call: cst.Call, field: str) -> list[cst.BaseExpression]:
    """Values a call gives `field`: `f("field", value)` pairs and `f(field=value)`."""
    args = call.args
    values = [
        following.value
        for arg, following in itertools.pairwise(args)
        if arg.keyword is None and following.keyword is None and string_value(arg.value) == field
    ]
    values += [arg.value for arg in args if arg.keyword is not None and arg.keyword.value == field]
    return values


def dict_keys(node: cst.BaseExpression) -> set[str] | None:
    """The string keys of a dict literal; None when `node` is not one."""
    if not isinstance(node, cst.Dict):
        return None
    keys = set()
    for element in node.elements:
        if isinstance(element, cst.DictElement) and (key := string_value(element.key)):
            keys.add(key)
    return keys


def plain_status(status: str) -> str:
    """'✅ IMPLEMENTED' -> 'IMPLEMENTED': people may write the marks, machines compare words."""
    return status.split()[-1] if status.strip() else status
