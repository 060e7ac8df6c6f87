"""`nb2prod review` against a GitHub that runs on 127.0.0.1 (tests/github_api.py).

Each test builds a real git repository with a base and a head commit, opens a pull request
on the local GitHub with the real `git diff` patches, and runs the real CLI in a subprocess
with the variables GitHub Actions sets. The real GitHub cannot be reached here; the local one
keeps state between calls, pages its lists, checks the token and refuses what GitHub refuses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import REPO as REPO_ROOT
from conftest import Run, notebook
from github_api import BOT, Failure, FakeGitHub

from nb2prod.review.comment import MARKER

TOKEN = "ghs_" + "s3cr3tT0kenValue" * 2
REPO = "acme/models"
PR = 7

HONEST_TRAIN = '''"""Training entry points."""

import mlflow


def legacy(accuracy: float) -> None:
    with mlflow.start_run():
        mlflow.log_metric("accuracy", accuracy)


def train(accuracy: float) -> None:
    with mlflow.start_run():
        mlflow.log_metric("accuracy", accuracy)
        mlflow.log_params(
            {
                "implementation_status": "IMPLEMENTED",
                "accuracy_claim": f"{accuracy:.3f} (holdout 20%)",
                "validation_method": "holdout 20%",
                "honesty_warning": "VALIDATED",
            }
        )
'''
# The PR adds a run that logs nothing about its honesty.
DISHONEST_ADDITION = """

def train_fast(accuracy: float) -> None:
    with mlflow.start_run():
        mlflow.log_metric("accuracy", accuracy)
"""
HONEST_ADDITION = """

def train_fast(accuracy: float) -> None:
    with mlflow.start_run():
        mlflow.log_metric("accuracy", accuracy)
        mlflow.log_params(
            {
                "implementation_status": "HEURISTIC",
                "accuracy_claim": f"{accuracy:.3f} (holdout 20%, not backtested)",
                "validation_method": "holdout 20%",
                "honesty_warning": "UNVALIDATED",
            }
        )
