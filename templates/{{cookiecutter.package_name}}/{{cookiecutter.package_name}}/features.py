# {{ cookiecutter._code.header }}
"""Feature definitions, each registered with its quality tags.

A feature is only as trustworthy as the evidence behind it, so every definition says its own
`implementation_status` and how it was validated; `FEATURES` lists them for reviews and tools.
"""

from __future__ import annotations

import functools
{%- if cookiecutter._code.feature_store %}
import sys
from collections.abc import Callable, Sequence
{%- else %}
from collections.abc import Callable
{%- endif %}
from dataclasses import dataclass
from typing import Any, TypeVar, cast

{{ cookiecutter._code.imports }}
{%- if cookiecutter._code.raw_route %}
from nb2prod_runtime.raw_input import RawFeatures
{%- endif %}
{%- if cookiecutter._code.feature_store %}
from {{ cookiecutter.package_name }} import feature_store
{%- endif %}
from {{ cookiecutter.package_name }} import data_path, honesty
{%- if cookiecutter._code.helper_names %}
from {{ cookiecutter.package_name }}.helpers import {{ cookiecutter._code.helper_names | join(", ") }}
{%- endif %}

# not F: notebooks import torch.nn.functional and pyspark.sql.functions by that name
FeatureFunction = TypeVar("FeatureFunction", bound=Callable[..., Any])


@dataclass(frozen=True)
class FeatureDefinition:
    """A registered feature and the quality tags a reviewer needs."""

    name: str
    function: Callable[..., Any]
    implementation_status: str
    validation: str
    cells: tuple[int, ...]
    reason: str = ""  # why a feature is weaker than the model, when it is


FEATURES: dict[str, FeatureDefinition] = {}


def feature(
    *, implementation_status: str, validation: str, cells: tuple[int, ...], reason: str = ""
) -> Callable[[FeatureFunction], FeatureFunction]:
    """Register a feature function with its quality tags (both are required). A feature whose
    status the contract says cannot be trained (PLANNED) is a design, not code to run: calling
    it is refused, as training a PLANNED model is."""

    def register(function: FeatureFunction) -> FeatureFunction:
        @functools.wraps(function)
        def computed(*args: Any, **kwargs: Any) -> Any:
            honesty.require_trainable(implementation_status)
            return function(*args, **kwargs)

        FEATURES[function.__name__] = FeatureDefinition(
            name=function.__name__,
            function=computed,
            implementation_status=implementation_status,
            validation=validation,
            cells=cells,
            reason=reason,
        )
        return cast(FeatureFunction, computed)

    return register
{% for function in cookiecutter._code.features %}

@feature(
    implementation_status={{ function.honesty.implementation_status_literal }},
    validation={{ function.honesty.validation_literal }},
    cells=({{ function.cells | join(", ") }},),
{%- if function.honesty.heuristic %}
    reason={{ function.honesty.reason_literal }},
{%- endif %}
)
{{ function.source }}
{%- endfor %}
{%- if cookiecutter._code.raw_route %}


# What POST /predict/raw runs on a client's records before the model. Training checks on rows
# of the loaded data that it is row-wise, and records on the model version whether it serves.
RAW_FEATURES = RawFeatures(
    features_from_raw, loaded="{{ cookiecutter._code.raw_route.loaded }}", cells=({{ cookiecutter._code.raw_route.cells | join(", ") }},)
)
{%- endif %}
{%- if cookiecutter._code.feature_store %}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m {{ cookiecutter.package_name }}.features apply|materialize`: the Feast
    repository's two chores, each failing in one line."""
    from {{ cookiecutter.package_name }} import feature_store

    command = list(sys.argv[1:] if argv is None else argv)
    if command not in (["apply"], ["materialize"]):
        print(
            "usage: python -m {{ cookiecutter.package_name }}.features apply|materialize",
            file=sys.stderr,
        )
        return 2
    try:
        if command == ["apply"]:
            names = feature_store.apply()
            print(f"applied {', '.join(names)} to {feature_store.repository()}")
        else:
            start, end, keys = feature_store.materialize()
            print(
                f"materialized {keys} keys of {feature_store.VIEW} ({start:%Y-%m-%d %H:%M} to "
                f"{end:%Y-%m-%d %H:%M} UTC) into the online store"
            )
    except feature_store.FeatureStoreError as error:
        print(f"features: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
{%- endif %}
