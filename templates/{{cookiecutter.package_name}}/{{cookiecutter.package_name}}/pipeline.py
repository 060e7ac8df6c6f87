# {{ cookiecutter._code.header }}
"""The notebook's pipeline as functions with explicit inputs and outputs.

Each step is the code of the notebook cells named in its `# From cell N` markers; `run`
calls the steps in the notebook's order and hands each one what it reads, so nothing
travels through globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

{{ cookiecutter._code.imports }}
{%- if cookiecutter._code.feature_store %}
from {{ cookiecutter.package_name }} import feature_store
{%- endif %}
from {{ cookiecutter.package_name }} import data_path
{%- if cookiecutter._code.helper_names %}
from {{ cookiecutter.package_name }}.helpers import {{ cookiecutter._code.helper_names | join(", ") }}
{%- endif %}
{%- if cookiecutter._plan.model.served_output and cookiecutter._plan.model.backend %}
from nb2prod_runtime.keras_io import Answering
{%- elif cookiecutter._plan.model.served_output %}
from nb2prod_runtime.torch_output import Answering
{%- endif %}
{%- if cookiecutter._code.as_loaded_import %}
{{ cookiecutter._code.as_loaded_import }}
{%- endif %}
{%- if cookiecutter._code.features %}
from {{ cookiecutter.package_name }}.features import {% for f in cookiecutter._code.features %}{{ f.name }}{% if not loop.last %}, {% endif %}{% endfor %}
{%- endif %}


@dataclass(frozen=True)
class Parameters:
    """The notebook's parameters; each one is a command-line option of `train`."""

{{ cookiecutter._code.parameters }}

@dataclass
class PipelineResult:
    """What training needs once the steps have run."""

    model: Any
    metrics: dict[str, Any]
    data: dict[str, Any]  # the loaded data, digested and logged as the run's input
    model_input: Any  # an example of what the model predicts on: gives the signature
    # the features and labels the model was fitted on, as they were at the fit, so training can
    # cross-validate it; None when it was fitted without labels
    fit_data: tuple[Any, Any] | None = None
{%- if cookiecutter._plan.model.served_output %}


def answer(model: Any, inputs: Any{% for name in cookiecutter._plan.model.served_with %}, {{ name }}: Any{% endfor %}) -> Any:
    """What the notebook makes of the model's output when it measures or predicts: the
    service answers with the same, so the claim is about what it returns."""
    return {{ cookiecutter._plan.model.served_output }}
{%- endif %}
{% for function in cookiecutter._code.pipeline %}

{{ function.source }}
{%- endfor %}


def run(params: Parameters) -> PipelineResult:
    """Run the notebook's steps in order, each with what it reads."""
{{ cookiecutter._code.run_body }}
