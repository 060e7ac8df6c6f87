"""What the libraries installed here offer: a name a notebook uses, imported quietly.

Plan imports a library only to ask it about itself (does this class predict? does this
function take that keyword?), never a notebook's local module, and never the deep-learning
frameworks, whose import alone costs seconds. Importing scikit-learn alone costs a plan about
two seconds, so the signatures asked for are kept on disk per installed library (keyed by its
package file's path, size and mtime): a library is imported once, not on every plan.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nb2prod.resources import user_cache_dir

# Decorators whose wrapper hands every argument to the function it wraps: a keyword the
# wrapped signature lacks fails there. Other decorators may accept an old keyword (pandas'
# and statsmodels' deprecate_kwarg), so their wrapped signature is not trusted.
STRICT_WRAPPERS = (
    "sklearn/utils/_param_validation.py",
    "xgboost/core.py",  # _deprecate_positional_args: positional arguments made keywords
)

HEAVY = frozenset({"tensorflow", "keras", "torch", "pyspark", "jax"})
MISSING = object()  # the library imports, and has no such name


@functools.cache
def built_on_deep_learning(qualified: str) -> str | None:
    """The deep-learning framework a library class is built on (tslearn's LearningShapelets
    on Keras, skorch's nets on torch): its defining module holds the framework's objects.
    Such a model is a network under a scikit-learn API, which skops cannot save. Kept in the
    library's signature cache, so that a plan imports the library once, not every time."""
    store = _SignatureStore.of(qualified.partition(".")[0])
    key = f"{qualified} built on"
    if store is not None and key in store.entries:
        return store.entries[key] or None
    framework = _framework_of_module(installed_object(qualified))
    if store is not None:
        store.remember(key, framework or "")
    return framework


def _framework_of_module(found: object) -> str | None:
    module = sys.modules.get(getattr(found, "__module__", None) or "")
    if not isinstance(found, type) or module is None:
        return None
    for value in vars(module).values():
        origin = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", "")
        top = (origin if isinstance(origin, str) else "").partition(".")[0]
        if top in DEEP_LEARNING_FRAMEWORKS:
            return top
    return None


DEEP_LEARNING_FRAMEWORKS = frozenset({"torch", "keras", "tensorflow"})


@functools.cache
def installed_object(qualified: str) -> object | None:
    """The object `qualified` names in an installed library; MISSING when the library
    imports but lacks the name; None when it cannot or must not be told."""
    parts = qualified.split(".")
    top = parts[0]
    if len(parts) < 2 or top in HEAVY or top not in _distributions():
        return None
    quiet = io.StringIO()  # what a library prints on import is not nb2prod's to show
    try:
        with (
            contextlib.redirect_stdout(quiet),
            contextlib.redirect_stderr(quiet),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            found: object = importlib.import_module(top)
            for index, part in enumerate(parts[1:], start=2):
                try:
                    inner = getattr(found, part, MISSING)
                except ImportError:  # a module's __getattr__ telling of a removed name
                    return MISSING
                if inner is MISSING:  # a submodule its package does not import, or nothing
                    inner = _submodule(".".join(parts[:index]))
                if inner is MISSING:
                    return MISSING
                found = inner
    except Exception:  # a library that fails to import says nothing about its names
        return None
    return found


def present_after_imports(qualified: str, imported: list[str]) -> bool:
    """Whether `qualified` exists once the notebook's own imports from its library have run:
    `from sklearn.experimental import enable_halving_search_cv` adds HalvingRandomSearchCV to
    sklearn.model_selection, which plain lookups (and the signature cache) do not see."""
    top = qualified.partition(".")[0]
    enabling = [name for name in imported if name.partition(".")[0] == top and name != top]
    quiet = io.StringIO()
    for name in enabling:
        with (
            contextlib.redirect_stdout(quiet),
            contextlib.redirect_stderr(quiet),
            warnings.catch_warnings(),
            contextlib.suppress(Exception),  # a class or function, not a module: no effect
        ):
            warnings.simplefilter("ignore")
            importlib.import_module(name)
    return bool(enabling) and installed_object.__wrapped__(qualified) not in (MISSING, None)


def installed_has(qualified: str, method: str) -> bool | None:
    """Whether the installed class `qualified` has `method`; None when it cannot be told.
    Kept in the library's store, so scikit-learn is imported once, not on every plan."""
    return _asked(
        qualified,
        f"{qualified}#{method}",
        lambda found: hasattr(found, method) if isinstance(found, type) else None,
    )


def installed_signature(qualified: str) -> inspect.Signature | object | None:
    """The signature a call of `qualified` is bound to, as installed here (through a decorator
    only when it is one of STRICT_WRAPPERS: others may take more than what they wrap lists);
    MISSING when the library has no such name; None when it cannot be told."""
    store = _SignatureStore.of(qualified.partition(".")[0])
    if store is None:
        return None
    if qualified not in store.entries:
        store.remember(qualified, _signature_now(qualified))
    entry = store.entries[qualified]
    if entry == "missing":
        return MISSING
    if entry is None:
        return None
    return inspect.Signature(
        [
            inspect.Parameter(
                name,
                getattr(inspect.Parameter, kind),
                default=_EMPTY if not defaulted else None if none else SOME_DEFAULT,
            )
            for name, kind, defaulted, none in entry
        ]
    )


_EMPTY = inspect.Parameter.empty
# A parameter's default other than None (its value is not kept), or a None `random_state` the
# docs say is used only in some settings.
SOME_DEFAULT = object()


def _signature_now(qualified: str) -> Any:
    """The cache entry for `qualified`: "missing", None, or its parameters."""
    found = installed_object(qualified)
    if found is MISSING:
        return "missing"
    if found is None or not callable(found):
        return None
    try:
        signature = inspect.signature(found, follow_wrapped=_strict_wrapper(found))
    except (TypeError, ValueError):  # implemented in C, or otherwise without a signature
        return None
    conditional = _random_state_used_only_sometimes(found)
    return [
        [
            p.name,
            p.kind.name,
            p.default is not _EMPTY,
            p.default is None and not (p.name == "random_state" and conditional),
        ]
        for p in signature.parameters.values()
    ]


_CONDITIONAL_USE = re.compile(
    r"\b(used when|ignored when|only used|used only|has no effect|not used)\b", re.IGNORECASE
)


def _random_state_used_only_sometimes(found: object) -> bool:
    """Whether the docs say `random_state` matters only in some settings ("Used when solver ==
    'sag'", "Ignored when probability is False"): its None default then draws nothing by
    default, so it is kept as a default other than None."""
    doc = inspect.getdoc(found) or ""
    start = doc.find("random_state :")
    if start < 0:
        return False
    described = doc[start:].split("\n\n", 1)[0]
    return bool(_CONDITIONAL_USE.search(described))


def _strict_wrapper(found: object) -> bool:
    """A decorator known to pass arguments through unchanged, so that what it wraps decides
    (scikit-learn's parameter validation wraps most of its functions)."""
    code = getattr(found, "__code__", None)
    return code is not None and Path(code.co_filename).as_posix().endswith(STRICT_WRAPPERS)


class _SignatureStore:
    """The signatures asked of one installed library, in one JSON file."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.entries: dict[str, Any] = {}
        if file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.entries = json.loads(file.read_text())

    @classmethod
    @functools.cache
    def of(cls, top: str) -> _SignatureStore | None:
        """The store of one library, opened once per process."""
        if top in HEAVY:
            return None
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.origin or not os.path.isfile(spec.origin):
            return None
        stat = os.stat(spec.origin)
        where = f"{spec.origin}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        key = f"{top}-{hashlib.sha256(where).hexdigest()[:16]}-v3"  # v3: xgboost's wrapper
        folder = user_cache_dir()
        return cls(folder / f"signatures-{key}.json" if folder else None)

    def remember(self, qualified: str, entry: Any) -> None:
        self.entries[qualified] = entry
        if self.file is None:
            return
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.file.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(self.entries))
            partial.replace(self.file)  # whole or not at all, even beside another plan


def installed_draws_from_numpy(qualified: str) -> bool:
    """Whether the installed function or method `qualified` draws from numpy's global
    generator by itself, as its source reads (statsmodels' `generate_sample` hands
    `numpy.random.standard_normal` on when no `distrvs` is given), directly or through a
    function of its own library it calls. A function that takes a `random_state` says so in
    its signature and is not asked here. Kept in the library's store, like signatures."""
    return bool(
        _asked(
            qualified,
            f"{qualified}#draws",
            lambda found: found is not MISSING and _source_draws(found, depth=2),
        )
    )


def _asked(qualified: str, key: str, answer: Callable[[object], Any]) -> Any:
    """What `answer` says of the installed object `qualified`, kept in its library's store
    under `key`: the library is imported once, not on every plan. None when there is no
    store (a deep-learning framework, a module not installed)."""
    store = _SignatureStore.of(qualified.partition(".")[0])
    if store is None:
        return None
    if key not in store.entries:
        store.remember(key, answer(installed_object(qualified)))
    return store.entries[key]


_NUMPY_GLOBAL_DRAW = re.compile(
    r"\b(?:np|numpy)\.random\.(?!seed\b|default_rng\b|RandomState\b|Generator\b|"
    r"get_state\b|set_state\b|SeedSequence\b|PCG64\b|mtrand\b|bit_generator\b)[a-z_]+\b"
)
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\(")
_OWN_GENERATOR = ("random_state", "rng", "seed", "random_seed", "generator")


def _source_draws(found: object, depth: int) -> bool:
    function = inspect.unwrap(found) if callable(found) else found  # type: ignore[arg-type]
    if not inspect.isfunction(function):
        return False
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    if any(name in _OWN_GENERATOR for name in parameters):
        return False  # drawn from the generator it is given, or the global one by default
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    if _NUMPY_GLOBAL_DRAW.search(source):
        return True
    library = function.__module__.partition(".")[0]
    return depth > 0 and any(
        inspect.isfunction(inner := function.__globals__.get(name))
        and inner is not function
        and inner.__module__.partition(".")[0] == library
        and _source_draws(inner, depth - 1)
        for name in set(_CALLED.findall(source))
    )


def installed_version(qualified: str) -> str | None:
    """The version of the distribution that provides `qualified`'s top-level module."""
    names = _distributions().get(qualified.partition(".")[0])
    if not names:
        return None
    try:
        return f"{names[0]} {importlib.metadata.version(names[0])}"
    except importlib.metadata.PackageNotFoundError:
        return None


def _submodule(dotted: str) -> object:
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as error:
        if error.name is not None and dotted.startswith(error.name):
            return MISSING  # the module itself is absent, not one it imports
        raise


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()
