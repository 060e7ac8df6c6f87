"""Drift: the reference profile training logs, and the service counting requests into its bins."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from iris_example import serve
from mlflow import MlflowClient
from prometheus_client import CollectorRegistry

from nb2prod_runtime import drift
from nb2prod_runtime.drift_counters import DriftCounters, DriftMetrics, counters_for


def test_a_profile_is_bounded_whatever_the_data() -> None:
    rng = np.random.default_rng(0)
    rows = 500
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(drift.MAX_FEATURES + 3)})
    frame.insert(0, "city", [f"city {i % 40}" for i in range(rows)])  # 40 categories
    frame.loc[:99, "x0"] = np.nan
    profile = drift.build(frame, rng.integers(0, 3, rows), "test rows")

    assert len(profile["features"]) == drift.MAX_FEATURES
    assert profile["capped"] == ["x49", "x50", "x51", "x52"]  # named, in column order
    city = profile["features"][0]
    assert city["kind"] == "categorical" and city["categories_capped"]
    assert len(city["bins"]) == drift.MAX_CATEGORIES + 1 and city["bins"][-1] == drift.OTHER
    x0 = profile["features"][1]
    assert x0["missing_rate"] == pytest.approx(0.2)
    assert x0["bins"][0] == drift.BELOW and x0["bins"][-1] == drift.ABOVE
    assert len(x0["bins"]) == drift.QUANTILE_BINS + 2
    for feature in profile["features"]:
        assert sum(feature["shares"]) == pytest.approx(1, abs=0.01)
        assert min(feature["shares"]) >= drift.FLOOR  # PSI's logarithm stays finite
    assert profile["predictions"]["kind"] == "categorical"
    assert profile["predictions"]["bins"] == [*profile["predictions"]["bins"][:3], drift.OTHER]
    assert set(profile["predictions"]["bins"][:3]) == {"0", "1", "2"}
    assert drift.loads(json.dumps(profile)) == profile


def test_values_fall_in_the_bins_training_saw() -> None:
    edges = (0.0, 1.0, 2.0)
    found = drift.numeric_bin_indices(np.array([-1, 0, 0.5, 1, 2, 3]), edges)
    assert found.tolist() == [0, 1, 1, 2, 2, 3]  # the largest training value is in range
    constant = drift.numeric_bin_indices(np.array([4.0, 5.0, 6.0]), (5.0,))
    assert constant.tolist() == [0, 1, 2]


def test_the_training_run_logs_a_profile_of_the_features_and_the_answers(
    trained, tmp_path: Path
) -> None:
    client = MlflowClient(trained.tracking_uri)
    run_id = client.get_model_version("iris_example", trained.version).run_id
    path = client.download_artifacts(run_id, drift.PROFILE_PATH, str(tmp_path))
    profile = drift.loads(Path(path).read_text(encoding="utf-8"))
    names = [feature["name"] for feature in profile["features"]]
    assert names == ["0", "1", "2", "3"]  # the notebook fitted an array: its columns' positions
    assert all(feature["kind"] == "numeric" for feature in profile["features"])
    assert profile["predictions"]["kind"] == "categorical"
    assert set(profile["predictions"]["bins"]) >= {"0", "1", "2"}
    assert client.get_run(run_id).data.tags["drift_profile"] == drift.PROFILE_PATH


@pytest.fixture(scope="module")
def client(trained) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("MLFLOW_TRACKING_URI", trained.tracking_uri)
        yield TestClient(serve.create_app(trained.model_uri))


def sample(metrics: str, name: str, **labels: str) -> float:
    """One series' value on a /metrics page (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match[1] or "").split(","))) == wanted:
            return float(match[2])
    return 0.0


