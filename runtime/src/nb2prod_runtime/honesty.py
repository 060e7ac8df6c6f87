"""The honesty contract at run time: what a model may claim, and when it may ship.

The contract is data (the package's `contract.json`, rendered from nb2prod's
`rules/contract.toml`) and so is what the notebook declared about the model (`honesty.json`).
Training, promotion and serving all ask one `Honesty`, so they cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_CLAIM_VALUE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


class HonestyError(Exception):
    """The contract forbids what was asked; the message says why."""


def claimed_value(claim: str) -> float | None:
    """The number a claim states, or None for 'not measured'."""
    match = _CLAIM_VALUE.match(claim or "")
    return float(match.group(1)) if match else None


class Honesty:
    """One contract (`contract`) applied to one model's declaration (`model`)."""

    def __init__(self, contract: dict[str, Any], model: dict[str, Any]) -> None:
        self.contract = contract
        self.model = model  # the same dict the package reads: one declaration, not copies
        self.statuses: tuple[str, ...] = tuple(self.contract["statuses"])
        fields = self.contract["fields"]
        self.run_params: tuple[str, ...] = tuple(n for n, f in fields.items() if f.get("run_param"))
        self.response_fields: tuple[str, ...] = tuple(
            n for n, f in fields.items() if f.get("response")
        )
        self.validated, self.unvalidated = self.contract["validation_status_values"]

    def plain_status(self, value: str) -> str:
        """'⚠️ HEURISTIC' -> 'HEURISTIC': machines exchange the plain word."""
        word = value.split()[-1] if value.strip() else value
        if word not in self.statuses:
            raise HonestyError(
                f"unknown implementation_status {value!r}; expected one of {self.statuses}"
            )
        return word

    def label(self, status: str) -> str:
        """The human form with its mark, e.g. '✅ IMPLEMENTED'."""
        return f"{self.contract['statuses'][status]['mark']} {status}"

    def require_trainable(self, status: str) -> None:
        """A PLANNED model is a design, not a model: refuse before any work is done."""
        spec = self.contract["statuses"][self.plain_status(status)]
        if not spec.get("trainable", True):
            raise HonestyError(
                f"implementation_status is {status}: {spec['meaning']}. Nothing can be trained "
                "until the notebook implements the model; change the status once it does."
            )

    def accuracy_claim(
        self, value: float | None, spread: float | None, method: str, metric: str | None = None
    ) -> str:
        """The claim, derived from the measured metric: never typed by hand."""
        if value is None:
            return f"not measured ({method})"
        metric = metric or self.model.get("primary_metric") or "metric"
        if spread is not None:
            return f"{value:.3f} ±{spread:.3f} {metric} ({method})"
        return f"{value:.3f} {metric} ({method})"

    def validation_status(
        self, status: str, measured: float | None, method: str | None = None
    ) -> str:
        """VALIDATED only for an IMPLEMENTED model whose held-out metric was measured."""
        method = self.model.get("validation_method", "") if method is None else method
        validated = (
            self.plain_status(status) == "IMPLEMENTED"
            and measured is not None
            and not method.startswith(self.contract["no_validation_prefix"])
        )
        return self.validated if validated else self.unvalidated

    def promotion_refusals(
        self, fields: Mapping[str, str], measured: float | None, *, allow_heuristic: bool
    ) -> list[str]:
        """Every reason the contract refuses to promote a model version; empty: it may ship."""
        missing = [name for name in self.run_params if not fields.get(name)]
        if missing:
            return [f"missing honesty fields: {', '.join(missing)}"]
        try:
            status = self.plain_status(fields["implementation_status"])
        except HonestyError as error:
            return [str(error)]
        spec = self.contract["statuses"][status]
        reasons = []
        if not spec.get("promotable", True):
            reasons.append(f"status {status} cannot be promoted: {spec['meaning']}")
        if spec.get("requires_opt_in") and not allow_heuristic:
            reasons.append(
                f"status {status} ({spec['meaning']}) needs an explicit opt-in: --allow-heuristic"
            )
        higher_is_better = self.model.get("greater_is_better", True)
        threshold = spec.get("min_metric")
        if measured is None:
            if status == "IMPLEMENTED":
                reasons.append("no measured metric: an IMPLEMENTED model must be validated")
        elif higher_is_better and threshold is not None and measured < threshold:
            reasons.append(
                f"measured {self.model.get('primary_metric')} {measured:.3f} is below the "
                f"{status} threshold {threshold:.2f}"
            )
        claimed = claimed_value(fields["accuracy_claim"])
        if measured is not None and claimed is not None:
            # the claim is rounded to 3 decimals; worse than that rounding is an overclaim
            worse = measured + 5e-4 < claimed if higher_is_better else measured - 5e-4 > claimed
            if worse:
                reasons.append(
                    f"measured {measured:.3f} is worse than the claim {fields['accuracy_claim']!r}"
                )
        return reasons

    def missing_response_fields(self, payload: Mapping[str, Any]) -> list[str]:
        """Response fields the contract requires that a payload lacks or leaves empty."""
        missing = [name for name in self.response_fields if payload.get(name) in (None, "")]
        status = payload.get("implementation_status")
        if status and status.split()[-1] not in self.statuses:
            missing.append("implementation_status (not a contract value)")
        return missing
