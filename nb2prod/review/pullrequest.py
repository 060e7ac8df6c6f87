"""Which pull request to review and where its GitHub is: flags first, then what GitHub
Actions provides (the event file and the GITHUB_* variables), so the same command works in
a workflow, on GitHub Enterprise, and by hand."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb2prod.errors import InputError

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class PullRequest:
    repository: str  # owner/name
    number: int
    base: str | None  # commit SHAs; read from the API when the event does not give them
    head: str | None


@dataclass(frozen=True)
class GitHubSite:
    api_url: str
    server_url: str  # for links in the comment
    token: str | None


def site_from(environ: Mapping[str, str], api_url: str | None) -> GitHubSite:
    return GitHubSite(
        api_url=(api_url or environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
        server_url=(environ.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/"),
        token=environ.get("GITHUB_TOKEN") or None,
    )


def pull_request_from(
    environ: Mapping[str, str],
    *,
    repository: str | None,
    number: int | None,
    base: str | None,
    head: str | None,
) -> PullRequest | None:
    """The pull request named by flags, else by the Actions event; None when neither names one."""
    event = _event(environ)
    pull = event.get("pull_request") if isinstance(event.get("pull_request"), dict) else {}
    repository = repository or environ.get("GITHUB_REPOSITORY") or _full_name(event)
    if number is None:
        number = pull.get("number") if isinstance(pull.get("number"), int) else None
    if number is None:
        if "GITHUB_EVENT_PATH" in environ and environ.get("GITHUB_EVENT_NAME", "").startswith(
            "pull_request"
        ):
            raise InputError(environ["GITHUB_EVENT_PATH"], "the event names no pull request")
        return None
    if not repository or not _REPOSITORY.match(repository):
        raise InputError(
            "--repo",
            f"{repository or 'no repository'} is not OWNER/NAME",
            hint="pass --repo OWNER/NAME or set GITHUB_REPOSITORY",
        )
    return PullRequest(
        repository=repository,
        number=number,
        base=base or _sha(pull, "base"),
        head=head or _sha(pull, "head"),
    )


def _event(environ: Mapping[str, str]) -> dict[str, Any]:
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(path, f"cannot read the GitHub event file ({error.strerror})") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError(path, "the GitHub event file is not JSON") from None
    return data if isinstance(data, dict) else {}


def _full_name(event: dict[str, Any]) -> str | None:
    repository = event.get("repository")
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return name if isinstance(name, str) else None


def _sha(pull: dict[str, Any], side: str) -> str | None:
    ref = pull.get(side)
    sha = ref.get("sha") if isinstance(ref, dict) else None
    return sha if isinstance(sha, str) else None
