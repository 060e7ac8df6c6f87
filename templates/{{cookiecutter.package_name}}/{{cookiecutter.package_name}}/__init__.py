# {{ cookiecutter._code.header }}
"""{{ cookiecutter._plan.model.estimator.split('(')[0].rsplit('.', 1)[-1] }} from {{ cookiecutter._code.notebook_name }}: training, promotion and serving that carry its honesty metadata."""

import importlib.util
import os
import sys
from pathlib import Path

# The nb2prod-runtime this package was generated with (vendor/ holds its wheel); train, promote
# and serve refuse to start on a runtime of another minor version.
RUNTIME_VERSION = "{{ cookiecutter._code.runtime_version }}"

if importlib.util.find_spec("nb2prod_runtime") is None:  # one line, not an ImportError's trace
    print(
        f"{__name__}: cannot start: nb2prod-runtime is not installed: pip install "
        f"vendor/nb2prod_runtime-{RUNTIME_VERSION}-py3-none-any.whl",
        file=sys.stderr,
    )
    raise SystemExit(2)
{%- if cookiecutter._plan.model.backend %}

# Keras reads its backend when it is first imported: train, promote and serve run the network on
# the one it was trained on.
os.environ.setdefault("KERAS_BACKEND", "{{ cookiecutter._plan.model.backend }}")
{%- endif %}


def data_path(relative: str) -> str:
    """Where a data file the notebook read lives now: DATA_DIR if set, else shipped in `data/`."""
    return str(Path(os.environ.get("DATA_DIR") or Path(__file__).resolve().parent / "data") / relative)
