"""The promotion gate's machinery: find the version, read what it claims, check the claims
against the run that produced it, and write every decision back on the version.

A generated package's ``promote.py`` asks the contract (``honesty.promotion_refusals``) and
moves the alias itself, where a reviewer and the linter see the gate before the promotion.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from nb2prod_runtime import measure, rollback
from nb2prod_runtime.package import Package
from nb2prod_runtime.tracking import server_problem, tracking_uri

# The version tag is written from the same float the run logged; only float formatting may differ.
METRIC_TOLERANCE = 1e-6


class NothingToPromote(Exception):
    """The model or version asked for does not exist, or the registry cannot be read."""


def find_version(client: MlflowClient, name: str, version: int | None) -> ModelVersion:
    """The version asked for, or the newest one: promoting what was just trained is the norm."""
    try:
        if version is not None:
            return client.get_model_version(name, str(version))
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as error:
        raise NothingToPromote(server_problem(error) or error.message) from error
    if not versions:
        raise NothingToPromote(f"no registered model {name!r} with any version in {tracking_uri()}")
    return max(versions, key=lambda mv: int(mv.version))


def measured_metric(tags: Mapping[str, str]) -> tuple[float | None, list[str]]:
    """The measured metric the version carries (None when nothing was measured), and any fault."""
    raw = tags.get("primary_metric_value", "").strip()
    if not raw:
        return None, []
    try:
        value = float(raw)
    except ValueError:
        return None, [f"primary_metric_value {raw!r} is not a number"]
    if not math.isfinite(value):
        return None, [f"primary_metric_value {raw!r} is not a finite number"]
    return value, []


def checks(
    package: Package, client: MlflowClient, mv: ModelVersion, measured: float | None
) -> list[str]:
    """What the gate refuses besides the contract: a version not READY, a metric that is not a
    number, tags that contradict the run (so an edited tag cannot open the gate)."""
    reasons = [] if mv.status == "READY" else [f"version {mv.version} is {mv.status}, not READY"]
    return (
        reasons
        + measured_metric(mv.tags)[1]
        + disagreements_with_run(package, client, mv, measured)
    )


def disagreements_with_run(
    package: Package, client: MlflowClient, mv: ModelVersion, measured: float | None
) -> list[str]:
    """Where the version's tags contradict its run, so an edited tag cannot open the gate."""
    if not mv.run_id:
        return []
    try:
        run = client.get_run(mv.run_id)
    except MlflowException:
        return [f"the run {mv.run_id} that produced version {mv.version} cannot be read"]
    reasons = []
    for name in package.honesty.run_params:
        tagged, logged = mv.tags.get(name), run.data.params.get(name)
        if tagged and logged is not None and tagged != logged:
            reasons.append(f"tag {name}={tagged!r} contradicts the run's logged {logged!r}")
    declared = package.model.get("primary_metric")
    metric = mv.tags.get("primary_metric") or declared
    if metric and declared and metric != declared:
        reasons.append(f"the version measured {metric!r}, but this model is judged on {declared!r}")
    claimed = mv.tags.get("claim_metric") or metric  # the package's own cross-validation, say
    logged_value = run.data.metrics.get(claimed) if claimed else None
    if logged_value is not None and (
        measured is None or not math.isclose(measured, logged_value, abs_tol=METRIC_TOLERANCE)
    ):
        tagged_value = mv.tags.get("primary_metric_value") or "nothing"
        reasons.append(
            f"primary_metric_value {tagged_value} contradicts the run's logged {claimed} "
            f"{logged_value!r}"
        )
    return reasons + _notebook_overclaim(package, run.data.metrics, run.data.tags)


def _notebook_overclaim(
    package: Package, metrics: Mapping[str, float], run_tags: Mapping[str, str]
) -> list[str]:
    """Where the package cross-validated the model itself, the notebook's own held-out number
    must not beat what the folds measured. Both are read from the run's logged metrics."""
    primary = package.model.get("primary_metric")
    folds = run_tags.get("claim_metric")
    if not primary or not folds or folds == primary or primary not in metrics:
        return []
    if folds not in metrics:
        return []
    measured = measure.Measurement(
        folds, metrics[folds], metrics.get(f"{folds}_std"), run_tags.get("validation_method", "")
    )
    reason = measure.overclaim(package.model, metrics[primary], measured)
    return [reason] if reason else []


