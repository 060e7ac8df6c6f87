"""Keras 3 networks: which objects are one, and which backend the package runs them on.

Keras 3 runs on TensorFlow, JAX or PyTorch, chosen by ``KERAS_BACKEND`` before ``import
keras`` (TensorFlow when unset). A notebook that sets it keeps its choice; one that imports
TensorFlow (`tf.keras`, a `tf.GradientTape` loop) runs on TensorFlow; one that leaves it to
Keras runs on the first backend installed here, in Keras's own order of preference, and a
finding says so. Either way the generated package sets the variable where it is imported
first, so training and serving run the network on the same backend.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass

from nb2prod.errors import InputError
from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.installed import built_on_deep_learning
from nb2prod.frontend.pysyntax import calls_bound_in, dotted_name

BACKENDS = ("tensorflow", "jax", "torch")  # Keras's default first
_MODEL_CLASSES = frozenset(
    {"keras.Sequential", "keras.Model", "keras.models.Sequential", "keras.models.Model"}
)
_VARIABLE = "KERAS_BACKEND"


@dataclass(frozen=True)
class Backend:
    name: str  # "torch"
    chosen_at: tuple[int, int] | None  # where the notebook sets KERAS_BACKEND, if it does


def is_keras_model(facts: NotebookFacts, constructor: str | None) -> bool:
    """`keras.Sequential([...])`, `keras.Model(inputs, outputs)`, a notebook class built on
    keras.Model, or a notebook function that returns one of these (`model = build_model()`,
    the usual way to build the same network again): a Keras 3 network (`tf.keras` is Keras 3
    since TensorFlow 2.16)."""
    if not constructor:
        return False
    if _is_network_class(facts, constructor):
        return True
    return any(
        isinstance(statement, ast.FunctionDef)
        and statement.name == constructor
        and any(
            _is_network_class(facts, facts.aliases.resolve(built))
            for built in _returned_constructors(statement)
        )
        for cell in facts.cells
        for statement in cell.statements
    )


def _is_network_class(facts: NotebookFacts, constructor: str) -> bool:
    if _keras_name(constructor) in _MODEL_CLASSES:
        return True
    return any(
        isinstance(statement, ast.ClassDef)
        and statement.name == constructor
        and any(
            _keras_name(facts.aliases.resolve(dotted_name(base) or "")) in _MODEL_CLASSES
            for base in statement.bases
        )
        for cell in facts.cells
        for statement in cell.statements
    )


def _returned_constructors(function: ast.FunctionDef) -> list[str]:
    """The callees of what the function returns: `return keras.Sequential(...)`, or
    `model = Model(inputs, outputs)` ... `return model` (as written; resolved by the caller)."""
    built = calls_bound_in(function)
    found = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        value = built.get(node.value.id) if isinstance(node.value, ast.Name) else node.value
        if isinstance(value, ast.Call) and (callee := dotted_name(value.func)):
            found.append(callee)
    return found


def _keras_name(qualified: str) -> str:
    """`tensorflow.keras.Sequential` -> `keras.Sequential`."""
    return qualified.removeprefix("tensorflow.").removeprefix("tf.")


def runs_on_keras(facts: NotebookFacts, constructor: str | None) -> bool:
    """A Keras network, or a library's scikit-learn-style estimator built on Keras (tslearn's
    LearningShapelets): either needs a Keras backend chosen before Keras is imported."""
    return is_keras_model(facts, constructor) or (
        bool(constructor) and built_on_deep_learning(constructor or "") == "keras"
    )


def keras_backend(facts: NotebookFacts) -> Backend:
    """The backend the package runs Keras on; refused when it is not installed here."""
    chosen = _chosen_backend(facts)
    if chosen is not None:
        name, cell, line = chosen
        if not _installed(name):
            raise InputError(
                facts.notebook.path,
                f"the notebook runs Keras on {name} ({_VARIABLE}), which is not installed here, "
                "so the package could not train or serve the network",
                cell=cell,
                line=line,
                hint=f"install {name} or set {_VARIABLE} to one of: "
                + ", ".join(b for b in BACKENDS if _installed(b)),
            )
        return Backend(name, (cell, line))
    imported = imports_tensorflow(facts)
    if imported is not None:  # tf.keras, tf.GradientTape: the notebook's code is TensorFlow's
        if not _installed("tensorflow"):
            raise InputError(
                facts.notebook.path,
                "the notebook runs Keras through TensorFlow, which is not installed here, so "
                "the package could not train or serve the network",
                cell=imported[0],
                line=imported[1],
                hint="install tensorflow-cpu where nb2prod runs, then convert again",
            )
        return Backend("tensorflow", None)
    for name in BACKENDS:
        if _installed(name):
            return Backend(name, None)
    raise InputError(
        facts.notebook.path,
        "the notebook trains a Keras network, and no Keras backend (tensorflow, jax or torch) "
        "is installed here",
        hint="install one of them (pip install torch), or set KERAS_BACKEND to one installed",
    )


def imports_tensorflow(facts: NotebookFacts) -> tuple[int, int] | None:
    """Where the notebook imports TensorFlow (cell, line), if it does."""
    for cell in facts.cells:
        for statement in cell.statements:
            for node in ast.walk(statement):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(name.split(".")[0] == "tensorflow" for name in names):
                    return cell.number, node.lineno
    return None


def _chosen_backend(facts: NotebookFacts) -> tuple[str, int, int] | None:
    """`os.environ["KERAS_BACKEND"] = "torch"` or `os.environ.setdefault(...)`."""
    for cell in facts.cells:
        for statement in cell.statements:
            for node in ast.walk(statement):
                value = _backend_set(node)
                if value is not None:
                    return value, cell.number, node.lineno
    return None


def _backend_set(node: ast.AST) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if (
            isinstance(target, ast.Subscript)
            and ast.unparse(target.value) == "os.environ"
            and isinstance(target.slice, ast.Constant)
            and target.slice.value == _VARIABLE
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    if (
        isinstance(node, ast.Call)
        and ast.unparse(node.func) == "os.environ.setdefault"
        and len(node.args) == 2
        and all(isinstance(arg, ast.Constant) for arg in node.args)
        and node.args[0].value == _VARIABLE  # type: ignore[attr-defined]
    ):
        return str(node.args[1].value)  # type: ignore[attr-defined]
    return None


def _installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None
