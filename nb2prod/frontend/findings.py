"""Findings a reviewer must see before trusting a conversion.

Hidden state (cells run out of order), unseeded randomness in training or splitting, seeded
random draws the package drops from the middle of the stream it keeps, and absolute local
paths. Secrets and the def-use findings live beside the analyses that find
them (`secrets.py`, `dataflow.py`).
"""

from __future__ import annotations

import ast
import inspect
import re

from nb2prod.frontend.facts import CallSite, NotebookFacts
from nb2prod.frontend.installed import (
    installed_draws_from_numpy,
    installed_has,
    installed_signature,
)
from nb2prod.frontend.pysyntax import dotted_name, keyword, nodes_run_now
from nb2prod.frontend.vocabulary import (
    NUMPY_GLOBAL_RANDOM,
    PYTHON_RANDOM,
    RANDOM_STATE_ESTIMATORS,
    SHUFFLING_SPLITTERS,
    SPLIT_FUNCTIONS,
    TORCH_GLOBAL_RANDOM,
    TORCH_SEEDS,
)
from nb2prod.plan import Finding

_ABSOLUTE_PATH = re.compile(
    r"^(/(home|Users|root|mnt|media|data|srv|opt|var|tmp|Volumes|workspace|content|dbfs)/"
    r"|[A-Za-z]:[\\/]|~[\\/]|\\\\[\w.-]+\\)"
)
_SEED_HINT = "pass random_state=... (a parameter) so a re-run gives the same model"
_TORCH_SEED_HINT = "call torch.manual_seed(...) before it, so a re-run gives the same model"


def execution_order_findings(facts: NotebookFacts) -> list[Finding]:
    """Cells whose outputs came from a run in another order than the file shows."""
    counts = [(c.number, c.cell.execution_count) for c in facts.cells]
    counts = [(number, count) for number, count in counts if isinstance(count, int)]
    lowest_below: list[tuple[int, int] | None] = [None] * len(counts)
    lowest: tuple[int, int] | None = None  # (count, cell) of the earliest-run cell below
    for index in range(len(counts) - 1, -1, -1):
        lowest_below[index] = lowest
        number, count = counts[index]
        if lowest is None or count < lowest[0]:
            lowest = (count, number)
    findings = []
    for (number, count), below in zip(counts, lowest_below, strict=True):
        if below is not None and below[0] < count:
            its_count, cell_below = below
            findings.append(
                Finding(
                    "hidden-state",
                    "warning",
                    f"cell {number} [{count}] was run after cell {cell_below} "
                    f"[{its_count}] below it: the saved outputs do not come from a "
                    "top-to-bottom run",
                    number,
                    None,
                    "restart the kernel and run all cells, then check the results still hold",
                )
            )
    return findings


