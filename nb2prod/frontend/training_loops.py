"""Networks trained by a loop: which module an optimizer steps, and what it is fed.

A PyTorch notebook has no `fit`: it builds an optimizer over a module's parameters
(`torch.optim.Adam(model.parameters(), lr=0.01)`) and calls `optimizer.step()` in a loop. The
module whose parameters the optimizer steps is the model; the tensor the module is called on
inside that loop is what it was trained on, directly (`model(X_train_t)`) or batch by batch
from a DataLoader over a TensorDataset (`for xb, yb in loader: model(xb)`).

TensorFlow's loops are the same shape: a `tf.GradientTape` records the network's forward pass,
and the optimizer applies the gradients to the network's variables
(`optimizer.apply_gradients(zip(grads, model.trainable_variables))`), which is where it names
the network it steps; batches come from a `tf.data.Dataset.from_tensor_slices((X, y))`.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from nb2prod.frontend.facts import CellFacts, NotebookFacts
from nb2prod.frontend.names import local_names
from nb2prod.frontend.pysyntax import (
    calls_bound_in,
    dotted_name,
    keyword,
    names_in,
    nodes_run_now,
    root_name,
)

# torch's optimizers, and GPyTorch's natural gradient ones (`gpytorch.optim.NGD`)
OPTIMIZER_MODULES = ("torch.optim.", "gpytorch.optim.")
# what changes the modules an optimizer holds: torch's and Pyro's step, TensorFlow's
# apply_gradients and minimize (which name the network's variables where they are called)
STEP_METHODS = frozenset({"step", "apply_gradients", "minimize"})
_DATA_LOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})
_DATASETS = frozenset({"torch.utils.data.TensorDataset", "torch.utils.data.dataset.TensorDataset"})
_TENSOR_SLICES = frozenset(
    {"tensorflow.data.Dataset.from_tensor_slices", "tf.data.Dataset.from_tensor_slices"}
)
_VARIABLES = frozenset({"trainable_variables", "trainable_weights"})


@dataclass(frozen=True)
class TrainedModule:
    name: str  # the module the optimizer steps
    optimizer: str
    cell: int
    line: int  # the optimizer's step
    inputs: tuple[str, ...]  # the tensor it is trained on, when the loop shows it
    # for a module a notebook function builds and returns: the call that builds it in the
    # function's body (`net = Net(hidden)`), where the notebook's own name shows none
    built_by: ast.Call | None = None


def module_class(facts: NotebookFacts, module: TrainedModule) -> str | None:
    """The class a trained module is built from, wherever it is built."""
    if module.built_by is not None:
        return _resolved(facts, module.built_by)
    return facts.constructors.get(module.name)


def optimized_modules(facts: NotebookFacts) -> dict[str, frozenset[str]]:
    """Optimizer name -> the modules whose parameters it steps, for every optimizer the
    notebook builds (`opt = torch.optim.SGD(net.parameters(), lr=0.1)` -> {"net"}): stepping
    the optimizer changes those modules, which the slice must know."""
    statements = [statement for cell in facts.cells for statement in cell.statements]
    return _merged(_optimizers(facts, facts.constructor_calls), _appliers(statements))


def function_optimizers(
    facts: NotebookFacts, function: ast.FunctionDef
) -> dict[str, frozenset[str]]:
    """The same for the optimizers a notebook function builds in its body, over its
    parameters or globals (`def train(model): opt = torch.optim.Adam(model.parameters())`)."""
    return _merged(_optimizers(facts, calls_bound_in(function)), _appliers([function]))


def optimizers_in_function(
    facts: NotebookFacts,
    function: ast.FunctionDef,
    notebook_optimizers: dict[str, frozenset[str]] | None = None,
) -> dict[str, frozenset[str]]:
    """The optimizers a function can step: those it builds, and the notebook's own that it
    reads (`def train_step(x, y): ... optimizer.step()` over the notebook's model)."""
    if notebook_optimizers is None:
        notebook_optimizers = optimized_modules(facts)
    local = local_names(function.body, None)
    read = {name: held for name, held in notebook_optimizers.items() if name not in local}
    return _merged(read, function_optimizers(facts, function))


def _appliers(statements: list[ast.stmt]) -> dict[str, frozenset[str]]:
    """TensorFlow optimizer name -> the networks whose variables it is handed where it
    applies gradients (`opt.apply_gradients(zip(grads, model.trainable_variables))`,
    `opt.minimize(loss, var_list=model.trainable_weights)`)."""
    found: dict[str, frozenset[str]] = {}
    for statement in statements:
        for node in ast.walk(statement):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("apply_gradients", "minimize")
                and isinstance(node.func.value, ast.Name)
            ):
                continue
            owners = {
                held.value.id
                for given in [*node.args, *(k.value for k in node.keywords)]
                for held in ast.walk(given)
                if isinstance(held, ast.Attribute)
                and held.attr in _VARIABLES
                and isinstance(held.value, ast.Name)
            }
            if owners:
                name = node.func.value.id
                found[name] = found.get(name, frozenset()) | owners
    return found


