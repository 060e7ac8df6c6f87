"""IPython syntax becomes Python, requirements, or a reasoned drop; never output."""

from __future__ import annotations

import ast

from nb2prod.frontend.magics import normalise


def constructs(source: str) -> list[tuple[int, str, bool]]:
    return [(d.line, d.construct, d.warn) for d in normalise(source).dropped]


def test_session_magics_are_removed_quietly() -> None:
    cell = normalise("%matplotlib inline\n%load_ext autoreload\n%autoreload 2\nimport numpy")
    assert cell.source == "\n\n\nimport numpy"  # line numbers still match the notebook
    assert all(not d.warn for d in cell.dropped)


def test_pip_install_becomes_requirements() -> None:
    cell = normalise('!pip install -q -U scikit-learn==1.5.0 "pandas>=2"\n%pip install xgboost')
    assert cell.requirements == ("scikit-learn==1.5.0", "pandas>=2", "xgboost")
    assert cell.source.strip() == ""


def test_pip_install_from_file_is_reported() -> None:
    cell = normalise("!pip install -r requirements.txt")
    assert cell.requirements == ()
    assert any("installs from a file" in d.reason and d.warn for d in cell.dropped)


def test_shell_escapes_are_dropped_with_a_warning() -> None:
    cell = normalise("!ls -la\nfiles = !ls data\nx = 1")
    assert cell.source == "\n\nx = 1"
    assert cell.names_from_shell == ("files",)
    assert constructs("!ls -la\nfiles = !ls data") == [(1, "!ls", True), (2, "!ls", True)]


def test_time_is_unwrapped_and_timeit_marked_as_timing() -> None:
    cell = normalise("%time model.fit(X, y)\n%timeit -n 10 -r 3 model.predict(X)")
    assert cell.source == "model.fit(X, y)\nmodel.predict(X)"
    assert cell.timing_lines == (2,)


def test_assigned_time_magic_keeps_the_assignment() -> None:
    assert normalise("result = %time compute(1)").source == "result = compute(1)"


def test_cell_magics() -> None:
    timed = normalise("%%time\nmodel.fit(X, y)")
    assert timed.source == "\nmodel.fit(X, y)" and not timed.whole_cell_dropped
    captured = normalise("%%capture out\nimport noisy")
    assert captured.source.strip() == "import noisy"
    bash = normalise("%%bash\necho hi\nls")
    assert bash.whole_cell_dropped and bash.source == ""
    written = normalise("%%writefile helpers.py\ndef f():\n    return 1")
    assert written.whole_cell_dropped and written.local_files == ("helpers.py",)
    assert normalise("%%timeit\nf()").timing_lines == (2,)


def test_indented_escape_keeps_the_block_valid() -> None:
    source = normalise("for i in range(3):\n    !echo {i}\n").source
    ast.parse(source)
    assert "pass" in source


def test_help_syntax_is_dropped() -> None:
    assert normalise("np.mean?\n??np.sum\nx = 1").source == "\n\nx = 1"


def test_get_ipython_calls_never_reach_the_output() -> None:
    cell = normalise(
        "get_ipython().run_line_magic('matplotlib', 'inline')\n"
        "get_ipython().system('pip install requests==2.32.0')\n"
        "x = 1"
    )
    assert "get_ipython" not in cell.source
    assert cell.requirements == ("requests==2.32.0",)


def test_percent_inside_strings_is_left_alone() -> None:
    source = '%matplotlib inline\nquery = """\n%s rows\n!important\n"""\nsql = "%d" % 3'
    cell = normalise(source)
    assert "%s rows\n!important" in cell.source
    assert constructs(source) == [(1, "%matplotlib", False)]


def test_plain_python_is_untouched() -> None:
    source = "x = 10 % 3\ny = not x != 2\n"
    assert normalise(source).source == source.rstrip("\n")
    assert normalise(source).dropped == ()