"""


class Repository:
    """A git repository whose commits become a pull request on the local GitHub."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "--quiet", "--initial-branch=main")
        self.base = self.commit({"train.py": HONEST_TRAIN, "README.md": "models\n"}, "base")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def commit(self, files: dict[str, str | None], message: str) -> str:
        for name, text in files.items():
            target = self.path / name
            if text is None:
                self.git("rm", "--quiet", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            self.git("add", name)
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def pull_request_files(self, base: str, head: str) -> list[dict[str, object]]:
        """What GitHub's 'list pull request files' returns: name, status and the patch."""
        statuses = {"A": "added", "M": "modified", "D": "removed"}
        files = []
        for row in self.git("diff", "--name-status", base, head).splitlines():
            letter, name = row.split("\t")
            diff = self.git("diff", base, head, "--", name)
            patch = diff[diff.index("@@") :] if "@@" in diff else None
            files.append({"filename": name, "status": statuses[letter[0]], "patch": patch})
        return files


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(TOKEN) as server:
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repo")


def open_pull_request(github: FakeGitHub, repo: Repository) -> str:
    head = repo.git("rev-parse", "HEAD").strip()
    github.open_pull_request(REPO, PR, repo.base, head, repo.pull_request_files(repo.base, head))
    return head


def without_github() -> dict[str, str]:
    """This environment without any GITHUB_* variable, as outside a workflow."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}


def actions_env(
    tmp_path: Path, github: FakeGitHub, repo: Repository, **extra: str
) -> dict[str, str]:
    """The variables a `pull_request` workflow run has, and nothing of this machine's GitHub."""
    head = repo.git("rev-parse", "HEAD").strip()
    event = {
        "action": "synchronize",
        "number": PR,
        "pull_request": {"number": PR, "base": {"sha": repo.base}, "head": {"sha": head}},
        "repository": {"full_name": REPO},
    }
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    env = without_github()
    env |= {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": github.url,
        "GITHUB_SERVER_URL": "https://github.example.com",
        "GITHUB_TOKEN": TOKEN,
    }
    return env | extra


def review(repo: Repository, env: dict[str, str], *args: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "nb2prod", "review", *args],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert TOKEN not in done.stdout + done.stderr, "the token leaked into the output"
    return Run(done.returncode, done.stdout, done.stderr)


def summaries(github: FakeGitHub) -> list[dict[str, object]]:
    return [c for c in github.issue_comments(REPO, PR) if MARKER in str(c["body"])]


def writes(github: FakeGitHub) -> list[str]:
    return [f"{s.method} {s.path}" for s in github.seen if s.method != "GET"]


def test_a_dishonest_run_gets_one_comment_naming_the_line_and_the_fix(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    head = open_pull_request(github, repo)

    run = review(repo, actions_env(tmp_path, github, repo))

    assert run.code == 1, run.stderr
    assert "commented on acme/models#7" in run.stdout
    (comment,) = summaries(github)
    body = str(comment["body"])
    assert "❌ **1 finding** on the lines this pull request changes" in body
    assert "**NBH101** MLflow run does not log implementation_status" in body
    assert "log them with mlflow.log_params(...)" in body  # how to fix
    assert f"https://github.example.com/{REPO}/blob/{head}/train.py#L25" in body
    assert "✅ IMPLEMENTED" in body  # the status train.py declares, with its mark
    # The run in legacy() was there before the PR: counted, not listed.
    assert "1 more finding in these files is on lines this pull request does not change" in body
    assert "line 7" not in body


def test_two_runs_leave_one_comment_updated_in_place(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    github.add_comment(REPO, PR, "LGTM once CI passes", {"login": "reviewer", "type": "User"})
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    first = review(repo, actions_env(tmp_path, github, repo))
    assert first.code == 1

    # The author pushes a second dishonest run; the bot runs again on the new head.
    repo.commit(
        {"serve_batch.py": "import mlflow\n\nwith mlflow.start_run():\n    pass\n"}, "batch job"
    )
    open_pull_request(github, repo)
    second = review(repo, actions_env(tmp_path, github, repo))

    assert second.code == 1
    assert "updated the comment on acme/models#7" in second.stdout
    (comment,) = summaries(github)
    assert comment["updated_count"] == 1
    assert "**2 findings**" in str(comment["body"]) and "serve_batch.py" in str(comment["body"])
    assert len(github.issue_comments(REPO, PR)) == 2  # the reviewer's comment is untouched

    third = review(repo, actions_env(tmp_path, github, repo))
    assert "already up to date" in third.stdout
    assert writes(github).count(f"PATCH /repos/{REPO}/issues/comments/{comment['id']}") == 1


def test_a_fixed_pull_request_turns_the_comment_all_good(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    assert review(repo, actions_env(tmp_path, github, repo)).code == 1
    (before,) = summaries(github)

    repo.commit({"train.py": HONEST_TRAIN + HONEST_ADDITION}, "log the honesty params")
    open_pull_request(github, repo)
    run = review(repo, actions_env(tmp_path, github, repo))

    assert run.code == 0, run.stdout + run.stderr
    (after,) = summaries(github)
    assert after["id"] == before["id"]  # updated, not deleted and re-created
    body = str(after["body"])
    assert "✅ **All good**: no honesty metadata is missing" in body
    assert "NBH101" not in body.split("**Declared")[0]
    assert "`train.py`: ✅ IMPLEMENTED, ⚠️ HEURISTIC" in body


def test_server_errors_and_secondary_rate_limits_are_retried(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    github.fail(Failure("GET", r"/pulls/7/files$", 502, {"message": "Bad Gateway"}, times=2))
    github.fail(
        Failure(
            "POST",
            r"/issues/7/comments$",
            403,
            {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
            headers={"Retry-After": "1"},
        )
    )
    github.fail(Failure("POST", r"/issues/7/comments$", 500, {"message": "Server Error"}))

    run = review(repo, actions_env(tmp_path, github, repo))

    assert run.code == 1, run.stderr
    assert len(summaries(github)) == 1
    posts = [s for s in github.seen if s.method == "POST"]
    assert [s.status for s in posts] == [403, 500, 201]
    assert posts[1].at - posts[0].at >= 1.0  # Retry-After was honoured
    files = [s.status for s in github.seen if s.path.endswith("/pulls/7/files")]
    assert files[:3] == [502, 502, 200]


def test_a_bad_token_is_one_line_exit_2_and_never_printed(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    env = actions_env(tmp_path, github, repo, GITHUB_TOKEN=TOKEN[::-1])

    run = review(repo, env)

    assert run.code == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "acme/models#7" in run.stderr and "GitHub refused the token (401)" in run.stderr
    assert TOKEN[::-1] not in run.stderr + run.stdout
    assert not summaries(github)


def test_a_server_echoing_the_token_does_not_get_it_printed(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    echo = {"message": f"token {TOKEN} lacks scope"}
    github.fail(Failure("GET", r"/issues/7/comments$", 403, echo))

    run = review(repo, actions_env(tmp_path, github, repo))

    assert run.code == 2
    assert "403" in run.stderr and "***" in run.stderr  # review() also asserts the token is absent


def test_a_missing_pull_request_is_one_line_exit_2(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    open_pull_request(github, repo)
    run = review(repo, actions_env(tmp_path, github, repo), "--pr", "99")
    assert run.code == 2
    assert run.stderr.startswith("nb2prod review: error: acme/models#99: GitHub has no")
    assert "(404)" in run.stderr and run.stderr.count("\n") == 1


def test_inline_comments_sit_on_changed_lines_with_a_suggestion_and_are_not_repeated(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)

    run = review(repo, actions_env(tmp_path, github, repo), "--inline")

    assert run.code == 1, run.stderr
    (inline,) = github.review_comments  # not the pre-existing run in legacy(), outside the diff
    assert (inline["path"], inline["line"]) == ("train.py", 25)
    assert "```suggestion\n    with mlflow.start_run():\n" in inline["body"]
    assert '"implementation_status": "TODO: fill in",' in inline["body"]

    again = review(repo, actions_env(tmp_path, github, repo), "--inline")
    assert again.code == 1
    assert "0 new inline comment(s)" in again.stdout
    assert len(github.review_comments) == 1 and len(github.reviews) == 1


def test_all_keeps_findings_outside_the_diff_in_the_summary_only(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)

    run = review(repo, actions_env(tmp_path, github, repo), "--all", "--inline")

    body = str(summaries(github)[0]["body"])
    assert "**2 findings** in the files this pull request changes" in body
    assert "line 7" in body and "line 25" in body
    # GitHub takes review comments only on lines of the diff: legacy()'s run gets none.
    assert [c["line"] for c in github.review_comments] == [25], run.stdout


def test_notebook_findings_name_the_cell_and_comment_on_its_json_line(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    cells = ["import mlflow", "x = 1"]
    before = nbformat.writes(notebook(cells))
    repo.commit({"explore.ipynb": before}, "notebook")
    repo.base = repo.git("rev-parse", "HEAD").strip()
    nb = nbformat.reads(before, as_version=4)
    nb.cells[1].source = "x = 1\nwith mlflow.start_run():\n    mlflow.log_metric('acc', x)"
    repo.commit({"explore.ipynb": nbformat.writes(nb)}, "track the run")
    open_pull_request(github, repo)

    run = review(repo, actions_env(tmp_path, github, repo), "--inline")

    assert run.code == 1, run.stderr
    body = str(summaries(github)[0]["body"])
    assert "| `explore.ipynb` | — | [cell 2, line 2]" in body
    assert "explore.ipynb?plain=1#L" in body
    (inline,) = github.review_comments
    json_line = (repo.path / "explore.ipynb").read_text().splitlines()[inline["line"] - 1]
    assert "with mlflow.start_run():" in json_line


def test_fail_on_sets_the_exit_status_and_dry_run_posts_nothing(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    env = actions_env(tmp_path, github, repo)

    dry = review(repo, env, "--dry-run", "--inline")
    relaxed = review(repo, env, "--dry-run", "--fail-on", "none")

    assert dry.code == 1 and relaxed.code == 0
    assert dry.stdout.startswith(MARKER) and "--- inline comment on train.py:25" in dry.stdout
    assert writes(github) == []


def test_flags_work_without_actions_variables(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    """Outside Actions: repository, number and API from flags; the commits from the API."""
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    env = without_github()
    env["GITHUB_TOKEN"] = TOKEN

    run = review(repo, env, "--repo", REPO, "--pr", str(PR), "--api-url", github.url)

    assert run.code == 1, run.stderr
    assert f"GET /repos/{REPO}/pulls/{PR}" in [f"{s.method} {s.path}" for s in github.seen]
    assert len(summaries(github)) == 1


def test_pages_of_comments_are_all_read_before_creating_one(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    """The page size is 2: the bot's comment is on the third page and must be found there."""
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    review(repo, actions_env(tmp_path, github, repo))
    for n in range(5):
        github.add_comment(REPO, PR, f"discussion {n}", {"login": "dev", "type": "User"})
    github.comments = dict(sorted(github.comments.items(), key=lambda kv: kv[1]["user"] == BOT))

    review(repo, actions_env(tmp_path, github, repo), "--all")

    assert len(summaries(github)) == 1


def test_local_changes_are_reviewed_without_github(repo: Repository) -> None:
    (repo.path / "train.py").write_text(HONEST_TRAIN + DISHONEST_ADDITION, encoding="utf-8")
    env = without_github()

    run = review(repo, env, "--base", "main")

    assert run.code == 1
    assert "**NBH101**" in run.stdout and "line 25" in run.stdout


def test_outside_a_pull_request_the_error_says_what_to_pass(repo: Repository) -> None:
    env = without_github()
    run = review(repo, env)
    assert run.code == 2
    assert "pass --repo OWNER/NAME --pr N, or --base REF" in run.stderr


# -- the composite action ---------------------------------------------------------------------

ACTION = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))
_EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
_NAME = re.compile(r"\b(?:inputs|github|steps)(?:\.[A-Za-z_][\w-]*)+")


def _evaluate(expression: str, context: dict[str, str]) -> str | bool:
    """The subset of the Actions expression language action.yml uses: names, '...' strings,
    ==, && and ||. An unknown name is an error, as a typo in action.yml would be."""
    python = _NAME.sub(lambda m: repr(context[m.group(0)]), expression)
    python = python.replace("&&", " and ").replace("||", " or ")
    return eval(python, {"__builtins__": {}})  # only ever action.yml's own text


def _substitute(text: str, context: dict[str, str]) -> str:
    return _EXPRESSION.sub(lambda m: str(_evaluate(m.group(1), context)), text)


def run_action_emulating_the_runner(
    inputs: dict[str, str], env: dict[str, str], workdir: Path, tmp_path: Path
) -> tuple[int, str]:
    """Run action.yml's `run:` steps in order with bash, as the runner would: expressions
    substituted, step outputs through GITHUB_OUTPUT, `if:` honoured. No runner can run here:
    `uses:` steps (setup-python) are skipped, and the install step is skipped too, since
    nb2prod is already installed where the tests run (its command is checked instead)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    # Scripts, not a symlink: a virtualenv's python reached through a symlink elsewhere is the
    # base interpreter (Python finds pyvenv.cfg beside the path it was started by).
    for name, command in (("python", ""), ("nb2prod", " -m nb2prod")):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}"{command} "$@"\n')
        (bin_dir / name).chmod(0o755)
    context = {"github.event_name": env["GITHUB_EVENT_NAME"], "github.token": env["GITHUB_TOKEN"]}
    for name, spec in ACTION["inputs"].items():  # defaults may be expressions themselves
        context[f"inputs.{name}"] = _substitute(str(spec.get("default", "")), context)
    context |= {f"inputs.{name}": value for name, value in inputs.items()}
    for step in ACTION["runs"]["steps"]:
        for name in {m.group(0) for m in _NAME.finditer(json.dumps(step))}:
            if name.startswith("steps.") and name not in context:
                context[name] = ""  # an output of a step that was skipped
    log = []
    status = 0
    for step in ACTION["runs"]["steps"]:
        if "uses" in step:
            continue
        if step["name"] == "Install nb2prod":
            assert '"$GITHUB_ACTION_PATH"' in step["run"]
            continue
        if "if" in step and not _evaluate(_EXPRESSION.sub(r"\1", step["if"]), context):
            continue
        outputs = tmp_path / f"output-{step['id'] if 'id' in step else len(log)}"
        outputs.touch()
        step_env = env | {k: _substitute(str(v), context) for k, v in step.get("env", {}).items()}
        step_env |= {"GITHUB_OUTPUT": str(outputs), "GITHUB_ACTION_PATH": str(REPO_ROOT)}
        step_env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        assert step["shell"] == "bash"
        done = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", _substitute(step["run"], context)],
            cwd=workdir,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        log.append(done.stdout + done.stderr)
        for line in outputs.read_text().splitlines():
            key, _, value = line.partition("=")
            context[f"steps.{step.get('id')}.outputs.{key}"] = value
        status = done.returncode
        if status != 0:
            break
    return status, "\n".join(log)


def test_the_action_lints_to_sarif_and_comments_on_the_pull_request_runner_emulated(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"train.py": HONEST_TRAIN + DISHONEST_ADDITION}, "add a fast path")
    open_pull_request(github, repo)
    env = actions_env(tmp_path, github, repo)

    status, log = run_action_emulating_the_runner({}, env, repo.path, tmp_path)

    assert status == 1, log  # a finding on a changed line fails the check
    sarif = json.loads((repo.path / "nb2prod.sarif").read_text())
    assert sorted(r["locations"][0]["physicalLocation"]["region"]["startLine"]
                  for r in sarif["runs"][0]["results"]) == [7, 25]  # fmt: skip
    assert "::error file=train.py,line=25" in log  # annotations on the diff
    assert "nb2prod found missing honesty metadata (fail-on: error)" in log
    (comment,) = summaries(github)
    assert "**1 finding**" in str(comment["body"])
    assert TOKEN not in log

    relaxed, log = run_action_emulating_the_runner(
        {"fail-on": "none"}, env, repo.path, tmp_path / "x"
    )
    assert relaxed == 0, log
    assert len(summaries(github)) == 1

    # On a push there is no pull request: the lint's findings decide, no comment is written.
    push = env | {"GITHUB_EVENT_NAME": "push"}
    pushed, log = run_action_emulating_the_runner({}, push, repo.path, tmp_path / "push")
    assert pushed == 1 and "nb2prod review" not in log
    assert summaries(github)[0]["updated_count"] == 0


def test_on_a_push_fail_on_decides_whether_a_warning_fails_runner_emulated(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    """An unused suppression (NBH900) is a warning: with the default fail-on (error) a push
    passes with a warning annotation; with fail-on warning it fails."""
    repo.commit({"train.py": "x = 1  # nb2prod: ignore[NBH101]\n"}, "tidy up")
    push = actions_env(tmp_path, github, repo) | {"GITHUB_EVENT_NAME": "push"}
    passed, log = run_action_emulating_the_runner({}, push, repo.path, tmp_path / "error")
    assert passed == 0, log
    assert "::warning file=train.py,line=1" in log and "::error" not in log
    sarif = json.loads((repo.path / "nb2prod.sarif").read_text())
    assert [r["level"] for r in sarif["runs"][0]["results"]] == ["warning"]
    strict, log = run_action_emulating_the_runner(
        {"fail-on": "warning"}, push, repo.path, tmp_path / "warning"
    )
    assert strict == 1, log
    assert "nb2prod found missing honesty metadata (fail-on: warning)" in log


def test_every_action_input_is_used_and_every_reference_is_declared() -> None:
    text = (REPO_ROOT / "action.yml").read_text(encoding="utf-8")
    referenced = set(re.findall(r"inputs\.([\w-]+)", text))
    assert referenced == set(ACTION["inputs"])
    assert ACTION["runs"]["using"] == "composite"
    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            check = subprocess.run(["bash", "-n", "-c", step["run"]], capture_output=True)
            assert check.returncode == 0, (step["name"], check.stderr)


def test_a_changed_file_that_does_not_parse_is_reported_and_fails_the_check(
    github: FakeGitHub, repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"broken.py": "def oops(:\n    pass\n", "README.md": None}, "wip")
    open_pull_request(github, repo)

    run = review(repo, actions_env(tmp_path, github, repo))

    assert run.code == 1
    body = str(summaries(github)[0]["body"])
    assert "**1 file** could not be linted" in body
    assert "| `broken.py` | 1:" in body and "syntax error" in body
