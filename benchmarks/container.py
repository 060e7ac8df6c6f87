"""Build and run a generated package's image with podman, as the tests and container_bench do.

Podman runs here as root with runc (crun refuses hybrid cgroups), lowered ulimits and the
host's network. No container registry is reachable, so the base image is made locally once:
`mmdebstrap` writes a minimal Debian bookworm with python3 and its venv module (the generated
Dockerfile installs into a venv, so a distribution's Python serves as well as the official
image), and `podman import` keeps it in podman's store, where later builds find it. pip inside a
build reaches the package index with the machine's CA bundle mounted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

BASE_IMAGE = "localhost/nb2prod-base:bookworm"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# What podman needs on this machine: runc, limits the machine allows, and the host's network.
RUNTIME = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
NETWORK = ["--network", "host"]


class ContainerError(RuntimeError):
    """A podman step failed: the message ends with what podman said."""


def unavailable() -> str | None:
    """Why images cannot be built and run here, or None when they can."""
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian packages podman, runc, mmdebstrap)"
    if os.geteuid() != 0:
        return "podman runs rootful here: the tests that build images run as root"
    return None


def podman(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-20:]
        raise ContainerError(f"podman {args[0]} failed: " + "\n".join(said))
    return done.stdout


def ensure_base_image() -> float:
    """The local base image, made when podman's store lacks it; the seconds that took."""
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nb2prod-base-") as scratch:
        tar = Path(scratch) / "base.tar"
        made = subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                "bookworm",
                str(tar),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise ContainerError(f"mmdebstrap failed: {made.stderr.strip()[-2000:]}")
        podman("import", "--quiet", str(tar), BASE_IMAGE)
    return time.perf_counter() - started


def build(package_dir: Path, tag: str, *, no_cache: bool = False) -> float:
    """`podman build` of the generated Dockerfile on the local base; the seconds it took.
    Docker's image format, because the OCI format drops HEALTHCHECK."""
    started = time.perf_counter()
    podman(
        "build",
        *(["--no-cache"] if no_cache else []),
        *RUNTIME,
        *NETWORK,
        "--format",
        "docker",
        "--volume",
        f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        "--tag",
        tag,
        str(package_dir),
        timeout=1800,
    )
    return time.perf_counter() - started


def image_size(tag: str) -> int:
    """Bytes, as podman stores the image (its layers, uncompressed)."""
    return int(json.loads(podman("image", "inspect", tag))[0]["Size"])


def largest_folders(tag: str, folder: str, count: int) -> list[tuple[str, float]]:
    """The `count` largest entries of `folder` in the image, as (name, MB), largest first."""
    listed = podman(
        "run", "--rm", *RUNTIME, "--entrypoint", "du", tag,
        "--summarize", "--bytes", *_entries(tag, folder),
    )  # fmt: skip
    sizes = []
    for line in listed.splitlines():
        size, path = line.split("\t", 1)
        sizes.append((path.rsplit("/", 1)[-1], int(size) / 1e6))
    return sorted(sizes, key=lambda entry: -entry[1])[:count]


def _entries(tag: str, folder: str) -> list[str]:
    names = podman("run", "--rm", *RUNTIME, "--entrypoint", "ls", tag, folder).split()
    return [f"{folder}/{name}" for name in names]


def run(
    tag: str,
    name: str,
    command: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    volumes: Sequence[str] = (),
    options: Sequence[str] = (),
) -> None:
    """Start a container in the background; `command` replaces the image's CMD (the
    entrypoint still runs)."""
    given = [f"--env={key}={value}" for key, value in (env or {}).items()]
    given += [f"--volume={volume}" for volume in volumes]
    podman("run", *RUNTIME, *NETWORK, "--detach", "--name", name, *given, *options, tag, *command)


def state(name: str) -> dict:
    return json.loads(podman("container", "inspect", name))[0]["State"]


def logs(name: str) -> str:
    done = subprocess.run(["podman", "logs", name], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def remove(name: str) -> None:
    subprocess.run(["podman", "rm", "--force", "--time", "0", name], capture_output=True)


# A tracking server, as the generated compose.yaml runs one: without MLflow's job runner
# (a scheduler and seven worker processes for GenAI jobs), which nothing here submits to.
TRACKING_ONLY = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@contextlib.contextmanager
def tracking_server(folder: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 (sqlite in `folder`, artifacts served by it): what
    the image, an MLflow client only, reads its model from. Yields its URL; stopped on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    log = folder / "mlflow-server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            command,
            cwd=folder,
            env={**os.environ, **TRACKING_ONLY},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise ContainerError(f"mlflow server did not start: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
