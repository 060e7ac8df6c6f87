# {{ cookiecutter._code.header }}
"""The honesty contract at run time: what this model may claim, and when it may ship.

The contract itself is data (`contract.json`, rendered from nb2prod's `rules/contract.toml`)
and so is what the notebook declared about this model (`honesty.json`). Training, promotion
and serving all ask this module, so they cannot disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

CONTRACT: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("contract.json").read_text(encoding="utf-8")
)
MODEL: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("honesty.json").read_text(encoding="utf-8")
)

STATUSES: tuple[str, ...] = tuple(CONTRACT["statuses"])
RUN_PARAMS: tuple[str, ...] = tuple(
    name for name, field in CONTRACT["fields"].items() if field.get("run_param")
)
RESPONSE_FIELDS: tuple[str, ...] = tuple(
    name for name, field in CONTRACT["fields"].items() if field.get("response")
)
VALIDATED, UNVALIDATED = CONTRACT["validation_status_values"]
_CLAIM_VALUE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


class HonestyError(Exception):
    """The contract forbids what was asked; the message says why."""


def plain_status(value: str) -> str:
    """'⚠️ HEURISTIC' -> 'HEURISTIC': machines exchange the plain word."""
    word = value.split()[-1] if value.strip() else value
    if word not in STATUSES:
        raise HonestyError(f"unknown implementation_status {value!r}; expected one of {STATUSES}")
    return word


def label(status: str) -> str:
    """The human form with its mark, e.g. '✅ IMPLEMENTED'."""
    return f"{CONTRACT['statuses'][status]['mark']} {status}"


def require_trainable(status: str) -> None:
    """A PLANNED model is a design, not a model: refuse before any work is done."""
    spec = CONTRACT["statuses"][plain_status(status)]
    if not spec.get("trainable", True):
        raise HonestyError(
            f"implementation_status is {status}: {spec['meaning']}. Nothing can be trained "
            "until the notebook implements the model; change the status once it does."
        )


def accuracy_claim(
    value: float | None, spread: float | None, method: str, metric: str | None = None
) -> str:
    """The claim, derived from the measured metric: never typed by hand."""
    if value is None:
        return f"not measured ({method})"
    metric = metric or MODEL.get("primary_metric") or "metric"
    if spread is not None:
        return f"{value:.3f} ±{spread:.3f} {metric} ({method})"
    return f"{value:.3f} {metric} ({method})"


def claimed_value(claim: str) -> float | None:
    """The number a claim states, or None for 'not measured'."""
    match = _CLAIM_VALUE.match(claim or "")
    return float(match.group(1)) if match else None


def validation_status(status: str, measured: float | None, method: str | None = None) -> str:
    """VALIDATED only for an IMPLEMENTED model whose held-out metric was measured."""
    method = MODEL.get("validation_method", "") if method is None else method
    validated = (
        plain_status(status) == "IMPLEMENTED"
        and measured is not None
        and not method.startswith(CONTRACT["no_validation_prefix"])
    )
    return VALIDATED if validated else UNVALIDATED


def run_record(
    status: str,
    measured: float | None,
    spread: float | None,
    method: str | None = None,
    metric: str | None = None,
) -> dict[str, str]:
    """The honesty fields every training run logs, as params and as tags. `method` and `metric`
    say how and with what training measured the model itself (else the notebook's)."""
    method = MODEL["validation_method"] if method is None else method
    return {
        "implementation_status": plain_status(status),
        "accuracy_claim": accuracy_claim(measured, spread, method, metric),
        "validation_method": method,
        "honesty_warning": validation_status(status, measured, method),
    }


def promotion_refusals(
    fields: Mapping[str, str],
    measured: float | None,
    *,
    allow_heuristic: bool,
) -> list[str]:
    """Every reason the contract refuses to promote a model version; empty means it may ship."""
    missing = [name for name in RUN_PARAMS if not fields.get(name)]
    if missing:
        return [f"missing honesty fields: {', '.join(missing)}"]
    try:
        status = plain_status(fields["implementation_status"])
    except HonestyError as error:
        return [str(error)]
    spec = CONTRACT["statuses"][status]
    reasons = []
    if not spec.get("promotable", True):
        reasons.append(f"status {status} cannot be promoted: {spec['meaning']}")
    if spec.get("requires_opt_in") and not allow_heuristic:
        reasons.append(
            f"status {status} ({spec['meaning']}) needs an explicit opt-in: --allow-heuristic"
        )
    higher_is_better = MODEL.get("greater_is_better", True)
    threshold = spec.get("min_metric")
    if measured is None:
        if status == "IMPLEMENTED":
            reasons.append("no measured metric: an IMPLEMENTED model must be validated")
    elif higher_is_better:
        if threshold is not None and measured < threshold:
            reasons.append(
                f"measured {MODEL.get('primary_metric')} {measured:.3f} is below the "
                f"{status} threshold {threshold:.2f}"
            )
    claimed = claimed_value(fields["accuracy_claim"])
    if measured is not None and claimed is not None:
        # the claim is rounded to 3 decimals; anything worse than that rounding is an overclaim
        worse = measured + 5e-4 < claimed if higher_is_better else measured - 5e-4 > claimed
        if worse:
            reasons.append(f"measured {measured:.3f} is worse than the claim {fields['accuracy_claim']!r}")
    return reasons


def missing_response_fields(payload: Mapping[str, Any]) -> list[str]:
    """Response fields the contract requires that a payload lacks or leaves empty."""
    missing = [name for name in RESPONSE_FIELDS if payload.get(name) in (None, "")]
    status = payload.get("implementation_status")
    if status and status.split()[-1] not in STATUSES:
        missing.append("implementation_status (not a contract value)")
    return missing
