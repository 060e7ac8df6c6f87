"""The generated monitoring against a real Prometheus scraping the real generated service.

One trained model is served twice: the promoted version, whose honesty tags are complete, and
the same model registered again by hand without them, the response path that lacks honesty
labels. A third target listens nowhere: a service that is down. Prometheus runs a copy of the
generated prometheus.yml in which only the intervals (1 s instead of 15 s) and the targets
change; its rule_files point at the generated alerts.yml itself. No alert rule is rewritten:
MissingHonestyLabels has no `for:` (one response without its honesty fields already breaks
the contract), so it fires on the first evaluation that sees the counter rise.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import (
    SAMPLES,
    background,
    free_port,
    fresh_venv,
    install_into,
    run,
    store_in,
    wait_until_answers,
)
from prometheus_client.parser import text_string_to_metric_families
from test_generated_monitoring import alert_rules, dashboard, load_yaml, metric_names, recorded

from nb2prod.backend.render import convert

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the Prometheus server is not installed (Debian package 'prometheus'; .ci/run "
    "installs it)",
)

SAMPLE = "tumor_classifier"
DEADLINE = 90.0  # seconds before a wait gives up; a 1 s scrape normally settles in 2
RATE_WINDOW = "10m"  # for Grafana's $__rate_interval: longer than this module runs


@dataclass(frozen=True)
class Targets:
    """What Prometheus scrapes, as host:port (its `instance` label)."""

    compliant: str
    lacking: str
    down: str


@dataclass(frozen=True)
class Traffic:
    responses: list[dict[str, Any]]  # bodies of the 200 answers from /predict
    rows: int  # records predicted
    rejected: int = 0  # requests answered 422
    alerts_before: list[dict[str, Any]] = field(default_factory=list)  # MissingHonestyLabels


def eventually(probe: Callable[[], bool], failure: Callable[[], str]) -> None:
    """Poll until `probe` holds: a scrape or an evaluation lands within a second or two."""
    deadline = time.monotonic() + DEADLINE
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {DEADLINE:.0f} s: {failure()}")
        time.sleep(0.2)


@dataclass(frozen=True)
class Prometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; a query Prometheus rejects fails the test with its error."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    def values(self, expr: str, *by: str) -> dict[tuple[str, ...], float]:
        """The result as {label values named by `by`: value}."""
        return {
            tuple(series["metric"].get(label, "") for label in by): float(series["value"][1])
            for series in self.query(expr)
        }

    def settles(self, expr: str, expected: dict[tuple[str, ...], float], *by: str) -> None:
        """Wait until the scraped values are exactly `expected` (the traffic has been sent)."""
        seen: list[dict[tuple[str, ...], float]] = [{}]

        def matches() -> bool:
            seen[0] = self.values(expr, *by)
            return seen[0] == expected

        eventually(matches, lambda: f"{expr} = {seen[0]}, expected {expected}")

    def rules(self) -> dict[str, dict[str, Any]]:
        groups = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return {rule["name"]: rule for group in groups for rule in group["rules"]}

    def alerts(self, name: str) -> list[dict[str, Any]]:
        alerts = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return [alert for alert in alerts if alert["labels"]["alertname"] == name]

    def wait_for_evaluation(self) -> None:
        """Wait until every rule has been evaluated after now, on the data scraped so far."""
        now = datetime.now(UTC)

        def evaluated() -> bool:
            evaluations = [rule["lastEvaluation"] for rule in self.rules().values()]
            return all(datetime.fromisoformat(moment) > now for moment in evaluations)

        eventually(evaluated, lambda: f"rules not evaluated since {now}: {self.rules()}")


def distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def prometheus_config(monitoring: Path, targets: list[str]) -> dict[str, Any]:
    """The generated prometheus.yml, scraping `targets` every second, with its own alerts."""
    config = load_yaml(monitoring / "prometheus.yml")
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(monitoring / name) for name in config["rule_files"]]
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    static["targets"] = targets
    return config


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(SAMPLES / f"{SAMPLE}.ipynb", tmp_path_factory.mktemp("live") / SAMPLE).target


@pytest.fixture(scope="module")
def python(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = fresh_venv(tmp_path_factory.mktemp("venv"))
    install_into(python, package)
    return python


# What a user does by hand with MlflowClient: the trained model, registered once more.
REGISTER_WITHOUT_TAGS = f"""
import mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
client = mlflow.MlflowClient()
trained = client.get_model_version("{SAMPLE}", "1")
again = client.create_model_version("{SAMPLE}", trained.source, run_id=trained.run_id)
print(again.version, sorted(again.tags))
"""


@pytest.fixture(scope="module")
def store(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder whose MLflow store holds version 1, trained and promoted, and version 2:
    the same model registered by hand, so without the honesty tags training writes."""
    work = tmp_path_factory.mktemp("work")
    store_in(work)
    training = ("-m", f"{SAMPLE}.train", "--cross-validation-folds", "0")
    for args in (training, ("-m", f"{SAMPLE}.promote")):
        done = run(python, *args, cwd=work)
        assert done.returncode == 0, done.stderr[-3000:]
    registered = run(python, "-c", REGISTER_WITHOUT_TAGS, cwd=work)
    assert registered.stdout.splitlines()[-1:] == ["2 []"], registered.stderr[-3000:]
    return work


