"""The generated compose.yaml: a team's whole loop (MLflow on PostgreSQL, the service,
Prometheus with its alerts) on one machine.

It is read as users read it: by podman-compose (`podman compose` runs it), and against the
Compose specification's JSON schema (as docker-compose 1.29.2 ships it, fetched by
.ci/fetch-schemas: the newest a package registry holds; the file uses nothing newer, so it
names no top-level `name:`). Its Prometheus
configuration is checked by promtool. It is not started here: the PostgreSQL and Prometheus
images come from a container registry, and none is reachable from this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import SAMPLES, fetched_schema

from nb2prod.backend.render import convert

PODMAN_COMPOSE = shutil.which("podman-compose")
PODMAN = shutil.which("podman")
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
HADOLINT = shutil.which("hadolint")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("compose") / "tumor_classifier"
    return convert(SAMPLES / "tumor_classifier.ipynb", target).target


@pytest.fixture(scope="module")
def compose(package: Path) -> dict[str, Any]:
    return yaml.safe_load((package / "compose.yaml").read_text(encoding="utf-8"))


def podman_compose(package: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "MLFLOW_DB_PASSWORD"}
    return subprocess.run(
        [str(PODMAN_COMPOSE), "config"],
        cwd=package,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    PODMAN_COMPOSE is None or PODMAN is None,
    reason="podman-compose and podman are needed (the test extra, Debian 'podman')",
)
def test_podman_compose_reads_the_stack_and_asks_for_the_database_password(
    package: Path,
) -> None:
    done = podman_compose(package, {"MLFLOW_DB_PASSWORD": "local-only"})
    assert done.returncode == 0, done.stdout + done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) == {
        "database",
        "mlflow",
        "service",
        "prometheus",
        "alertmanager",
    }
    store = resolved["services"]["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert store == "postgresql://mlflow:local-only@database:5432/mlflow"

    unset = podman_compose(package, {})
    assert unset.returncode != 0
    assert "MLFLOW_DB_PASSWORD" in unset.stdout + unset.stderr  # said, not a blank password


def test_the_stack_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(fetched_schema("compose_spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)  # as its `$schema` says, misspelt
    validator.validate(compose)
    broken = {**compose, "services": {**compose["services"], "service": {"buid": "."}}}
    with pytest.raises(jsonschema.ValidationError, match="buid"):
        validator.validate(broken)


def test_the_service_reaches_the_team_server_and_no_secret_is_written(
    package: Path, compose: dict[str, Any]
) -> None:
    services = compose["services"]
    service = services["service"]
    assert service["build"] == "."  # the package's own Dockerfile
    assert service["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert service["environment"]["MODEL_URI"] == "models:/tumor_classifier@champion"
    mlflow = services["mlflow"]["environment"]
    assert mlflow["MLFLOW_SERVE_ARTIFACTS"] == "true"  # clients never touch the server's disk
    assert "mlflow:5000" in mlflow["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert mlflow["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"  # a tracking server only
    # The database password comes from the user's environment (or .env), and compose stops
    # with its name when it is not set: no value is written here.
    asked = "${MLFLOW_DB_PASSWORD:?"
    assert services["database"]["environment"]["POSTGRES_PASSWORD"].startswith(asked)
    assert f"postgresql://mlflow:{asked}" in mlflow["MLFLOW_BACKEND_STORE_URI"]
    # Ports are published on the loopback interface only: a try-out stack, not a deployment.
    ports = [port for s in services.values() for port in s.get("ports", [])]
    assert ports and all(port.startswith("127.0.0.1:") for port in ports)


def test_the_mlflow_image_runs_the_mlflow_the_package_trains_with(package: Path) -> None:
    pinned = [
        line
        for line in (package / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith("mlflow==")
    ]
    dockerfile = (package / "deploy" / "compose" / "mlflow.Dockerfile").read_text(encoding="utf-8")
    assert pinned and f'"{pinned[0]}"' in dockerfile
    assert "psycopg[binary]==" in dockerfile  # the PostgreSQL driver SQLAlchemy 2 picks, pinned
    if HADOLINT is not None:
        done = subprocess.run(
            [HADOLINT, "--no-color", "deploy/compose/mlflow.Dockerfile"],
            cwd=package,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian 'prometheus')")
def test_prometheus_scrapes_the_service_under_the_job_the_alerts_select(
    package: Path, compose: dict[str, Any], tmp_path: Path
) -> None:
    config = package / "deploy" / "compose" / "prometheus.yml"
    mounts = dict(
        volume.removesuffix(":ro").split(":")
        for volume in compose["services"]["prometheus"]["volumes"]
    )
    assert mounts == {
        "./deploy/compose/prometheus.yml": "/etc/prometheus/prometheus.yml",
        "./monitoring/alerts.yml": "/etc/prometheus/alerts.yml",
    }
    shutil.copy(config, tmp_path / "prometheus.yml")
    shutil.copy(package / "monitoring" / "alerts.yml", tmp_path / "alerts.yml")
    done = subprocess.run(
        [str(PROMTOOL), "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (job,) = yaml.safe_load(config.read_text(encoding="utf-8"))["scrape_configs"]
    local = yaml.safe_load((package / "monitoring" / "prometheus.yml").read_text(encoding="utf-8"))
    assert job["job_name"] == local["scrape_configs"][0]["job_name"]
    assert job["static_configs"][0]["targets"] == ["service:8000"]
    alerting = yaml.safe_load(config.read_text(encoding="utf-8"))["alerting"]
    assert alerting["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed (Debian package "
                    "'prometheus-alertmanager'; .ci/run installs it)")  # fmt: skip
def test_alertmanager_sends_rollback_alerts_to_the_service_with_the_services_token(
    package: Path, compose: dict[str, Any], tmp_path: Path
) -> None:
    alertmanager = compose["services"]["alertmanager"]
    service = compose["services"]["service"]
    assert service["environment"]["ROLLBACK_TOKEN"] == "${ROLLBACK_TOKEN:-}"
    assert alertmanager["environment"]["ROLLBACK_TOKEN"] == "${ROLLBACK_TOKEN:-}"
    (mount,) = alertmanager["volumes"]
    assert mount == "./deploy/compose/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
    config = yaml.safe_load((package / "deploy/compose/alertmanager.yml").read_text("utf-8"))
    (webhook,) = config["receivers"][1]["webhook_configs"]
    assert webhook["url"] == "http://service:8000/rollback"
    token_file = webhook["http_config"]["authorization"]["credentials_file"]
    assert f"> {token_file}" in alertmanager["command"][0]  # the entrypoint writes it
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [str(AMTOOL), "check-config", "alertmanager.yml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
