"""Automatic rollback through a real Alertmanager, on the generated configuration.

A sample is converted and trained once into a sqlite store; the version is registered a second
time from the same run with the same tags (a retrained twin), and the gate promotes both, so
@champion is version 2 with version 1 before it. The generated service serves @champion with a
rollback token; Alertmanager runs the generated monitoring/alertmanager.yml, in which only the
webhook's address (the test's port) and the token file's path change. An alert is posted to
Alertmanager as Prometheus posts it; Alertmanager routes it by its rollback="true" label to the
service's POST /rollback with the bearer token, and the service moves @champion back and serves
version 1 without a restart.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import (
    SAMPLES,
    background,
    free_port,
    run_beside_package,
    train_package,
    wait_until_answers,
)
from mlflow import MlflowClient

from nb2prod.backend.render import convert

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="Alertmanager is not installed (Debian package 'prometheus-alertmanager'; .ci/run "
    "installs it)",
)

SAMPLE = "tumor_classifier"
TOKEN = "rollback-token-for-the-test"
DEADLINE = 90.0  # the route's group_wait is 10 s

# The version trained, registered again from the same run with the same tags: a retrained twin
# the gate passes as it passed the first.
REGISTER_TWIN = f"""
from mlflow import MlflowClient
client = MlflowClient()
trained = client.get_model_version("{SAMPLE}", "1")
twin = client.create_model_version(
    "{SAMPLE}", trained.source, run_id=trained.run_id, tags=trained.tags
)
print(twin.version)
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(SAMPLES / f"{SAMPLE}.ipynb", tmp_path_factory.mktemp("live") / SAMPLE).target


@pytest.fixture(scope="module")
def work(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store where the gate passed version 1, then version 2: @champion is version 2."""
    work = tmp_path_factory.mktemp("work")
    trained = train_package(package, work, "--cross-validation-folds", "0")
    assert trained.returncode == 0, trained.stderr[-3000:]
    twin = run_beside_package(package, work, REGISTER_TWIN)
    assert twin.stdout.split()[-1:] == ["2"], twin.stderr[-3000:]
    for version in ("1", "2"):
        code = (
            f"from {SAMPLE}.promote import main\nraise SystemExit(main(['--version', '{version}']))"
        )
        promoted = run_beside_package(package, work, code)
        assert promoted.returncode == 0, promoted.stderr[-3000:]
    return work


def champion(work: Path) -> str:
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    return str(client.get_model_version_by_alias(SAMPLE, "champion").version)


@pytest.fixture(scope="module")
def service(package: Path, work: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "PYTHONPATH": str(package),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "ROLLBACK_TOKEN": TOKEN,
    }
    command = [sys.executable, "-m", "uvicorn", f"{SAMPLE}.serve:app", "--host", "127.0.0.1"]
    log = work / "service.log"
    with background([*command, "--port", str(port)], cwd=work, env=env, log=log) as process:
        wait_until_answers(f"http://127.0.0.1:{port}/ready", process, log)
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def alertmanager(package: Path, service: str, tmp_path_factory: pytest.TempPathFactory):
    """Alertmanager on the generated config: only the webhook's address and token path move."""
    assert ALERTMANAGER is not None
    folder = tmp_path_factory.mktemp("alertmanager")
    config = yaml.safe_load((package / "monitoring" / "alertmanager.yml").read_text("utf-8"))
    (receiver,) = [r for r in config["receivers"] if r["name"] == "rollback"]
    (webhook,) = receiver["webhook_configs"]
    webhook["url"] = f"http://{service}/rollback"
    authorization = webhook["http_config"]["authorization"]
    (folder / authorization["credentials_file"]).write_text(TOKEN, encoding="utf-8")
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    address = f"127.0.0.1:{free_port()}"
    command = [
        ALERTMANAGER,
        "--config.file=alertmanager.yml",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",  # one instance, no gossip port
    ]
    log = folder / "alertmanager.log"
    with background(command, cwd=folder, log=log) as process:
        wait_until_answers(f"http://{address}/-/ready", process, log)
        yield f"http://{address}", log


def test_a_firing_claim_alert_rolls_the_champion_back_and_the_service_follows(
    work: Path, service: str, alertmanager: tuple[str, Path]
) -> None:
    url, log = alertmanager
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    assert champion(work) == "2"
    assert httpx.get(f"http://{service}/health", timeout=10).json()["model_version"] == "2"

    alert = {
        "labels": {
            "alertname": "ClaimNotHolding",
            "rollback": "true",
            "severity": "critical",
            "job": SAMPLE,
            "metric": "accuracy",
            "model_version": "2",
        },
        "annotations": {"summary": f"{SAMPLE}'s accuracy claim does not hold in production"},
        "startsAt": datetime.now(UTC).isoformat(),
    }
    posted = httpx.post(f"{url}/api/v2/alerts", json=[alert], timeout=10)
    assert posted.status_code == 200, posted.text

    # The alias moves first, then both versions are tagged with why: wait for the record too.
    deadline = time.monotonic() + DEADLINE
    while (
        champion(work) != "1" or "restored_from" not in client.get_model_version(SAMPLE, "1").tags
    ):
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    left = client.get_model_version(SAMPLE, "2").tags
    assert left["promotion_decision"] == "rolled back"
    assert left["rollback_reason"].startswith("alert ClaimNotHolding")
    assert client.get_model_version(SAMPLE, "1").tags["restored_from"] == "2"
    # The worker that took the webhook loads version 1, checks it predicts, then swaps: no
    # restart, and requests meanwhile are answered by version 2.
    while httpx.get(f"http://{service}/health", timeout=10).json()["model_version"] != "1":
        assert time.monotonic() < deadline, "the service never served the restored version"
        time.sleep(0.5)
