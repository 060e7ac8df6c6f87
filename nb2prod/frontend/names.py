"""Which names a cell binds and which it reads from elsewhere, in evaluation order.

A name read before the cell itself binds it must come from another cell: that is the
cross-cell def-use the planner needs to order steps and give each one explicit inputs and
outputs. Reads inside function bodies are *deferred*: they happen when the function runs,
so they only need the name to exist somewhere, not to be defined above.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# A name called or dotted inside a model formula ("y ~ np.log(x) + double_it(z)"): patsy and
# statsmodels' formula API evaluate it in the caller's namespace, so it is a read the code
# does not show. Bare words are left alone: they are the data's columns.
_FORMULA_CALLEE = re.compile(r"(?<![\w.'\"])([A-Za-z_]\w*)\s*[(.]")


@dataclass(frozen=True)
class NameUse:
    name: str
    line: int
    deferred: bool
    optional: bool = False  # read only where the notebook defines it (a name in a formula)


@dataclass(frozen=True)
class CellNames:
    defines: tuple[str, ...]
    uses: tuple[NameUse, ...]
    formula_calls: tuple[NameUse, ...] = ()  # every name called inside a model formula


def scan_names(statements: list[ast.stmt]) -> CellNames:
    scanner = _Scanner()
    for statement in statements:
        scanner.visit(statement)
    return CellNames(
        defines=tuple(dict.fromkeys(scanner.defined)),
        uses=tuple(scanner.uses),
        formula_calls=tuple(scanner.formula_calls),
    )


def local_names(body: list[ast.stmt], arguments: ast.arguments | None) -> set[str]:
    """Names a function body binds locally (its parameters and assignments)."""
    names: set[str] = set()
    if arguments is not None:
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
        names.update(arg.arg for arg in every)
    declared_global: set[str] = set()
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global | ast.Nonlocal):
            declared_global.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            stack.extend(node.decorator_list)
            continue  # its body is its own scope
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(
            node, ast.Lambda | ast.GeneratorExp | ast.ListComp | ast.SetComp | ast.DictComp
        ):
            continue  # their own scopes
        stack.extend(ast.iter_child_nodes(node))
    return names - declared_global


class _Scanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.defined: list[str] = []
        self.bound: set[str] = set()
        self.uses: list[NameUse] = []
        self.formula_calls: list[NameUse] = []
        self.scopes: list[set[str]] = []  # enclosing function/comprehension scopes

    # names -----------------------------------------------------------------------------
    def _bind(self, name: str) -> None:
        if self.scopes:
            self.scopes[-1].add(name)
        else:
            self.bound.add(name)
            self.defined.append(name)

    def _read(self, name: str, line: int) -> None:
        if any(name in scope for scope in self.scopes):
            return
        deferred = any(isinstance(scope, _DeferredScope) for scope in self.scopes)
        if deferred or name not in self.bound:
            self.uses.append(NameUse(name, line, deferred))

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "~" in node.value:
            deferred = any(isinstance(scope, _DeferredScope) for scope in self.scopes)
            for name in dict.fromkeys(_FORMULA_CALLEE.findall(node.value)):
                use = NameUse(name, node.lineno, deferred, optional=True)
                self.formula_calls.append(use)
                if not any(name in scope for scope in self.scopes) and name not in self.bound:
                    self.uses.append(use)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id, node.lineno)
        elif isinstance(node.ctx, ast.Store):
            self._bind(node.id)
        else:  # del x reads x
            self._read(node.id, node.lineno)

    # statements in evaluation order ---------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._read(node.target.id, node.lineno)
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.annotation)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        if self.scopes and isinstance(self.scopes[-1], _ComprehensionScope):
            # a walrus inside a comprehension binds in the enclosing scope
            scope = self.scopes.pop()
            self.visit(node.target)
            self.scopes.append(scope)
        else:
            self.visit(node.target)

    def visit_If(self, node: ast.If) -> None:
        """A name one branch binds is not bound in the other, nor after the `if` unless both
        bind it: in `if better: wait = 0` / `else: wait += 1`, the else reads the wait bound
        before the `if` (the cell's, in a loop's first round)."""
        self.visit(node.test)
        before = set(self.bound)
        for statement in node.body:
            self.visit(statement)
        in_body, self.bound = self.bound, set(before)
        for statement in node.orelse:
            self.visit(statement)
        self.bound = before | (in_body & self.bound)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
        for statement in node.body:
            self.visit(statement)

    visit_AsyncWith = visit_With

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self._bind((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bind(node.name)
        for statement in node.body:
            self.visit(statement)

    def visit_Global(self, node: ast.Global) -> None:
        return

    # scopes ---------------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._visit_signature(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self._bind(node.name)
        self.scopes.append(_DeferredScope(local_names(node.body, node.args)))
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_signature(node.args)
        self.scopes.append(_DeferredScope(local_names([], node.args)))
        self.visit(node.body)
        self.scopes.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expression in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(expression)
        # The class body runs now, but its bindings are class attributes, not globals.
        self.scopes.append(_ClassScope())
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()
        self._bind(node.name)

    def _visit_signature(self, arguments: ast.arguments) -> None:
        for default in [*arguments.defaults, *arguments.kw_defaults]:
            if default is not None:
                self.visit(default)
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
        for arg in every:
            if arg.annotation is not None:
                self.visit(arg.annotation)

    def _visit_comprehension(self, node: ast.AST, elements: list[ast.AST]) -> None:
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        self.visit(generators[0].iter)  # evaluated in the enclosing scope
        self.scopes.append(_ComprehensionScope())
        for index, generator in enumerate(generators):
            if index:
                self.visit(generator.iter)
            self.visit(generator.target)
            for condition in generator.ifs:
                self.visit(condition)
        for element in elements:
            self.visit(element)
        self.scopes.pop()

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._visit_comprehension(node, [node.elt])

    visit_SetComp = visit_ListComp
    visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._visit_comprehension(node, [node.key, node.value])


class _DeferredScope(set[str]):
    """A function body: it runs later, so its reads are deferred."""


class _ComprehensionScope(set[str]):
    """A comprehension's own variables."""


class _ClassScope(set[str]):
    """A class body's attributes."""
