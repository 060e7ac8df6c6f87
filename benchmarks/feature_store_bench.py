"""What the Feast feature store costs a generated package, against the same package without it.

    python benchmarks/feature_store_bench.py [--seconds 5] [--python FEAST_PYTHON]

On the churn sample (1,500 customers, 7 features), converted twice in the same environment,
with `--feature-store feast` and without, it measures in one run:

- training: `python -m <pkg>.train` with the features written to the offline store and read
  back with get_historical_features, against the same training without the store;
- `python -m <pkg>.features apply` and `materialize` as a user runs them, and the Feast calls
  alone (FeatureStore.apply, FeatureStore.materialize) in a warm process;
- serving: /predict/by-key (keys in, features from the sqlite online store) against /predict
  given the same features in the body, on the same model, for 1 and 100 rows, one client at a
  time (latency) and eight at once (throughput), plus get_online_features alone in-process.

Feast needs pandas<3, so it runs in the venv `.ci/feast-env` makes (or --python). Everything
listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
from serve_bench import Load, drive, free_port

REPO = Path(__file__).resolve().parents[1]
CHURN = REPO / "sample_notebooks" / "feature_store" / "customer_churn.ipynb"
NAME = "customer_churn"
DEFAULT_PYTHON = Path.home() / ".cache" / "nb2prod-feast" / "bin" / "python"

# Timed inside one warm process: the Feast calls alone, without Python's start and imports.
IN_PROCESS = """
import json, time
from customer_churn import feature_store
feature_store.feast()  # imported before the clock starts
timings = {}
started = time.perf_counter()
feature_store.apply()
timings["apply"] = time.perf_counter() - started
started = time.perf_counter()
feature_store.materialize()
timings["materialize"] = time.perf_counter() - started
online = feature_store.OnlineFeatures.open()
keys = KEYS
for size in (1, 100):
    online.rows(keys[:size])
    runs = []
    for _ in range(50):
        started = time.perf_counter()
        online.rows(keys[:size])
        runs.append(time.perf_counter() - started)
    runs.sort()
    timings[f"online_{size}"] = runs[len(runs) // 2]
print(json.dumps(timings))
"""


def timed(python: Path, *args: str, cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [python, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()[-1500:]}")
    return time.perf_counter() - started


def convert(python: Path, root: Path, folder: str, *options: str) -> Path:
    work = root / folder
    work.mkdir()
    shutil.copy(CHURN, work / CHURN.name)
    timed(python, "-m", "nb2prod", "convert", CHURN.name, "-o", NAME, *options, cwd=work, env={})
    return work / NAME


def serve(
    python: Path, package: Path, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        python,
        "-m",
        "uvicorn",
        f"{NAME}.serve:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=package, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited: {log.read_text()[-1500:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the service was not ready in 180 s")


def load(url: str, body: dict | list, seconds: float, clients: int, pid: int) -> Load:
    return asyncio.run(drive(url, json.dumps(body).encode(), seconds, clients, pid))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per load (default 5)")
    parser.add_argument("--python", type=Path, default=DEFAULT_PYTHON, help="Feast's Python")
    args = parser.parse_args()
    if not args.python.exists():
        raise SystemExit(f"{args.python} is missing: run .ci/feast-env (Feast needs pandas<3)")
    root = Path(tempfile.mkdtemp(prefix="nb2prod-feast-bench-"))
    try:
        run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def run(args: argparse.Namespace, root: Path) -> None:
    python = args.python
    with_store = convert(python, root, "with", "--feature-store", "feast")
    without = convert(python, root, "without", "--feature-store", "none")
    env_with = {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'with.db'}"}
    env_without = {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'without.db'}"}
    train_with = timed(python, "-m", f"{NAME}.train", cwd=with_store, env=env_with)
    train_without = timed(python, "-m", f"{NAME}.train", cwd=without, env=env_without)
    apply_cli = timed(python, "-m", f"{NAME}.features", "apply", cwd=with_store, env=env_with)
    materialize_cli = timed(
        python, "-m", f"{NAME}.features", "materialize", cwd=with_store, env=env_with
    )
    written = pd.read_parquet(with_store / "feature_repo" / "data" / "build_features.parquet")
    layout = json.loads((with_store / "feature_repo" / "data" / "build_features.json").read_text())
    keys = written["customer_id"].head(100).tolist()
    rows = written.set_index("customer_id").loc[keys, layout["columns"]].to_dict(orient="records")
    snippet = IN_PROCESS.replace("KEYS", repr(keys))
    warm = subprocess.run(
        [python, "-c", snippet], cwd=with_store, env={**os.environ, **env_with},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    inside = json.loads(warm.stdout.strip().splitlines()[-1])
    timed(python, "-m", f"{NAME}.promote", cwd=with_store, env=env_with)

    process, url = serve(python, with_store, env_with, root / "serve.log")
    results: dict[tuple[int, int], tuple[Load, Load]] = {}
    try:
        for size in (1, 100):
            for clients in (1, 8):
                by_key = load(
                    f"{url}/predict/by-key",
                    {"customer_id": keys[:size]},
                    args.seconds,
                    clients,
                    process.pid,
                )
                direct = load(f"{url}/predict", rows[:size], args.seconds, clients, process.pid)
                results[size, clients] = (by_key, direct)
    finally:
        process.terminate()
        process.wait(timeout=30)

    added = train_with - train_without
    lines = [
        f"Feast feature store on {CHURN.name}: {len(written)} keys, "
        f"{len(layout['columns'])} features",
        f"  train with the store       {train_with:7.1f} s   without {train_without:6.1f} s   "
        f"(+{added:.1f} s: write, apply, get_historical_features)",
        f"  features apply             {apply_cli:7.1f} s   of which FeatureStore.apply "
        f"{inside['apply'] * 1000:.0f} ms (the rest: starting Python, importing Feast and "
        "the package)",
        f"  features materialize       {materialize_cli:7.1f} s   of which "
        f"FeatureStore.materialize {inside['materialize'] * 1000:.0f} ms",
        f"  get_online_features alone  1 key {inside['online_1'] * 1000:.1f} ms, "
        f"100 keys {inside['online_100'] * 1000:.1f} ms (median of 50, in-process)",
        "  serving, the same model and prediction: /predict/by-key (features from the online "
        "store) vs /predict (features in the body)",
    ]
    for (size, clients), (by_key, direct) in results.items():
        errors = by_key.errors + direct.errors
        lines.append(
            f"    {size:>3} row(s), {clients} client(s): by-key p50 {by_key.p50_ms:6.1f} ms "
            f"{by_key.requests_per_s:6.1f} req/s {by_key.cpu_ms:5.1f} ms CPU/req | /predict "
            f"p50 {direct.p50_ms:6.1f} ms {direct.requests_per_s:6.1f} req/s "
            f"{direct.cpu_ms:5.1f} ms CPU/req | latency x{by_key.p50_ms / direct.p50_ms:.2f}"
            + (f", {errors} errors" if errors else "")
        )
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
