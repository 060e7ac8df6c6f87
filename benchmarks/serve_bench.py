"""How fast the generated service serves, against `mlflow models serve` and in-process predict.

Two small notebooks (iris as a frame: a logistic regression, and a 100-tree random forest) are
converted, trained into a temporary sqlite MLflow store, then served on 127.0.0.1, one server
at a time, all with the same worker count:

- generated: the generated service, started as its container starts it (the entrypoint, with
  multiprocess Prometheus metrics), honesty fields and metrics included;
- no-drift: the same with DRIFT_MONITORING=off: requests are not counted into the reference
  profile's bins (what drift monitoring costs; issue 23 allows it 10% at one row per request);
- no-limit: the same with PREDICT_TIMEOUT_SECONDS=0: no time limit, so predictions run on the
  event loop instead of a worker thread (what the 504 costs);
- bare: the same prediction path (`serve.predictions_for`: body limit, parsing, thread, time
  limit, one predict call; the predictions encoded as the service encodes them) in an app of
  this benchmark's own, without the honesty fields and the metrics: what they cost. The
  generated package has no switch to drop them;
- mlflow: `mlflow models serve -m models:/NAME/1 --env-manager local` on the same version.

One asyncio load generator (aiohttp, a fixed number of connections kept alive) sends the same
bytes to each: `/invocations` with `dataframe_split` (MLflow's recommended format, which all
three take), one record and then 100 records per request; it warms up, then sends requests
for a fixed time. In-process, the model's own `predict` is called in a loop on the input the
service builds (the limit no server can beat). Besides the rates, the CPU time the server's
processes spend per request is read from /proc: unlike requests/s, it hardly moves when other
work shares the machine, so "CPU vs in-process" (predict's CPU time over the server's, per
request) is the steadier measure of what serving adds.

    python benchmarks/serve_bench.py [--seconds 3] [--rounds 2] [--concurrency 8] [--workers 1]

The load generator runs on the same machine and takes CPU from the servers; on a 2-core
machine that matters. Figures from a busy machine are noisy: compare within one run. With
`--workers 2` or more, the kept-alive connections are shared out between the worker processes
by whichever accepts first, often unevenly, so a figure then says as much about how the
connections landed as about the server: give each worker many connections (`--concurrency`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import nbformat

from nb2prod.backend.render import convert

MODELS = {
    "logreg": ("LogisticRegression(max_iter=500)", "sklearn.linear_model", "LogisticRegression"),
    "forest": (
        "RandomForestClassifier(n_estimators=100, random_state=0)",
        "sklearn.ensemble",
        "RandomForestClassifier",
    ),
}
BATCHES = (1, 100)
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]

# The benchmark's own app: the generated prediction path, minus honesty fields and metrics.
BARE_APP = """
import os

import mlflow
import orjson
from fastapi import FastAPI, Request, Response
from nb2prod_runtime import payloads
from nb2prod_runtime.limits import LimitBodySize, Limits, PredictionThreads
from nb2prod_runtime.loading import load
from nb2prod_runtime.serving import INVOCATIONS_PARSERS, parser_for

from {package}.honesty import PACKAGE

mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
served = load(os.environ["MODEL_URI"], PACKAGE)
limits = Limits.from_environment()
threads = PredictionThreads(limits)
app = FastAPI()
app.add_middleware(LimitBodySize, max_bytes=limits.max_body_bytes)


@app.get("/health")
def health() -> dict[str, bool]:
    return {{"alive": True}}


@app.post("/invocations")
async def invocations(request: Request) -> Response:
    parse = parser_for(request, INVOCATIONS_PARSERS)
    body = await request.body()

    def predict() -> list:
        model_input, _ = parse(served.inputs, body, limits.max_batch)
        return payloads.to_list(served.model.predict(model_input))

    predictions = await threads.run(predict)
    encoded = orjson.dumps(predictions, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(b'{{"predictions":' + encoded + b"}}", media_type="application/json")


app.router.routes.sort(key=lambda route: getattr(route, "path", "") != "/invocations")
"""

# Runs in a subprocess that imports the generated package: the service's own model input.
IN_PROCESS = """
import json, os, sys, time
import mlflow
from nb2prod_runtime import payloads
from nb2prod_runtime.drift_counters import DriftMetrics, counters_for
from nb2prod_runtime.loading import load
from prometheus_client import CollectorRegistry

from {package}.honesty import PACKAGE

mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
served = load(os.environ["MODEL_URI"], PACKAGE)
columns, row, seconds = json.loads(sys.argv[1])
results = {{}}
for rows in {batches}:
    model_input = served.inputs.from_table(columns, [row] * rows)
    served.model.predict(model_input)
    calls, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        served.model.predict(model_input)
        calls += 1
    rate = calls / (time.perf_counter() - start)
    cpu_ms = (time.process_time() - cpu) / calls * 1000
    # drift counting alone, as the service counts a request: steadier than two servers' rates
    counters = counters_for(DriftMetrics(CollectorRegistry()), served.run_id, served.version)
    answers = payloads.to_list(served.model.predict(model_input))
    counted, cpu = 0, time.process_time()
    while time.process_time() - cpu < seconds / 3:
        counters.observe(model_input, answers)
        counted += 1
    counting_ms = (time.process_time() - cpu) / counted * 1000
    results[rows] = [rate, type(model_input).__name__, cpu_ms, counting_ms]
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float  # CPU time of the server's processes per request: what another load can't skew


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_notebook(path: Path, model: str) -> Path:
    estimator, module, name = MODELS[model]
    cells = [
        f"from sklearn.datasets import load_iris\nfrom {module} import {name}\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_iris(return_X_y=True, as_frame=True)",
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        f"model = {estimator}\nmodel.fit(X_train, y_train)",
        "accuracy = accuracy_score(y_test, model.predict(X_test))",
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    for count, source in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source)
        cell.execution_count = count
        notebook.cells.append(cell)
    nbformat.write(notebook, path)
    return path


def environment(package: Path, store: Path, name: str, extra: Path | None = None) -> dict[str, str]:
    paths = [str(package), *([str(extra)] if extra else []), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
        "MODEL_URI": f"models:/{name}/1",
    }


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=output)