def _merged(*mappings: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    merged: dict[str, frozenset[str]] = {}
    for mapping in mappings:
        for name, owners in mapping.items():
            merged[name] = merged.get(name, frozenset()) | owners
    return merged


def _optimizers(facts: NotebookFacts, built: dict[str, ast.Call]) -> dict[str, frozenset[str]]:
    found: dict[str, frozenset[str]] = {}
    for name, call in built.items():
        callee = facts.aliases.resolve(dotted_name(call.func) or "")
        if callee in _STOCHASTIC_INFERENCE:
            owners = _owners_of_model_and_guide(call)
        elif callee.startswith(OPTIMIZER_MODULES):
            owners = _parameter_owners(call.args[0] if call.args else keyword(call, "params"))
        else:
            continue
        if owners:
            found[name] = frozenset(owners)
    return found


# Pyro's stochastic variational inference: `svi.step(x, y)` steps the parameters of the module
# whose model and guide it was built over (`SVI(gp.model, gp.guide, optim, elbo)`)
_STOCHASTIC_INFERENCE = frozenset({"pyro.infer.SVI", "pyro.infer.svi.SVI"})


def _owners_of_model_and_guide(call: ast.Call) -> set[str]:
    given = call.args[:2] or [k.value for k in call.keywords if k.arg in ("model", "guide")]
    return {
        value.value.id
        for value in given
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name)
    }


def trained_modules(facts: NotebookFacts, kept: set[int] | None) -> list[TrainedModule]:
    """Each `optimizer.step()` in a kept cell, with the module it trains and what that module
    is called on in the same statement (the training loop)."""
    optimizers = optimized_modules(facts)
    trainers = _training_functions(facts)
    found: list[TrainedModule] = []
    for cell in facts.cells:
        if kept is not None and cell.number not in kept:
            continue
        for call in cell.calls:
            if call.in_display or call.method not in STEP_METHODS:
                continue
            loop = cell.statements[call.statement]
            if call.receiver not in optimizers or isinstance(loop, ast.FunctionDef):
                continue  # a step function's optimizer trains where the function is called
            fed = {
                module: _called_on(facts, loop, module, call.receiver)
                for module in optimizers[call.receiver]
            }
            # one optimizer over a model and its likelihood: the model is the one fed the data
            fed_data = {module: inputs for module, inputs in fed.items() if inputs} or fed
            found += [
                TrainedModule(module, call.receiver, cell.number, call.line, inputs)
                for module, inputs in sorted(fed_data.items())
            ]
        found += _trained_by_calls(facts, cell, trainers)
    return found


@dataclass(frozen=True)
class _Trainer:
    """A notebook function whose loop steps an optimizer over a module it is handed or reads
    (`def train(model, likelihood): ... optimizer.step()`)."""

    name: str
    parameters: tuple[str, ...]
    optimizer: str
    modules: tuple[str, ...]  # as the function names them: its parameters or globals
    loop: ast.stmt
    # the modules it builds itself and hands back: local name, where in what it returns
    # (None: it returns the module alone) and the call that builds it
    returned: tuple[tuple[str, int | None, ast.Call | None], ...] = ()
    # what it makes from its parameters alone (`Xt = torch.tensor(X, dtype=torch.float32)`)
    made: tuple[tuple[str, ast.Call], ...] = ()


def _training_functions(facts: NotebookFacts) -> list[_Trainer]:
    found = []
    notebook_optimizers = optimized_modules(facts)
    for cell in facts.cells:
        for statement in cell.statements:
            if not isinstance(statement, ast.FunctionDef):
                continue
            local = local_names(statement.body, None)
            optimizers = optimizers_in_function(facts, statement, notebook_optimizers)
            arguments = statement.args
            parameters = tuple(a.arg for a in [*arguments.posonlyargs, *arguments.args])
            # the loop that steps, or the function itself when it is one training step
            # (TensorFlow's `@tf.function def train_step(x, y)`, called in the notebook's loop)
            loops = [n for n in ast.walk(statement) if isinstance(n, ast.For | ast.While)]
            for loop in [*loops, statement]:
                stepped = next(
                    (
                        node.func.value.id
                        for node in ast.walk(loop)
                        if isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Attribute)
                        and node.func.attr in STEP_METHODS
                        and isinstance(node.func.value, ast.Name)
                        and (node.func.value.id in optimizers or node.func.value.id in parameters)
                    ),
                    None,
                )
                if stepped is not None:
                    # a module the function builds itself is gone when it returns, unless it
                    # returns it (its parameters are handed in); an optimizer handed in steps
                    # the modules of the notebook's optimizer the call hands it
                    held = optimizers.get(stepped, frozenset())
                    modules = tuple(sorted(held - local))
                    built = calls_bound_in(statement)
                    returned = tuple(
                        (name, place, built.get(name))
                        for name, place in sorted(_returned_locals(statement, held & local).items())
                    )
                    made = tuple(
                        (name, call)
                        for name, call in built.items()
                        if not (names_in(call) & local) - set(parameters)
                    )
                    found.append(
                        _Trainer(statement.name, parameters, stepped, modules, loop, returned, made)
                    )
                    break
    return found


def _returned_locals(function: ast.FunctionDef, built: Collection[str]) -> dict[str, int | None]:
    """Which of the modules a function builds it hands back, and where: `return model`
    (None), `return model, history` (0). Every return must agree, or none is trusted."""
    body = [node for statement in function.body for node in nodes_run_now(statement)]
    places = [_places(node) for node in body if isinstance(node, ast.Return)]  # not nested ones
    if not places:
        return {}
    first = places[0]
    return {
        name: first[name]
        for name in built
        if name in first and all(name in place and place[name] == first[name] for place in places)
    }


