# {{ cookiecutter._code.header }}
"""This model's promotion gate against a real MLflow registry: its contract's refusals with this
model's metric and thresholds, and a version that may ship. (The gate's other checks, tags
against the run, aliases, errors, are nb2prod-runtime's and tested there.)

A tiny model is trained and saved once; each test registers a version of it the way the
training pipeline does (honesty fields as run params and as version tags, the metric on the
run), in a store of its own, then runs the gate in-process.
"""

from __future__ import annotations

import time
from datetime import datetime

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from {{ cookiecutter.package_name }} import honesty, promote

NAME = honesty.MODEL["model_name"]
METRIC = honesty.MODEL.get("primary_metric") or "score"
THRESHOLDS_APPLY = honesty.MODEL.get("greater_is_better", True)
IMPLEMENTED_MIN = honesty.CONTRACT["statuses"]["IMPLEMENTED"]["min_metric"]
HEURISTIC_MIN = honesty.CONTRACT["statuses"]["HEURISTIC"]["min_metric"]
HEURISTIC = {
    "implementation_status": "HEURISTIC",
    "validation_method": "NONE - pattern-based heuristic",
    "honesty_warning": "UNVALIDATED",
    "validation_status": "UNVALIDATED",
}

pytestmark = pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")


class Registry(MlflowClient):
    """A test's own registry, and the saved model every version registered in it points at."""

    def __init__(self, tracking_uri: str, model_source: str) -> None:
        super().__init__(tracking_uri=tracking_uri)
        self.model_source = model_source


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny model, trained and saved once: the gate judges versions, never their files."""
    features, target = load_iris(return_X_y=True, as_frame=True)
    features, target = features[::7], target[::7]  # 22 rows, all three classes
    path = tmp_path_factory.mktemp("tiny-model") / "model"
    mlflow.sklearn.save_model(
        LogisticRegression(max_iter=500).fit(features, target),  # nb2prod: ignore[NBH107]
        path,
        input_example=features.head(2),
        pip_requirements=["scikit-learn"],
    )
    return str(path)


@pytest.fixture
def client(tracking: str, tiny_model: str) -> Registry:
    """A fresh sqlite tracking store and registry, found by the gate through the environment."""
    return Registry(tracking, tiny_model)


def record(metric: float | None, **changes: str | None) -> dict[str, str]:
    """An honest record for a model measured at `metric`; `changes` edit it (None removes)."""
    shown = "" if metric is None else f"{metric:.3f} {METRIC} (holdout 20%)"
    fields = {
        "implementation_status": "IMPLEMENTED",
        "accuracy_claim": shown or "not measured (holdout 20%)",
        "validation_method": "holdout 20%",
        "honesty_warning": "VALIDATED",
        "validation_status": "VALIDATED",
        "primary_metric": METRIC,
        "primary_metric_value": "" if metric is None else repr(metric),
        "data_sha256": "0" * 64,
        "code_version": "test",
        "notebook_sha256": "0" * 64,
    }
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


def register(
    client: Registry, tags: dict[str, str], metrics: dict[str, float] | None = None
) -> str:
    """Register a version of the tiny model, its run (with `metrics`, else the tagged metric
    value) and the version carrying `tags`."""
    experiment = client.get_experiment_by_name("promote-tests")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        "promote-tests"
    )
    # The gate is tested on versions that break the contract on purpose (fields missing, a
    # PLANNED status), so this run logs exactly the tags each test gives it.
    run = client.create_run(experiment_id, tags=tags)
    params = [Param(key, tags[key]) for key in honesty.HONESTY.run_params if key in tags]
    if metrics is None and tags.get("primary_metric_value"):
        metrics = {METRIC: float(tags["primary_metric_value"])}
    now = int(time.time() * 1000)
    logged = [Metric(key, value, now, 0) for key, value in (metrics or {}).items()]
    client.log_batch(run.info.run_id, metrics=logged, params=params)
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{NAME}'"):
        client.create_registered_model(NAME)
    version = client.create_model_version(NAME, client.model_source, run.info.run_id, tags=tags)
    return str(version.version)


def champion(client: MlflowClient) -> str | None:
    try:
        return str(client.get_model_version_by_alias(NAME, "champion").version)
    except MlflowException:
        return None


def assert_refused(client, capsys, version: str, args: list[str], because: str) -> None:
    """Exit 1, the reason said on stderr and recorded on the version, no alias moved there."""
    before = champion(client)
    assert promote.main(["--version", version, *args]) == 1
    assert because in capsys.readouterr().err
    assert champion(client) == before != version
    tags = client.get_model_version(NAME, version).tags
    assert tags["promotion_decision"] == "refused"
    assert because in tags["promotion_reasons"]
    datetime.fromisoformat(tags["promotion_checked_at"])
    assert "promoted_alias" not in tags


def assert_accepted(client, capsys, version: str, args: list[str]) -> dict[str, str]:
    """Exit 0, champion points at the version, the decision recorded on it."""
    assert promote.main(["--version", version, *args]) == 0
    assert champion(client) == version
    tags = client.get_model_version(NAME, version).tags
    assert tags["promotion_decision"] == "accepted"
    assert tags["promoted_alias"] == "champion"
    datetime.fromisoformat(tags["promoted_at"])
    assert "promotion_reasons" not in tags
    status = honesty.plain_status(tags["implementation_status"])
    assert honesty.label(status) in capsys.readouterr().out
    return tags


@pytest.mark.parametrize("field", honesty.HONESTY.run_params)
def test_a_missing_honesty_field_is_refused(client, capsys, field):
    version = register(client, record(0.9, **{field: None}))
    assert_refused(client, capsys, version, [], because=field)


@pytest.mark.parametrize("args", [[], ["--allow-heuristic"]])
def test_planned_is_refused_even_with_the_opt_in(client, capsys, args):
    version = register(client, record(0.9, implementation_status="PLANNED"))
    assert_refused(client, capsys, version, args, because="PLANNED cannot be promoted")


def test_heuristic_without_the_opt_in_is_refused(client, capsys):
    version = register(client, record(0.9, **HEURISTIC))
    assert_refused(client, capsys, version, [], because="--allow-heuristic")


@pytest.mark.skipif(not THRESHOLDS_APPLY, reason="the thresholds are for higher-is-better metrics")
@pytest.mark.parametrize(
    ("changes", "measured", "args"),
    [({}, IMPLEMENTED_MIN - 0.05, []), (HEURISTIC, HEURISTIC_MIN - 0.05, ["--allow-heuristic"])],
)
def test_a_metric_below_the_status_threshold_is_refused(client, capsys, changes, measured, args):
    version = register(client, record(measured, **changes))
    assert_refused(client, capsys, version, args, because="threshold")


def test_a_validated_implemented_model_is_promoted(client, capsys):
    version = register(client, record(0.9))
    tags = assert_accepted(client, capsys, version, [])
    assert "promotion_opt_in" not in tags
