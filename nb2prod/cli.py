"""Command line: `nb2prod COMMAND ...`. Exit codes: 0 ok, 1 findings, 2 usage or input error."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nb2prod import __version__
from nb2prod.errors import InputError
from nb2prod.lint.output import FORMATS
from nb2prod.lint.violation import FAIL_ON_CHOICES, fails
from nb2prod.verify.seeds import DEFAULT_SEED

if TYPE_CHECKING:
    from nb2prod.lint.cache import LintCache
    from nb2prod.lint.config import LintConfig
    from nb2prod.lint.violation import FileResult

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nb2prod",
        description="Turn a Jupyter notebook into a production ML package that tells the "
        "truth about itself.",
    )
    parser.add_argument("--version", action="version", version=f"nb2prod {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    plan = commands.add_parser(
        "plan",
        help="show what convert would build from a notebook, cell by cell",
        description="Read a notebook and print the Plan: each cell's role and why, the model, "
        "metrics, parameters, pinned requirements and findings. Nothing is written.",
    )
    plan.add_argument("notebook", type=Path, help="the .ipynb file")
    plan.add_argument("--json", action="store_true", help="print the Plan as JSON")
    plan.add_argument(
        "--status",
        metavar="STATUS",
        help="declare the model's implementation_status (IMPLEMENTED, HEURISTIC, PLANNED) "
        "instead of deriving it",
    )
    plan.add_argument("--model", metavar="NAME", help=_MODEL_HELP)
    plan.set_defaults(handler=_run_plan)

    convert = commands.add_parser(
        "convert",
        help="generate a production package from a notebook",
        description="Generate a package that trains on MLflow, serves on FastAPI and carries "
        "the model's honesty metadata everywhere. The package appears whole or not at all.",
    )
    convert.add_argument("notebook", type=Path, help="the .ipynb file")
    convert.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="where to write the package (default: a folder named after the notebook, beside it)",
    )
    convert.add_argument(
        "--force",
        action="store_true",
        help="render again over DIR when it is a package nb2prod recorded and nobody edited "
        "(files you added stay); an edited package or a git repository is refused: use update",
    )
    convert.add_argument(
        "--status",
        metavar="STATUS",
        help="declare the model's implementation_status instead of deriving it",
    )
    convert.add_argument("--model", metavar="NAME", help=_MODEL_HELP)
    convert.add_argument(
        "--template",
        type=Path,
        metavar="DIR",
        help="a fork of nb2prod's cookiecutter template that honours the same context",
    )
    convert.add_argument(
        "--feature-store",
        choices=("feast", "none"),
        help="keep the model's features in a feature store the package ships (a Feast "
        "repository); also set by the notebook's metadata nb2prod.feature_store or "
        "feature-store under [tool.nb2prod] in pyproject.toml",
    )
    convert.add_argument(
        "--verify",
        action="store_true",
        help="run verify right after writing the package: the notebook and the package's "
        "training, metric by metric",
    )
    _verify_options(convert)
    convert.set_defaults(handler=_run_convert)

    update = commands.add_parser(
        "update",
        help="merge a new render of the notebook into an edited package",
        description="Re-plan the notebook the package records (or --notebook), render it with "
        "this nb2prod, and merge the render into the package three ways, against the render "
        "recorded at the last convert or update: your edits stay, nb2prod's changes come in, "
        "and where both touched the same lines the file gets conflict markers. Exit 0: "
        "updated; 1: conflicts to resolve or honesty findings after the update; 2: nothing "
        "could be done (nothing written).",
    )
    update.add_argument(
        "package",
        type=Path,
        nargs="?",
        default=Path("."),
        help="the package folder (default: the current folder)",
    )
    update.add_argument(
        "--notebook",
        type=Path,
        metavar="PATH",
        help="the notebook, when it is no longer where the package records it",
    )
    update.add_argument(
        "--dry-run", action="store_true", help="print what would change as a diff; write nothing"
    )
    update.add_argument(
        "--allow-dirty",
        action="store_true",
        help="update even though git shows uncommitted changes in the package",
    )
    update.set_defaults(handler=_run_update)

    verify = commands.add_parser(
        "verify",
        help="prove the package measures what the notebook measured",
        description="Run the notebook top to bottom in a fresh kernel and the package's "
        "training, and compare each metric the notebook computed. Exit 0 when they agree, 1 "
        "on a mismatch (with its cause when the Plan knows one), 2 when either side cannot run.",
    )
    verify.add_argument("notebook", type=Path, help="the .ipynb file")
    verify.add_argument(
        "package",
        type=Path,
        nargs="?",
        help="the package folder (default: the one convert writes, beside the notebook)",
    )
    _verify_options(verify)
    verify.add_argument("--model", metavar="NAME", help=_MODEL_HELP)
    verify.set_defaults(handler=_run_verify)

    lint = commands.add_parser(
        "lint",
        help="check code and notebooks for missing honesty logging and response fields",
        description="Run the honesty rules over Python files, folders and notebooks. Exit "
        "code 0: clean; 1: findings (at or above --fail-on); 2: a file could not be linted "
        "or a usage error. "
        "Settings come from [tool.nb2prod.lint] in the nearest pyproject.toml; flags "
        "override them.",
    )
    lint.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or folders ('-' for stdin)"
    )
    lint.add_argument(
        "--output-format",
        choices=FORMATS,
        default="full",
        help="how to print findings (default: full)",
    )
    lint.add_argument(
        "--select", metavar="CODES", help="only these rules (comma-separated prefixes)"
    )
    lint.add_argument(
        "--ignore", metavar="CODES", help="skip these rules (comma-separated prefixes)"
    )
    lint.add_argument(
        "--exclude",
        metavar="GLOBS",
        help="skip files and folders matching these gitignore-style globs (comma-separated)",
    )
    lint.add_argument(
        "--contract", type=Path, metavar="FILE", help="the honesty contract to check against"
    )
    lint.add_argument(
        "--config", type=Path, metavar="FILE", help="read settings from this pyproject.toml"
    )
    lint.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    lint.add_argument(
        "--statistics", action="store_true", help="count findings per rule instead of listing them"
    )
    lint.add_argument(
        "--stdin-filename", metavar="NAME", default="-", help="the name to report stdin under"
    )
    lint.add_argument(
        "--no-cache", action="store_true", help="lint every file afresh and leave the cache alone"
    )
    lint.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="where to keep the cache (default: .nb2prod_cache in the project root)",
    )
    lint.add_argument(
        "--fix",
        action="store_true",
        help="apply the safe fixes (honesty params marked TODO for a human to fill in)",
    )
    lint.add_argument(
        "--diff", action="store_true", help="print the safe fixes as a diff; change nothing"
    )
    lint.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="warning",
        help="the lowest severity that makes the exit code 1 (default: warning, i.e. any "
        "finding; error lets an unused suppression, NBH900, pass)",
    )
    lint.set_defaults(handler=_run_lint)

    review = commands.add_parser(
        "review",
        help="comment on a pull request about missing honesty metadata on the lines it changes",
        description="Lint the files a pull request changed, keep the findings on the lines it "
        "added or changed, and keep one summary comment on the PR up to date (inline review "
        "comments with --inline). In GitHub Actions the pull request, repository and API come "
        "from GITHUB_EVENT_PATH, GITHUB_REPOSITORY and GITHUB_API_URL; the token is read from "
        "GITHUB_TOKEN only, never from a flag. Without a pull request, --base reviews local "
        "changes and prints the comment. Exit code 0: nothing at the --fail-on level; "
        "1: findings; 2: an error.",
    )
    review.add_argument("--repo", metavar="OWNER/NAME", help="the repository (GITHUB_REPOSITORY)")
    review.add_argument("--pr", type=int, metavar="N", help="the pull request number")
    review.add_argument("--base", metavar="SHA", help="the base commit (or a ref, locally)")
    review.add_argument("--head", metavar="SHA", help="the head commit")
    review.add_argument(
        "--api-url", metavar="URL", help="the GitHub REST API (GITHUB_API_URL; Enterprise: /api/v3)"
    )
    review.add_argument(
        "--all",
        action="store_true",
        help="keep every finding in the changed files, not only those on changed lines",
    )
    review.add_argument(
        "--inline",
        action="store_true",
        help="also post review comments on the lines, with a suggestion where the fix is "
        "mechanical",
    )
    review.add_argument(
        "--dry-run", action="store_true", help="print the comments instead of posting them"
    )
    review.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="error",
        help="the lowest severity that makes the exit code 1 (default: error)",
    )
    review.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the repository checkout, at the PR's head (default: the current folder)",
    )
    review.add_argument("--config", type=Path, metavar="FILE", help="a pyproject.toml to use")
    review.set_defaults(handler=_run_review)

    rules = commands.add_parser("rules", help="list the lint rules")
    rules.set_defaults(handler=_run_rules)
    rule = commands.add_parser("rule", help="explain a lint rule")
    rule.add_argument("code", metavar="CODE", help="a rule code, e.g. NBH101, or its name")
    rule.set_defaults(handler=_run_rule)
    return parser


def _verify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cell-timeout",
        type=int,
        default=600,
        metavar="SECONDS",
        help="the longest any one notebook cell may run (default: 600)",
    )
    parser.add_argument(
        "--rtol",
        type=float,
        default=1e-6,
        help="relative tolerance per metric (default: 1e-6, for seeded runs)",
    )
    parser.add_argument(
        "--atol", type=float, default=1e-9, help="absolute tolerance per metric (default: 1e-9)"
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=DEFAULT_SEED,
        metavar="N",
        help="start the global random generators (Python's, numpy's, torch's, Keras's) of both "
        "the notebook and the package from N, so that an unseeded notebook can be compared; "
        "'none' runs both as written (default: 0)",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="train into this MLflow store and record parity_verified on the run, for "
        "promote --require-parity (default: MLFLOW_TRACKING_URI, else a temporary store)",
    )


def _seed(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number or 'none': {text!r}") from None


_MODEL_HELP = (
    "the variable that holds the model, when the notebook has several (as the cell tag "
    "'nb2prod:model=NAME' does)"
)


def _run_plan(args: argparse.Namespace) -> int:
    from nb2prod.frontend.planner import build_plan
    from nb2prod.summary import render_summary

    plan = build_plan(args.notebook, status=args.status, model_name=args.model)
    sys.stdout.write(plan.to_json() + "\n" if args.json else render_summary(plan))
    return EXIT_OK


def _run_convert(args: argparse.Namespace) -> int:
    from nb2prod.backend.render import convert
    from nb2prod.backend.report import render_report

    conversion = convert(
        args.notebook,
        args.output,
        force=args.force,
        status=args.status,
        model_name=args.model,
        template=args.template,
        feature_store=args.feature_store,
    )
    sys.stdout.write(render_report(conversion))
    if not args.verify:
        return EXIT_OK
    return _verified(args.notebook, conversion.target, args, args.model)


def _run_update(args: argparse.Namespace) -> int:
    from nb2prod.backend.report import shown_path
    from nb2prod.lifecycle.update import render_update, update

    result = update(
        args.package, notebook=args.notebook, dry_run=args.dry_run, allow_dirty=args.allow_dirty
    )
    sys.stdout.write(render_update(result, shown_path(result.package)))
    return EXIT_FINDINGS if result.conflicts or result.lint else EXIT_OK


def _run_verify(args: argparse.Namespace) -> int:
    return _verified(args.notebook, args.package, args, args.model)


def _verified(
    notebook: Path, package: Path | None, args: argparse.Namespace, model: str | None
) -> int:
    from nb2prod.verify.run import verify

    verdict = verify(
        notebook,
        package,
        cell_timeout=args.cell_timeout,
        rtol=args.rtol,
        atol=args.atol,
        tracking_uri=args.tracking_uri,
        model_name=model,
        seed=args.seed,
    )
    sys.stdout.write(verdict.report)
    mismatch = any(not row.agrees(args.rtol, args.atol) for row in verdict.rows)
    mismatch = mismatch or bool(verdict.predictions and verdict.predictions.differing)
    return EXIT_FINDINGS if mismatch else EXIT_OK


def _run_lint(args: argparse.Namespace) -> int:
    from nb2prod.lint.cache import CACHE_DIR_NAME, LintCache, lint_with_cache, run_key
    from nb2prod.lint.discovery import find_files
    from nb2prod.lint.output import render, statistics
    from nb2prod.lint.violation import FileResult
    from nb2prod.resources import data_dir

    config = _lint_config(args)
    contract_bytes = config.contract_bytes()
    paths = args.paths or [Path(".")]
    results: list[FileResult] = []
    if Path("-") in paths:
        from nb2prod.lint.engine import lint_stdin

        rules, contract = config.load_rules()
        results.append(lint_stdin(sys.stdin.read(), args.stdin_filename, rules, contract))
        paths = [p for p in paths if p != Path("-")]
    cache = None
    files: list[Path] = []
    if paths:
        if not args.no_cache:
            folder = args.cache_dir or config.cache_dir or config.root / CACHE_DIR_NAME
            key = run_key(data_dir("rules"), contract_bytes, config.select, config.ignore)
            cache = LintCache(folder, key)
        files, problems = find_files(paths, config.exclude)
        named = {path for path in paths if not path.is_dir()}  # named files are always linted
        files = [f for f in files if f in named or not config.is_excluded(f)]
        results += [FileResult(str(path), error=problem) for path, problem in problems]
        results += lint_with_cache(files, config.load_rules, cache)
    results = [config.keep(r) for r in results]
    if args.diff:
        return _show_fixes(results, files, config)
    if args.fix:
        results = _apply_fixes(results, files, config, cache)
    if args.statistics:
        sys.stdout.write(statistics(results))
    else:
        colour = (
            args.output_format == "full" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        )
        sys.stdout.write(render(results, args.output_format, colour=colour))
    if any(fails(v.severity, args.fail_on) for r in results for v in r.violations):
        return EXIT_FINDINGS
    return EXIT_ERROR if any(r.error for r in results) else EXIT_OK


def _lint_config(args: argparse.Namespace) -> LintConfig:
    """The pyproject settings with the command line's flags laid over them."""
    from nb2prod.lint.config import LintConfig, load_config, parse_codes

    config = LintConfig(root=Path.cwd()) if args.isolated else load_config(args.config)
    changes: dict[str, object] = {}
    if (select := parse_codes(args.select)) is not None:
        changes["select"] = select
    if (ignore := parse_codes(args.ignore)) is not None:
        changes["ignore"] = ignore
    if args.exclude is not None:
        changes["exclude"] = tuple(g.strip() for g in args.exclude.split(",") if g.strip())
    if args.contract is not None:
        changes["contract"] = args.contract
    return replace(config, **changes) if changes else config