def wait_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server did not listen within 120 s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) of a process and all its descendants (workers), from /proc."""
    parents, times = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    family, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in family} - family
        family |= children
        grew = bool(children)
    return sum(times.get(pid, 0.0) for pid in family)


async def drive(url: str, body: bytes, seconds: float, concurrency: int, pid: int) -> Load:
    """`concurrency` clients, each sending its next request when the last one is answered."""
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(until: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < until:
                sent = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    failed = response.status != 200
                if record:
                    latencies.append(time.perf_counter() - sent)
                    errors += failed

        warm_until = time.perf_counter() + min(1.0, seconds)
        await asyncio.gather(*(client(warm_until, False) for _ in range(concurrency)))
        cpu, started = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(client(started + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu
    latencies.sort()
    return Load(
        requests_per_s=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        errors=errors,
        cpu_ms=cpu / len(latencies) * 1000,
    )


def servers(name: str, workers: int, port: int) -> dict[str, list[str]]:
    """The command of each server; `no-limit` is the generated one, PREDICT_TIMEOUT_SECONDS=0."""
    python = sys.executable
    host = ["--host", "127.0.0.1", "--port", str(port)]
    generated = [
        python,
        "-m",
        f"{name}.entrypoint",
        "uvicorn",
        f"{name}.serve:app",
        *host,
        "--workers",
        str(workers),
    ]
    return {
        "generated": generated,
        "no-drift": generated,
        "no-limit": generated,
        "bare": [python, "-m", "uvicorn", "bare_app:app", *host, "--workers", str(workers)],
        "mlflow": [
            python, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}/1",
            "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
            "--workers", str(workers),
        ],
    }  # fmt: skip


def run_python(args: list[str], name: str, package: Path, work: Path) -> str:
    """Python with the generated package and its store, in the working folder: its stdout."""
    done = subprocess.run(
        [sys.executable, *args],
        env=environment(package, work / "mlflow.db", name),
        cwd=work,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout


def prepare(model: str, root: Path) -> tuple[str, Path, Path]:
    """Convert the notebook and train it: the package name, its folder and the working folder."""
    name = f"iris_{model}"
    package = convert(write_notebook(root / f"{name}.ipynb", model), root / name).target
    work = root / f"work_{model}"
    work.mkdir()
    run_python(["-m", f"{name}.train"], name, package, work)
    (work / "bare_app.py").write_text(BARE_APP.format(package=name))
    return name, package, work


def in_process(name: str, package: Path, work: Path, seconds: float) -> dict[int, tuple]:
    """predict calls per second, per batch size, on the input the service builds."""
    script = IN_PROCESS.format(package=name, batches=list(BATCHES))
    output = run_python(
        ["-c", script, json.dumps([COLUMNS, IRIS_ROW, seconds])], name, package, work
    )
    found = json.loads(output.splitlines()[-1])
    return {int(rows): tuple(measured) for rows, measured in found.items()}


def serve_and_drive(
    server: str, command: list[str], env: dict[str, str], work: Path, args: argparse.Namespace
) -> dict[int, Load]:
    port = command[command.index("--port" if "--port" in command else "-p") + 1]
    url = f"http://127.0.0.1:{port}"
    log = work / f"{server}.log"
    process = start(command, env, work, log)
    try:
        wait_ready(process, url, log)
        loads = {}
        for rows in BATCHES:
            payload = {"dataframe_split": {"columns": COLUMNS, "data": [IRIS_ROW] * rows}}
            body = json.dumps(payload).encode()
            loads[rows] = asyncio.run(
                drive(f"{url}/invocations", body, args.seconds, args.concurrency, process.pid)
            )
        return loads
    finally:
        stop(process)


def bench_model(model: str, root: Path, args: argparse.Namespace) -> dict[str, dict]:
    """Each server `rounds` times, interleaved, keeping each one's best round (load on a shared
    machine only ever slows a server down); in-process before and after, the better kept."""
    name, package, work = prepare(model, root)
    env = environment(package, work / "mlflow.db", name, work)
    results: dict[str, dict] = {"in-process": in_process(name, package, work, args.seconds)}
    for round_ in range(1, args.rounds + 1):
        for server, command in servers(name, args.workers, free_port()).items():
            switches = {
                "no-limit": {"PREDICT_TIMEOUT_SECONDS": "0"},
                "no-drift": {"DRIFT_MONITORING": "off"},
            }.get(server, {})
            loads = serve_and_drive(server, command, {**env, **switches}, work, args)
            best = results.setdefault(server, {})
            for rows, load in loads.items():
                label = f"{model:6s} round {round_} {server:9s} {rows:3d} rows"
                print(f"  {label}: {describe(load, rows)}")
                if rows not in best or load.requests_per_s > best[rows].requests_per_s:
                    best[rows] = load
    after = in_process(name, package, work, args.seconds)
    for rows, measured in after.items():
        rate, kind, cpu_ms, counting_ms = results["in-process"][rows] = max(
            results["in-process"][rows], measured
        )
        print(
            f"  {model:6s} in-process {rows:3d} rows: {rate:8.1f} predict calls/s on {kind}, "
            f"{cpu_ms:.2f} ms CPU each; drift counting {counting_ms * 1000:.0f} us"
        )
    return results


def describe(load: Load, rows: int) -> str:
    text = f"{load.requests_per_s:8.1f} req/s  p50 {load.p50_ms:7.2f} ms  p99 {load.p99_ms:7.2f} ms"
    text += f"  CPU {load.cpu_ms:5.2f} ms/req"
    if rows > 1:
        text += f"  {load.requests_per_s * rows:9.0f} rows/s"
    return text + (f"  ERRORS {load.errors}" if load.errors else "")


def report(all_results: dict[str, dict], args: argparse.Namespace) -> None:
    print()
    print(
        f"{args.workers} worker(s), {args.concurrency} connections, best of {args.rounds} "
        f"rounds of {args.seconds:g} s; the load generator shares this machine's "
        f"{os.cpu_count()} cores with the server."
    )
    header = (
        "| model | rows/request | server | requests/s | p50 ms | p99 ms | server CPU ms/request "
        "| throughput vs mlflow | throughput vs in-process | CPU vs in-process |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model, results in all_results.items():
        for rows in BATCHES:
            rate, _, cpu_ms, _ = results["in-process"][rows]
            mlflow_rate = results["mlflow"][rows].requests_per_s
            for server in ("generated", "no-drift", "no-limit", "bare", "mlflow"):
                load = results[server][rows]
                print(
                    f"| {model} | {rows} | {server} | {load.requests_per_s:.1f} | "
                    f"{load.p50_ms:.2f} | {load.p99_ms:.2f} | {load.cpu_ms:.2f} | "
                    f"{load.requests_per_s / mlflow_rate:.2f}x | "
                    f"{load.requests_per_s / args.workers / rate:.0%} | "
                    f"{cpu_ms / load.cpu_ms:.0%} |"
                )
            print(
                f"| {model} | {rows} | in-process predict | {rate:.1f} | | | {cpu_ms:.2f} "
                "| | 100% | 100% |"
            )
    print()
    for model, results in all_results.items():
        for rows in BATCHES:
            generated, bare = results["generated"][rows], results["bare"][rows]
            mlflow_load = results["mlflow"][rows]
            cost = 1 - generated.requests_per_s / bare.requests_per_s
            unmonitored = results["no-drift"][rows]
            drift_cost = 1 - generated.requests_per_s / unmonitored.requests_per_s
            print(
                f"{model}, {rows} row(s): generated/mlflow "
                f"{generated.requests_per_s / mlflow_load.requests_per_s:.2f}x throughput, "
                f"p99 {generated.p99_ms:.1f} vs {mlflow_load.p99_ms:.1f} ms; "
                f"honesty+metrics cost {cost:.1%} of throughput, "
                f"{generated.cpu_ms / bare.cpu_ms - 1:.1%} more CPU per request; "
                f"drift monitoring {drift_cost:.1%} of throughput, "
                f"{generated.cpu_ms / unmonitored.cpu_ms - 1:.1%} more CPU per request"
            )
            counting_ms = results["in-process"][rows][3]
            print(
                f"  drift counting measured in-process: {counting_ms * 1000:.0f} us per request, "
                f"{counting_ms / generated.cpu_ms:.1%} of the generated server's CPU per request"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each server (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="server workers (default 1)")
    parser.add_argument("--models", default="logreg,forest", help="logreg,forest (default both)")
    args = parser.parse_args()
    all_results = {}
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models.split(","):
            all_results[model] = bench_model(model, Path(folder), args)
    report(all_results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
