# {{ cookiecutter._code.header }}
"""Train the model: one MLflow run that logs the notebook's parameters and metrics, the model's
honesty record, the data and code it came from, and registers a version carrying that record.

`python -m {{ cookiecutter.package_name }}.train --help` lists the notebook's parameters as options.
A PLANNED model is refused before anything runs; every failure is one line naming its cause
(the notebook cell, when the notebook's code raised it). The store, the lineage and the model
logging are nb2prod-runtime's ``Trainer``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence

import mlflow
from nb2prod_runtime.compat import require_runtime

from {{ cookiecutter.package_name }} import RUNTIME_VERSION

require_runtime(RUNTIME_VERSION, "train")  # before the rest of the runtime is imported

from nb2prod_runtime import training
from nb2prod_runtime.training import TrainingFailed, TrainingOptions

from {{ cookiecutter.package_name }} import honesty, pipeline
{%- if cookiecutter._code.raw_route %}
from {{ cookiecutter.package_name }}.features import RAW_FEATURES
{%- endif %}
{%- if cookiecutter._code.feature_store %}
from {{ cookiecutter.package_name }} import feature_store
{%- endif %}

TRAINER = training.Trainer(honesty.PACKAGE)


def train(
    params: pipeline.Parameters, options: TrainingOptions
) -> tuple[str, str, dict[str, str]]:
    """One MLflow run: the notebook's steps, then what they produced. Returns the version, the
    run id and the honesty record; any failure is a TrainingFailed naming its cause."""
    status = honesty.MODEL["implementation_status"]
    try:
        honesty.require_trainable(status)
    except honesty.HonestyError as error:
        raise TrainingFailed(f"refused: {error}", code=2) from None
    uri = TRAINER.use_store()
    with TRAINER.stage(f"cannot use the MLflow store {uri}", code=2):
        run = mlflow.start_run()
    with TRAINER.ending(run.info.run_id):
        with TRAINER.stage("cannot log the parameters"):
            mlflow.log_params(dataclasses.asdict(params))
        started = time.perf_counter()
{%- if cookiecutter._code.feature_store %}
        refused = (feature_store.FeatureStoreError, "feature store")
        result = TRAINER.run_pipeline(pipeline.run, params, refused)
{%- else %}
        result = TRAINER.run_pipeline(pipeline.run, params)
{%- endif %}
        with TRAINER.stage("cannot log the metrics and the honesty record"):
            metrics = training.log_metrics(result.metrics)
        measured = TRAINER.measure(result, metrics, options, started)
        with TRAINER.stage("cannot log the metrics and the honesty record"):
            record = honesty.run_record(
                status,
                measured.value,
                measured.spread,
                method=measured.method,
                metric=(measured.metric or "").removesuffix("_cv") or None,
            )
            mlflow.log_params(record)
            mlflow.set_tags(record)
            TRAINER.log_measurement(measured)
{%- if cookiecutter._code.feature_store %}
        read_from = feature_store.run_tags()
        version = TRAINER.register(result, record, measured, options, read_from)
{%- elif cookiecutter._code.raw_route %}
        version = TRAINER.register(result, record, measured, options, raw=RAW_FEATURES)
{%- else %}
        version = TRAINER.register(result, record, measured, options)
{%- endif %}
    return version, run.info.run_id, record


def main(argv: Sequence[str] | None = None) -> int:
    return training.main(honesty.PACKAGE, pipeline.Parameters, train, argv)


if __name__ == "__main__":
    sys.exit(main())