def unverified_parity(client: MlflowClient, mv: ModelVersion) -> list[str]:
    """--require-parity: `nb2prod verify` must have run on the run that trained this version
    and found every metric equal to the notebook's. Read from the run, not the version. (An
    addition to the honesty gate, never a substitute for it.)"""
    try:
        verdict = client.get_run(mv.run_id).data.tags.get("parity_verified") if mv.run_id else None
    except MlflowException:
        verdict = None
    if verdict == "true":
        return []
    if verdict == "false":
        return [
            f"nb2prod verify found version {mv.version}'s metrics differ from the notebook's "
            "(its run's parity_delta_* metrics say by how much)"
        ]
    return [
        f"parity is required, and nb2prod verify has not checked version {mv.version}'s run "
        "(run nb2prod verify NOTEBOOK with --tracking-uri set to this registry)"
    ]


def record(client: MlflowClient, mv: ModelVersion, tags: Mapping[str, str]) -> None:
    """Write the decision on the version; drop decision tags a previous check left behind."""
    for key in ("promotion_reasons", "promotion_opt_in"):
        if key in mv.tags and key not in tags:
            client.delete_model_version_tag(mv.name, str(mv.version), key)
    for key, value in tags.items():
        client.set_model_version_tag(mv.name, str(mv.version), key, value)


def refused(
    client: MlflowClient, mv: ModelVersion, reasons: list[str], alias: str, now: str
) -> int:
    """Record a refusal on the version, say why on stderr; exit code 1."""
    record(
        client,
        mv,
        {
            "promotion_decision": "refused",
            "promotion_reasons": "; ".join(reasons),
            "promotion_checked_at": now,
        },
    )
    print(f"refused: {mv.name} version {mv.version} stays off @{alias}:", file=sys.stderr)
    for reason in reasons:
        print(f"  - {reason}", file=sys.stderr)
    return 1


def accepted(package: Package, client: MlflowClient, mv: ModelVersion, alias: str, now: str) -> int:
    """Record an accepted promotion on the version and say what now serves; exit code 0."""
    honesty = package.honesty
    status = honesty.plain_status(mv.tags["implementation_status"])
    opted_in = bool(honesty.contract["statuses"][status].get("requires_opt_in"))
    decision = {
        "promotion_decision": "accepted",
        "promoted_alias": alias,
        "promoted_at": now,
        "promotion_checked_at": now,
    }
    if opted_in:
        decision["promotion_opt_in"] = "heuristic"
    record(client, mv, decision)
    print(f"promoted {mv.name} version {mv.version} to models:/{mv.name}@{alias}")
    print(f"  {honesty.label(status)}: {mv.tags['accuracy_claim']} ({mv.tags['honesty_warning']})")
    if opted_in:
        print("  opted in with --allow-heuristic: this model is not backtested")
    return 0


def parse_args(package: Package, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {package.name}.promote",
        description="Promote a registered model version to an alias, if the honesty contract "
        "allows it.",
    )
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--version", type=int, help="model version (default: the latest)")
    chosen.add_argument(
        "--rollback",
        action="store_true",
        help="move the alias back to the version the gate passed before the one holding it "
        "(never past the first), and record why on both",
    )
    parser.add_argument("--alias", default="champion", help="alias to set (default: champion)")
    parser.add_argument(
        "--allow-heuristic",
        action="store_true",
        help="explicit opt-in to promote a HEURISTIC (not backtested) model",
    )
    parser.add_argument(
        "--require-parity",
        action="store_true",
        help="refuse a version whose run `nb2prod verify` has not found to measure what the "
        "notebook measured (its parity_verified tag)",
    )
    parser.add_argument(
        "--reason",
        default="rolled back by hand (promote --rollback)",
        help="with --rollback: why, recorded on both versions",
    )
    return parser.parse_args(argv)


def rolled_back(client: MlflowClient, name: str, alias: str, reason: str, now: str) -> int:
    """`--rollback`: move the alias back and say what serves now; 1 at the floor (the first
    version the gate passed), 2 when nothing holds the alias."""
    try:
        done = rollback.roll_back(client, name, alias, reason, now)
    except rollback.NoRollback as refusal:
        print(f"{'refused' if refusal.exit_code == 1 else 'error'}: {refusal}", file=sys.stderr)
        return refusal.exit_code
    print(
        f"rolled back models:/{name}@{alias} from version {done.replaced} to version "
        f"{done.restored}: {reason}"
    )
    return 0


def main(
    package: Package,
    promote: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
) -> int:
    """`python -m <package>.promote`: the gate's exit code; any registry failure is one line."""
    args = parse_args(package, argv)
    try:
        return promote(args)
    except NothingToPromote as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the registry failed under us: one line, as for every error
        problem = server_problem(error)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        lines = str(getattr(error, "message", error)).strip().splitlines()
        detail = f": {lines[0]}" if lines else ""
        print(f"error: registry {tracking_uri()}: {type(error).__name__}{detail}", file=sys.stderr)
        return 2
