"""What the container costs: the generated image built and run with podman, against the same
service run directly on the host, with the same model, load generator and run.

The tumor_classifier sample is converted, trained and promoted on the host through a real
`mlflow server` (sqlite, artifacts served by it), which both services then load the model from:
the image carries MLflow's client only. Then:

- build: `podman build --no-cache` of the generated Dockerfile on the local Debian base
  (benchmarks/container.py; made first if podman's store lacks it, and timed apart), and the
  image's size;
- start: from `podman run` (or the direct `python -m <pkg>.entrypoint`) to `/ready` answering
  200, the model loaded;
- serve: serve_bench's load generator (kept-alive connections, each sending its next request
  when the last is answered) posts records to `/predict`, one record and then 100 per request,
  to the container and to the direct service in turn, `--rounds` times each, the best round
  kept; CPU per request is read from /proc for the server's processes (the container's are the
  host's processes under podman).

Both servers run one uvicorn worker on 127.0.0.1 (the container on the host's network, as
podman runs here). A 2-core machine shares its CPU between the load generator and the server:
compare within one run.

    python benchmarks/container_bench.py [--seconds 3] [--rounds 2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import container
import httpx
from serve_bench import Load, describe, drive, free_port

from nb2prod.backend.render import convert

REPO = Path(__file__).resolve().parents[1]
SAMPLE = "tumor_classifier"
TAG = f"localhost/{SAMPLE}:bench"
BATCHES = (1, 100)


def host_env(package: Path, server: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": server}


def prepare(root: Path, server: str) -> tuple[Path, list[dict]]:
    """The converted sample, trained and promoted into `server`, and 100 records of its input."""
    package = convert(REPO / "sample_notebooks" / f"{SAMPLE}.ipynb", root / SAMPLE).target
    store = root / "work"
    store.mkdir()
    for step in ("train", "promote"):
        subprocess.run(
            [sys.executable, "-m", f"{SAMPLE}.{step}"],
            cwd=store,
            env=host_env(package, server),
            check=True,
            capture_output=True,
        )
    records = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from {SAMPLE} import pipeline; "
            "print(pipeline.run(pipeline.Parameters()).model_input.iloc[:100]"
            ".to_json(orient='records'))",
        ],
        cwd=store,
        env=host_env(package, server),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return package, json.loads(records)


def wait_ready(url: str, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server stopped before it was ready")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}/ready did not answer 200 within 180 s")


def load(url: str, pid: int, records: list[dict], args: argparse.Namespace) -> dict[int, Load]:
    found = {}
    for rows in BATCHES:
        body = json.dumps(records[:rows]).encode()
        found[rows] = asyncio.run(
            drive(f"{url}/predict", body, args.seconds, args.concurrency, pid)
        )
    return found


def in_container(server: str, records: list[dict], args: argparse.Namespace):
    name, port = f"nb2prod-bench-{os.getpid()}", free_port()
    env = {"MLFLOW_TRACKING_URI": server, "PORT": str(port)}
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    container.run(TAG, name, (), env)
    try:
        wait_ready(url, lambda: bool(container.state(name)["Running"]))
        ready = time.perf_counter() - started
        return ready, load(url, container.state(name)["Pid"], records, args)
    finally:
        container.remove(name)


def directly(package: Path, server: str, records: list[dict], args: argparse.Namespace):
    port = free_port()
    env = {**host_env(package, server), "PORT": str(port)}
    env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    service = subprocess.Popen(
        [
            *(sys.executable, "-m", f"{SAMPLE}.entrypoint"),
            *("uvicorn", f"{SAMPLE}.serve:app", "--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=package.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(url, lambda: service.poll() is None)
        ready = time.perf_counter() - started
        return ready, load(url, service.pid, records, args)
    finally:
        service.terminate()
        service.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each server (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (default 8)")
    args = parser.parse_args()
    if (why := container.unavailable()) is not None:
        print(f"container_bench.py: cannot run: {why}", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="nb2prod-container-bench-") as folder,
        container.tracking_server(Path(folder)) as server,
    ):
        package, records = prepare(Path(folder), server)
        base = container.ensure_base_image()
        if base:
            print(f"base image made in {base:.0f} s (once: podman keeps it)")
        built = container.build(package, TAG, no_cache=True)
        size = container.image_size(TAG)
        added = size - container.image_size(container.BASE_IMAGE)
        print(
            f"image: built in {built:.0f} s from the base (no cache), {size / 1e6:.0f} MB, "
            f"{added / 1e6:.0f} MB over the base"
        )
        best: dict[str, dict[int, Load]] = {}
        starts: dict[str, list[float]] = {}
        for round_ in range(1, args.rounds + 1):
            for where in ("container", "direct"):
                if where == "container":
                    ready, loads = in_container(server, records, args)
                else:
                    ready, loads = directly(package, server, records, args)
                starts.setdefault(where, []).append(ready)
                print(f"round {round_} {where:9s}: ready {ready:5.1f} s after start")
                for rows, measured in loads.items():
                    print(f"  {rows:3d} rows: {describe(measured, rows)}")
                    kept = best.setdefault(where, {})
                    if rows not in kept or measured.requests_per_s > kept[rows].requests_per_s:
                        kept[rows] = measured
        subprocess.run(["podman", "rmi", "--force", TAG], capture_output=True)
    print()
    print(f"start to /ready: container {min(starts['container']):.1f} s, direct "
          f"{min(starts['direct']):.1f} s (best of {args.rounds})")  # fmt: skip
    for rows in BATCHES:
        ours, theirs = best["container"][rows], best["direct"][rows]
        ratio = ours.requests_per_s / theirs.requests_per_s
        print(
            f"{rows:3d} rows/request: container {ours.requests_per_s:7.1f} req/s, direct "
            f"{theirs.requests_per_s:7.1f} req/s: {ratio:.2f}x; "
            f"CPU {ours.cpu_ms:.2f} vs {theirs.cpu_ms:.2f} ms/request"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