def _places(node: ast.Return) -> dict[str, int | None]:
    value = node.value
    if isinstance(value, ast.Tuple):
        return {item.id: i for i, item in enumerate(value.elts) if isinstance(item, ast.Name)}
    return {value.id: None} if isinstance(value, ast.Name) else {}


def _trained_by_calls(
    facts: NotebookFacts, cell: CellFacts, trainers: list[_Trainer]
) -> list[TrainedModule]:
    """`train(model, likelihood)` in a cell: the modules the function steps, as the call
    names them, trained where it is called (a default argument names nothing here)."""
    found: list[TrainedModule] = []
    notebook_optimizers = optimized_modules(facts)
    for trainer in trainers:
        for statement, display in zip(cell.statements, cell.display, strict=True):
            if display or isinstance(statement, ast.FunctionDef | ast.ClassDef):
                continue
            for call in ast.walk(statement):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                    continue
                if call.func.id != trainer.name:
                    continue
                given = _arguments(call, trainer.parameters)
                bound = {p: name for p, name in given.items() if name is not None}
                modules = trainer.modules
                if not modules and trainer.optimizer in bound:
                    # `train_one_epoch(net, loader, opt)`: the notebook's optimizer, handed in
                    modules = tuple(sorted(notebook_optimizers.get(bound[trainer.optimizer], ())))
                fed = {}
                for module in modules:
                    read = module if module not in trainer.parameters else None  # a global
                    argument = given.get(module, read)
                    if isinstance(argument, str):
                        # the module by its own name, or by a parameter the call binds to it
                        # (`def train_epoch(model, X)` stepping the notebook's optimizer)
                        names = [module] + [p for p in trainer.parameters if given.get(p) == module]
                        loop, stepper = trainer.loop, trainer.optimizer
                        called = [_called_on(facts, loop, name, stepper, bound) for name in names]
                        inputs = next((found for found in called if found), ())
                        handed = [_as_called(trainer, str(i), given) for i in inputs]
                        # a batch the notebook's own loop draws and hands to the step
                        fed[argument] = tuple(
                            _batched_from(facts, statement, str(i)) or str(i) for i in handed
                        )
                builds: dict[str, ast.Call] = {}
                for module, place, built in trainer.returned:
                    taken_as = _assigned_from(statement, call, place)
                    if taken_as is not None:
                        called = _called_on(facts, trainer.loop, module, trainer.optimizer, bound)
                        fed[taken_as] = tuple(_as_called(trainer, i, given) for i in called)
                        if built is not None:
                            builds[taken_as] = built
                fed_data = {module: inputs for module, inputs in fed.items() if inputs} or fed
                found += [
                    TrainedModule(
                        module,
                        f"{trainer.name}(...)",
                        cell.number,
                        call.lineno,
                        inputs,
                        builds.get(module),
                    )
                    for module, inputs in sorted(fed_data.items())
                ]
    return found


def _as_called(trainer: _Trainer, fed: str, given: Mapping[str, str | None]) -> str:
    """What a function feeds its module, as the call makes it: a parameter is what the call
    hands it (`X` -> `X_train_t`); a tensor made from its parameters alone (`Xt =
    torch.tensor(X, dtype=torch.float32)`) is that expression over the call's arguments."""
    argument = given.get(fed)
    if isinstance(argument, str):
        return argument
    made = dict(trainer.made).get(fed)
    if made is None:
        return fed
    used = names_in(made) & set(trainer.parameters)
    if not all(isinstance(given.get(name), str) for name in used):
        return fed  # a parameter the call leaves to its default, or hands an expression
    arguments: dict[str, ast.expr] = {name: ast.Name(str(given[name])) for name in used}
    return ast.unparse(_inlined(made, arguments))


def _assigned_from(statement: ast.stmt, call: ast.Call, place: int | None) -> str | None:
    """The notebook's name for what a call hands back at `place`: `net = fit(30)` (None),
    `net, losses = fit(30)` (0)."""
    if not (isinstance(statement, ast.Assign) and statement.value is call):
        return None
    target = statement.targets[-1]
    if place is None:
        return target.id if isinstance(target, ast.Name) else None
    items = target.elts if isinstance(target, ast.Tuple | ast.List) else []
    item = items[place] if place < len(items) else None
    return item.id if isinstance(item, ast.Name) else None


def _arguments(call: ast.Call, parameters: tuple[str, ...]) -> dict[str, str | None]:
    """Parameter -> the notebook name the call passes for it (None: not a plain name)."""
    given: dict[str, str | None] = {}
    positional = zip(parameters, call.args, strict=False)  # *args beyond the parameters: none
    pairs = [*positional, *((k.arg, k.value) for k in call.keywords if k.arg)]
    for parameter, value in pairs:
        given[parameter] = value.id if isinstance(value, ast.Name) else None
    return given


def module_calls(statement: ast.AST, module: str, *, predicts: bool = False) -> list[ast.Call]:
    """`model(x)`: the module called as a function, where its forward pass runs; with
    `predicts`, `model.predict(x)` too (a Keras network's batched forward pass)."""
    return [
        node
        for node in ast.walk(statement)
        if isinstance(node, ast.Call)
        and node.args
        and (
            (isinstance(node.func, ast.Name) and node.func.id == module)
            or (
                predicts
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "predict"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == module
            )
        )
    ]


