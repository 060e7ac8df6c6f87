"""The base class of every lint rule, in the spirit of Fixit: a libcst visitor that knows its
code, its message, its documentation, and its own valid and invalid examples.

A rule visits one module; the engine runs all rules in one batched pass. Names are resolved
the way a reader would (`import mlflow as mf`, `from mlflow import log_param`) through
libcst's qualified-name metadata, never by spelling.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import libcst as cst
from libcst.metadata import PositionProvider, QualifiedNameProvider

from nb2prod.contract import Contract
from nb2prod.lint.violation import Violation


@dataclass(frozen=True)
class RuleContext:
    path: str
    contract: Contract


class LintRule(cst.BatchableCSTVisitor):
    """Subclasses set CODE, NAME, MESSAGE, TRIGGERS, VALID and INVALID, and document
    themselves in the docstring with the sections What it does / Why is this bad? /
    Example / Use instead, which `nb2prod rule CODE` prints."""

    CODE: ClassVar[str]
    NAME: ClassVar[str]
    MESSAGE: ClassVar[str]
    # Substrings without which the rule cannot fire: a file containing none is not parsed.
    TRIGGERS: ClassVar[tuple[str, ...]] = ()
    # False when a finding depends only on the function or class holding a trigger (plus the
    # module's imports and top-level assignments): the engine may then skip the parse of every
    # other definition in the file, which is most of a large file.
    MODULE_WIDE: ClassVar[bool] = True
    VALID: ClassVar[Sequence[str]] = ()
    INVALID: ClassVar[Sequence[str]] = ()
    METADATA_DEPENDENCIES = (PositionProvider, QualifiedNameProvider)

    def __init__(self, context: RuleContext) -> None:
        super().__init__()
        self.context = context
        self.violations: list[Violation] = []

    def report(self, node: cst.CSTNode, message: str | None = None) -> None:
        where = self.get_metadata(PositionProvider, node)
        self.violations.append(
            Violation(
                path=self.context.path,
                line=where.start.line,
                column=where.start.column + 1,
                code=self.CODE,
                name=self.NAME,
                message=message or self.MESSAGE,
                end_line=where.end.line,
                end_column=where.end.column + 1,
            )
        )

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def calls(self, node: cst.Call, *names: str) -> bool:
        """Whether `node` calls one of `names` (qualified, e.g. 'mlflow.log_param')."""
        return bool(self.qualified_names(node.func) & set(names))

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")
