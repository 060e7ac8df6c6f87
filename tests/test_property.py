"""Property: any mutation of a valid notebook is either planned or refused as an InputError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from conftest import TRAINING_CELLS, notebook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nb2prod.errors import InputError
from nb2prod.frontend.planner import build_plan

BASE = json.loads(nbformat.writes(notebook(["%matplotlib inline", *TRAINING_CELLS])))
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
SOURCE_SNIPPETS = st.sampled_from(
    ["!ls", "%%bash\nls", "x = !pwd", "def f(:", "%time", "model.fit(", "?", "%%", "\x00", "é = 1"]
)


def paths(data: Any) -> list[tuple[Any, ...]]:
    """Every path to a value inside the JSON document."""
    found: list[tuple[Any, ...]] = [()]
    if isinstance(data, dict):
        for key, value in data.items():
            found += [(key, *rest) for rest in paths(value)]
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += [(index, *rest) for rest in paths(value)]
    return found


ALL_PATHS = paths(BASE)[1:]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    document = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = document
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "delete", "source"]))
            if action == "delete":
                del parent[path[-1]]
            elif action == "source" and path[-1] == "source":
                parent[path[-1]] = draw(SOURCE_SNIPPETS) + "\n" + str(parent[path[-1]])
            else:
                parent[path[-1]] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue
    text = json.dumps(document)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=mutated())
def test_mutated_notebooks_plan_or_fail_cleanly(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "mutant.ipynb"
    path.write_bytes(raw)
    try:
        plan = build_plan(path)
    except InputError as error:
        message = str(error)
        assert "\n" not in message
        assert message.startswith(str(path))
    else:
        assert plan.steps