def called_on_several_inputs(
    facts: NotebookFacts, kept: set[int], module: str
) -> tuple[int, int, str] | None:
    """Where the kept code calls the module on more than one tensor (`net(x_num, x_cat)`):
    the cell, the line and the call. A request is one table's records, one tensor."""
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.statements:
            for call in module_calls(statement, module):
                if len(call.args) > 1 and not any(isinstance(a, ast.Starred) for a in call.args):
                    return cell.number, call.lineno, ast.unparse(call)
    return None


_PARAMETER_METHODS = frozenset(
    {
        "parameters",
        "named_parameters",
        "hyperparameters",
        "named_hyperparameters",
        "variational_parameters",
    }
)


def _parameter_owners(given: ast.expr | None) -> set[str]:
    """`model.parameters()`, `list(a.parameters()) + list(b.parameters())`,
    `[{"params": model.parameters()}]`, GPyTorch's groups of them (`model.hyperparameters()`,
    `model.variational_parameters()`): the names whose parameters are handed over."""
    if given is None:
        return set()
    return {
        node.func.value.id
        for node in ast.walk(given)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _PARAMETER_METHODS
        and isinstance(node.func.value, ast.Name)
    }


def _called_on(
    facts: NotebookFacts,
    loop: ast.stmt,
    module: str,
    stepper: str | None = None,
    bound: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """What the loop feeds the module: its call's first argument (`model(x)`, or the tensor a
    batch is sliced from: `model(X[idx])`), or else what the stepper hands the module's model
    (`svi.step(x, y)`). In a function's loop, `bound` maps its parameters to what the call
    hands them (`loader` -> the notebook's `train_loader`). The module's calls in the loop
    that steps the optimizer come first: the batches it learns from, not the validation
    tensor an outer loop checks it on (`val_logits = net(X_val)` after the batch loop)."""
    stepping = _loop_stepping(loop, stepper)
    calls = module_calls(stepping, module)
    calls += [call for call in module_calls(loop, module) if call not in calls]
    fed = [call.args[0] for call in calls]
    fed += [
        node.args[0]
        for node in ast.walk(loop)
        if stepper is not None
        and isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "step"  # Pyro's svi.step(x, y) hands x to the module's model
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == stepper
        and node.args
    ]
    for given in fed:
        while isinstance(given, ast.Subscript):  # a batch sliced from it: `X[idx]`, `X[i:j]`
            given = given.value
        if isinstance(given, ast.Name):
            batch_source = _batched_from(facts, loop, given.id, bound)
            return (batch_source or given.id,)
        return (dotted_name(given) or ast.unparse(given),)
    return ()


def _loop_stepping(loop: ast.stmt, stepper: str | None) -> ast.stmt:
    """The innermost loop in `loop` (or `loop` itself) that calls `stepper.step()`."""
    if stepper is None:
        return loop
    innermost = loop
    for node in ast.walk(loop):
        if not isinstance(node, ast.For | ast.While) or node is loop:
            continue
        steps = any(
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in STEP_METHODS
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == stepper
            for call in ast.walk(node)
        )
        if steps:
            innermost = node  # ast.walk goes outward in: a deeper loop comes later
    return innermost


def _batched_from(
    facts: NotebookFacts, loop: ast.stmt, name: str, bound: Mapping[str, str] | None = None
) -> str | None:
    """`for xb, yb in loader:` over `DataLoader(TensorDataset(X_t, y_t), ...)`: the tensor a
    batch variable is drawn from (the first of the dataset's tensors for the first target);
    `bound`: a function's parameters, as the call binds them."""
    # `minibatch_iter = tqdm(train_loader)` in the loop's own body, before the inner loop
    local = calls_bound_in(loop)
    field = _field_read(local.get(name))
    if field is not None:  # `xb = batch["features"].to(device)`, rows of a Dataset's dicts
        for node in ast.walk(loop):
            if (
                isinstance(node, ast.For)
                and isinstance(node.target, ast.Name)
                and node.target.id == field[0]
            ):
                iterable = node.iter
                if bound and isinstance(iterable, ast.Name) and iterable.id in bound:
                    iterable = ast.Name(bound[iterable.id], ast.Load())
                fields = _dataset_fields(facts, iterable)
                if fields is not None and field[1] in fields:
                    return ast.unparse(fields[field[1]])
    for node in ast.walk(loop):
        if not isinstance(node, ast.For | ast.comprehension):
            continue
        targets = node.target.elts if isinstance(node.target, ast.Tuple) else [node.target]
        positions = [i for i, t in enumerate(targets) if isinstance(t, ast.Name) and t.id == name]
        iterable = node.iter
        if isinstance(iterable, ast.Name) and iterable.id in local:
            iterable = local[iterable.id]
        if not positions and _enumerated(facts, iterable) and len(targets) == 2:
            # `for i, (xb, yb) in enumerate(loader)`: the batch is the second item
            inner = targets[1]
            targets = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            positions = [
                i for i, t in enumerate(targets) if isinstance(t, ast.Name) and t.id == name
            ]
            iterable = _enumerated(facts, iterable)
        if not positions:
            continue
        if bound and isinstance(iterable, ast.Name) and iterable.id in bound:
            iterable = ast.Name(bound[iterable.id], ast.Load())
        tensors = _dataset_of(facts, iterable)
        if tensors is not None and positions[0] < len(tensors):
            tensor = tensors[positions[0]]
            return dotted_name(tensor) or ast.unparse(tensor)
    return None


def loader_tensor(facts: NotebookFacts, value: ast.expr) -> ast.expr | None:
    """The tensor behind a DataLoader over a TensorDataset (or `tf.data` slices) handed to a
    fit (`trainer.fit(train_loader)`): the features a request holds, as its first batch item."""
    tensors = _dataset_of(facts, value)
    return tensors[0] if tensors else None


def _enumerated(facts: NotebookFacts, iterable: ast.expr) -> ast.expr | None:
    """What `enumerate(loader)` numbers, seen through a progress bar."""
    built = _built(facts, _passed_through(facts, iterable))
    if built is not None and _resolved(facts, built) == "enumerate" and built.args:
        return built.args[0]
    return None


def _passed_through(facts: NotebookFacts, iterable: ast.expr) -> ast.expr:
    """The iterable a progress bar or `iter()` wraps (`tqdm(train_loader, desc=...)`, also
    bound to a name first): it yields the same batches."""
    seen: set[int] = set()
    built = _built(facts, iterable)
    while built is not None and id(built) not in seen and built.args:
        seen.add(id(built))
        if not _PASSING_THROUGH.match(_resolved(facts, built)):
            break
        iterable = built.args[0]
        built = _built(facts, iterable)
    return iterable


_PASSING_THROUGH = re.compile(
    r"^(iter|tqdm(\.(auto|autonotebook|notebook|std|rich))?\.(tqdm|tqdm_notebook))$"
)


def _dataset_of(facts: NotebookFacts, iterable: ast.expr) -> list[ast.expr] | None:
    """The tensors a loop's batches are drawn from, in the order a batch holds them."""
    iterable = _passed_through(facts, iterable)
    sliced = _tensor_slices(facts, iterable)
    if sliced is not None:
        return sliced
    dataset = _dataset_call(facts, iterable)
    if dataset is None:
        return None
    if _resolved(facts, dataset) in _DATASETS:
        return list(dataset.args)
    rows = _rows_of_dataset_class(facts, dataset)
    return rows if isinstance(rows, list) else None


def _dataset_call(facts: NotebookFacts, iterable: ast.expr) -> ast.Call | None:
    """`TensorDataset(X_t, y_t)` or `DS(X, y)` in the DataLoader a loop draws from (built in
    a cell or returned by a notebook function: `make_loader(X_train, y_train)`)."""
    loader = _built(facts, _passed_through(facts, iterable))
    if loader is not None and _resolved(facts, loader) not in _DATA_LOADERS:
        loader = _function_result(facts, loader)
    if loader is None or _resolved(facts, loader) not in _DATA_LOADERS:
        return None
    given = loader.args[0] if loader.args else keyword(loader, "dataset")
    return _built(facts, given) if given is not None else None


def _dataset_fields(facts: NotebookFacts, iterable: ast.expr) -> dict[str, ast.expr] | None:
    """The tensors behind each field of a batch drawn from a notebook Dataset whose rows are
    dicts (`return {"features": self.X[i], "target": self.y[i]}`)."""
    dataset = _dataset_call(facts, iterable)
    rows = _rows_of_dataset_class(facts, dataset) if dataset is not None else None
    return rows if isinstance(rows, dict) else None


def _field_read(value: ast.expr | None) -> tuple[str, str] | None:
    """`batch["features"].to(device)`, `batch["x"].float()`: the batch's name and the field."""
    while (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in _MOVES
    ):
        value = value.func.value
    if (
        isinstance(value, ast.Subscript)
        and isinstance(value.value, ast.Name)
        and isinstance(value.slice, ast.Constant)
        and isinstance(value.slice.value, str)
    ):
        return value.value.id, value.slice.value
    return None


_MOVES = frozenset({"to", "float", "cuda", "cpu", "double", "long"})


def _rows_of_dataset_class(
    facts: NotebookFacts, dataset: ast.Call
) -> list[ast.expr] | dict[str, ast.expr] | None:
    """`DS(X_train, y_train)` of a notebook Dataset class whose `__getitem__` returns
    `self.X[i], self.y[i]` (perhaps as `torch.tensor(self.X[i])`, or as a dict of them), with
    `self.X = torch.tensor(X)` set in `__init__`: the tensors a batch is drawn from, as the
    call's arguments make them. Anything else a row is made by (a reshape, a file read) is
    not followed."""
    definition = (
        _class_named(facts, dataset.func.id) if isinstance(dataset.func, ast.Name) else None
    )
    if definition is None:
        return None
    methods = {m.name: m for m in definition.body if isinstance(m, ast.FunctionDef)}
    init, get_item = methods.get("__init__"), methods.get("__getitem__")
    if init is None or get_item is None or len(get_item.args.args) != 2:
        return None
    index = get_item.args.args[1].arg
    returned = _return_value(get_item)
    items: list[ast.expr] | None = None
    keys: list[str] | None = None
    if isinstance(returned, ast.Tuple):
        items = returned.elts
    elif isinstance(returned, ast.Dict) and all(
        isinstance(k, ast.Constant) and isinstance(k.value, str) for k in returned.keys
    ):
        items = returned.values
        keys = [k.value for k in returned.keys]  # type: ignore[union-attr]
    parameters = [a.arg for a in init.args.args[1:]]
    given = dict(zip(parameters, dataset.args, strict=False))
    given |= {k.arg: k.value for k in dataset.keywords if k.arg}
    if items is None or any(name not in given for name in parameters):
        return None
    attributes: dict[str, ast.expr] = {}  # `self.X = torch.tensor(X)`, with the call's values
    for statement in ast.walk(init):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Attribute) and dotted_name(target.value) == "self":
                attributes[target.attr] = _inlined(statement.value, given)
    rows = [_whole_column(item, index, attributes) for item in items]
    if any(row is None for row in rows):
        return None
    whole = [row for row in rows if row is not None]
    return dict(zip(keys, whole, strict=True)) if keys is not None else whole


