"""A notebook written for a GPU runs on the CPU in verify's kernel, as its package does.

Convert rewrites each move to a GPU (`model.cuda()`, `x.to("cuda")`) to a move to the CPU, so
the package trains and serves where there is no GPU (the `device-cpu` finding). Run as written
on such a machine, the notebook would fail at its first move and verify could compare nothing.
In verify's kernel the same moves stay on the CPU: only when torch has no GPU to move to, so a
move that could run still runs where the notebook put it. Done at run time rather than in the
cells' source, it also covers the moves in cells the package leaves out (a test grid moved to
the GPU for a plot), which the package never rewrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nb2prod.plan import Plan

_ON_CPU = """\
def _nb2prod_on_cpu():
    import torch

    if torch.cuda.is_available():
        return

    def to_gpu(device):
        return isinstance(device, (str, torch.device)) and str(device).startswith("cuda")

    def stay(self, *args, **kwargs):
        return self

    def on_cpu(move):
        def moved(self, *args, **kwargs):
            args = tuple("cpu" if to_gpu(arg) else arg for arg in args)
            if to_gpu(kwargs.get("device")):
                kwargs["device"] = "cpu"
            return move(self, *args, **kwargs)

        return moved

    torch.Tensor.cuda = stay
    torch.nn.Module.cuda = stay
    torch.Tensor.to = on_cpu(torch.Tensor.to)
    torch.nn.Module.to = on_cpu(torch.nn.Module.to)


try:
    _nb2prod_on_cpu()
except ImportError:
    pass
"""


def cpu_source(plan: Plan) -> str:
    """Source run before the notebook's first cell that keeps its GPU moves on the CPU; empty
    for a notebook that does not use torch (importing it would only cost seconds)."""
    needed = {module for requirement in plan.requirements for module in requirement.modules}
    return _ON_CPU if "torch" in needed else ""
