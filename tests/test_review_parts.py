"""The bot's parts on their own: reading diffs, finding notebook lines in the JSON, and the
GitHub client's retry decisions (against the local GitHub, with the waits recorded)."""

from __future__ import annotations

import nbformat
import pytest
from conftest import notebook
from github_api import Failure, FakeGitHub

from nb2prod.review.diff import parse_git_diff, parse_patch
from nb2prod.review.github import GitHub, GitHubError, RetryPolicy
from nb2prod.review.notebook_lines import cell_line_map

TOKEN = "ghs_0123456789abcdefghij"
PATCH = "\n".join(
    [
        "@@ -3,6 +3,7 @@ import mlflow",
        " def train():",
        "     with mlflow.start_run():",
        "-        mlflow.log_params(HONESTY)",
        '+        mlflow.log_metric("accuracy", 0.9)',
        '+        print("done")',
        "     return None",
        " ",
        " ",
        "@@ -20,2 +21,3 @@ def other():",
        "     pass",
        "+    pass",
        "\\ No newline at end of file",
    ]
)


def test_patch_lines_added_touched_and_commentable() -> None:
    lines = parse_patch(PATCH)
    assert lines.added == {5, 6, 22}
    assert lines.commentable == {3, 4, 5, 6, 7, 8, 9, 21, 22}
    # The deleted log_params call touches the lines around it, so a finding there counts.
    assert lines.changes(4, 4) and not lines.changes(8, 9)


def test_git_diff_of_several_files_including_new_and_deleted() -> None:
    text = (
        "diff --git a/a.py b/a.py\nindex 1..2 100644\n--- a/a.py\n+++ b/a.py\n"
        "@@ -1 +1,2 @@\n x\n+y\n"
        "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n"
        "@@ -1 +0,0 @@\n-z\n"
        "diff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n"
        "@@ -0,0 +1,2 @@\n+--- not a header\n++++ nor this\n"
    )
    files = parse_git_diff(text)
    assert set(files) == {"a.py", "new.py"}
    assert files["a.py"].added == {2}
    assert files["new.py"].added == {1, 2}


def test_notebook_cell_lines_are_found_in_the_json() -> None:
    nb = notebook(["import os", "x = 1\ny = 2\nprint(x)", "x = 1"])
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("x = 1"))  # same text, not code
    text = nbformat.writes(nb)
    where = cell_line_map(text)
    lines = text.splitlines()
    assert '"y = 2\\n"' in lines[where[(2, 2)] - 1]
    assert lines[where[(3, 1)] - 1].strip() == '"x = 1"'
    assert where[(3, 1)] > where[(2, 3)]


def test_a_notebook_with_one_string_per_source_maps_every_line_to_it() -> None:
    text = '{"cells": [{"cell_type": "code", "source": "a = 1\\nb = 2", "metadata": {}}]}'
    assert cell_line_map(text) == {(1, 1): 1, (1, 2): 1}


def test_a_rate_limit_longer_than_the_cap_fails_at_once() -> None:
    waits: list[float] = []
    with FakeGitHub(TOKEN) as server:
        server.fail(
            Failure("GET", "/pulls/1/files", 429, {"message": "slow down"}, {"Retry-After": "3600"})
        )
        client = GitHub(server.url, "o/r", TOKEN, sleep=waits.append)
        with pytest.raises(GitHubError, match="rate-limits pull request files for 3600 s"):
            client.pull_request_files(1)
    assert waits == []


def test_persistent_server_errors_give_up_after_the_attempts_with_backoff() -> None:
    waits: list[float] = []
    with FakeGitHub(TOKEN) as server:
        server.fail(Failure("GET", "/pulls/1/files", 503, {"message": "down"}, times=10))
        client = GitHub(server.url, "o/r", TOKEN, retry=RetryPolicy(attempts=4), sleep=waits.append)
        with pytest.raises(GitHubError, match=r"kept answering 503 .* after 4 attempts"):
            client.pull_request_files(1)
    assert waits == [1.0, 2.0, 4.0]


def test_a_secondary_rate_limit_without_retry_after_waits_a_minute() -> None:
    waits: list[float] = []
    with FakeGitHub(TOKEN) as server:
        server.open_pull_request("o/r", 1, "b", "h", [])
        message = {"message": "You have exceeded a secondary rate limit"}
        server.fail(Failure("GET", "/pulls/1/files", 403, message))
        client = GitHub(server.url, "o/r", TOKEN, sleep=waits.append)
        assert client.pull_request_files(1) == []
    assert waits == [60.0]


def test_a_plain_403_is_final_and_says_which_permissions_are_needed() -> None:
    with FakeGitHub(TOKEN) as server:
        server.fail(Failure("POST", "/comments", 403, {"message": "Resource not accessible"}))
        client = GitHub(server.url, "o/r", TOKEN, sleep=lambda _: None)
        with pytest.raises(GitHubError, match="the 'pull-requests: write' permission"):
            client.create_issue_comment(1, "hi")
