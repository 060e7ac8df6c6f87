"""PyTorch modules trained by a loop: which module an optimizer steps, and what it is fed.

A PyTorch notebook has no `fit`: it builds an optimizer over a module's parameters
(`torch.optim.Adam(model.parameters(), lr=0.01)`) and calls `optimizer.step()` in a loop. The
module whose parameters the optimizer steps is the model; the tensor the module is called on
inside that loop is what it was trained on, directly (`model(X_train_t)`) or batch by batch
from a DataLoader over a TensorDataset (`for xb, yb in loader: model(xb)`).
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import dotted_name, keyword

OPTIMIZER_MODULES = ("torch.optim.",)
_DATA_LOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})
_DATASETS = frozenset({"torch.utils.data.TensorDataset", "torch.utils.data.dataset.TensorDataset"})


@dataclass(frozen=True)
class TrainedModule:
    name: str  # the module the optimizer steps
    optimizer: str
    cell: int
    line: int  # the optimizer's step
    inputs: tuple[str, ...]  # the tensor it is trained on, when the loop shows it


def optimized_modules(facts: NotebookFacts) -> dict[str, frozenset[str]]:
    """Optimizer name -> the modules whose parameters it steps, for every optimizer the
    notebook builds (`opt = torch.optim.SGD(net.parameters(), lr=0.1)` -> {"net"}): stepping
    the optimizer changes those modules, which the slice must know."""
    found: dict[str, frozenset[str]] = {}
    for name, built in facts.constructor_calls.items():
        callee = dotted_name(built.func)
        if callee is None or not facts.aliases.resolve(callee).startswith(OPTIMIZER_MODULES):
            continue
        given = built.args[0] if built.args else keyword(built, "params")
        owners = _parameter_owners(given)
        if owners:
            found[name] = frozenset(owners)
    return found


def trained_modules(facts: NotebookFacts, kept: set[int] | None) -> list[TrainedModule]:
    """Each `optimizer.step()` in a kept cell, with the module it trains and what that module
    is called on in the same statement (the training loop)."""
    optimizers = optimized_modules(facts)
    found: list[TrainedModule] = []
    for cell in facts.cells:
        if kept is not None and cell.number not in kept:
            continue
        for call in cell.calls:
            if call.in_display or call.method != "step" or call.receiver not in optimizers:
                continue
            loop = cell.statements[call.statement]
            fed = {module: _called_on(facts, loop, module) for module in optimizers[call.receiver]}
            # one optimizer over a model and its likelihood: the model is the one fed the data
            fed_data = {module: inputs for module, inputs in fed.items() if inputs} or fed
            found += [
                TrainedModule(module, call.receiver, cell.number, call.line, inputs)
                for module, inputs in sorted(fed_data.items())
            ]
    return found


def module_calls(statement: ast.AST, module: str) -> list[ast.Call]:
    """`model(x)`: the module called as a function, where its forward pass runs."""
    return [
        node
        for node in ast.walk(statement)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == module
        and node.args
    ]


def _parameter_owners(given: ast.expr | None) -> set[str]:
    """`model.parameters()`, `list(a.parameters()) + list(b.parameters())`,
    `[{"params": model.parameters()}]`: the names whose parameters are handed over."""
    if given is None:
        return set()
    return {
        node.func.value.id
        for node in ast.walk(given)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("parameters", "named_parameters")
        and isinstance(node.func.value, ast.Name)
    }


def _called_on(facts: NotebookFacts, loop: ast.stmt, module: str) -> tuple[str, ...]:
    for call in module_calls(loop, module):
        given = call.args[0]
        if isinstance(given, ast.Name):
            batch_source = _batched_from(facts, loop, given.id)
            return (batch_source or given.id,)
        return (dotted_name(given) or ast.unparse(given),)
    return ()


def _batched_from(facts: NotebookFacts, loop: ast.stmt, name: str) -> str | None:
    """`for xb, yb in loader:` over `DataLoader(TensorDataset(X_t, y_t), ...)`: the tensor a
    batch variable is drawn from (the first of the dataset's tensors for the first target)."""
    for node in ast.walk(loop):
        if not isinstance(node, ast.For | ast.comprehension):
            continue
        targets = node.target.elts if isinstance(node.target, ast.Tuple) else [node.target]
        positions = [i for i, t in enumerate(targets) if isinstance(t, ast.Name) and t.id == name]
        if not positions:
            continue
        dataset = _dataset_of(facts, node.iter)
        if dataset is not None and positions[0] < len(dataset.args):
            tensor = dataset.args[positions[0]]
            return dotted_name(tensor) or ast.unparse(tensor)
    return None


def _dataset_of(facts: NotebookFacts, iterable: ast.expr) -> ast.Call | None:
    loader = _built(facts, iterable)
    if loader is None or _resolved(facts, loader) not in _DATA_LOADERS:
        return None
    given = loader.args[0] if loader.args else keyword(loader, "dataset")
    dataset = _built(facts, given) if given is not None else None
    if dataset is None or _resolved(facts, dataset) not in _DATASETS:
        return None
    return dataset


def _built(facts: NotebookFacts, value: ast.expr) -> ast.Call | None:
    if isinstance(value, ast.Call):
        return value
    if isinstance(value, ast.Name):
        return facts.constructor_calls.get(value.id)
    return None


def _resolved(facts: NotebookFacts, call: ast.Call) -> str:
    return facts.aliases.resolve(dotted_name(call.func) or "")


@dataclass(frozen=True)
class ModuleOutput:
    """What the notebook makes of the module's output before it measures it: the service
    answers with the same, so the claim measured on it is a claim about what is served."""

    expression: str  # in terms of `model(inputs)`, as the package's `answer` returns it
    name: str  # the notebook's name for the result (`predicted`)
    cell: int
    line: int
    uses: tuple[str, ...] = ()  # other modules it reads (a GP's likelihood)


MODULE_INPUT = "inputs"


def module_output(
    facts: NotebookFacts,
    kept: set[int],
    module: str,
    measured: set[str],
    *,
    distribution: bool = False,
) -> ModuleOutput | None:
    """`predicted = (torch.sigmoid(model(X_test_t)) > 0.5).int()`, or `outputs = model(X)`
    then `predicted = outputs.argmax(dim=1)`: the first value made from the module's output
    alone (modules and the output, no other notebook name) that a metric reads (`measured`).

    A module that answers with a distribution (`distribution`, a Gaussian process) is read
    through the first prediction the notebook makes from it, metric or not
    (`observed_pred = likelihood(model(test_x))`), and answers with that prediction's mean.
    """
    objects = _module_objects(facts) - {module}
    raw: dict[str, ast.expr] = {}  # names bound to the module's bare output
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        shown = [s for s, display in zip(cell.statements, cell.display, strict=True) if display]
        for statement in (s for s in cell.statements if s not in shown):
            for node in ast.walk(statement):
                if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                    continue
                target = node.targets[0]
                if not isinstance(target, ast.Name):
                    continue
                value = _with_outputs_inlined(node.value, raw)
                calls = module_calls(value, module)
                uses = _other_modules(facts, value, calls[0], objects) if calls else None
                if len(calls) != 1 or uses is None:
                    raw.pop(target.id, None)
                    continue
                if value is calls[0]:
                    raw[target.id] = value
                    if distribution or target.id not in measured:
                        continue
                served = _fed(value, calls[0])
                if distribution:
                    served = _mean_of(served, objects)
                elif target.id in measured:
                    served = _as_tensor(served)
                else:
                    continue
                if served is not None:
                    where = (cell.number, node.lineno)
                    return ModuleOutput(ast.unparse(served), target.id, *where, tuple(uses))
    return None


def _module_objects(facts: NotebookFacts) -> set[str]:
    """Names bound to PyTorch or GPyTorch modules: built from their classes or from a notebook
    class built on one."""
    built_on: set[str] = set()
    for cell in facts.cells:
        for statement in cell.statements:
            if isinstance(statement, ast.ClassDef) and any(
                facts.aliases.resolve(dotted_name(base) or "").startswith(_MODULE_LIBRARIES)
                for base in statement.bases
            ):
                built_on.add(statement.name)
    return {
        name
        for name, qualified in facts.constructors.items()
        if qualified.startswith(_MODULE_LIBRARIES) or qualified in built_on
    }


_MODULE_LIBRARIES = ("torch.nn.", "gpytorch.")


def _mean_of(value: ast.expr, objects: set[str]) -> ast.expr | None:
    """`likelihood(model(inputs))` or `model(inputs)` as its `.mean`: modules called on the
    module's output, nothing else; None for any other use of a distribution."""
    inner = value.value if isinstance(value, ast.Attribute) and value.attr == "mean" else value
    node = inner
    while isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        if isinstance(node.func, ast.Name) and node.func.id == "model":
            return value if inner is not value else ast.Attribute(inner, "mean", ast.Load())
        if not (isinstance(node.func, ast.Name) and node.func.id in objects):
            return None
        node = node.args[0]
    return None


def _with_outputs_inlined(value: ast.expr, raw: dict[str, ast.expr]) -> ast.expr:
    """`outputs.argmax(1)` with `outputs = model(X)` known: `model(X).argmax(1)`."""

    class Inline(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return raw.get(node.id, node) if isinstance(node.ctx, ast.Load) else node

    return Inline().visit(_copy(value))


def _fed(value: ast.expr, call: ast.Call) -> ast.expr:
    """The expression with the module fed `inputs` instead of the notebook's tensor."""
    target = ast.unparse(call)

    class Feed(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            if ast.unparse(node) == target:
                return ast.Call(ast.Name("model", ast.Load()), [ast.Name(MODULE_INPUT)], [])
            self.generic_visit(node)
            return node

    return Feed().visit(_copy(value))


def _as_tensor(value: ast.expr) -> ast.expr:
    """Without the trailing calls that leave torch (`.numpy()`, `.cpu()`, `.tolist()`...): the
    service's module must answer with a tensor that torch.export can trace; serving turns it
    into JSON itself."""
    while (
        isinstance(value, ast.Call)
        and not value.args
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in _LEAVING_TORCH
    ):
        value = value.func.value
    return value


_LEAVING_TORCH = frozenset({"numpy", "cpu", "detach", "tolist", "item"})


def _other_modules(
    facts: NotebookFacts, value: ast.expr, call: ast.Call, objects: set[str]
) -> set[str] | None:
    """The notebook's modules the value reads beside the module's output (a GP's likelihood),
    or None when it reads any other notebook name (a threshold computed earlier would have to
    travel with the model); library modules and builtins are free."""
    inside = {id(node) for node in ast.walk(call)}
    builtin_names = set(dir(builtins))
    read = {
        node.id for node in ast.walk(value) if isinstance(node, ast.Name) and id(node) not in inside
    }
    free = {name for name in read if facts.aliases.is_module_alias(name) or name in builtin_names}
    others = read - free
    return others if others <= objects else None


def _copy(node: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(node), mode="eval").body


def trained_module_names(facts: NotebookFacts, kept: set[int]) -> frozenset[str]:
    return frozenset(module.name for module in trained_modules(facts, kept))


def drawing_initial_weights(facts: NotebookFacts, names: frozenset[str]) -> frozenset[str]:
    """Those of the modules whose first parameters are drawn at random: layers that draw
    (a Linear, a Conv2d, an LSTM) or initialisations that do (torch.nn.init, a spectral
    mixture kernel's initialize_from_data), in the call or in the notebook class's body. A
    Gaussian process's usual kernels and means start from constants."""
    classes = {
        statement.name: statement
        for cell in facts.cells
        for statement in cell.statements
        if isinstance(statement, ast.ClassDef)
    }
    drawing = set()
    for name in names:
        built = facts.constructor_calls.get(name)
        trees: list[ast.AST] = [built] if built is not None else []
        if facts.constructors.get(name) in classes:
            trees.append(classes[facts.constructors[name]])
        called = {
            facts.aliases.resolve(dotted)
            for tree in trees
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and (dotted := dotted_name(node.func))
        }
        if any(_RANDOM_LAYERS.match(callee) or _RANDOM_INIT.search(callee) for callee in called):
            drawing.add(name)
    return frozenset(drawing)


_RANDOM_LAYERS = re.compile(
    r"^torch\.nn\.(Lazy)?(Linear|Bilinear|Conv\w*|ConvTranspose\w*|LSTM\w*|GRU\w*|RNN\w*"
    r"|Embedding\w*|MultiheadAttention|Transformer\w*)$"
)
# Initialisations that draw: torch.nn.init's, torch's own draws, a GPyTorch spectral mixture
# kernel's `initialize_from_data`.
_RANDOM_INIT = re.compile(
    r"(^torch\.nn\.init\.|^torch\.(rand|randn|randint|normal)(_like)?$"
    r"|\.initialize_from_data(_empspect)?$|\.reset_parameters$)"
)


def is_trained_module(facts: NotebookFacts, kept: set[int], name: str) -> bool:
    return name in trained_module_names(facts, kept)


def answers_with_distribution(facts: NotebookFacts, qualified: str) -> str | None:
    """Why a module answers with a distribution, not a tensor
    (GPyTorch's models and likelihoods, a notebook class returning `MultivariateNormal(...)`
    or built on one of GPyTorch's models), which no tensor-serving flavour can answer with."""
    if qualified.startswith("gpytorch."):
        return "it is one of GPyTorch's models or likelihoods"
    for cell in facts.cells:
        for statement in cell.statements:
            if isinstance(statement, ast.ClassDef) and statement.name == qualified:
                return _distribution_of_class(facts, statement)
    return None


def _distribution_of_class(facts: NotebookFacts, definition: ast.ClassDef) -> str | None:
    for base in definition.bases:
        resolved = facts.aliases.resolve(dotted_name(base) or "")
        if resolved.startswith("gpytorch."):
            return f"it is built on {resolved}"
    for method in definition.body:
        if not (isinstance(method, ast.FunctionDef) and method.name == "forward"):
            continue
        for node in ast.walk(method):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
                callee = facts.aliases.resolve(dotted_name(node.value.func) or "")
                if ".distributions." in f".{callee}":
                    return f"its forward pass returns a {callee.rsplit('.', 1)[-1]}"
    return None
