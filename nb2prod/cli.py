"""Command line: `nb2prod COMMAND ...`. Exit codes: 0 ok, 1 findings, 2 usage or input error."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nb2prod import __version__
from nb2prod.errors import InputError

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
    convert.add_argument("--force", action="store_true", help="replace DIR if it exists")
    convert.add_argument(
        "--status",
        metavar="STATUS",
        help="declare the model's implementation_status instead of deriving it",
    )
    convert.add_argument(
        "--template",
        type=Path,
        metavar="DIR",
        help="a fork of nb2prod's cookiecutter template that honours the same context",
    )
    convert.set_defaults(handler=_run_convert)
    return parser


def _run_plan(args: argparse.Namespace) -> int:
    from nb2prod.frontend.planner import build_plan
    from nb2prod.summary import render_summary

    plan = build_plan(args.notebook, status=args.status)
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
        template=args.template,
    )
    sys.stdout.write(render_report(conversion))
    return EXIT_OK


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