def test_the_service_counts_each_request_into_the_reference_bins(client: TestClient, trained):
    before = client.get("/metrics").text
    record = list(trained.records[0])
    feature = "0"
    record[0] = 1e6  # far above anything training saw
    answered = client.post("/predict", json=[trained.records[0], record])
    assert answered.status_code == 200
    after = client.get("/metrics").text

    assert sample(after, "drift_reference_loaded") == 1
    assert sample(after, "model_trained_timestamp_seconds") > 1.7e9
    outside = "feature_values_outside_training_total"
    assert sample(after, outside, feature=feature) - sample(before, outside, feature=feature) == 1
    above = "feature_bin_observations_total"
    assert sample(after, above, feature=feature, bin=drift.ABOVE) == 1 + sample(
        before, above, feature=feature, bin=drift.ABOVE
    )
    counted = [
        sample(after, "prediction_bin_observations_total", bin=str(answer))
        - sample(before, "prediction_bin_observations_total", bin=str(answer))
        for answer in set(answered.json()["predictions"])
    ]
    assert sum(counted) == 2
    assert 0 < sample(after, "feature_reference_share", feature=feature, bin="q1") <= 1


def test_a_version_without_a_profile_serves_unmeasured(
    tracking: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = MlflowClient(tracking)
    run = client.create_run(client.create_experiment("trained before profiles"))
    metrics = DriftMetrics(CollectorRegistry())
    assert counters_for(metrics, run.info.run_id, "7") is None
    assert metrics.profiled._value.get() == 0
    assert "drift is not measured for model version 7: no reference profile" in caplog.text


def test_categories_and_missing_values_are_counted_by_name() -> None:
    training = pd.DataFrame({"city": ["Oslo", "Lima", "Oslo", "Pune"], "age": [30, 41, 25, 52]})
    profile = drift.build(training, np.array([0, 1, 0, 1]), "test rows")
    registry = CollectorRegistry()
    counters = DriftCounters(DriftMetrics(registry), profile)
    request = pd.DataFrame({"age": [35, None, 90], "city": ["Oslo", "Quito", None]})
    counters.observe(request, [1, 0, 1])
    counters.flush()  # what a scrape of the process does first

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert value("feature_bin_observations_total", feature="city", bin="Oslo") == 1
    assert value("feature_bin_observations_total", feature="city", bin=drift.OTHER) == 1
    assert value("feature_values_outside_training_total", feature="city") == 1  # Quito
    assert value("feature_missing_values_total", feature="city") == 1
    assert value("feature_missing_values_total", feature="age") == 1
    assert value("feature_values_outside_training_total", feature="age") == 1  # 90 > 52
    assert value("prediction_bin_observations_total", bin="1") == 2
    assert value("feature_reference_share", feature="city", bin="Oslo") == 0.5


def test_one_row_and_a_batch_are_counted_alike() -> None:
    """A small request is binned in Python, a large one by numpy: the same bins either way."""
    rng = np.random.default_rng(1)
    training = pd.DataFrame({"a": rng.normal(size=300), "b": rng.integers(0, 5, 300)})
    profile = drift.build(training, rng.integers(0, 2, 300), "test rows")
    request = pd.DataFrame({"b": [9, 0, 2] * 10, "a": [-9.0, 0.1, np.nan] * 10})
    answers = [0, 1, 1] * 10

    def counted(rows: list[int]) -> dict[tuple[str, ...], float]:
        registry = CollectorRegistry()
        counters = DriftCounters(DriftMetrics(registry), profile)
        size = 30 // len(rows)
        for start in rows:
            counters.observe(request.iloc[start : start + size], answers[start : start + size])
        counters.flush()
        return {
            (sample.name, *sample.labels.values()): sample.value
            for metric in registry.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        }

    assert counted(list(range(30))) == counted([0])  # 30 one-row requests, one of 30 rows


def test_counts_reach_the_series_without_a_scrape() -> None:
    """Another worker's scrape reads this process's series, not what it holds: the counts
    are flushed to them in the background about once a second."""
    training = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    registry = CollectorRegistry()
    counters = DriftCounters(DriftMetrics(registry), drift.build(training, [0, 1, 0, 1], "rows"))
    counters.observe(pd.DataFrame({"a": [2.5]}), [1])
    labels = {"feature": "a"}
    deadline = time.monotonic() + 10
    while not sum(
        registry.get_sample_value("feature_bin_observations_total", {**labels, "bin": label}) or 0
        for label in counters.features[0].bins
    ):
        assert time.monotonic() < deadline, "the count never reached the series"
        time.sleep(0.05)


def test_a_replaced_versions_reference_shows_zero_and_the_new_one_its_shares() -> None:
    """When the alias moves, the old profile's bins show a share of 0 (the recording rules skip
    them) and the new profile's bins, some of them the same series, show the new shares."""
    registry = CollectorRegistry()
    metrics = DriftMetrics(registry)
    old = DriftCounters(metrics, drift.build(pd.DataFrame({"city": ["Oslo", "Lima"]}), [0, 1], ""))
    new = DriftCounters(metrics, drift.build(pd.DataFrame({"city": ["Lima", "Pune"]}), [0, 1], ""))
    old.withdraw()
    new.publish()

    def share(bin_label: str) -> float | None:
        labels = {"feature": "city", "bin": bin_label}
        return registry.get_sample_value("feature_reference_share", labels)

    assert share("Oslo") == 0
    assert share("Lima") == share("Pune") == 0.5


def test_a_batch_bins_every_numeric_feature_at_once_as_one_value_is_binned() -> None:
    """Edges, the largest training value, a constant feature, infinities and NaN: the batch's
    one matrix of edges bins as each feature's own edges do."""
    features = [
        drift.Binned("a", "numeric", ("below", "q1", "q2", "above"), (0.25,) * 4, (0, 1, 2)),
        drift.Binned("c", "numeric", ("below", "q1", "above"), (0.3,) * 3, (5.0,)),
    ]
    values = [[-1, 4], [0, 5], [0.5, 6], [1, 5], [2, np.inf], [3, -np.inf], [np.inf, np.nan]]
    bins, missing = drift.NumericBatch(features).count(np.array(values, dtype=float))
    one_by_one = [
        np.bincount(
            [feature.index_of(row[index]) for row in values if not np.isnan(row[index])],
            minlength=len(feature.bins),
        ).tolist()
        for index, feature in enumerate(features)
    ]
    assert bins == one_by_one == [[1, 2, 2, 2], [2, 2, 2]]
    assert missing == [0, 1]


def test_loaded_columns_the_model_does_not_get_are_counted_on_raw_requests_only() -> None:
    """/predict/raw's feature code reads `city`, which the model gets only as `city_code`: the
    profile holds it after the model's features, a model-input request (a frame or an array,
    one row or many) is counted as before, and a raw request counts `city` as well."""
    training = pd.DataFrame({"city_code": [0, 1, 0, 2], "age": [30, 41, 25, 52]})
    training["city"] = ["Oslo", "Lima", "Oslo", "Pune"]
    profile = drift.build(training, [0, 1, 0, 1], "rows", raw_columns=["city"])
    assert [entry.get("raw", False) for entry in profile["features"]] == [False, False, True]
    registry = CollectorRegistry()
    counters = DriftCounters(DriftMetrics(registry), profile)
    counters.observe(np.array([[0.0, 35.0], [1.0, 90.0]]), [1, 0])
    counters.observe(pd.DataFrame({"city_code": [1], "age": [41]}), [1])
    counters.observe(pd.DataFrame({"city_code": [1], "age": [41], "city": ["Quito"]}), [1])
    counters.flush()

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert value("feature_values_outside_training_total", feature="age") == 1  # 90 > 52
    assert value("feature_bin_observations_total", feature="city", bin=drift.OTHER) == 1
    assert value("feature_values_outside_training_total", feature="city") == 1  # Quito
    assert value("feature_missing_values_total", feature="city") == 0  # not counted as missing
    assert value("prediction_bin_observations_total", bin="1") == 3