_ROW_CONVERSIONS = frozenset({"tensor", "as_tensor", "from_numpy", "FloatTensor", "float"})


def _whole_column(item: ast.expr, index: str, attributes: dict[str, ast.expr]) -> ast.expr | None:
    """`self.X[i]` (or `torch.tensor(self.X[i], dtype=...)`, `self.X[i].float()`) as the whole
    of what `self.X` holds, converted the same way: a conversion of each row is one of the
    whole."""
    if (
        isinstance(item, ast.Subscript)
        and isinstance(item.slice, ast.Name)
        and item.slice.id == index
        and isinstance(item.value, ast.Attribute)
        and dotted_name(item.value.value) == "self"
    ):
        return attributes.get(item.value.attr)
    if not (isinstance(item, ast.Call) and isinstance(item.func, ast.Name | ast.Attribute)):
        return None
    name = item.func.id if isinstance(item.func, ast.Name) else item.func.attr
    if name not in _ROW_CONVERSIONS:
        return None
    if isinstance(item.func, ast.Attribute) and not item.args and name == "float":
        inner = _whole_column(item.func.value, index, attributes)  # `self.X[i].float()`
        return None if inner is None else ast.Call(ast.Attribute(inner, "float"), [], [])
    if len(item.args) != 1:
        return None
    inner = _whole_column(item.args[0], index, attributes)
    return None if inner is None else ast.Call(item.func, [inner], item.keywords)


