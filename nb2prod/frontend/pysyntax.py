"""Small helpers over Python's `ast` shared by the frontend's analyses.

The frontend uses the standard library's `ast`: one parse per cell is all `plan` needs, and
it is an order of magnitude faster than a concrete syntax tree.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable, Iterator
from pathlib import Path

from nb2prod.errors import InputError
from nb2prod.plan import Block, Step


def parse_cell(source: str, path: Path, cell: int) -> ast.Module:
    """Parse a normalised cell; a syntax error names the cell and the line."""
    try:
        return ast.parse(source)
    except SyntaxError as error:
        line = error.lineno or 1
        text = (error.text or "").strip()
        detail = f"{error.msg}" + (f": {text[:60]}" if text else "")
        raise InputError(
            path,
            f"syntax error: {detail}",
            cell=cell,
            line=line,
            hint="fix the cell, or tag it 'skip' to leave it out",
        ) from None
    except (ValueError, RecursionError) as error:
        raise InputError(path, f"cannot be parsed: {error}", cell=cell) from None


def imported_modules(statement: ast.stmt) -> list[str]:
    """The dotted names an import statement imports: `a.b` and `m.x` for `from m import x`."""
    if isinstance(statement, ast.Import):
        return [alias.name for alias in statement.names]
    if isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
        return [f"{statement.module}.{alias.name}" for alias in statement.names]
    return []


class Aliases:
    """What the notebook's imports bind: `pd` -> `pandas`, `f1` -> `sklearn.metrics.f1_score`."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self.star_modules: list[str] = []
        # Every dotted name imported, as written: `import sklearn.experimental.enable_x` too.
        self.imported_names: list[str] = []

    def add_imports(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.imported_names += imported_modules(node)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self._names[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self._names[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name == "*":
                        self.star_modules.append(node.module)
                    else:
                        self._names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def is_module_alias(self, name: str) -> bool:
        return name in self._names

    def modules(self) -> set[str]:
        """Every qualified name the imports bind."""
        return set(self._names.values())

    def imported(self, dotted: str) -> str | None:
        """The qualified name when `dotted` starts with a name an import binds, else None
        (a notebook variable is not a library's name)."""
        return self.resolve(dotted) if dotted.partition(".")[0] in self._names else None

    def resolve(self, dotted: str) -> str:
        """Qualify a dotted name through the imports: `pd.read_csv` -> `pandas.read_csv`."""
        head, _, rest = dotted.partition(".")
        qualified = self._names.get(head)
        if qualified is None:
            return dotted
        return f"{qualified}.{rest}" if rest else qualified


def parsed_blocks(steps: Iterable[Step]) -> Iterator[tuple[Block, ast.Module]]:
    """Each block of the steps with its syntax tree; a block that does not parse is skipped
    (the plan reports it where it matters)."""
    for step in steps:
        for block in step.blocks:
            try:
                yield block, ast.parse(block.source)
            except SyntaxError:
                continue


def dotted_name(node: ast.AST) -> str | None:
    """`a.b.c` for a Name/Attribute chain, None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def root_name(node: ast.AST) -> str | None:
    """The variable at the root of an expression chain: `df` in `df.groupby(...).mean()`."""
    while True:
        if isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def method_chain(node: ast.AST) -> list[str]:
    """Method names called along a chain, outermost last: `df.a().b()` -> ['a', 'b']."""
    methods: list[str] = []
    while True:
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                methods.append(node.func.attr)
            node = node.func.value if isinstance(node.func, ast.Attribute) else node.func
        elif isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        else:
            return list(reversed(methods))


def target_names(target: ast.AST) -> list[str]:
    """Plain names bound by an assignment target (tuples unpacked, attributes ignored)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in target_names(element)]
    if isinstance(target, ast.Starred):
        return target_names(target.value)
    return []


def calls_bound_in(function: ast.AST) -> dict[str, ast.Call]:
    """`name = call(...)` anywhere inside `function` (a notebook function's body): each name
    with the call it is bound to, the last binding winning."""
    return {
        node.targets[0].id: node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Call)
    }


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == name:
            return item.value
    return None


def names_in(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def lines_inside_strings(source: str) -> set[int]:
    """Lines that continue a multi-line string: their text is data, not code or indentation."""
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    return inside


def construct(statement: ast.AST) -> str:
    """A statement's first line, shortened: how reasons name what they drop."""
    text = ast.unparse(statement).splitlines()[0]
    return text if len(text) <= 60 else text[:57] + "..."


def nodes_run_now(statement: ast.stmt):
    """The statement and what it runs now: function, lambda and class bodies are left out."""
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(
            child
            for child in ast.iter_child_nodes(node)
            if not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
            )
        )


def lines_per_statement(statements: list[ast.stmt]) -> dict[int, int]:
    """How many statements each line holds (`a = 1; print(a)` holds two): a statement sharing
    a line cannot be rewritten on its own lines."""
    counts: dict[int, int] = {}
    for statement in statements:
        for line in range(statement.lineno, (statement.end_lineno or statement.lineno) + 1):
            counts[line] = counts.get(line, 0) + 1
    return counts


def fresh_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`... whichever the notebook does not use yet."""
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}_{suffix}", suffix + 1
    return name


_NUMERIC_WRAPPERS = frozenset(
    {"float", "int", "round", "abs", "math.sqrt", "numpy.sqrt", "numpy.round", "numpy.abs"}
    | {"numpy.mean", "numpy.float64"}
)
_NUMERIC_METHODS = frozenset({"mean", "item", "round"})


def numeric_core(value: ast.expr, aliases: Aliases) -> ast.expr:
    """The call a number is made from: `np.sqrt(mean_squared_error(y, p))`,
    `round(accuracy_score(y, p), 3)`, `cross_val_score(m, X, y).mean()` and
    `mean_squared_error(y, p) ** 0.5` are that metric (a positive power or multiple keeps its
    direction: greater is still better, or still worse)."""
    while isinstance(value, ast.Call | ast.BinOp):
        if isinstance(value, ast.BinOp):
            positive = isinstance(value.right, ast.Constant) and isinstance(
                value.right.value, int | float
            )
            if not (
                isinstance(value.op, ast.Pow | ast.Mult)
                and positive
                and value.right.value > 0  # type: ignore[attr-defined]
                and isinstance(value.left, ast.Call)
            ):
                break
            value = value.left
            continue
        func = value.func
        callee = dotted_name(func)
        if (
            isinstance(func, ast.Attribute)
            and func.attr in _NUMERIC_METHODS
            and isinstance(func.value, ast.Call)
            and not value.args
        ):
            value = func.value
        elif (
            callee
            and aliases.resolve(callee) in _NUMERIC_WRAPPERS
            and value.args
            and isinstance(value.args[0], ast.Call)
        ):
            value = value.args[0]
        else:
            break
    return value
