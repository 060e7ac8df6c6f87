"""The few GitHub REST endpoints the bot needs, with GitHub's own retry rules.

GitHub asks integrations to wait `Retry-After` seconds after a secondary rate limit, until
`x-ratelimit-reset` when the primary limit is spent, and at least a minute otherwise;
5xx answers and dropped connections are retried with exponential backoff. The token goes in
one header and nowhere else: errors name the endpoint and GitHub's message, and any text
that leaves this module is scrubbed of the token in case a server echoes it back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from nb2prod import __version__

API_VERSION = "2022-11-28"
_RETRIED_STATUSES = frozenset({500, 502, 503, 504})
_NEXT_LINK = re.compile(r'<(?P<url>[^>]+)>;\s*rel="next"')


class GitHubError(Exception):
    """A request GitHub refused or that could not be made, in one line without secrets."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff: float = 1.0  # first wait after a 5xx; doubles each time
    secondary_limit_wait: float = 60.0  # GitHub: "wait for at least one minute"
    max_wait: float = 300.0  # a longer required wait fails instead of hanging CI


class GitHub:
    """A GitHub REST client for one repository (`owner/name`) on github.com or an Enterprise
    server (`api_url` from GITHUB_API_URL, e.g. https://github.example.com/api/v3)."""

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: str | None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"nb2prod/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.repository = repository
        self._token = token
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"), headers=headers, timeout=30.0, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- endpoints --------------------------------------------------------------------------

    def pull_request(self, number: int) -> dict[str, Any]:
        return self._json("GET", f"/repos/{self.repository}/pulls/{number}", what="pull request")

    def pull_request_files(self, number: int) -> list[dict[str, Any]]:
        path = f"/repos/{self.repository}/pulls/{number}/files"
        return list(self._pages(path, what="pull request files"))

    def issue_comments(self, number: int) -> list[dict[str, Any]]:
        path = f"/repos/{self.repository}/issues/{number}/comments"
        return list(self._pages(path, what="pull request comments"))

    def create_issue_comment(self, number: int, body: str) -> dict[str, Any]:
        path = f"/repos/{self.repository}/issues/{number}/comments"
        return self._json("POST", path, json={"body": body}, what="new comment")

    def update_issue_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        path = f"/repos/{self.repository}/issues/comments/{comment_id}"
        return self._json("PATCH", path, json={"body": body}, what=f"comment {comment_id}")

    def review_comments(self, number: int) -> list[dict[str, Any]]:
        path = f"/repos/{self.repository}/pulls/{number}/comments"
        return list(self._pages(path, what="review comments"))

    def create_review(
        self, number: int, commit_id: str, body: str, comments: list[dict[str, Any]]
    ) -> dict[str, Any]:
        payload = {"commit_id": commit_id, "event": "COMMENT", "body": body, "comments": comments}
        path = f"/repos/{self.repository}/pulls/{number}/reviews"
        return self._json("POST", path, json=payload, what="review")

    # -- transport --------------------------------------------------------------------------

    def _pages(self, path: str, *, what: str) -> Iterator[dict[str, Any]]:
        url: str | None = path
        params: dict[str, Any] | None = {"per_page": 100}
        while url is not None:
            response = self._request("GET", url, params=params, what=what)
            page = response.json()
            if not isinstance(page, list):
                raise GitHubError(f"GitHub answered {what} with something other than a list")
            yield from page
            match = _NEXT_LINK.search(response.headers.get("link", ""))
            url, params = (match["url"], None) if match else (None, None)

    def _json(self, method: str, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        data = self._request(method, path, what=what, **kwargs).json()
        if not isinstance(data, dict):
            raise GitHubError(f"GitHub answered {what} with something other than an object")
        return data

    def _request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(1, self._retry.attempts + 1):
            last = attempt == self._retry.attempts
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as error:
                if last:
                    message = self._scrub(f"cannot reach GitHub for {what}: {error}")
                    raise GitHubError(message) from None
                self._sleep(self._retry.backoff * 2 ** (attempt - 1))
                continue
            wait = self._wait_before_retry(response, attempt)
            if wait is None:
                if response.is_error:
                    raise self._refusal(response, method, what)
                return response
            if last:
                raise GitHubError(
                    f"GitHub kept answering {response.status_code} for {what} after "
                    f"{attempt} attempts; rerun the job later",
                    response.status_code,
                )
            if wait > self._retry.max_wait:
                raise GitHubError(
                    f"GitHub rate-limits {what} for {wait:.0f} s more; rerun the job later",
                    response.status_code,
                )
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait_before_retry(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before asking again, or None when the answer is final."""
        status = response.status_code
        if status in _RETRIED_STATUSES:
            return _retry_after(response) or self._retry.backoff * 2 ** (attempt - 1)
        if status not in (403, 429):
            return None
        if (after := _retry_after(response)) is not None:
            return after
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset = response.headers.get("x-ratelimit-reset", "")
            return max(float(reset) - time.time(), 1.0) if reset.isdigit() else None
        if "secondary rate limit" in _message(response).lower():
            return self._retry.secondary_limit_wait * 2 ** (attempt - 1)
        return None  # a plain 403: permissions, final

    def _refusal(self, response: httpx.Response, method: str, what: str) -> GitHubError:
        status = response.status_code
        said = _message(response)
        if status == 401:
            text = "GitHub refused the token (401); set GITHUB_TOKEN to a valid token"
        elif status == 403:
            text = (
                f"GitHub denied {method} {what} (403: {said}); the token needs "
                "the 'pull-requests: write' permission (a workflow's 'permissions:')"
            )
        elif status == 404:
            text = (
                f"GitHub has no {what} for {self.repository} (404); check the repository and "
                "pull request number, and that the token can see the repository"
            )
        else:
            text = f"GitHub refused {method} {what} ({status}: {said})"
        return GitHubError(self._scrub(text), status)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase
    if not isinstance(data, dict) or not data.get("message"):
        return response.reason_phrase
    errors = data.get("errors") if isinstance(data.get("errors"), list) else []
    details = [e.get("message") or e if isinstance(e, dict) else e for e in errors if e]
    text = "; ".join([str(data["message"]), *map(str, details)])
    return " ".join(text.split())
