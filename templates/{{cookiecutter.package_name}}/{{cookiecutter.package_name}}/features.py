# {{ cookiecutter._code.header }}
"""Feature definitions, each registered with its quality tags.

A feature is only as trustworthy as the evidence behind it, so every definition says its own
`implementation_status` and how it was validated; `FEATURES` lists them for reviews and tools.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

{{ cookiecutter._code.imports }}
from {{ cookiecutter.package_name }}.lineage import data_path
{%- if cookiecutter._code.helper_names %}
from {{ cookiecutter.package_name }}.helpers import {{ cookiecutter._code.helper_names | join(", ") }}
{%- endif %}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class FeatureDefinition:
    """A registered feature and the quality tags a reviewer needs."""

    name: str
    function: Callable[..., Any]
    implementation_status: str
    validation: str
    cells: tuple[int, ...]


FEATURES: dict[str, FeatureDefinition] = {}


def feature(
    *, implementation_status: str, validation: str, cells: tuple[int, ...]
) -> Callable[[F], F]:
    """Register a feature function with its quality tags (both are required)."""

    def register(function: F) -> F:
        FEATURES[function.__name__] = FeatureDefinition(
            name=function.__name__,
            function=function,
            implementation_status=implementation_status,
            validation=validation,
            cells=cells,
        )
        return function

    return register
{% for function in cookiecutter._code.features %}

@feature(
    implementation_status="{{ cookiecutter._plan.honesty.implementation_status }}",
    validation="{% if cookiecutter._plan.honesty.validation_status == 'VALIDATED' %}end to end, by the model's {{ cookiecutter._plan.honesty.primary_metric }} ({{ cookiecutter._plan.honesty.validation_method }}){% else %}NONE - not validated{% endif %}",
    cells=({{ function.cells | join(", ") }},),
)
{{ function.source }}
{%- endfor %}
