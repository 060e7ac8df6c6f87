{%- if cookiecutter._plan.model.kind == "rule-based" -%}
# {{ cookiecutter._code.header }}
"""The rule-based model as MLflow "models from code": the model is this code, never a pickle.

MLflow runs this file when it loads the model; the rule settings come from the run's
`model_config`, so the logged model is the package's own class with the trained values.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel

from {{ cookiecutter.package_name }}.helpers import {{ cookiecutter._plan.model.estimator }}


class RuleBasedModel(PythonModel):
    """Wraps {{ cookiecutter._plan.model.estimator }} for MLflow's pyfunc interface."""

    def load_context(self, context: Any) -> None:
        self.model = {{ cookiecutter._plan.model.estimator }}.__new__({{ cookiecutter._plan.model.estimator }})
        vars(self.model).update(context.model_config["state"])

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return self.model.predict(model_input)


mlflow.models.set_model(RuleBasedModel())
{%- endif %}
