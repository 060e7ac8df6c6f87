"""Code written for a GPU runs on the CPU, where the package trains and serves.

A notebook that moves its model and tensors to a GPU (`model.cuda()`, `x.to("cuda")`,
`device = "cuda"`, `torch.device("cuda:0")`, `f(..., device="cuda")`) would fail where the
package runs: its training and its image install CPU wheels. A device move computes the same
thing on either device, so each one is rewritten to the CPU on its own line, and each rewrite
is a `device-cpu` finding. Code that chooses its device (`"cuda" if torch.cuda.is_available()
else "cpu"`, or a branch on `torch.cuda.is_available()`) already runs on the CPU as it is and is
left alone.

What has no CPU meaning (`torch.cuda.current_device()`, CUDA streams and tensor types such as
`torch.cuda.FloatTensor`, pinned memory) is refused at plan, naming the line, when the package
keeps it: rewriting it would change what the code means, and leaving it would fail at train.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING

from nb2prod.errors import InputError
from nb2prod.frontend.migrations import Migration, Offsets, apply_edits
from nb2prod.frontend.pysyntax import Aliases, dotted_name

if TYPE_CHECKING:  # facts rewrites each cell with run_on_cpu
    from nb2prod.frontend.facts import NotebookFacts

CPU_FINDING = "device-cpu"
# Keywords that name a device: `torch.zeros(..., device=)`, `torch.load(..., map_location=)`.
_DEVICE_KEYWORDS = frozenset({"device", "map_location"})
_DEVICE_FUNCTIONS = frozenset({"torch.device", "torch.set_default_device"})
# torch.cuda's functions that run without CUDA (measured on a CPU build of torch): they
# answer "none" or do nothing. Every other torch.cuda call raises without a GPU.
_CPU_SAFE_CUDA = frozenset(
    {
        "is_available",
        "device_count",
        "is_initialized",
        "manual_seed",
        "manual_seed_all",
        "seed",
        "seed_all",
        "empty_cache",
        "memory_allocated",
        "max_memory_allocated",
        "memory_reserved",
        "max_memory_reserved",
        "amp",
    }
)
_GPU_ONLY_METHODS = frozenset({"pin_memory"})


def run_on_cpu(
    source: str, statements: list[ast.stmt], aliases: Aliases
) -> tuple[str, list[Migration]]:
    """The cell's source with every unconditional move to a GPU made a move to the CPU."""
    if not _uses_torch(aliases):
        return source, []
    offsets = Offsets(source)
    edits: list[tuple[int, int, str]] = []
    done: list[Migration] = []
    for statement in statements:
        for node in _unchosen(statement):
            moves = _cpu_edits(node, aliases, offsets, source)
            if moves:
                edits += moves
                start, end = offsets.start(node), offsets.end(node)
                written = apply_edits(source, moves)[start : end + _growth(moves)]
                said = (
                    f"{source[start:end]} is written {written}: "
                    "the package trains and serves on the CPU"
                )
                done.append(Migration(node.lineno, said, CPU_FINDING))
    return apply_edits(source, edits), done


def refuse_gpu_only_code(facts: NotebookFacts, kept: set[int]) -> None:
    """InputError at the first kept line that only a GPU can run."""
    if not _uses_torch(facts.aliases):
        return
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            for node in _unchosen(statement):
                if _needs_a_gpu(node, facts.aliases):
                    raise InputError(
                        facts.notebook.path,
                        f"{ast.unparse(node)} needs a GPU, and the package trains and serves "
                        "on the CPU",
                        cell=cell.number,
                        line=node.lineno,
                        hint="run it only where there is one: if torch.cuda.is_available(): ...",
                    )


def _uses_torch(aliases: Aliases) -> bool:
    return any(module.startswith("torch") for module in aliases.modules())


def _unchosen(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under `node` except those inside a choice on `torch.cuda.is_available()`."""
    if isinstance(node, ast.If | ast.IfExp) and "is_available" in ast.unparse(node.test):
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _unchosen(child)


def _growth(edits: list[tuple[int, int, str]]) -> int:
    return sum(len(text) - (end - start) for start, end, text in edits)


def _cpu_edits(
    node: ast.AST, aliases: Aliases, offsets: Offsets, source: str
) -> list[tuple[int, int, str]]:
    """`x.cuda(...)` -> `x.cpu()`; a "cuda" device name handed to `.to()`, `torch.device()`,
    a device keyword or assigned to a name -> "cpu"."""
    if isinstance(node, ast.Assign | ast.AnnAssign) and _is_cuda(node.value):
        assert node.value is not None
        return [_as_cpu(node.value, offsets, source)]
    if not isinstance(node, ast.Call):
        return []
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "cuda":
        if aliases.is_module_alias(dotted_name(func.value) or ""):
            return []  # torch.cuda is the module, not a move
        return [(offsets.end(func.value), offsets.end(node), ".cpu()")]
    edits = [
        _as_cpu(item.value, offsets, source)
        for item in node.keywords
        if item.arg in _DEVICE_KEYWORDS and _is_cuda(item.value)
    ]
    moves = isinstance(func, ast.Attribute) and func.attr == "to"
    if moves or aliases.resolve(dotted_name(func) or "") in _DEVICE_FUNCTIONS:
        edits += (
            [_as_cpu(node.args[0], offsets, source)] if node.args and _is_cuda(node.args[0]) else []
        )
    return edits


def _needs_a_gpu(node: ast.AST, aliases: Aliases) -> bool:
    """A torch.cuda function or type that needs CUDA (`torch.cuda.synchronize()`,
    `x.type(torch.cuda.FloatTensor)`), or a tensor's `.pin_memory()`."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in _GPU_ONLY_METHODS:
            return True
        node = node.func
    if not isinstance(node, ast.Attribute):
        return False
    parts = aliases.resolve(dotted_name(node) or "").split(".")
    return parts[:2] == ["torch", "cuda"] and len(parts) > 2 and parts[2] not in _CPU_SAFE_CUDA


def _as_cpu(value: ast.expr, offsets: Offsets, source: str) -> tuple[int, int, str]:
    """The edit that names the CPU where `value`, a string literal, named a GPU."""
    start, end = offsets.start(value), offsets.end(value)
    quote = source[start]
    return start, end, f"{quote}cpu{quote}" if quote in "'\"" else '"cpu"'


def _is_cuda(value: ast.expr | None) -> bool:
    return (
        isinstance(value, ast.Constant)
        and isinstance(value.value, str)
        and value.value.startswith("cuda")
    )