def _function_result(facts: NotebookFacts, call: ast.Call) -> ast.Call | None:
    """The call a notebook function returns (`return DataLoader(ds, batch_size=...)`), its
    local names (`ds = TensorDataset(torch.from_numpy(X), ...)`) and parameters written as
    this call of it gives them."""
    made = _returned(call, _returning_functions(facts), with_locals=True)
    return made if isinstance(made, ast.Call) and made is not call else None


def _tensor_slices(facts: NotebookFacts, iterable: ast.expr) -> list[ast.expr] | None:
    """`tf.data.Dataset.from_tensor_slices((X, y)).shuffle(256).batch(32)`: X and y (the
    methods chained after it batch, shuffle or repeat the same rows)."""
    built = _built(facts, iterable)
    seen: set[int] = set()  # `X = X.reshape(-1, 1)` names the call it is bound to
    while isinstance(built, ast.Call) and id(built) not in seen:
        seen.add(id(built))
        if _resolved(facts, built) in _TENSOR_SLICES and built.args:
            given = built.args[0]
            return list(given.elts) if isinstance(given, ast.Tuple | ast.List) else [given]
        receiver = built.func.value if isinstance(built.func, ast.Attribute) else None
        built = _built(facts, receiver) if receiver is not None else None
    return None


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
    predicts: bool = False,
    metric_lines: Collection[tuple[int, int]] = (),
) -> ModuleOutput | None:
    """`predicted = (torch.sigmoid(model(X_test_t)) > 0.5).int()`, or `outputs = model(X)`
    then `predicted = outputs.argmax(dim=1)`: the first value made from the module's output
    alone (modules and the output, no other notebook name) that a metric reads (`measured`).

    A module that answers with a distribution (`distribution`, a Gaussian process) is read
    through the first prediction the notebook makes from it, metric or not
    (`observed_pred = likelihood(model(test_x))`), and answers with that prediction's mean;
    failing that, with the mean of the first `pred = model(test_x)` outside a loop.

    With `predicts`, the output may also be `model.predict(X)`'s (a Keras network). An
    argument of a call on a metric's line (`metric_lines`: cell, line) counts as a value a
    metric reads: `accuracy_score(y_test, model.predict(X_test).argmax(1))`.
    """
    objects = _module_objects(facts) - {module}
    raw: dict[str, ast.expr] = {}  # names bound to the module's bare output
    made: dict[str, ast.expr] = {}  # names bound to a value made from its output alone
    bare: ModuleOutput | None = None  # a distribution's first bare prediction, out of loops
    predictors = _returning_functions(facts)
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        shown = [s for s, display in zip(cell.statements, cell.display, strict=True) if display]
        for statement in (s for s in cell.statements if s not in shown):
            looped = {
                id(inner)
                for loop in ast.walk(statement)
                if isinstance(loop, ast.For | ast.While)
                for inner in ast.walk(loop)
            }
            for node, target, value in _bindings(statement):
                value = _inlined(_calls_returned(value, predictors), {**raw, **made})
                calls = module_calls(value, module, predicts=predicts)
                uses = _other_modules(facts, value, calls[0], objects) if calls else None
                if len(calls) != 1 or uses is None or isinstance(node, ast.AugAssign):
                    raw.pop(target.id, None)
                    made.pop(target.id, None)
                    compared = None
                    # a distribution's prediction, metric or not: `(likelihood(model(x)).probs
                    # > 0.5) == y` answers with the classes it compares
                    if target.id in measured or distribution:
                        compared = _compared(facts, value, module, made, objects, predicts)
                    if compared is not None:
                        side, served, uses = compared
                        where = (cell.number, node.lineno)
                        return ModuleOutput(ast.unparse(served), side, *where, tuple(uses))
                    continue
                made[target.id] = value
                if value is calls[0]:
                    raw[target.id] = value
                    if distribution and bare is None and id(node) not in looped:
                        # `pred = model(test_x)` (a training loop's `output = model(x)` is not)
                        mean = ast.Attribute(_fed(value, calls[0]), "mean", ast.Load())
                        where = (cell.number, node.lineno)
                        bare = ModuleOutput(ast.unparse(mean), target.id, *where, tuple(uses))
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
            lines = {line for number, line in metric_lines if number == cell.number}
            for argument in [] if distribution else _arguments_on(statement, lines):
                value = _inlined(argument, {**raw, **made})
                calls = module_calls(value, module, predicts=predicts)
                uses = _other_modules(facts, value, calls[0], objects) if calls else None
                if len(calls) == 1 and uses is not None:
                    served = _as_tensor(_fed(value, calls[0]))
                    where = (cell.number, argument.lineno)
                    return ModuleOutput(ast.unparse(served), ast.unparse(argument), *where, ())
    return bare  # the mean of the model's own prediction, when no likelihood reads it


