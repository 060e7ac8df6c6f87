{%- if cookiecutter._code.helpers -%}
# {{ cookiecutter._code.header }}
"""Helper functions and classes defined in the notebook, importable by every step."""

{{ cookiecutter._code.imports }}

{{ cookiecutter._code.helpers }}
{%- endif %}
