"""Code that needs a GPU: the package trains and serves on the CPU, so plan says so first.

`model.cuda()`, `x.to("cuda")`, `torch.device("cuda")` and `device="cuda"` fail on a machine
without CUDA, which is where a package's training and its serving image run (the image
installs CPU wheels). Code that chooses its device (`"cuda" if torch.cuda.is_available() else
"cpu"`, or a branch on `torch.cuda.is_available()`) runs on the CPU as it is and is left alone.
"""

from __future__ import annotations

import ast

from nb2prod.errors import InputError
from nb2prod.frontend.facts import NotebookFacts
from nb2prod.frontend.pysyntax import dotted_name


def refuse_gpu_only_code(facts: NotebookFacts, kept: set[int]) -> None:
    """InputError at the first kept line that moves to a GPU unconditionally."""
    if not any(module.startswith("torch") for module in facts.aliases.modules()):
        return
    for cell in facts.cells:
        if cell.number not in kept:
            continue
        for statement in cell.kept_statements:
            found = _first_gpu_call(statement, facts)
            if found is not None:
                line, what = found
                raise InputError(
                    facts.notebook.path,
                    f"{what} needs a GPU, and the package trains and serves on the CPU",
                    cell=cell.number,
                    line=line,
                    hint="choose the device where it runs: device = 'cuda' if "
                    "torch.cuda.is_available() else 'cpu', then .to(device)",
                )


def _first_gpu_call(node: ast.AST, facts: NotebookFacts) -> tuple[int, str] | None:
    if isinstance(node, ast.If | ast.IfExp) and "is_available" in ast.unparse(node.test):
        return None  # the notebook chooses: this runs on the CPU as written
    if isinstance(node, ast.Call) and _moves_to_gpu(node, facts):
        return node.lineno, ast.unparse(node)
    for child in ast.iter_child_nodes(node):
        found = _first_gpu_call(child, facts)
        if found is not None:
            return found
    return None


def _moves_to_gpu(call: ast.Call, facts: NotebookFacts) -> bool:
    """`x.cuda()`, `x.to("cuda")`, `torch.device("cuda:0")`, `f(..., device="cuda")`."""
    if isinstance(call.func, ast.Attribute) and call.func.attr == "cuda":
        return not facts.aliases.is_module_alias(dotted_name(call.func.value) or "")
    if any(item.arg == "device" and _is_cuda(item.value) for item in call.keywords):
        return True
    callee = facts.aliases.resolve(dotted_name(call.func) or "")
    moves = callee == "torch.device" or (
        isinstance(call.func, ast.Attribute) and call.func.attr == "to"
    )
    return moves and bool(call.args) and _is_cuda(call.args[0])


def _is_cuda(value: ast.expr) -> bool:
    return (
        isinstance(value, ast.Constant)
        and isinstance(value.value, str)
        and value.value.startswith("cuda")
    )
