"""One review: find the diff, lint what it changed, write (or print) the comments, and
answer with an exit status a branch protection rule can require."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nb2prod.errors import InputError
from nb2prod.lint.config import LintConfig
from nb2prod.lint.violation import fails
from nb2prod.review.comment import (
    INLINE_MARKER,
    MARKER,
    InlineComment,
    Links,
    inline_comment,
    suggestion_for,
    summary,
)
from nb2prod.review.diff import ChangedLines, parse_git_diff, parse_patch
from nb2prod.review.findings import ReviewedFile, review_files
from nb2prod.review.github import GitHub, GitHubError
from nb2prod.review.pullrequest import GitHubSite, PullRequest

FAIL_LEVELS = ("none", "warning", "error")


@dataclass(frozen=True)
class ReviewOptions:
    root: Path  # the repository checked out at the PR's head
    config: LintConfig
    everything: bool = False  # --all: every finding in the changed files
    inline: bool = False
    dry_run: bool = False
    fail_on: str = "error"


def review_pull_request(
    pull: PullRequest, site: GitHubSite, options: ReviewOptions, out: TextIO = sys.stdout
) -> int:
    """Review a pull request on GitHub; the exit status follows `options.fail_on`."""
    where = f"{pull.repository}#{pull.number}"
    try:
        with GitHub(site.api_url, pull.repository, site.token) as github:
            if pull.head is None or pull.base is None:
                data = github.pull_request(pull.number)
                pull = PullRequest(
                    pull.repository,
                    pull.number,
                    pull.base or data["base"]["sha"],
                    pull.head or data["head"]["sha"],
                )
            changed = _changed_on_github(github, pull, options.root)
            _warn_if_not_head(options.root, pull.head)
            files = review_files(options.root, changed, options.config)
            links = Links(site.server_url, pull.repository, pull.head)
            body = summary(files, links, everything=options.everything)
            inline = _inline_comments(files, options) if options.inline else []
            if options.dry_run:
                _print_dry_run(body, inline, out)
            else:
                _publish(github, pull, body, inline, out)
    except GitHubError as error:
        raise InputError(where, str(error)) from None
    return exit_status(files, options)


def review_local(base: str, options: ReviewOptions, out: TextIO = sys.stdout) -> int:
    """Print the comment a pull request from `base` to the working tree would get (committed
    or not): the way to try the bot, or its fail level, before wiring it into CI."""
    fork_point = _git(options.root, "merge-base", base, "HEAD").strip()
    changed = parse_git_diff(_git(options.root, "diff", "--no-color", fork_point))
    files = review_files(options.root, changed, options.config)
    body = summary(files, Links("", "", None), everything=options.everything)
    inline = _inline_comments(files, options) if options.inline else []
    _print_dry_run(body, inline, out)
    return exit_status(files, options)


def exit_status(files: Sequence[ReviewedFile], options: ReviewOptions) -> int:
    """1 when something at or above the fail level is left, as `nb2prod lint` does; a changed
    file that cannot be linted fails at any level but none."""
    if options.fail_on == "none":
        return 0
    kept = [f for file in files for f in file.kept(everything=options.everything)]
    failing = any(fails(f.severity, options.fail_on) for f in kept)
    return 1 if failing or any(file.error for file in files) else 0


def _changed_on_github(github: GitHub, pull: PullRequest, root: Path) -> dict[str, ChangedLines]:
    changed: dict[str, ChangedLines] = {}
    for entry in github.pull_request_files(pull.number):
        if entry.get("status") == "removed":
            continue
        path = entry["filename"]
        patch = entry.get("patch")
        if patch is not None:
            changed[path] = parse_patch(patch)
        else:  # GitHub leaves out the patch of a large diff: ask git, else judge the file whole
            changed[path] = _git_patch(root, pull, path) or ChangedLines(whole_file=True)
    return changed


def _git_patch(root: Path, pull: PullRequest, path: str) -> ChangedLines | None:
    try:
        text = _git(root, "diff", "--no-color", f"{pull.base}...{pull.head}", "--", path)
    except InputError:
        return None
    return parse_git_diff(text).get(path)


def _warn_if_not_head(root: Path, head: str | None) -> None:
    try:
        checked_out = _git(root, "rev-parse", "HEAD").strip()
    except InputError:
        return
    if head and checked_out != head:
        print(
            f"nb2prod review: warning: the checkout is at {checked_out[:12]} but the pull "
            f"request's head is {head[:12]}; line numbers may not match (check out the head, "
            "e.g. actions/checkout with ref: ${{ github.event.pull_request.head.sha }})",
            file=sys.stderr,
        )


def _inline_comments(files: Sequence[ReviewedFile], options: ReviewOptions) -> list[InlineComment]:
    from nb2prod.lint.fixes import FIXABLE, fix_file

    comments: list[InlineComment] = []
    contract = None
    for file in files:
        for finding in file.kept(everything=False):  # GitHub only takes lines in the diff
            suggestion = None
            v = finding.violation
            if v.code in FIXABLE and v.cell is None:
                contract = contract or options.config.load_rules()[1]
                fix = fix_file(options.root / file.path, [v], contract)
                if fix is not None:
                    suggestion = suggestion_for(fix.before, fix.after, file.changed)
            comment = inline_comment(file, finding, suggestion)
            if comment is not None:
                comments.append(comment)
    return comments


def _print_dry_run(body: str, inline: Sequence[InlineComment], out: TextIO) -> None:
    out.write(body)
    for comment in inline:
        first = comment.start_line or comment.line
        span = f"{first}-{comment.line}" if first != comment.line else str(comment.line)
        out.write(f"\n--- inline comment on {comment.path}:{span}\n{comment.body}\n")


def _publish(
    github: GitHub, pull: PullRequest, body: str, inline: Sequence[InlineComment], out: TextIO
) -> None:
    where = f"{pull.repository}#{pull.number}"
    ours = [c for c in github.issue_comments(pull.number) if MARKER in (c.get("body") or "")]
    if not ours:
        created = github.create_issue_comment(pull.number, body)
        out.write(f"nb2prod review: commented on {where} ({created.get('html_url', '')})\n")
    elif ours[0].get("body") == body:
        out.write(f"nb2prod review: the comment on {where} is already up to date\n")
    else:
        github.update_issue_comment(ours[0]["id"], body)
        out.write(f"nb2prod review: updated the comment on {where}\n")
    if not inline:
        return
    posted = {
        (c.get("path"), c.get("line"), match["code"])
        for c in github.review_comments(pull.number)
        if (match := INLINE_MARKER.search(c.get("body") or ""))
    }
    fresh = [c for c in inline if (c.path, c.line, c.code) not in posted]
    if fresh:
        assert pull.head is not None
        github.create_review(
            pull.number,
            pull.head,
            f"nb2prod: {len(fresh)} honesty finding(s) on changed lines; the summary comment "
            "lists them all.",
            [c.payload() for c in fresh],
        )
    out.write(
        f"nb2prod review: {len(fresh)} new inline comment(s) on {where}, "
        f"{len(inline) - len(fresh)} already there\n"
    )


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InputError(root, f"cannot run git: {error}") from None
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        raise InputError(root, f"git {args[0]} failed: {said}", hint="is it a git checkout?")
    return done.stdout