@pytest.fixture(scope="module")
def records(python: Path, store: Path) -> list[dict[str, Any]]:
    done = run(
        python,
        "-c",
        f"from {SAMPLE} import pipeline\n"
        "print(pipeline.run(pipeline.Parameters()).model_input.iloc[:3].to_json(orient='records'))",
        cwd=store,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def ports() -> list[int]:
    """Compliant service, lacking service, the down target, Prometheus: never the same port."""
    return distinct_free_ports(4)


@pytest.fixture(scope="module")
def targets(
    python: Path, store: Path, ports: list[int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Targets]:
    """The two services, started together (loading a model takes seconds), and a dead port."""
    logs = tmp_path_factory.mktemp("services")
    served = {"compliant": {}, "lacking": {"MODEL_URI": f"models:/{SAMPLE}/2"}}
    with contextlib.ExitStack() as stack:
        started = []
        for (name, env), port in zip(served.items(), ports[:2], strict=True):
            command = [python, "-m", "uvicorn", f"{SAMPLE}.serve:app", "--port", str(port)]
            command += ["--host", "127.0.0.1"]
            log = logs / f"{name}.log"
            process = stack.enter_context(background(command, cwd=store, env=env, log=log))
            started.append((f"http://127.0.0.1:{port}/health", process, log))
        for url, process, log in started:
            wait_until_answers(url, process, log)
        yield Targets(*(f"127.0.0.1:{port}" for port in ports[:3]))


@pytest.fixture(scope="module")
def prometheus(
    package: Path, targets: Targets, ports: list[int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    """Prometheus on the generated config, once it has scraped every target a first time."""
    assert PROMETHEUS is not None
    folder = tmp_path_factory.mktemp("prometheus")
    instances = [targets.compliant, targets.lacking, targets.down]
    config = prometheus_config(package / "monitoring", instances)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    address = f"127.0.0.1:{ports[3]}"
    command = [
        PROMETHEUS,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address={address}",
    ]
    log = folder / "prometheus.log"
    with background(command, cwd=folder, env={}, log=log) as process:
        wait_until_answers(f"http://{address}/-/ready", process, log)
        server = Prometheus(f"http://{address}")
        server.settles(
            f'up{{job="{SAMPLE}"}}',
            {(targets.compliant,): 1, (targets.lacking,): 1, (targets.down,): 0},
            "instance",
        )
        yield server


def predict(instance: str, payload: Any) -> httpx.Response:
    return httpx.post(f"http://{instance}/predict", json=payload, timeout=30)


def wait_until_scraped(prometheus: Prometheus, instance: str, rows: int) -> None:
    """Until Prometheus holds every row predicted, then two scrapes more: a series the traffic
    created (a new status code...) needs two samples before rate() can draw it."""
    on = f'instance="{instance}"'
    prometheus.settles(f"sum(predictions_total{{{on}}})", {(): rows})
    scrapes = f"count_over_time(up{{{on}}}[{RATE_WINDOW}])"
    (done,) = prometheus.values(scrapes).values()
    eventually(
        lambda: prometheus.values(scrapes)[()] >= done + 2,
        lambda: f"{instance}: not two scrapes more than the {done:.0f} before",
    )


def answered(answers: list[httpx.Response], status: int) -> list[httpx.Response]:
    return [answer for answer in answers if answer.status_code == status]


# Prometheus counts a counter's increments from its first sample on. The service creates its
# series at 0 when it starts (for http_requests_total: the prediction routes' 200 and 5xx);
# other series (a 422) appear on their first request: one request of each kind goes first,
# and is scraped before the rest.


@pytest.fixture(scope="module")
def compliant_traffic(
    targets: Targets, records: list[dict[str, Any]], prometheus: Prometheus
) -> Traffic:
    """Single records, batches of three and malformed records (answered 422)."""
    malformed = {**records[0], next(iter(records[0])): "not a number"}
    answers = [predict(targets.compliant, records[0]), predict(targets.compliant, malformed)]
    wait_until_scraped(prometheus, targets.compliant, rows=1)
    answers += [predict(targets.compliant, records[i % 3]) for i in range(1, 5)]
    answers += [predict(targets.compliant, records) for _ in range(2)]
    answers.append(predict(targets.compliant, malformed))
    ok, rejected = answered(answers, 200), answered(answers, 422)
    assert (len(ok), len(rejected)) == (7, 2), answers[-1].text
    # every answer's outcome fed back as what the model said: a live accuracy of 1
    outcomes = [
        {"prediction_id": token, "outcome": prediction}
        for body in (answer.json() for answer in ok)
        for token, prediction in zip(body["prediction_ids"], body["predictions"], strict=True)
    ]
    fed = httpx.post(f"http://{targets.compliant}/feedback", json=outcomes, timeout=30)
    assert fed.json() == {"counted": 11, "metric": "accuracy"}
    wait_until_scraped(prometheus, targets.compliant, rows=11)
    return Traffic([answer.json() for answer in ok], rows=11, rejected=len(rejected))


@pytest.fixture(scope="module")
def lacking_traffic(
    targets: Targets, records: list[dict[str, Any]], prometheus: Prometheus
) -> Traffic:
    """Three records answered by the model version without honesty tags, once Prometheus has
    seen its counter of such responses at 0 (the service creates it at start) and the alerts
    have been evaluated on that."""
    on = f'instance="{targets.lacking}"'
    prometheus.settles(f"sum(missing_honesty_labels_total{{{on}}})", {(): 0})
    prometheus.wait_for_evaluation()
    before = prometheus.alerts("MissingHonestyLabels")
    answers = [predict(targets.lacking, records[0])]
    wait_until_scraped(prometheus, targets.lacking, rows=1)
    answers += [predict(targets.lacking, record) for record in records[1:]]
    ok = answered(answers, 200)
    assert len(ok) == 3, answers[-1].text
    wait_until_scraped(prometheus, targets.lacking, rows=3)
    return Traffic([answer.json() for answer in ok], rows=3, alerts_before=before)


def test_error_series_are_scraped_at_zero_before_the_first_error(
    targets: Targets, prometheus: Prometheus
) -> None:
    """Otherwise the first 5xx of a fresh service are invisible to rate() and HighErrorRate."""
    on = f'instance="{targets.lacking}", status=~"5.."'
    expected = {
        (endpoint, status): 0.0
        for endpoint in ("/predict", "/invocations", "/predict/raw")  # the sample's routes
        for status in ("500", "503", "504")
    }
    prometheus.settles(f"http_requests_total{{{on}}}", expected, "endpoint", "status")


def test_prometheus_counts_the_predictions_served(
    prometheus: Prometheus, targets: Targets, compliant_traffic: Traffic
) -> None:
    on = f'instance="{targets.compliant}"'
    answered = len(compliant_traffic.responses)
    prometheus.settles(
        f"sum by (implementation_status, model_version) (predictions_total{{{on}}})",
        {("IMPLEMENTED", "1"): compliant_traffic.rows},
        "implementation_status",
        "model_version",
    )
    prometheus.settles(
        f"honesty_compliant_responses_total{{{on}}}", {("IMPLEMENTED",): answered}, "status_value"
    )
    prometheus.settles(f"sum(missing_honesty_labels_total{{{on}}})", {(): 0})
    prometheus.settles(
        f'sum by (status) (http_requests_total{{{on}, endpoint="/predict"}})',
        {("200",): answered, ("422",): compliant_traffic.rejected}
        | {(error,): 0 for error in ("500", "503", "504")},
        "status",
    )
    assert all(
        body["implementation_status"] == "IMPLEMENTED" for body in compliant_traffic.responses
    )


def test_the_latency_histogram_is_the_services_own(
    prometheus: Prometheus, targets: Targets, compliant_traffic: Traffic
) -> None:
    """Every bucket Prometheus holds is the one the service exports; a quantile falls in it."""
    on = f'instance="{targets.compliant}"'
    answered = len(compliant_traffic.responses)
    prometheus.settles(f"prediction_latency_seconds_count{{{on}}}", {(): answered})
    exported = httpx.get(f"http://{targets.compliant}/metrics", timeout=10).text
    buckets = {
        (sample.labels["le"],): sample.value
        for family in text_string_to_metric_families(exported)
        for sample in family.samples
        if sample.name == "prediction_latency_seconds_bucket"
    }
    assert buckets[("+Inf",)] == answered
    assert prometheus.values(f"prediction_latency_seconds_bucket{{{on}}}", "le") == buckets
    p99 = prometheus.values(
        f"histogram_quantile(0.99, sum by (le) (prediction_latency_seconds_bucket{{{on}}}))"
    )[()]
    bucket_of_p99 = min(float(le) for (le,), count in buckets.items() if count >= 0.99 * answered)
    assert 0 < p99 <= bucket_of_p99


def test_responses_without_honesty_fields_are_counted_and_fire_the_alert(
    prometheus: Prometheus, targets: Targets, lacking_traffic: Traffic
) -> None:
    assert lacking_traffic.alerts_before == []
    assert all(
        body["implementation_status"] is None and body["accuracy_claim"] is None
        for body in lacking_traffic.responses
    )
    assert httpx.get(f"http://{targets.lacking}/ready", timeout=10).status_code == 503
    on = f'instance="{targets.lacking}"'
    answered = len(lacking_traffic.responses)
    prometheus.settles(f'missing_honesty_labels_total{{{on}, endpoint="/predict"}}', {(): answered})
    prometheus.settles(
        f"sum by (implementation_status, model_version) (predictions_total{{{on}}})",
        {("unknown", "2"): lacking_traffic.rows},
        "implementation_status",
        "model_version",
    )
    assert prometheus.values(f"honesty_compliant_responses_total{{{on}}}") == {}

    prometheus.wait_for_evaluation()  # no `for:`: the first evaluation seeing the rise fires
    rule = prometheus.rules()["MissingHonestyLabels"]
    assert rule["state"] == "firing", rule
    (alert,) = rule["alerts"]
    assert alert["state"] == "firing"
    assert alert["labels"] == {
        "alertname": "MissingHonestyLabels",
        "severity": "critical",
        "rollback": "true",  # Alertmanager sends it to the service's POST /rollback
        "job": SAMPLE,
        "instance": targets.lacking,
        "endpoint": "/predict",
    }
    assert float(alert["value"]) >= answered  # increase() extrapolates; it never undercounts
    assert (
        f"on /predict from {targets.lacking} lacked a field" in alert["annotations"]["description"]
    )


def test_model_service_down_is_raised_for_the_target_that_is_down_only(
    prometheus: Prometheus, targets: Targets
) -> None:
    """Pending for its first minute (`for: 1m`), then firing: either way, on this target only."""
    prometheus.wait_for_evaluation()
    assert [alert["labels"] for alert in prometheus.alerts("ModelServiceDown")] == [
        {
            "alertname": "ModelServiceDown",
            "severity": "critical",
            "job": SAMPLE,
            "instance": targets.down,
        }
    ]


def test_every_generated_alert_rule_is_loaded_and_evaluates(
    prometheus: Prometheus, package: Path, compliant_traffic: Traffic, lacking_traffic: Traffic
) -> None:
    prometheus.wait_for_evaluation()
    generated = set(alert_rules(package / "monitoring")) | recorded(package / "monitoring")
    health = {
        name: (rule["health"], rule.get("lastError", ""))
        for name, rule in prometheus.rules().items()
    }
    assert health == {name: ("ok", "") for name in generated}


def test_prometheus_computes_drift_from_both_services_counts(
    prometheus: Prometheus,
    records: list[dict[str, Any]],
    compliant_traffic: Traffic,
    lacking_traffic: Traffic,
) -> None:
    """Every prediction is counted into a bin of the reference profile, and the recording rules
    turn the counts of both services into one PSI per feature and one for the predictions."""
    rows = compliant_traffic.rows + lacking_traffic.rows
    prometheus.settles("sum(prediction_bin_observations_total)", {(): rows})
    prometheus.settles('sum(feature_bin_observations_total{feature="mean radius"})', {(): rows})
    assert prometheus.values("max(drift_reference_loaded)") == {(): 1.0}
    assert prometheus.values("min(model_trained_timestamp_seconds)")[()] > 1.7e9
    prometheus.wait_for_evaluation()
    psi = prometheus.values("feature_drift_psi", "feature")
    assert ("mean radius",) in psi and all(map(math.isfinite, psi.values()))
    assert set(psi) == {(name,) for name in records[0]}  # one per column of the model input
    (prediction_psi,) = prometheus.values("prediction_drift_psi").values()
    # 14 answers of a classifier trained on about 60% benign tumours: finite, and not 0
    assert math.isfinite(prediction_psi) and prediction_psi > 0


def test_the_live_metric_stands_beside_the_claim(
    prometheus: Prometheus, targets: Targets, compliant_traffic: Traffic
) -> None:
    on = f'instance="{targets.compliant}"'
    prometheus.settles(f"sum(live_outcomes_total{{{on}}})", {(): 11})
    prometheus.wait_for_evaluation()
    assert prometheus.values("live_metric", "metric", "model_version") == {("accuracy", "1"): 1.0}
    (claim,) = prometheus.values('claim:value{metric="accuracy"}').values()
    (bound,) = prometheus.values('claim:bound{metric="accuracy"}').values()
    assert 0.5 < bound <= claim <= 1
    assert prometheus.alerts("ClaimNotHolding") == []  # right every time, and 11 < 50 anyway


def panel_queries(package: Path) -> dict[str, list[str]]:
    """Each panel's PromQL, with the interval Grafana would substitute."""
    return {
        panel["title"]: [
            target["expr"].replace("$__rate_interval", RATE_WINDOW) for target in panel["targets"]
        ]
        for panel in dashboard(package / "monitoring")["panels"]
    }


def shown(prometheus: Prometheus, expr: str) -> list[float]:
    return [float(series["value"][1]) for series in prometheus.query(expr)]


def test_every_dashboard_query_shows_data_after_traffic(
    prometheus: Prometheus, package: Path, compliant_traffic: Traffic, lacking_traffic: Traffic
) -> None:
    """Every panel query is valid PromQL for Prometheus and has a number to draw."""
    without_numbers = {
        expr: values
        for exprs in panel_queries(package).values()
        for expr in exprs
        if not (values := shown(prometheus, expr)) or not all(map(math.isfinite, values))
    }
    assert without_numbers == {}


@pytest.mark.parametrize(("service", "compliant_share"), [("compliant", 1.0), ("lacking", 0.0)])
def test_the_dashboard_of_one_service_shows_its_honesty(
    service: str,
    compliant_share: float,
    prometheus: Prometheus,
    package: Path,
    targets: Targets,
    compliant_traffic: Traffic,
    lacking_traffic: Traffic,
) -> None:
    """Narrowed to one service, as a Grafana instance filter would, every panel still has data,
    and the compliance stat reads 100% for the service with its tags, 0% for the one without.
    Drift is the job's, not an instance's: its panels read series the recording rules made from
    every replica's counts, which have no instance to narrow to."""
    instance = getattr(targets, service)
    job = f'job="{SAMPLE}"'
    made = recorded(package / "monitoring")
    panels = {
        title: [expr.replace(job, f'{job}, instance="{instance}"') for expr in exprs]
        for title, exprs in panel_queries(package).items()
        if not all(metric_names(expr) <= made for expr in exprs)
    }
    assert len(panels) == len(panel_queries(package)) - 3  # drift twice, the claim
    empty = [
        title for title, exprs in panels.items() if not any(shown(prometheus, e) for e in exprs)
    ]
    assert empty == []
    (share,) = panels["Honesty-compliant responses"]
    assert shown(prometheus, share) == [compliant_share]