def _arguments_on(statement: ast.stmt, lines: set[int]) -> list[ast.expr]:
    """The arguments of the calls the statement makes on `lines`, in order."""
    calls = [
        node for node in ast.walk(statement) if isinstance(node, ast.Call) and node.lineno in lines
    ]
    calls.sort(key=lambda call: (call.lineno, call.col_offset))
    return [
        argument
        for call in calls
        for argument in [*call.args, *(k.value for k in call.keywords)]
        if not isinstance(argument, ast.Starred)
    ]


def _bindings(statement: ast.stmt) -> Iterator[tuple[ast.stmt, ast.Name, ast.expr]]:
    """Each name the statement binds to a value, and the value: `_, predicted = torch.max(out,
    1)` binds `predicted` to `torch.max(out, 1)[1]`; `correct += ...` binds `correct` to what
    it adds."""
    for node in ast.walk(statement):
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            yield node, node.target, node.value
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name):
            yield node, target, node.value
        elif isinstance(target, ast.Tuple) and not isinstance(node.value, ast.Tuple | ast.List):
            for index, element in enumerate(target.elts):
                if isinstance(element, ast.Name) and element.id != "_":
                    yield node, element, ast.Subscript(node.value, ast.Constant(index), ast.Load())


def _compared(
    facts: NotebookFacts,
    value: ast.expr,
    module: str,
    made: dict[str, ast.expr],
    objects: set[str],
    predicts: bool,
) -> tuple[str, ast.expr, set[str]] | None:
    """In `(predicted == labels).sum()`, the side made from the module's output alone: its
    name in the notebook, what the service answers (in terms of `model(inputs)`), and the
    other modules it reads."""
    for node in ast.walk(value):
        if not (isinstance(node, ast.Compare) and [type(op) for op in node.ops] == [ast.Eq]):
            continue
        for side in (node.left, node.comparators[0]):
            expression = made.get(side.id, side) if isinstance(side, ast.Name) else side
            calls = module_calls(expression, module, predicts=predicts)
            if len(calls) != 1:
                continue
            uses = _other_modules(facts, expression, calls[0], objects)
            if uses is not None:
                return ast.unparse(side), _as_tensor(_fed(expression, calls[0])), uses
    return None


def _returning_functions(facts: NotebookFacts) -> dict[str, ast.FunctionDef]:
    """Notebook functions that end by returning a value (`def predict(model, likelihood):
    ... return likelihood(model(test_x))`), by name."""
    return {
        statement.name: statement
        for cell in facts.cells
        for statement in cell.statements
        if isinstance(statement, ast.FunctionDef)
        and statement.body
        and isinstance(statement.body[-1], ast.Return | ast.With)
        and _return_value(statement) is not None
    }


def _return_value(function: ast.FunctionDef) -> ast.expr | None:
    """The value of the function's one return statement, which may sit in a `with` block."""
    returns = [node for node in ast.walk(function) if isinstance(node, ast.Return)]
    return returns[0].value if len(returns) == 1 else None


