"""Locate the contract and the template whether nb2prod runs from a wheel or a checkout.

The wheel carries `rules/` and `templates/` inside the package (`nb2prod/_data/`); an editable
install or a source checkout reads them from the repository root, where teams fork them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


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
