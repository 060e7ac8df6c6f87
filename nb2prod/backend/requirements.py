"""What the generated package installs: the notebook's pinned requirements plus its runtime.

The runtime (MLflow, FastAPI, uvicorn with its C event loop and HTTP parser, orjson,
prometheus_client, skops) is pinned to the versions installed where nb2prod runs when it can
see them; otherwise to a range known to work.

The serving image installs less (``serve``): MLflow's client, ``mlflow-skinny``, at the same
version, in place of the full ``mlflow``, whose server, UI, SQL stores and plotting (pyarrow,
matplotlib, SQLAlchemy...) the service never uses: it reads the model from a tracking server.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from nb2prod.plan import Plan

# Ranges for the runtime the templates are written against, used when it is not installed here.
RUNTIME = {
    "mlflow": ">=3.4,<4",
    "fastapi": ">=0.115",
    "uvicorn": ">=0.30",
    # uvicorn picks these up when installed: about a quarter less CPU per request
    "uvloop": ">=0.19",
    "httptools": ">=0.6",
    "orjson": ">=3.8",
    "prometheus-client": ">=0.20",
    "pandas": ">=2.2",
    "skops": ">=0.10",
}
TEST = {"pytest": ">=8", "httpx": ">=0.27"}
MARKERS = {"uvloop": "sys_platform != 'win32'"}  # uvloop has no Windows build
# In the serving image: the part of a distribution the service needs, at the same version.
SERVING_PART = {"mlflow": "mlflow-skinny"}


def runtime_requirements(plan: Plan) -> dict[str, list[str]]:
    """{'install': [...], 'serve': [...], 'test': [...]} as PEP 508 strings."""
    install: dict[str, str] = {}
    for requirement in plan.requirements:
        install[canonicalize_name(requirement.name)] = f"{requirement.name}{requirement.specifier}"
    for name, fallback in RUNTIME.items():
        if name == "skops" and plan.model.kind != "fitted":
            continue
        marker = f"; {MARKERS[name]}" if name in MARKERS else ""
        install.setdefault(canonicalize_name(name), _pinned(name, fallback) + marker)
    test = [_pinned(name, fallback) for name, fallback in TEST.items()]
    serve = [_serving_part(requirement) for requirement in install.values()]
    return {
        "install": sorted(install.values(), key=str.lower),
        "serve": sorted(serve, key=str.lower),
        "test": test,
    }


def _serving_part(requirement: str) -> str:
    """`requirement` with the distribution renamed to the part serving needs, if it has one."""
    parsed = Requirement(requirement)
    part = SERVING_PART.get(canonicalize_name(parsed.name))
    return requirement if part is None else part + requirement[len(parsed.name) :]


def _pinned(name: str, fallback: str) -> str:
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"{name}{fallback}"
