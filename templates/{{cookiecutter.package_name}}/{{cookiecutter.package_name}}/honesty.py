# {{ cookiecutter._code.header }}
"""This model's honesty: the contract (`contract.json`) applied to what its notebook declared
(`honesty.json`). Training, promotion and serving all ask this module, so they cannot
disagree; the checks themselves are nb2prod-runtime's, the record training logs is here.
"""

from __future__ import annotations

from typing import Any

from nb2prod_runtime.honesty import HonestyError
from nb2prod_runtime.package import Package

__all__ = ["HonestyError", "run_record"]

PACKAGE = Package.of(__package__)
HONESTY = PACKAGE.honesty
CONTRACT: dict[str, Any] = HONESTY.contract
MODEL: dict[str, Any] = HONESTY.model

plain_status = HONESTY.plain_status
label = HONESTY.label
require_trainable = HONESTY.require_trainable
accuracy_claim = HONESTY.accuracy_claim
validation_status = HONESTY.validation_status
promotion_refusals = HONESTY.promotion_refusals
missing_response_fields = HONESTY.missing_response_fields


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
