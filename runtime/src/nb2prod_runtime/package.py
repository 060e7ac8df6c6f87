"""What the runtime knows of one generated package: the data files it carries, read once.

A package ships `contract.json` (the honesty contract), `honesty.json` (what its notebook
declared about the model) and `runtime.json` (the types skops may trust, the requirements
logged with the model). The runtime is given this object, never Jinja: the same library
serves every package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from nb2prod_runtime.honesty import Honesty


def _read(package: str, name: str) -> dict[str, Any]:
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class Package:
    """One generated package: its import name, folder and declared data."""

    name: str
    directory: Path
    contract: dict[str, Any]
    model: dict[str, Any]  # honesty.json
    settings: dict[str, Any] = field(default_factory=dict)  # runtime.json

    @classmethod
    def of(cls, name: str) -> Package:
        """The package importable as `name`, with the JSON files it carries."""
        directory = Path(str(resources.files(name)))
        settings = _read(name, "runtime.json") if (directory / "runtime.json").is_file() else {}
        return cls(
            name, directory, _read(name, "contract.json"), _read(name, "honesty.json"), settings
        )

    @cached_property
    def honesty(self) -> Honesty:
        return Honesty(self.contract, self.model)

    @property
    def model_name(self) -> str:
        return str(self.model["model_name"])

    @property
    def trusted_modules(self) -> tuple[str, ...]:
        """Module prefixes skops may construct types from: the package's own and its libraries'."""
        extra = tuple(self.settings.get("trusted_modules", ()))
        return ("sklearn.", "numpy.", "scipy.", f"{self.name}.", *extra)

    @property
    def requirements(self) -> list[str]:
        """The pinned requirements recorded with the model (MLflow would guess them otherwise)."""
        return list(self.settings.get("requirements", ()))
