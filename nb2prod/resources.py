"""Locate the contract and the template whether nb2prod runs from a wheel or a checkout.

The wheel carries `rules/` and `templates/` inside the package (`nb2prod/_data/`); an editable
install or a source checkout reads them from the repository root, where teams fork them.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
CACHE_VARIABLE = "NB2PROD_CACHE_DIR"


@cache
def data_dir(name: str) -> Path:
    """Return the folder `rules` or `templates` shipped with this nb2prod."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nb2prod is installed without its '{name}' folder; reinstall it")


def contract_path() -> Path:
    """The honesty contract file that ships with nb2prod."""
    return data_dir("rules") / "contract.toml"


def user_cache_dir() -> Path | None:
    """Where nb2prod keeps what it can always compute again: NB2PROD_CACHE_DIR, else
    nb2prod/ in the user's cache folder; None without a home, and nothing is kept."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:
        return None
    return base / "nb2prod"
