"""The honesty contract as typed data, read from the one file that defines it (rules/)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nb2prod.errors import InputError
from nb2prod.resources import contract_path


@dataclass(frozen=True)
class Status:
    """One value of `implementation_status`, with what the contract allows it to do."""

    name: str
    mark: str
    meaning: str
    trainable: bool
    promotable: bool
    min_metric: float | None = None
    requires_opt_in: bool = False
    uncertainty: str | None = None

    @property
    def label(self) -> str:
        """The human form, e.g. '⚠️ HEURISTIC'; machines exchange `name`."""
        return f"{self.mark} {self.name}"


@dataclass(frozen=True)
class Field:
    """A field of the contract and the places it must appear."""

    name: str
    description: str
    run_param: bool = False
    run_tag: bool = False
    model_version_tag: bool = False
    response: bool = False
    metric_label: bool = False


@dataclass(frozen=True)
class Contract:
    """The whole contract: statuses, fields, and the validation vocabulary."""

    version: int
    statuses: tuple[Status, ...]
    fields: tuple[Field, ...]
    validation_status_values: tuple[str, ...]
    no_validation_prefix: str
    source: str

    def status(self, name: str) -> Status:
        """Look a status up by its plain name or its marked label ('✅ IMPLEMENTED')."""
        plain = name.split()[-1] if name.strip() else name
        for status in self.statuses:
            if status.name == plain:
                return status
        known = ", ".join(s.name for s in self.statuses)
        raise KeyError(f"unknown implementation_status {name!r}; the contract knows {known}")

    @property
    def status_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.statuses)

    def fields_where(self, place: str) -> tuple[str, ...]:
        """Names of the fields required in `place` (run_param, response, ...)."""
        return tuple(f.name for f in self.fields if getattr(f, place))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "statuses": {
                s.name: {k: v for k, v in vars(s).items() if k != "name"} for s in self.statuses
            },
            "fields": {
                f.name: {k: v for k, v in vars(f).items() if k != "name"} for f in self.fields
            },
            "validation_status_values": list(self.validation_status_values),
            "no_validation_prefix": self.no_validation_prefix,
        }


@cache
def load_contract(path: Path | None = None) -> Contract:
    """Read and check a contract file; a broken contract is an input error, not a crash."""
    path = path or contract_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        statuses = tuple(
            Status(
                name=name,
                mark=str(spec.get("mark", "")),
                meaning=str(spec.get("meaning", "")),
                trainable=bool(spec.get("trainable", True)),
                promotable=bool(spec.get("promotable", True)),
                min_metric=spec.get("min_metric"),
                requires_opt_in=bool(spec.get("requires_opt_in", False)),
                uncertainty=spec.get("uncertainty"),
            )
            for name, spec in data["statuses"].items()
        )
        fields = tuple(Field(name=name, **spec) for name, spec in data["fields"].items())
        validation = data["validation_status"]
        return Contract(
            version=int(data.get("version", 1)),
            statuses=statuses,
            fields=fields,
            validation_status_values=tuple(validation["values"]),
            no_validation_prefix=str(validation.get("none_prefix", "NONE")),
            source=path.name,
        )
    except OSError as error:
        raise InputError(path, f"cannot read the contract ({error.strerror})") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise InputError(
            path,
            f"is not a valid honesty contract: {error}",
            hint="compare with rules/contract.toml",
        ) from None
