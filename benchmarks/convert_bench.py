"""How long `nb2prod convert` takes on a 200-code-cell notebook, process start included.

It writes the same generated notebook as `plan_bench.py`, then times `nb2prod convert` (a fresh
process: plan, code generation, cookiecutter rendering, ruff format and check, nb2prod's own
lint of the render, the atomic move) against `nb2prod plan` on the same file, so the cost of
the backend shows on its own. Each convert runs twice: first with no lint results kept from
an earlier render (a notebook converted for the first time), then again (the same notebook
converted again, or updated: its unchanged files are answered from the cache). Both use a
cache folder of their own, warmed once with the libraries' signatures plan asks for.

    python benchmarks/convert_bench.py [--cells 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from plan_bench import run_checked, write_notebook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200, help="code cells (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.environ["NB2PROD_CACHE_DIR"] = str(root / "cache")  # this run's, not the user's
        notebook = write_notebook(root / f"bench_{args.cells}.ipynb", args.cells)
        target = root / "package"
        command = [sys.executable, "-m", "nb2prod", "convert", str(notebook), "-o", str(target)]
        run_checked(command)  # warms the signatures plan asks the libraries for
        first, again, plan = [], [], []
        for _ in range(args.repeat):
            shutil.rmtree(root / "cache" / "convert-lint", ignore_errors=True)
            shutil.rmtree(target, ignore_errors=True)
            first.append(run_checked(command))
            shutil.rmtree(target)
            again.append(run_checked(command))
            plan.append(
                run_checked([sys.executable, "-m", "nb2prod", "plan", str(notebook), "--json"])
            )
        files = sum(1 for p in target.rglob("*") if p.is_file())
    first_s, again_s = statistics.median(first), statistics.median(again)
    plan_s = statistics.median(plan)
    print(f"python {sys.version.split()[0]}, {args.repeat} runs, {args.cells} code cells")
    print(f"nb2prod convert, first: median {first_s:.2f} s (min {min(first):.2f} s), {files} files")
    print(f"nb2prod convert, again: median {again_s:.2f} s (min {min(again):.2f} s)")
    print(f"nb2prod plan:           median {plan_s:.2f} s (min {min(plan):.2f} s)")
    print(
        f"backend (render, ruff, lint, move): {first_s - plan_s:.2f} s first, "
        f"{again_s - plan_s:.2f} s again; convert/plan {first_s / plan_s:.1f}x first, "
        f"{again_s / plan_s:.1f}x again"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