def _show_fixes(results: list[FileResult], files: list[Path], config: LintConfig) -> int:
    """`--diff`: print the safe fixes, change nothing; exit 1 when there is one (as ruff)."""
    from nb2prod.lint.fixes import fix_files
    from nb2prod.lint.reporters import plural

    linted = {str(path) for path in files}  # not stdin, not paths that do not exist
    fixes = fix_files([r for r in results if r.path in linted], config)
    sys.stdout.write("".join(fix.diff() for fix in fixes))
    for result in results:
        if result.error:
            print(f"{result.path}: error: {result.error}", file=sys.stderr)
    print(f"Would fix {plural(sum(f.fixed for f in fixes), 'finding')}.", file=sys.stderr)
    return EXIT_FINDINGS if fixes else EXIT_OK


def _apply_fixes(
    results: list[FileResult], files: list[Path], config: LintConfig, cache: LintCache | None
) -> list[FileResult]:
    """`--fix`: write the safe fixes, then lint those files again: what is left is a human's."""
    from nb2prod.lint.cache import lint_with_cache
    from nb2prod.lint.fixes import fix_files
    from nb2prod.lint.reporters import plural

    linted = {str(path) for path in files}
    fixes = fix_files([r for r in results if r.path in linted], config)
    if not fixes:
        return results
    for fix in fixes:
        fix.path.write_text(fix.after, encoding="utf-8", newline="")
    fresh = lint_with_cache([fix.path for fix in fixes], config.load_rules, cache)
    by_path = {r.path: config.keep(r) for r in fresh}
    print(f"Fixed {plural(sum(f.fixed for f in fixes), 'finding')}.", file=sys.stderr)
    return [by_path.get(r.path, r) for r in results]


