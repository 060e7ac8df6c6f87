"""The CI output formats, checked on the real CLI's output: SARIF, GitHub, GitLab, Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from conftest import notebook, run_cli

from nb2prod import __version__
from nb2prod.lint import reporters
from nb2prod.lint.violation import FileResult, Violation

BAD_RUN = 'import mlflow\n\nwith mlflow.start_run():\n    mlflow.log_metric("a", 1)\n'
BAD_STATUS = 'import mlflow\nmlflow.log_param("implementation_status", "DONE")\n'
RULES = ("--select", "NBH101,NBH102", "--no-cache")


def lint(folder: Path, output_format: str, *paths: str):
    return run_cli("lint", *paths or ["."], "--output-format", output_format, *RULES, cwd=folder)


def project(tmp_path: Path) -> Path:
    """A run without honesty, a bad status value, a notebook, and a file that does not parse."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(BAD_RUN)
    (tmp_path / "src" / "status.py").write_text(BAD_STATUS)
    (tmp_path / "broken.py").write_text("def f(:\n")
    cells = ["import mlflow", "with mlflow.start_run():\n    pass"]
    nbformat.write(notebook(cells), tmp_path / "explore.ipynb")
    return tmp_path


def test_sarif_has_rule_metadata_locations_and_unlinted_files(tmp_path: Path) -> None:
    result = lint(project(tmp_path), "sarif")
    assert result.code == 1, result.stderr
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "nb2prod" and driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    rules = {rule["id"]: rule for rule in driver["rules"]}
    assert set(rules) == {"NBH101", "NBH102"}
    assert rules["NBH101"]["name"] == "mlflow-run-without-honesty"
    assert rules["NBH101"]["shortDescription"]["text"]
    assert "MLflow runs" in rules["NBH101"]["fullDescription"]["text"]
    assert "## Use instead" in rules["NBH101"]["help"]["markdown"]

    by_uri = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r for r in run["results"]
    }
    assert set(by_uri) == {"src/train.py", "src/status.py", "explore.ipynb"}
    train = by_uri["src/train.py"]
    assert train["ruleId"] == "NBH101" and train["level"] == "error"
    assert driver["rules"][train["ruleIndex"]]["id"] == "NBH101"
    assert train["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 3,
        "startColumn": 6,
        "endLine": 3,
        "endColumn": 24,
    }
    assert "implementation_status" in train["message"]["text"]
    # a notebook finding names the cell; the .ipynb file's own lines are JSON, not the code
    cell = by_uri["explore.ipynb"]
    assert cell["message"]["text"].startswith("cell_2:1:6: ")
    assert cell["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert cell["properties"] == {"cell": 2, "cellLine": 1, "cellColumn": 6}

    (notification,) = run["invocations"][0]["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert "broken.py" in notification["message"]["text"]
    location = notification["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "broken.py"
    assert location["region"]["startLine"] == 1


def fingerprints(folder: Path) -> list[tuple[int, str]]:
    run = json.loads(lint(folder, "sarif", "train.py").stdout)["runs"][0]
    return [
        (
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["partialFingerprints"][reporters.FINGERPRINT_KEY],
        )
        for r in run["results"]
    ]


def test_sarif_fingerprints_survive_lines_inserted_above(tmp_path: Path) -> None:
    twice = BAD_RUN + "\n\nwith mlflow.start_run():\n    pass\n"
    (tmp_path / "train.py").write_text(twice)
    before = fingerprints(tmp_path)
    (tmp_path / "train.py").write_text('"""Training."""\n\nimport os\n' + twice)
    after = fingerprints(tmp_path)
    assert [line for line, _ in after] == [line + 3 for line, _ in before]
    assert [fp for _, fp in after] == [fp for _, fp in before]
    assert len({fp for _, fp in before}) == 2  # identical lines are still told apart


def test_github_annotations(tmp_path: Path) -> None:
    result = lint(project(tmp_path), "github")
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert (
        "::error file=src/train.py,line=3,endLine=3,col=6,endColumn=24,"
        "title=NBH101 (mlflow-run-without-honesty)::MLflow run does not log" in "\n".join(lines)
    )
    assert any(
        line.startswith("::error file=explore.ipynb,title=NBH101") and "::cell_2:1:6: " in line
        for line in lines
    )
    assert any(
        line.startswith("::error file=broken.py,line=1,col=") and "syntax error" in line
        for line in lines
    )
    assert all(line.startswith("::error ") for line in lines)


def test_github_escapes_properties_and_messages() -> None:
    violation = Violation("a,b:c.py", 2, 1, "NBH101", "x", "50% done\nnext: line", 3, 1)
    text = reporters.render([FileResult("a,b:c.py", (violation,))], "github")
    assert text == (
        "::error file=a%2Cb%3Ac.py,line=2,endLine=3,title=NBH101 (x)::50%25 done%0Anext: line\n"
    )


def test_gitlab_code_quality(tmp_path: Path) -> None:
    result = lint(project(tmp_path), "gitlab")
    issues = json.loads(result.stdout)
    for issue in issues:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= set(issue)
        assert isinstance(issue["location"]["lines"]["begin"], int)
    assert len({issue["fingerprint"] for issue in issues}) == len(issues)
    by_path = {issue["location"]["path"]: issue for issue in issues}
    assert by_path["src/train.py"]["check_name"] == "NBH101"
    assert by_path["src/train.py"]["location"]["lines"] == {"begin": 3, "end": 3}
    assert by_path["src/status.py"]["check_name"] == "NBH102"
    assert "cell_2:1:6" in by_path["explore.ipynb"]["description"]
    assert by_path["broken.py"]["severity"] == "critical"


def test_an_unused_suppression_is_a_warning_in_every_ci_format(tmp_path: Path) -> None:
    """NBH900 is untidy, not dishonest: CI shows it as a warning, and lint can let it pass."""
    (tmp_path / "tidy.py").write_text("x = 1  # nb2prod: ignore[NBH101]\n")
    (tmp_path / "train.py").write_text(BAD_RUN)
    run = ("lint", "--select", "NBH101,NBH900", "--no-cache")

    def output(output_format: str, *extra: str) -> str:
        done = run_cli(*run, "--output-format", output_format, *extra, cwd=tmp_path)
        assert done.code == 1, done.stderr
        return done.stdout

    sarif = json.loads(output("sarif"))["runs"][0]
    levels = {r["ruleId"]: r["level"] for r in sarif["results"]}
    assert levels == {"NBH900": "warning", "NBH101": "error"}
    defaults = {
        r["id"]: r["defaultConfiguration"]["level"] for r in sarif["tool"]["driver"]["rules"]
    }
    assert defaults == {"NBH900": "warning", "NBH101": "error"}
    github = dict(line.split(" ", 1) for line in output("github").splitlines())
    assert github["::warning"].startswith("file=tidy.py,line=1,")
    assert "title=NBH900 (unused-suppression)" in github["::warning"]
    assert github["::error"].startswith("file=train.py,line=3,")
    gitlab = {issue["check_name"]: issue["severity"] for issue in json.loads(output("gitlab"))}
    assert gitlab == {"NBH900": "minor", "NBH101": "major"}

    (tmp_path / "train.py").unlink()  # only the warning is left
    assert run_cli(*run, cwd=tmp_path).code == 1  # by default any finding fails, as in ruff
    passed = run_cli(*run, "--fail-on", "error", cwd=tmp_path)
    assert passed.code == 0 and "NBH900" in passed.stdout  # shown, but not failing
    (tmp_path / "train.py").write_text(BAD_RUN)
    assert run_cli(*run, "--fail-on", "error", cwd=tmp_path).code == 1
    assert run_cli(*run, "--fail-on", "none", cwd=tmp_path).code == 0


def test_markdown_table_per_file(tmp_path: Path) -> None:
    result = lint(project(tmp_path), "markdown")
    text = result.stdout
    assert text.startswith("## nb2prod lint\n")
    assert "**3 findings** in 3 files; 1 file could not be linted." in text
    for name in ("src/train.py", "src/status.py", "explore.ipynb"):
        assert f"### `{name}`\n\n| Location | Rule | Message |\n| --- | --- | --- |\n" in text
    assert "| 3:6 | `NBH101` mlflow-run-without-honesty |" in text
    assert "| cell_2:1:6 | `NBH101`" in text
    assert "| `broken.py` | 1:" in text


def test_markdown_escapes_table_cells_and_says_when_clean() -> None:
    violation = Violation("a.py", 1, 1, "NBH102", "n", "a | b <script>", 1, 2)
    text = reporters.render([FileResult("a.py", (violation,))], "markdown")
    assert "| a \\| b &lt;script&gt; |" in text
    clean = reporters.render([FileResult("a.py")], "markdown")
    assert "No findings" in clean


def test_clean_tree_in_every_format(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    for output_format in ("sarif", "github", "gitlab", "markdown"):
        result = lint(tmp_path, output_format)
        assert result.code == 0, (output_format, result.stderr)
    assert json.loads(lint(tmp_path, "sarif").stdout)["runs"][0]["results"] == []
    assert lint(tmp_path, "github").stdout == ""
    assert json.loads(lint(tmp_path, "gitlab").stdout) == []
