"""One seed for both sides of verify.

A notebook that never seeds its random generators gets other numbers on every run, so its
package cannot repeat them and verify could only say why the two differ. Started from the same
state, the two sides draw the same numbers wherever they run the same code in the same order:
what still differs is then a difference in the code, which is what verify is there to find.
The notebook's own seeds still apply after this one, as they do in the package.

The same source runs first in the notebook's kernel and before the package's `train` module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line reads DEFAULT_SEED; lint must not pay for the Plan
    from nb2prod.plan import Plan

DEFAULT_SEED = 0

# Each generator a library draws from unless told otherwise, and how to start it. Keras seeds
# Python's, numpy's and its backend's at once, and its own generator besides.
_STARTS = {
    "random": "import random\nrandom.seed({seed})",
    "numpy": "import numpy\nnumpy.random.seed({seed})",
    "torch": "import torch\ntorch.manual_seed({seed})",
    "keras": "import keras\nkeras.utils.set_random_seed({seed})",
}


def seeded_libraries(plan: Plan) -> tuple[str, ...]:
    """The generators the notebook can draw from: Python's and numpy's always; torch's and
    Keras's when the package needs them (importing torch for a scikit-learn notebook would only
    cost seconds)."""
    needed = {module for requirement in plan.requirements for module in requirement.modules}
    libraries = ["random", "numpy"]
    if "torch" in needed:
        libraries.append("torch")
    if plan.model.backend:
        libraries.append("keras")
    return tuple(libraries)


def seeding_source(seed: int, libraries: tuple[str, ...]) -> str:
    """Python source that starts each of `libraries`' global generators from `seed`; a
    library that is not installed on this side is skipped (the other side cannot use it
    either)."""
    blocks = []
    for library in libraries:
        start = _STARTS[library].format(seed=seed).replace("\n", "\n    ")
        blocks.append(f"try:\n    {start}\nexcept ImportError:\n    pass")
    return "\n".join(blocks) + "\n"


def described(seed: int | None, libraries: tuple[str, ...]) -> str:
    """What the report says about the seed, whichever way it ran."""
    if seed is None:
        return "both sides ran as written, unseeded where the notebook is (--seed none)"
    names = ", ".join(_NAMES[library] for library in libraries)
    return (
        f"both sides started {names} global random generators from seed {seed} (--seed); "
        "the notebook's own seeds apply after it"
    )


_NAMES = {"random": "Python's", "numpy": "numpy's", "torch": "torch's", "keras": "Keras's"}
