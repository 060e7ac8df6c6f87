"""Safe fixes (`--fix`, `--diff`): code that makes an honesty gap visible, never code that
pretends to close it.

NBH105 (a response model without the honesty fields) is fixed by declaring them as required
`str` fields with a TODO, so a route that does not set them fails in tests at once.

NBH101 (an MLflow run without its honesty params) is fixed by inserting, as the first
statement of the `with mlflow.start_run():` block, a `log_params` call with the missing
fields, each valued `"TODO: fill in"`. Nothing else is guessed: the values are a human's to
give. A placeholder status is not a contract value (NBH102) and a typed claim beside a
measured metric is flagged (NBH104), so such a run keeps failing until someone fills the
values in. The missing fields are read from NBH101's message (checked against the contract;
a test pins the wording). Runs that are not a `with` block, or whose
`start_run` is not reached through a module (`from mlflow import start_run`), are left for a
human, as are notebooks (rewriting cells would rewrite the whole JSON document).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from nb2prod.contract import Contract
from nb2prod.lint.config import LintConfig
from nb2prod.lint.violation import FileResult, Violation

FIXABLE = frozenset({"NBH101", "NBH105"})
PLACEHOLDER = "TODO: fill in"
_MISSING = re.compile(r"does not log (?P<fields>[a-z_, ]+);")
_MODEL_LACKS = re.compile(r"^response model (?P<model>\w+) lacks (?P<fields>[a-z_, ]+);")


@dataclass(frozen=True)
class Fix:
    """A file's source before and after its fixes, and how many findings they address."""

    path: Path
    before: str
    after: str
    fixed: int

    def diff(self) -> str:
        name = self.path.as_posix()
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=name,
            tofile=name,
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def fix_files(results: Sequence[FileResult], config: LintConfig) -> list[Fix]:
    """The safe fixes for these results' findings, one per file that has any."""
    candidates = [r for r in results if any(v.code in FIXABLE for v in r.violations)]
    if not candidates:
        return []
    _, contract = config.load_rules()
    fixes = (fix_file(Path(r.path), r.violations, contract) for r in candidates)
    return [fix for fix in fixes if fix is not None]


def fix_file(path: Path, violations: Sequence[Violation], contract: Contract) -> Fix | None:
    """The fixed source of `path`, or None when none of its findings has a safe fix."""
    wanted = {
        (v.line, v.column): fields
        for v in violations
        if v.code == "NBH101" and v.cell is None and (fields := _missing(v, contract))
    }
    models = {
        model: fields
        for v in violations
        if v.code == "NBH105" and v.cell is None and (found := _model_fields(v, contract))
        for model, fields in [found]
    }
    if not (wanted or models) or path.suffix not in (".py", ".pyi"):
        return None
    try:
        before = path.read_bytes().decode("utf-8")
        module = cst.parse_module(before)
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
        return None  # already reported as a file that could not be linted
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    fixer = _InsertLogParams(wanted)
    fields = _AddResponseFields(models)
    after = wrapper.visit(fixer).visit(fields).code
    if not (fixer.fixed + fields.fixed) or after == before:
        return None
    return Fix(path, before, after, fixer.fixed + fields.fixed)


def _missing(violation: Violation, contract: Contract) -> tuple[str, ...]:
    """The fields NBH101 says are missing, checked against the contract (else: no fix)."""
    match = _MISSING.search(violation.message)
    if not match:
        return ()
    fields = tuple(f.strip() for f in match["fields"].split(",") if f.strip())
    required = set(contract.fields_where("run_param"))
    return fields if fields and set(fields) <= required else ()


def _model_fields(violation: Violation, contract: Contract) -> tuple[str, tuple[str, ...]] | None:
    """(model, fields) NBH105 says a response model lacks, checked against the contract."""
    match = _MODEL_LACKS.search(violation.message)
    if not match:
        return None
    fields = tuple(f.strip() for f in match["fields"].split(",") if f.strip())
    required = set(contract.fields_where("response"))
    return (match["model"], fields) if fields and set(fields) <= required else None


class _AddResponseFields(cst.CSTTransformer):
    """Declare the missing response fields as required `str` fields of the model.

    Required, not optional with a default: a response that does not set them then fails at
    once, in tests, instead of answering without its honesty metadata."""

    def __init__(self, models: dict[str, tuple[str, ...]]) -> None:
        super().__init__()
        self.models = models
        self.fixed = 0

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        fields = self.models.get(original_node.name.value)
        if not fields or not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        self.fixed += 1
        added = [cst.parse_statement(f"{name}: str\n") for name in fields]
        comment = cst.EmptyLine(
            comment=cst.Comment(
                "# TODO(nb2prod): set these from the model's registry tags (nb2prod rule NBH105)"
            )
        )
        added[0] = added[0].with_changes(leading_lines=(comment,))
        body = updated_node.body
        return updated_node.with_changes(body=body.with_changes(body=(*body.body, *added)))


class _InsertLogParams(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, wanted: dict[tuple[int, int], tuple[str, ...]]) -> None:
        super().__init__()
        self.wanted = wanted
        self.fixed = 0

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        if not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node  # `with x: stmt` on one line: leave it to a human
        for item in original_node.items:
            call = item.item
            func = call.func if isinstance(call, cst.Call) else None
            if not isinstance(func, cst.Attribute) or func.attr.value != "start_run":
                continue
            start = self.get_metadata(PositionProvider, call).start
            fields = self.wanted.get((start.line, start.column + 1))
            if fields:
                self.fixed += 1
                owner = cst.Module([]).code_for_node(func.value)
                statement = _log_params(owner, fields)
                body = updated_node.body
                return updated_node.with_changes(
                    body=body.with_changes(body=(statement, *body.body))
                )
        return updated_node


def _log_params(owner: str, fields: Sequence[str]) -> cst.BaseStatement:
    entries = "".join(f'    "{name}": "{PLACEHOLDER}",\n' for name in fields)
    statement = cst.parse_statement(f"{owner}.log_params({{\n{entries}}})\n")
    comment = cst.EmptyLine(
        comment=cst.Comment(
            "# TODO(nb2prod): log this run's real honesty values (nb2prod rule NBH101)"
        )
    )
    return statement.with_changes(leading_lines=(comment,))
