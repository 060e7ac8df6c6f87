# {{ cookiecutter._code.header }}
"""{{ cookiecutter._plan.model.estimator.split('(')[0].rsplit('.', 1)[-1] }} from {{ cookiecutter._code.notebook_name }}: training, promotion and serving that carry its honesty metadata."""
