"""Refuse to run a package over a runtime it was not generated for, in one line."""

from __future__ import annotations

import sys

from nb2prod_runtime import __version__


def _major_minor(version: str) -> tuple[int, int]:
    major, minor, *_ = (int(part) for part in [*version.split(".")[:2], "0"])
    return major, minor


def compatible(installed: str, generated_for: str) -> bool:
    """Same major; and while 0.x, same minor too (semver: 0.x minors may break)."""
    have, want = _major_minor(installed), _major_minor(generated_for)
    return have[0] == want[0] and (want[0] > 0 or have[1] == want[1])


def require_runtime(generated_for: str, program: str, installed: str = __version__) -> None:
    """Exit 2 with what to install when the installed runtime does not fit the package."""
    if compatible(installed, generated_for):
        return
    major, minor = _major_minor(generated_for)
    series = f"{major}.{minor}.x" if major == 0 else f"{major}.x"
    wheel = f"vendor/nb2prod_runtime-{generated_for}-py3-none-any.whl"
    print(
        f"{program}: cannot start: nb2prod-runtime {installed} is installed, this package was "
        f"generated for {series}: pip install {wheel}",
        file=sys.stderr,
    )
    raise SystemExit(2)
