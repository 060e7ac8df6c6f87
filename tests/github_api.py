"""A small GitHub on 127.0.0.1: the REST endpoints `nb2prod review` uses, with GitHub's state
and refusals, so the bot is tested against a server rather than a mock of its client.

It keeps pull requests, issue comments, reviews and review comments between calls; pages
lists with Link headers; checks the token like GitHub (401 "Bad credentials"); refuses a
review comment on a line outside the diff (422, as GitHub does); and can be told to fail
the next matching requests (a 500, a 403 secondary rate limit with Retry-After...).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT = {"login": "github-actions[bot]", "type": "Bot"}
Answer = tuple[int, Any, dict[str, str]]  # status, JSON body, extra headers
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass
class Failure:
    """Answer the next `times` requests matching method and path with this instead."""

    method: str
    path: str  # a regular expression matched against the URL path
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class Seen:
    method: str
    path: str
    status: int
    at: float
    authorization: str | None


@dataclass
class PullRequestState:
    number: int
    base: str
    head: str
    files: list[dict[str, Any]]  # filename, status, patch (None: a diff too large to show)


class FakeGitHub:
    def __init__(self, token: str, page_size: int = 2) -> None:
        self.token = token
        self.page_size = page_size
        self.pulls: dict[tuple[str, int], PullRequestState] = {}
        self.comments: dict[int, dict[str, Any]] = {}  # issue comments by id
        self.comment_issue: dict[int, tuple[str, int]] = {}
        self.review_comments: list[dict[str, Any]] = []
        self.reviews: list[dict[str, Any]] = []
        self.failures: list[Failure] = []
        self.seen: list[Seen] = []
        self._ids = iter(range(1000, 10**9))
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- test set-up and inspection -----------------------------------------------------------

    def open_pull_request(
        self, repository: str, number: int, base: str, head: str, files: list[dict[str, Any]]
    ) -> None:
        self.pulls[(repository, number)] = PullRequestState(number, base, head, files)

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)

    def issue_comments(self, repository: str, number: int) -> list[dict[str, Any]]:
        wanted = (repository, number)
        return [c for i, c in sorted(self.comments.items()) if self.comment_issue[i] == wanted]

    def add_comment(self, repository: str, number: int, body: str, user: dict[str, str]) -> None:
        self._create_comment(repository, number, body, user)

    # -- the API ------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Answer:
        repo = r"/repos/(?P<repo>[^/]+/[^/]+)"
        routes: list[tuple[str, str, Any]] = [
            ("GET", rf"{repo}/pulls/(?P<n>\d+)", self._get_pull),
            ("GET", rf"{repo}/pulls/(?P<n>\d+)/files", self._list_files),
            ("GET", rf"{repo}/issues/(?P<n>\d+)/comments", self._list_comments),
            ("POST", rf"{repo}/issues/(?P<n>\d+)/comments", self._post_comment),
            ("PATCH", rf"{repo}/issues/comments/(?P<id>\d+)", self._patch_comment),
            ("GET", rf"{repo}/pulls/(?P<n>\d+)/comments", self._list_review_comments),
            ("POST", rf"{repo}/pulls/(?P<n>\d+)/reviews", self._post_review),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return handler(match.groupdict(), query, body)
        return 404, {"message": "Not Found"}, {}

    def _pull(self, params: dict[str, str]) -> PullRequestState | None:
        return self.pulls.get((params["repo"], int(params["n"])))

    def _get_pull(self, params: dict[str, str], query: Any, body: Any) -> Answer:
        pull = self._pull(params)
        if pull is None:
            return 404, {"message": "Not Found"}, {}
        shas = {"base": {"sha": pull.base}, "head": {"sha": pull.head}}
        return 200, {"number": pull.number, **shas}, {}

    def _list_files(self, params: dict[str, str], query: Any, body: Any) -> Answer:
        pull = self._pull(params)
        if pull is None:
            return 404, {"message": "Not Found"}, {}
        files = [{k: v for k, v in f.items() if v is not None} for f in pull.files]
        return self._page(files, query, f"/repos/{params['repo']}/pulls/{params['n']}/files")

    def _list_comments(self, params: dict[str, str], query: Any, body: Any) -> Answer:
        if self._pull(params) is None:
            return 404, {"message": "Not Found"}, {}
        comments = self.issue_comments(params["repo"], int(params["n"]))
        return self._page(comments, query, f"/repos/{params['repo']}/issues/{params['n']}/comments")

    def _post_comment(self, params: dict[str, str], query: Any, body: Any) -> Answer:
        if self._pull(params) is None:
            return 404, {"message": "Not Found"}, {}
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            return 422, {"message": "Validation Failed", "errors": ["body is missing"]}, {}
        if len(body["body"]) > 65536:
            return 422, {"message": "Validation Failed", "errors": ["body is too long"]}, {}
        return 201, self._create_comment(params["repo"], int(params["n"]), body["body"], BOT), {}

    def _create_comment(
        self, repository: str, number: int, text: str, user: dict[str, str]
    ) -> dict[str, Any]:
        comment_id = next(self._ids)
        comment = {
            "id": comment_id,
            "body": text,
            "user": user,
            "html_url": f"https://github.invalid/{repository}/pull/{number}#issuecomment-{comment_id}",
            "updated_count": 0,
        }
        self.comments[comment_id] = comment
        self.comment_issue[comment_id] = (repository, number)
        return comment

    def _patch_comment(self, params: dict[str, str], query: Any, body: Any) -> Answer:
        comment = self.comments.get(int(params["id"]))
        if comment is None or self.comment_issue[comment["id"]][0] != params["repo"]:
            return 404, {"message": "Not Found"}, {}
        comment["body"] = body["body"]
        comment["updated_count"] += 1
        return 200, comment, {}

    def _list_review_comments(self, params: dict[str, str], query: Any, body: Any) -> Answer:
        if self._pull(params) is None:
            return 404, {"message": "Not Found"}, {}
        mine = [c for c in self.review_comments if c["pull"] == (params["repo"], int(params["n"]))]
        return self._page(mine, query, f"/repos/{params['repo']}/pulls/{params['n']}/comments")

    def _post_review(self, params: dict[str, str], query: Any, body: Any) -> Answer:
        pull = self._pull(params)
        if pull is None:
            return 404, {"message": "Not Found"}, {}
        if body.get("commit_id") != pull.head:
            refusal = {"message": "Validation Failed", "errors": ["commit_id is not the head"]}
            return 422, refusal, {}
        diff_lines = {f["filename"]: _right_side_lines(f.get("patch")) for f in pull.files}
        for comment in body.get("comments", []):
            lines = diff_lines.get(comment["path"])
            wanted = range(comment.get("start_line") or comment["line"], comment["line"] + 1)
            if lines is None or any(n not in lines for n in wanted):
                return (
                    422,
                    {
                        "message": "Unprocessable Entity",
                        "errors": ["Pull request review thread line must be part of the diff"],
                    },
                    {},
                )
        review = {"id": next(self._ids), "body": body.get("body"), "state": "COMMENTED"}
        self.reviews.append(review)
        for comment in body.get("comments", []):
            self.review_comments.append(
                {
                    "id": next(self._ids),
                    "pull": (params["repo"], pull.number),
                    "path": comment["path"],
                    "line": comment["line"],
                    "start_line": comment.get("start_line"),
                    "body": comment["body"],
                    "user": BOT,
                }
            )
        return 200, review, {}

    def _page(self, items: list[Any], query: dict[str, list[str]], path: str) -> Answer:
        size = min(int(query.get("per_page", ["30"])[0]), self.page_size)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if page * size < len(items):
            headers["Link"] = f'<{self.url}{path}?per_page={size}&page={page + 1}>; rel="next"'
        return 200, [{k: v for k, v in item.items() if k != "pull"} for item in chunk], headers

    # -- HTTP -----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        github = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                authorization = self.headers.get("Authorization")
                with github._lock:
                    status, body, headers = github._answer(self.command, split, raw, authorization)
                    github.seen.append(
                        Seen(self.command, split.path, status, time.monotonic(), authorization)
                    )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

        return Handler

    def _answer(self, method: str, split: Any, raw: bytes, authorization: str | None) -> Answer:
        for failure in self.failures:
            matches = failure.method == method and re.search(failure.path, split.path)
            if failure.times > 0 and matches:
                failure.times -= 1
                return failure.status, failure.body, failure.headers
        if authorization not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {"message": "Bad credentials", "status": "401"}, {}
        body = json.loads(raw) if raw else None
        return self._route(method, split.path, parse_qs(split.query), body)


def _right_side_lines(patch: str | None) -> set[int]:
    """Lines of the new file a review comment may sit on: those shown in the hunks."""
    lines: set[int] = set()
    number = 0
    for line in (patch or "").splitlines():
        if match := _HUNK.match(line):
            number = int(match.group(1))
        elif number and not line.startswith(("-", "\\")):
            lines.add(number)
            number += 1
    return lines
