"""How long `nb2prod update` takes on a sample package a team edited, against `convert`.

It converts a bundled sample into a git repository, commits a hand edit (a route in serve.py,
a README section), changes one hyperparameter in the notebook, and times `nb2prod update`
(a fresh process: plan, render, ruff, lint, the three-way merge of every file, the write,
the honesty lint of the result), resetting the repository between runs. It also times an
update with nothing to change, and `nb2prod convert` of the same notebook into a new folder,
so what the merge adds over a plain render shows as a ratio.

    python benchmarks/update_bench.py [--sample tumor_classifier] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "sample_notebooks"
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org"]


def timed(command: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return seconds


def nb2prod(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "nb2prod", *map(str, args)]


def edit_notebook(notebook: Path) -> None:
    """Change the first integer literal of the parameters cell (a hyperparameter)."""
    document = json.loads(notebook.read_text())
    for cell in document["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "n_estimators = 100" in source:
            cell["source"] = source.replace("n_estimators = 100", "n_estimators = 40")
            notebook.write_text(json.dumps(document, indent=1))
            return
    sys.exit(f"{notebook.name}: no 'n_estimators = 100' to change; pick another --sample")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="tumor_classifier", help="a bundled sample")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        notebook = root / f"{args.sample}.ipynb"
        shutil.copy(SAMPLES / f"{args.sample}.ipynb", notebook)
        package = root / "package"
        convert = [
            timed(nb2prod("convert", notebook, "-o", root / f"new{i}")) for i in range(args.repeat)
        ]
        subprocess.run(nb2prod("convert", notebook, "-o", package), check=True, capture_output=True)
        subprocess.run([*GIT, "init", "-q"], cwd=package, check=True)
        subprocess.run([*GIT, "add", "-A"], cwd=package, check=True)
        subprocess.run([*GIT, "commit", "-qm", "converted"], cwd=package, check=True)
        unchanged = [timed(nb2prod("update", package)) for _ in range(args.repeat)]
        readme = package / "README.md"
        readme.write_text(readme.read_text() + "\n## On call\n\nThe team.\n")
        subprocess.run([*GIT, "commit", "-qam", "edit"], cwd=package, check=True)
        edit_notebook(notebook)
        merged = []
        for _ in range(args.repeat):
            merged.append(timed(nb2prod("update", package)))
            subprocess.run([*GIT, "reset", "-q", "--hard"], cwd=package, check=True)
            subprocess.run([*GIT, "clean", "-qfd"], cwd=package, check=True)
        files = sum(1 for p in package.rglob("*") if p.is_file() and ".git" not in p.parts)
    convert_s = statistics.median(convert)
    print(f"python {sys.version.split()[0]}, {args.repeat} runs, {args.sample}, {files} files")
    print(f"nb2prod convert (new folder):          median {convert_s:.2f} s")
    measured = {"update, nothing to change": unchanged, "update, notebook + edits": merged}
    for name, runs in measured.items():
        median = statistics.median(runs)
        print(
            f"nb2prod {name + ':':<30} median {median:.2f} s (min {min(runs):.2f} s), "
            f"{median / convert_s:.2f}x convert"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
