# {{ cookiecutter._code.header }}
"""The registry's promotion gate: a model version gets an alias only if its honesty allows it.

    python -m {{ cookiecutter.package_name }}.promote [--version N] [--alias champion]
        [--allow-heuristic] [--require-parity]
    python -m {{ cookiecutter.package_name }}.promote --rollback [--reason TEXT] [--alias champion]

The gate reads what the model version says about itself (its tags), asks
`honesty.promotion_refusals` whether the contract lets it ship, and checks those claims against
the run that produced it (nb2prod-runtime's ``promotion.checks``: version tags can be edited
after training, a run's params cannot). Every decision is written back on the version as tags.
Promotion moves an alias (`models:/<name>@champion`), never a deprecated registry stage.
`--rollback` moves it back to the version the gate passed before the one holding it, never past
the first (nb2prod-runtime's ``rollback``); the service's POST /rollback does the same when
Alertmanager reports a claim that no longer holds.

Exit codes: 0 promoted (or rolled back), 1 refused by the contract (or nothing earlier passed
the gate), 2 no such model/version or nothing holds the alias, alias refused, or a
registry that cannot be used; every error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from nb2prod_runtime.compat import require_runtime

from {{ cookiecutter.package_name }} import RUNTIME_VERSION

require_runtime(RUNTIME_VERSION, "promote")  # before the rest of the runtime is imported

from nb2prod_runtime import promotion
from nb2prod_runtime.tracking import tracking_uri

from {{ cookiecutter.package_name }} import honesty


def promote(args: argparse.Namespace) -> int:
    """Run the gate on the version asked for; the exit code of `main`."""
    name: str = honesty.MODEL["model_name"]
    client = MlflowClient(tracking_uri=tracking_uri())
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if args.rollback:
        return promotion.rolled_back(client, name, args.alias, args.reason, now)
    mv = promotion.find_version(client, name, args.version)
    measured, _ = promotion.measured_metric(mv.tags)
    reasons = honesty.promotion_refusals(mv.tags, measured, allow_heuristic=args.allow_heuristic)
    reasons += promotion.checks(honesty.PACKAGE, client, mv, measured)
    if args.require_parity:
        reasons += promotion.unverified_parity(client, mv)
    if reasons:
        return promotion.refused(client, mv, reasons, args.alias, now)
    try:
        client.set_registered_model_alias(name, args.alias, str(mv.version))
    except MlflowException as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    return promotion.accepted(honesty.PACKAGE, client, mv, args.alias, now)


def main(argv: Sequence[str] | None = None) -> int:
    return promotion.main(honesty.PACKAGE, promote, argv)


if __name__ == "__main__":
    sys.exit(main())