def randomness_findings(
    facts: NotebookFacts,
    kept: set[int],
    modules: frozenset[str] = frozenset(),
    networks: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Unseeded draws in kept code; `modules` are the PyTorch modules the notebook trains,
    whose weights start from torch's global generator, `networks` its Keras networks, whose
    weights start from Keras's own (seeded by keras.utils.set_random_seed alone)."""
    findings: list[Finding] = []
    numpy_seeded = python_seeded = torch_seeded = keras_seeded = False
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for call in cell.calls:
            if call.in_display:
                continue
            qualified = call.qualified
            if qualified == "numpy.random.seed":
                numpy_seeded = True
            elif qualified == "random.seed":
                python_seeded = True
            elif qualified in TORCH_SEEDS:
                torch_seeded = True
            if qualified in KERAS_SEEDS:  # Python's and numpy's too
                keras_seeded = numpy_seeded = python_seeded = True
            hint = _SEED_HINT
            message = _unseeded(call.node, qualified, numpy_seeded, python_seeded)
            if not message and not torch_seeded:
                message = _unseeded_torch(call, qualified, modules) or _sampled(facts, call)
                hint = _TORCH_SEED_HINT
            if not message and not keras_seeded:
                message, hint = _unseeded_network(call, qualified, networks), _KERAS_SEED_HINT
            if message:
                findings.append(
                    Finding("unseeded-random", "warning", message, cell.number, call.line, hint)
                )
    return findings


def _seeded_by_keyword(node: ast.Call) -> bool:
    """`random_state=`, `seed=`, or CatBoost's `random_seed=` (its alias of random_state);
    `**params` may hold one (`LGBMClassifier(**params)` with `params["random_state"]`), so
    the call is not said to be unseeded."""
    return any(keyword(node, name) is not None for name in SEED_KEYWORDS) or any(
        option.arg is None for option in node.keywords
    )


SEED_KEYWORDS = ("random_state", "seed", "random_seed")


def _unseeded(
    node: ast.Call, qualified: str, numpy_seeded: bool, python_seeded: bool
) -> str | None:
    name = qualified.rsplit(".", 1)[-1]
    # numpy's global generator, seeded before: a re-run draws the same (scikit-learn's
    # random_state=None is that generator)
    has_state = _seeded_by_keyword(node) or (numpy_seeded and qualified.startswith("sklearn."))
    if qualified in SPLIT_FUNCTIONS:
        shuffle = keyword(node, "shuffle")
        if not has_state and not (isinstance(shuffle, ast.Constant) and shuffle.value is False):
            return f"{name}(...) shuffles without random_state: each run splits differently"
    elif RANDOM_STATE_ESTIMATORS.match(qualified):
        if not has_state:
            return f"{name}(...) has no random_state: each run trains a different model"
    elif SHUFFLING_SPLITTERS.match(qualified):
        shuffle = keyword(node, "shuffle")
        if isinstance(shuffle, ast.Constant) and shuffle.value is True and not has_state:
            return f"{name}(shuffle=True) has no random_state: folds change on every run"
    elif qualified == "numpy.random.default_rng":
        if not node.args and not node.keywords:
            return "numpy.random.default_rng() has no seed: the data changes on every run"
    elif NUMPY_GLOBAL_RANDOM.match(qualified) and not numpy_seeded:
        return f"{qualified}(...) draws from numpy's global generator, never seeded"
    elif not numpy_seeded and not has_state and _random_state_left_unset(qualified, node):
        return (
            f"{name}(...) leaves random_state unset, so it draws from numpy's global generator, "
            "never seeded: each run gives a different result"
        )
    elif PYTHON_RANDOM.match(qualified) and not python_seeded:
        return f"{qualified}(...) draws from Python's random module, never seeded"
    return None


def _unseeded_torch(call: CallSite, qualified: str, modules: frozenset[str]) -> str | None:
    if TORCH_GLOBAL_RANDOM.match(qualified):
        return f"{qualified}(...) draws from torch's global generator, never seeded"
    return _random_start(call, qualified, modules, "parameters drawn from torch's global generator")


def _unseeded_network(call: CallSite, qualified: str, networks: frozenset[str]) -> str | None:
    return _random_start(call, qualified, networks, "weights Keras draws")


def _random_start(call: CallSite, qualified: str, models: frozenset[str], drawn: str) -> str | None:
    """`model = Net(...)`: one of `models`, built whole, starting from `drawn` values."""
    trained = [name for name in call.assigned_to if name in models]
    if trained and call.assigned_whole:
        return (
            f"{trained[0]} = {qualified.rsplit('.', 1)[-1]}(...) starts from {drawn}, never "
            "seeded: each run trains a different model"
        )
    return None


# Python's, numpy's, the backend's and Keras's own generators (tf.keras is Keras 3)
KERAS_SEEDS = frozenset({"keras.utils.set_random_seed", "tensorflow.keras.utils.set_random_seed"})
_KERAS_SEED_HINT = (
    "call keras.utils.set_random_seed(...) before it, so a re-run gives the same model"
)


def _sampled(facts: NotebookFacts, call: CallSite) -> str | None:
    """`pyro.distributions.Poisson(rate).sample()`, `normal.rsample((3,))` with `normal` a
    torch distribution: a draw from torch's global generator (Pyro's distributions are
    torch's)."""
    if call.method not in _SAMPLING or not isinstance(call.node.func, ast.Attribute):
        return None
    receiver = call.node.func.value
    if isinstance(receiver, ast.Call):
        built = facts.aliases.resolve(dotted_name(receiver.func) or "")
    else:
        built = facts.constructors.get(dotted_name(receiver) or "", "")
    if not built.startswith(_DISTRIBUTIONS):
        return None
    short = built.rsplit(".", 1)[-1]
    return f"{short}(...).{call.method}() draws from torch's global generator, never seeded"


_SAMPLING = frozenset({"sample", "rsample", "sample_n"})
_DISTRIBUTIONS = ("torch.distributions.", "pyro.distributions.")

_GENERATORS = {"numpy": "numpy's global generator", "python": "Python's random module"}


def dropped_draw_findings(facts: NotebookFacts, kept: set[int]) -> list[Finding]:
    """Code the package drops that draws from a seeded global generator before code it keeps
    draws from it again: the notebook's later draws come further down the seeded stream than
    the package's, so the package's data or model differ from the notebook's (a data set
    generated only to be shown, then the training data from the same seed)."""
    drawing = drawing_functions(facts)
    seeded: dict[str, int] = {}  # generator -> the cell that seeded it, in kept code
    skipped: dict[str, list[tuple[int, int, str]]] = {}  # dropped draws since: cell, line, what
    findings = []
    for cell in facts.cells:
        for index, statement in enumerate(cell.statements):
            keeps = cell.number in kept and not cell.display[index] and index not in cell.sliced
            for generator, what, line in global_draws(statement, facts, drawing):
                if what == "seed":
                    if keeps:
                        seeded[generator], skipped[generator] = cell.number, []
                    continue
                if generator not in seeded:
                    continue
                if not keeps:
                    skipped[generator].append((cell.number, line, what))
                    continue
                for number, at, drew in skipped[generator]:
                    findings.append(
                        Finding(
                            "dropped-random-draw",
                            "warning",
                            f"{drew} draws from {_GENERATORS[generator]}, seeded in cell "
                            f"{seeded[generator]}, and the package drops it: {what} in cell "
                            f"{cell.number} then draws other numbers than in the notebook",
                            number,
                            at,
                            "give the kept draws a generator of their own "
                            "(numpy.random.default_rng(seed), random_state=seed)",
                        )
                    )
                skipped[generator] = []
    return findings


def global_draws(statement: ast.stmt, facts: NotebookFacts, drawing: dict[str, str]):
    """(generator, what, line) for each call the statement runs now that seeds or draws from
    a global generator; `what` is "seed" for a seeding."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return  # runs when called
    for node in nodes_run_now(statement):
        if isinstance(node, ast.Call) and (found := call_draws(node, facts, drawing)):
            yield *found, node.lineno


def call_draws(
    node: ast.Call, facts: NotebookFacts, drawing: dict[str, str]
) -> tuple[str, str] | None:
    """(generator, what) when the call itself seeds or draws from a global generator."""
    callee = dotted_name(node.func)
    qualified = _drawing_method(node.func, facts) or (
        facts.aliases.resolve(callee) if callee is not None else None
    )
    if qualified is None:
        return None
    if qualified in ("numpy.random.seed", "random.seed"):
        return ("numpy" if qualified.startswith("numpy") else "python"), "seed"
    if callee in drawing:
        return drawing[callee], f"{callee}(...)"
    if generator := _generator(node, qualified):
        return generator, f"{qualified}(...)"
    return None


def _generator(node: ast.Call, qualified: str) -> str | None:
    if NUMPY_GLOBAL_RANDOM.match(qualified):
        return "numpy"
    if PYTHON_RANDOM.match(qualified):
        return "python"
    has_state = _seeded_by_keyword(node)
    if not has_state and _random_state_left_unset(qualified, node):
        return "numpy"
    if (
        not has_state
        and _MAY_DRAW.search(qualified.rpartition(".")[2])
        and installed_draws_from_numpy(qualified)
    ):
        return "numpy"
    return None


# Names of library calls worth reading the source of: one that draws says so in its name.
_MAY_DRAW = re.compile(r"sampl|rvs|simulat|random|noise|shuffl|permut|bootstrap|draw|jitter", re.I)


def _drawing_method(func: ast.expr, facts: NotebookFacts) -> str | None:
    """A method named like a draw, named by the class its object was built with: on a
    variable (`arma.generate_sample` after `arma = ArmaProcess(...)`), on the object just
    built (`ArmaProcess(ar, ma).generate_sample(50)`), or pandas' DataFrame's on a table
    pandas made (`df.sample(5)` after `df = pd.read_csv(...)`)."""
    if not isinstance(func, ast.Attribute) or not _MAY_DRAW.search(func.attr):
        return None
    receiver = func.value
    if isinstance(receiver, ast.Name):
        built = facts.constructors.get(receiver.id)
    elif isinstance(receiver, ast.Call) and (made := dotted_name(receiver.func)) is not None:
        built = facts.aliases.resolve(made)
    else:
        return None
    if built is None:
        return None
    if installed_has(built, func.attr):
        return f"{built}.{func.attr}"
    if built.startswith("pandas.") and isinstance(receiver, ast.Name):
        return f"pandas.DataFrame.{func.attr}"
    return None


def drawing_functions(facts: NotebookFacts) -> dict[str, str]:
    """The notebook's own functions that draw from a global generator when called, directly
    or through another of them: name -> generator."""
    bodies = {
        statement.name: statement
        for cell in facts.cells
        for statement in cell.statements
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    drawing: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, body in bodies.items():
            if name in drawing:
                continue
            for node in ast.walk(body):
                if not isinstance(node, ast.Call) or (callee := dotted_name(node.func)) is None:
                    continue
                qualified = _drawing_method(node.func, facts) or facts.aliases.resolve(callee)
                generator = drawing.get(callee) or (
                    None if callee in bodies else _generator(node, qualified)
                )
                if generator:
                    drawing[name], changed = generator, True
                    break
    return drawing


def absolute_path_findings(facts: NotebookFacts, kept: set[int]) -> list[Finding]:
    findings = []
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            for node in ast.walk(statement):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and _ABSOLUTE_PATH.match(node.value)
                ):
                    findings.append(
                        Finding(
                            "absolute-path",
                            "warning",
                            f"absolute local path {node.value[:80]!r} will not exist where "
                            "the pipeline runs",
                            cell.number,
                            node.lineno,
                            "make it a parameter, or a path relative to the project",
                        )
                    )
    return findings


def _random_state_left_unset(qualified: str, node: ast.Call) -> bool:
    """A library call whose `random_state` defaults to None (numpy's global generator), as the
    installed library declares it, called without one: a model, a splitter, a data generator."""
    if "." not in qualified or qualified.startswith("?"):
        return False
    signature = installed_signature(qualified)
    if not isinstance(signature, inspect.Signature):
        return False
    names = list(signature.parameters)
    if "random_state" not in names or signature.parameters["random_state"].default is not None:
        return False
    if any(k.arg is None for k in node.keywords) or any(
        isinstance(a, ast.Starred) for a in node.args
    ):
        return False  # **options or *values: may carry it
    return len(node.args) <= names.index("random_state") - (names[0] == "self")
