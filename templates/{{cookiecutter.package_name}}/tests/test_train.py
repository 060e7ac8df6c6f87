# {{ cookiecutter._code.header }}
"""Training runs the notebook's code into MLflow and records every honesty field."""

from __future__ import annotations

import dataclasses

import mlflow
import pytest
from mlflow import MlflowClient

from nb2prod_runtime import training

from {{ cookiecutter.package_name }} import honesty, pipeline, train


def test_run_records_honesty_data_and_code(trained) -> None:
    client = MlflowClient(trained.tracking_uri)
    name = honesty.MODEL["model_name"]
    version = client.get_model_version(name, trained.version)
    run = client.get_run(version.run_id)
    for field in honesty.HONESTY.run_params:
        assert run.data.params[field], field
        assert run.data.tags[field] == run.data.params[field]
    assert run.data.params["implementation_status"] == honesty.MODEL["implementation_status"]
    assert len(run.data.params["data_sha256"]) == 64
    assert run.data.tags["code_version"].startswith(("git:", "sha256:"))
    assert run.data.tags["notebook_sha256"] == honesty.MODEL["notebook_sha256"]
    for parameter in dataclasses.fields(pipeline.Parameters):
        assert parameter.name in run.data.params
    for tag in ("implementation_status", "accuracy_claim", "validation_method", "data_sha256"):
        assert version.tags[tag] == run.data.params[tag], tag
    assert version.tags["validation_status"] == run.data.params["honesty_warning"]


def test_claim_is_derived_from_the_measured_metric(trained) -> None:
    """The claim quotes the metric training measured, and says how: the package's own folds, or
    the notebook's held-out metric with the reason the package could not cross-validate."""
    client = MlflowClient(trained.tracking_uri)
    version = client.get_model_version(honesty.MODEL["model_name"], trained.version)
    run = client.get_run(version.run_id)
    claim = run.data.params["accuracy_claim"]
    method = run.data.params["validation_method"]
    measured_by = version.tags["claim_metric"]
    assert run.data.tags["claim_metric"] == measured_by
    if measured_by:
        measured = run.data.metrics[measured_by]
        assert claim.startswith(f"{measured:.3f}")
        assert claim.endswith(f"({method})")
        assert version.tags["primary_metric_value"] == repr(measured)
    else:
        assert claim.startswith("not measured")
        assert run.data.params["honesty_warning"] == honesty.HONESTY.unvalidated
    if measured_by.endswith("_cv"):  # the package's own folds: their spread is the claim's
        spread = run.data.metrics[f"{measured_by}_std"]
        assert f"±{spread:.3f}" in claim
        folds, _, kind = method.partition("-fold ")
        assert folds.isdigit()
        assert kind in ("cross-validation", "time-ordered cross-validation")
    elif not method.endswith("cross-validation"):  # the notebook's split stands: say why
        assert run.data.tags["measurement_note"]


def test_model_is_logged_with_signature_and_example(trained) -> None:
    info = mlflow.models.get_model_info(trained.model_uri)
    assert info.signature is not None and info.signature.inputs is not None
    assert info.saved_input_example_info is not None


def test_planned_model_is_refused_before_any_run(
    tracking: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(honesty.MODEL, "implementation_status", "PLANNED")
    assert train.main([]) == 2
    assert "PLANNED" in capsys.readouterr().err
    assert MlflowClient(tracking).search_runs(experiment_ids=["0"]) == []
    assert MlflowClient(tracking).get_experiment_by_name(honesty.MODEL["model_name"]) is None


def test_every_parameter_is_a_command_line_option() -> None:
    defaults = pipeline.Parameters()
    assert training.parse_args(honesty.PACKAGE, pipeline.Parameters, [])[0] == defaults
    for field in dataclasses.fields(pipeline.Parameters):
        assert field.name in vars(defaults)
