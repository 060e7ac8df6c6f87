{%- if cookiecutter._code.helpers -%}
# {{ cookiecutter._code.header }}
"""Helper functions and classes defined in the notebook, importable by every step."""

{{ cookiecutter._code.imports }}
from {{ cookiecutter.package_name }} import data_path

{{ cookiecutter._code.helpers }}
{%- endif %}
