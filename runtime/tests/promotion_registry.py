"""A test's own MLflow registry, shared by the promotion and rollback tests (a module of its own:
two conftest modules share the name `conftest`, so neither can be imported from by name)."""

from __future__ import annotations

from mlflow import MlflowClient


class Registry(MlflowClient):
    """A test's own registry, and the saved model every version registered in it points at."""

    def __init__(self, tracking_uri: str, model_source: str) -> None:
        super().__init__(tracking_uri=tracking_uri)
        self.model_source = model_source
