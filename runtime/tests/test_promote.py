"""The promotion gate against a real MLflow registry: what it refuses, and what it lets ship.

A tiny model is trained and saved once; each test registers a version of it the way the
training pipeline does (honesty fields as run params and as version tags, the metric on the
run), in a store of its own, then runs the gate in-process.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from iris_example import honesty, promote
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from promotion_registry import Registry

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
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("promote-tests")
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


@pytest.mark.skipif(not THRESHOLDS_APPLY, reason="the claim is checked on higher-is-better metrics")
def test_a_metric_below_the_claim_is_refused(client, capsys):
    version = register(client, record(0.8, accuracy_claim=f"0.900 {METRIC} (holdout 20%)"))
    assert_refused(client, capsys, version, [], because="worse than the claim")


def test_an_implemented_model_without_a_measured_metric_is_refused(client, capsys):
    version = register(client, record(None))
    assert_refused(client, capsys, version, [], because="no measured metric")


def test_a_metric_tag_that_contradicts_the_run_is_refused(client, capsys):
    version = register(client, record(0.8))
    client.set_model_version_tag(NAME, version, "primary_metric_value", "0.99")
    assert_refused(client, capsys, version, [], because="contradicts the run's logged")


def test_a_status_tag_edited_after_training_is_refused(client, capsys):
    version = register(client, record(0.9, **HEURISTIC))
    client.set_model_version_tag(NAME, version, "implementation_status", "IMPLEMENTED")
    assert_refused(client, capsys, version, [], because="contradicts the run's logged 'HEURISTIC'")


def test_a_refused_version_does_not_move_the_champion(client, capsys):
    good = register(client, record(0.9))
    assert_accepted(client, capsys, good, [])
    planned = register(client, record(0.9, implementation_status="PLANNED"))
    assert_refused(client, capsys, planned, [], because="PLANNED")
    assert champion(client) == good


def test_a_validated_implemented_model_is_promoted(client, capsys):
    version = register(client, record(0.9))
    tags = assert_accepted(client, capsys, version, [])
    assert "promotion_opt_in" not in tags


def test_a_heuristic_model_is_promoted_with_the_opt_in(client, capsys):
    version = register(client, record(0.7, **HEURISTIC))
    tags = assert_accepted(client, capsys, version, ["--allow-heuristic"])
    assert tags["promotion_opt_in"] == "heuristic"


def test_a_refused_then_fixed_decision_replaces_the_old_reasons(client, capsys):
    version = register(client, record(0.9, **HEURISTIC))
    assert_refused(client, capsys, version, [], because="--allow-heuristic")
    assert_accepted(client, capsys, version, ["--allow-heuristic"])


def test_the_latest_version_is_promoted_by_default(client, capsys):
    register(client, record(0.9))
    latest = register(client, record(0.91))
    assert promote.main([]) == 0
    assert champion(client) == latest


def test_another_alias_can_be_set(client, capsys):
    version = register(client, record(0.9))
    assert promote.main(["--version", version, "--alias", "staging"]) == 0
    assert str(client.get_model_version_by_alias(NAME, "staging").version) == version
    assert champion(client) is None


def test_a_missing_model_or_version_is_a_one_line_error(client, capsys):
    assert promote.main([]) == 2
    error = capsys.readouterr().err
    assert NAME in error and error.count("\n") == 1
    register(client, record(0.9))
    capsys.readouterr()
    assert promote.main(["--version", "7"]) == 2
    error = capsys.readouterr().err
    assert "version=7" in error and error.count("\n") == 1


@pytest.mark.skipif(
    not honesty.MODEL.get("primary_metric"), reason="the notebook measures no metric to quote"
)
def test_a_notebook_number_cross_validation_does_not_reach_is_refused(client, capsys) -> None:
    """Training cross-validates the model itself; a notebook whose one split scored beyond
    twice the folds' spread made a claim the model does not keep, and the gate says so."""
    folds = f"{METRIC}_cv"
    if THRESHOLDS_APPLY:
        measured, spread, lucky, within = 0.80, 0.02, 0.95, 0.83
    else:
        measured, spread, lucky, within = 10.0, 0.5, 5.0, 9.5
    tags = record(
        measured,
        claim_metric=folds,
        accuracy_claim=f"{measured:.3f} ±{spread:.3f} {METRIC} (5-fold cross-validation)",
        validation_method="5-fold cross-validation",
    )
    for notebook, refused in ((lucky, True), (within, False)):
        metrics = {METRIC: notebook, folds: measured, f"{folds}_std": spread}
        version = register(client, tags, metrics)
        if refused:
            assert_refused(client, capsys, version, [], because="one lucky split")
        else:
            assert_accepted(client, capsys, version, [])