def _run_review(args: argparse.Namespace) -> int:
    from nb2prod.lint.config import load_config
    from nb2prod.review.bot import ReviewOptions, review_local, review_pull_request
    from nb2prod.review.pullrequest import pull_request_from, site_from

    if not args.root.is_dir():
        raise InputError(args.root, "is not a folder", hint="--root names the repository checkout")
    options = ReviewOptions(
        root=args.root,
        config=load_config(args.config, cwd=args.root),
        everything=args.all,
        inline=args.inline,
        dry_run=args.dry_run,
        fail_on=args.fail_on,
    )
    pull = pull_request_from(
        os.environ, repository=args.repo, number=args.pr, base=args.base, head=args.head
    )
    if pull is not None:
        return review_pull_request(pull, site_from(os.environ, args.api_url), options)
    if args.base:
        return review_local(args.base, options)
    raise InputError(
        "nb2prod review",
        "no pull request to review (not a GitHub Actions pull_request event)",
        hint="pass --repo OWNER/NAME --pr N, or --base REF to review local changes",
    )


def _run_rules(args: argparse.Namespace) -> int:
    from nb2prod.lint.registry import all_rules

    for rule in all_rules():
        print(f"{rule.CODE}  {rule.NAME:<40} {rule.MESSAGE}")
    return EXIT_OK


def _run_rule(args: argparse.Namespace) -> int:
    from nb2prod.lint.registry import all_rules

    wanted = args.code.strip()
    for rule in all_rules():
        if wanted.upper() == rule.CODE or wanted == rule.NAME:
            print(f"# {rule.NAME} ({rule.CODE})\n\n{rule.documentation()}")
            return EXIT_OK
    raise InputError(wanted, "is not a rule code or name", hint="'nb2prod rules' lists them")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return args.handler(args)
    except InputError as error:
        print(f"nb2prod {args.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"nb2prod {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error of ours
        return EXIT_OK
    except Exception as error:
        if os.environ.get("NB2PROD_DEBUG"):
            raise
        print(
            f"nb2prod {args.command}: internal error: {type(error).__name__}: {error} "
            "(a bug in nb2prod: set NB2PROD_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR
