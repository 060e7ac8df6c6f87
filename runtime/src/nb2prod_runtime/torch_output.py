"""PyTorch modules that answer as the notebook reads their output, or as skorch predicts.

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
    """`module`, answering with `answer(module, inputs, **others)` as a tensor; `others` are
    the modules the answer reads beside it (a Gaussian process's likelihood), saved with it."""

    def __init__(
        self, module: torch.nn.Module, answer: Callable[..., Any], **others: torch.nn.Module
    ) -> None:
        super().__init__()
        self.module = module
        self.answer = answer
        self.others = torch.nn.ModuleDict(others)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.answer(self.module, inputs, **self.others))


class SkorchPredicting(torch.nn.Module):
    """A fitted skorch net's module, answering what the net's `predict` answers: the class
    index of the highest probability (NeuralNetClassifier), the positive class above the
    net's threshold (NeuralNetBinaryClassifier), or the output (a regressor), each after the
    net's own predict nonlinearity (softmax for a cross-entropy loss, say)."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier

        self.module = net.module_
        self.nonlinearity = net._get_predict_nonlinearity()
        self.threshold = float(getattr(net, "threshold", 0.5))
        if isinstance(net, NeuralNetBinaryClassifier):
            self.rule = "threshold"
        elif isinstance(net, NeuralNetClassifier):
            self.rule = "argmax"
        else:
            self.rule = "output"

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output = self.module(inputs)
        probabilities = self.nonlinearity(output[0] if isinstance(output, tuple) else output)
        if self.rule == "argmax":
            return probabilities.argmax(dim=1)
        if self.rule == "threshold":
            return (probabilities[:, 1] > self.threshold).to(torch.uint8)
        return probabilities
