"""The demo's model: a small ResNet-style CNN trained on scikit-learn's digits (8x8 grey images).

Deterministic given a seed; 5 epochs take 112 s of CPU here (98.24 % held-out), what the former
64/128-channel model's 8 epochs took. Wide (96 channels at 8x8, 192 at 4x4: 40 M multiply-adds
per image) so its convolutions are large GEMMs where INT8 kernels run near their peak. On an AVX2
CPU without VNNI that peak is 1.85x FP32's (a 512x1024x1024 GEMM in ONNX Runtime, one core),
which bounds any INT8 speedup there: 64/128 channels timed 1.76x in-process, this width 1.9-2.0x,
128/256 no better for four times the training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.data import TensorData

INPUT_NAME = "image"
OUTPUT_NAME = "logits"


@dataclass
class DigitsSplits:
    """Train / calibration / held-out evaluation splits of the digits data, as model inputs."""

    train: TensorData
    calib: TensorData
    heldout: TensorData


def load_splits(seed: int = 0, calib_size: int = 256, heldout_size: int = 512) -> DigitsSplits:
    """Shuffle digits with `seed` and split; images scaled to [0, 1] as float32 NCHW."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order], labels[order]
    heldout = slice(0, heldout_size)
    train = slice(heldout_size, None)
    calib = slice(heldout_size, heldout_size + calib_size)  # calibration draws from training data
    return DigitsSplits(
        train=TensorData({INPUT_NAME: images[train]}, labels[train]),
        calib=TensorData({INPUT_NAME: images[calib]}, labels[calib]),
        heldout=TensorData({INPUT_NAME: images[heldout]}, labels[heldout]),
    )


def residual_block(channels_in: int, channels_out: int, stride: int) -> Any:
    import torch
    from torch import nn

    class ResidualBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels_out)
            self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels_out)
            self.shortcut: nn.Module = nn.Identity()
            if stride != 1 or channels_in != channels_out:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))

    return ResidualBlock()


def build_model(width: int = 96) -> Any:
    """ResNet-style CNN: stem, 2 blocks at `width` channels (8x8), 2 at 2*width (4x4), pool, linear."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        *[residual_block(width, width, 1) for _ in range(2)],
        residual_block(width, 2 * width, 2),
        residual_block(2 * width, 2 * width, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, 10),
    )


def train(splits: DigitsSplits, seed: int = 0, epochs: int = 5, batch_size: int = 64) -> Any:
    """Train the CNN with Adam and light shift augmentation; return it in eval mode.

    Channels-last tensors take oneDNN's fast convolution paths: 2-3x less CPU per step than NCHW
    under `torch.use_deterministic_algorithms`, which forces slow kernels here. The weights are
    still bit-identical run to run (checked: two trainings, same seed and threads, max diff 0.0).
    """
    import torch

    torch.manual_seed(seed)
    model = build_model().to(memory_format=torch.channels_last)
    images = torch.from_numpy(splits.train.arrays[INPUT_NAME]).contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(splits.train.labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, total_steps=epochs * -(-len(labels) // batch_size)
    )
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for index in torch.randperm(len(labels), generator=generator).split(batch_size):
            batch = _shift(images[index], generator)
            loss = torch.nn.functional.cross_entropy(model(batch), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.to(memory_format=torch.contiguous_format).eval()


def _shift(batch: Any, generator: Any) -> Any:
    """Random ±1 pixel translation: a cheap augmentation that lifts held-out accuracy."""
    import torch

    dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=generator))
    return torch.roll(batch, shifts=(dy, dx), dims=(2, 3))


def accuracy(model: Any, data: TensorData) -> float:
    """Top-1 accuracy of a torch model on `data`, in percent."""
    import torch

    with torch.no_grad():
        logits = model(torch.from_numpy(data.arrays[INPUT_NAME]))
    return float((logits.argmax(1).numpy() == data.labels).mean() * 100.0)


def export_program(model: Any, path: Path) -> Path:
    """Save the trained model as a `torch.export` program (.pt2) with a dynamic batch axis."""
    import torch

    example = (torch.zeros(4, 1, 8, 8),)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path))
    return path


def build(seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """Factory for `quantserve optimize examples.digits:build`: the trained model and example inputs."""
    import torch

    model = train(load_splits(seed), seed)
    return model, {INPUT_NAME: torch.zeros(4, 1, 8, 8)}
