"""Training runs the notebook's code into MLflow and records every honesty field."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys

import mlflow
import pytest
from iris_example import honesty, pipeline, train
from mlflow import MlflowClient

from nb2prod_runtime import measure, training


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


def test_a_long_training_is_cross_validated_only_when_asked() -> None:
    """k more fits of a model that took minutes are the user's call, and the run says so."""
    assert measure.folds_to_use(None, 1.0) == (measure.DEFAULT_FOLDS, "")
    folds, why = measure.folds_to_use(None, measure.UNASKED_BUDGET_SECONDS + 1)
    assert folds == 0
    assert f"--cross-validation-folds {measure.DEFAULT_FOLDS}" in why
    assert measure.folds_to_use(3, measure.UNASKED_BUDGET_SECONDS * 10) == (3, "")


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="PyTorch is not installed: nothing to skip"
)
def test_skops_is_imported_without_pytorch() -> None:
    """skops walks every scikit-learn package when imported; the one holding scikit-learn's
    PyTorch support would import PyTorch (seconds). It is skipped, and skops trusts the same
    types as when imported plainly."""
    listed = "len(skops_io._trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)"
    fast = (
        "import sys\n"
        "from nb2prod_runtime.skops_import import import_skops_io\n"
        "skops_io = import_skops_io()\n"
        f"print('torch' in sys.modules, {listed})\n"
    )
    plain = f"import sys\nimport skops.io as skops_io\nprint('torch' in sys.modules, {listed})\n"
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        for code in (fast, plain)
    ]
    assert outputs[0][0] == "False" and outputs[1][0] == "True"
    assert outputs[0][1] == outputs[1][1]


def test_a_column_selector_by_python_type_is_logged_without_a_trust_option() -> None:
    """`make_column_selector(dtype_include=object)`, the usual way to pick the text columns,
    keeps Python's `object` type in the model; skops loads it by name and constructs nothing,
    so training trusts it rather than stopping to ask for `--trust-type builtins.object`."""
    import pandas as pd
    from sklearn.compose import make_column_selector, make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from nb2prod_runtime.model_io import skops_trusted_types
    from nb2prod_runtime.skops_import import import_skops_io

    rows = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0], "colour": ["red", "blue", "red", "blue"]})
    columns = make_column_transformer(
        (OneHotEncoder(), make_column_selector(dtype_include=object)), remainder="passthrough"
    )
    model = make_pipeline(columns, LogisticRegression()).fit(rows, [0, 1, 0, 1])
    trusted = skops_trusted_types(model, ("sklearn", "numpy", "scipy"))
    assert "builtins.object" in trusted
    skops_io = import_skops_io()
    loaded = skops_io.loads(skops_io.dumps(model), trusted=trusted)
    assert loaded.predict(rows).tolist() == model.predict(rows).tolist()