def _returned(
    value: ast.expr,
    functions: dict[str, ast.FunctionDef],
    *,
    with_locals: bool = False,
) -> ast.expr:
    """`predict(model, likelihood)` as what it returns, with the call's arguments (or the
    parameters' defaults) in place of the parameters; with `with_locals`, the function's own
    names too, as its assignments bind them (`ds = TensorDataset(...)`, then `return
    DataLoader(ds)`); any other value as it is."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)):
        return value
    function = functions.get(value.func.id)
    returned = _return_value(function) if function is not None else None
    if function is None or returned is None:
        return value
    arguments = function.args
    parameters = [a.arg for a in [*arguments.posonlyargs, *arguments.args]]
    defaults = dict(zip(reversed(parameters), reversed(arguments.defaults), strict=False))
    given: dict[str, ast.expr] = {**defaults, **dict(zip(parameters, value.args, strict=False))}
    given |= {k.arg: k.value for k in value.keywords if k.arg}
    if any(name not in given for name in parameters):
        return value
    if with_locals:
        local: dict[str, ast.expr] = {}
        for statement in function.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Name) and target.id not in parameters:
                    local[target.id] = _inlined(statement.value, local)
        returned = _inlined(returned, local)

    class Bind(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return _copy(given[node.id]) if node.id in given else node

    return Bind().visit(_copy(returned))


def _calls_returned(value: ast.expr, functions: dict[str, ast.FunctionDef]) -> ast.expr:
    """`predict(model, X_test).numpy()` as `model(X_test).argmax(1).numpy()`: each call of a
    notebook function within the value read as what it returns (see _returned)."""

    class Returned(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            return _returned(node, functions)

    return Returned().visit(_copy(value))


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
        own_part = isinstance(node.func, ast.Attribute) and root_name(node.func) == "model"
        if not (own_part or (isinstance(node.func, ast.Name) and node.func.id in objects)):
            return None
        node = node.args[0]
    return None


def _inlined(value: ast.expr, raw: dict[str, ast.expr]) -> ast.expr:
    """The expression with the names `raw` knows read as their values: `outputs.argmax(1)`
    with `outputs = model(X)` known is `model(X).argmax(1)` (and so on through the names bound
    to values made from the output alone); a function's `torch.tensor(X)` with its parameter
    `X` handed `X_train` is `torch.tensor(X_train)`."""

    class Inline(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return raw.get(node.id, node) if isinstance(node.ctx, ast.Load) else node

    return Inline().visit(_copy(value))


def _fed(value: ast.expr, call: ast.Call) -> ast.expr:
    """The expression with the module fed `inputs` instead of the notebook's tensor."""
    target = ast.unparse(call)
    module = root_name(call.func)
    fed: ast.expr = ast.Name("model", ast.Load())
    if isinstance(call.func, ast.Attribute):  # `network.predict(X)`
        fed = ast.Attribute(fed, call.func.attr, ast.Load())

    class Feed(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            if ast.unparse(node) == target:
                return ast.Call(fed, [ast.Name(MODULE_INPUT)], [])
            self.generic_visit(node)
            return node

        def visit_Name(self, node: ast.Name) -> ast.AST:
            # the module's own parts (`gp.likelihood`) as `answer` receives it: `model`
            return ast.Name("model", node.ctx) if node.id == module else node

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
    itself = {call.func.id} if isinstance(call.func, ast.Name) else set()  # `gp.likelihood`
    others = read - free - itself
    return others if others <= objects else None


def _copy(node: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(node), mode="eval").body


def trained_module_names(facts: NotebookFacts, kept: set[int]) -> frozenset[str]:
    return frozenset(module.name for module in trained_modules(facts, kept))


def drawing_initial_weights(
    facts: NotebookFacts, modules: Collection[TrainedModule]
) -> frozenset[str]:
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
    for module in modules:
        name = module.name
        built = module.built_by or facts.constructor_calls.get(name)
        trees: list[ast.AST] = [built] if built is not None else []
        built_as = module_class(facts, module)
        if built_as in classes:
            trees.append(classes[built_as])
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
    definition = _class_named(facts, qualified)
    return _distribution_of_class(facts, definition) if definition is not None else None


def _class_named(facts: NotebookFacts, name: str) -> ast.ClassDef | None:
    """The notebook's first definition of class `name`."""
    return next(
        (
            statement
            for cell in facts.cells
            for statement in cell.statements
            if isinstance(statement, ast.ClassDef) and statement.name == name
        ),
        None,
    )


def batch_rows(expression: str) -> str:
    """A batch of processes' inputs (`train_x` of (processes, rows, features), or one
    (rows, features) shared) as rows of their features: each process answers at every row."""
    node = ast.parse(expression, mode="eval").body
    held = (
        expression
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript)
        else f"({expression})"
    )
    return f"{held}.reshape(-1, {held}.shape[-1])"


def batch_of_processes(facts: NotebookFacts, qualified: str) -> tuple[int, int, str] | None:
    """Where a notebook GP class is made a batch of processes: its means or kernels take
    `batch_shape=` and its forward pass returns one plain MultivariateNormal, so each input
    answers once per process (4 rows for 1), not once. Batches turned into tasks
    (`MultitaskMultivariateNormal.from_batch_mvn`, a multitask variational strategy) answer
    once per row and are not one."""
    for cell in facts.cells:
        for statement in cell.statements:
            if not (isinstance(statement, ast.ClassDef) and statement.name == qualified):
                continue
            batched = next(
                (
                    keyword
                    for node in ast.walk(statement)
                    if isinstance(node, ast.Call)
                    for keyword in node.keywords
                    if keyword.arg == "batch_shape"
                ),
                None,
            )
            returns = {
                facts.aliases.resolve(dotted_name(node.value.func) or "").rsplit(".", 1)[-1]
                for node in ast.walk(statement)
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Call)
            }
            # a multitask variational strategy (LMC, independent) makes the batch into tasks
            as_tasks = any(
                isinstance(node, ast.Call)
                and re.search(r"Multitask|LMC", dotted_name(node.func) or "")
                for node in ast.walk(statement)
            )
            if batched is not None and returns == {"MultivariateNormal"} and not as_tasks:
                return cell.number, batched.lineno, ast.unparse(batched)
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
