"""A PyTorch module that answers as the notebook reads its output.

A notebook measures what it makes of a network's output (labels from logits, say), not the
output itself. Wrapping the module in `Answering` with the package's `answer` function makes the
served model return that, through MLflow's pytorch flavour like any module. Both this class and
`answer` are saved by reference (torch.save pickles them), so loading imports them from the
installed runtime and package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class Answering(torch.nn.Module):
    """`module`, answering with `answer(module, inputs)` as a tensor."""

    def __init__(self, module: torch.nn.Module, answer: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.module = module
        self.answer = answer

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.answer(self.module, inputs))
