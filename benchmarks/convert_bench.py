"""How long `nb2prod convert` takes on a 200-code-cell notebook, process start included.

It writes the same generated notebook as `plan_bench.py`, then times `nb2prod convert` (a fresh
process: plan, code generation, cookiecutter rendering, ruff format and check, the atomic move)
against `nb2prod plan` on the same file, so the cost of the backend shows on its own.

    python benchmarks/convert_bench.py [--cells 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
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
        notebook = write_notebook(root / f"bench_{args.cells}.ipynb", args.cells)
        target = root / "package"
        convert, plan = [], []
        for _ in range(args.repeat):
            shutil.rmtree(target, ignore_errors=True)
            convert.append(
                run_checked(
                    [sys.executable, "-m", "nb2prod", "convert", str(notebook), "-o", str(target)]
                )
            )
            plan.append(
                run_checked([sys.executable, "-m", "nb2prod", "plan", str(notebook), "--json"])
            )
        files = sum(1 for p in target.rglob("*") if p.is_file())
    convert_s, plan_s = statistics.median(convert), statistics.median(plan)
    print(f"python {sys.version.split()[0]}, {args.repeat} runs, {args.cells} code cells")
    print(f"nb2prod convert: median {convert_s:.2f} s (min {min(convert):.2f} s), {files} files")
    print(f"nb2prod plan:    median {plan_s:.2f} s (min {min(plan):.2f} s)")
    backend = convert_s - plan_s
    print(f"backend (render, ruff, move): {backend:.2f} s; ratio {convert_s / plan_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
