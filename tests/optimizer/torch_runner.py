"""Run a PyTorch module in-process behind quantserve's Runner interface (torch imported on activate).

Only the export tests compare against PyTorch itself, so this runner lives beside them, not in the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from quantserve.artifact import TensorSpec
from quantserve.runner import Runner


class TorchRunner(Runner):
    """An `nn.Module` called with named inputs under `torch.inference_mode()`; outputs named in order."""

    name = "torch"

    def __init__(self, module: Any, inputs: Sequence[TensorSpec], output_names: Sequence[str]) -> None:
        super().__init__()
        self.module = module
        self.inputs = list(inputs)
        self.outputs = list(output_names)

    def input_specs(self) -> Sequence[TensorSpec]:
        return self.inputs

    def activate_impl(self) -> None:
        self.module.eval()

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            result = self.module(*[torch.from_numpy(np.ascontiguousarray(feeds[s.name])) for s in self.inputs])
        tensors = result if isinstance(result, tuple | list) else (result,)
        return {name: t.detach().cpu().numpy() for name, t in zip(self.outputs, tensors, strict=True)}
