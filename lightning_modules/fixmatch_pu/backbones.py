"""The two patch classifiers of document 004: a small ResNet (the document trained a ResNet18; this
keeps its shape, three stages of basic blocks, at a width two CPU cores can train) and the "simpler
CNN" it suggests trying. Both map (B, 1, H, W) patches to one logit per patch (B,)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SmallCNN", "SmallResNet", "BackboneConfig", "PatchClassifier", "build_backbone"]


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU-maxpool stages (width, 2x, 4x channels), global average pool, one logit."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(-2, -1))).squeeze(-1)  # (B,)


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv-BN, a projected shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A stride-2 stem, three stages of two basic blocks (width, 2x, 4x; the last two at stride 2),
    global average pool, one logit: 48 x 48 patches become 6 x 6 maps."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        blocks: list[nn.Module] = []
        c_in = width
        for c_out, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            blocks += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(-2, -1))).squeeze(-1)  # (B,)


@dataclass(frozen=True)
class BackboneConfig:
    """Which patch classifier, at which width (what a registered model is rebuilt from)."""

    name: str = "resnet"  # resnet | cnn
    width: int = 16


class PatchClassifier(nn.Module):
    """The backbone `config.name` at `config.width`: (B, 1, H, W) patches to one logit each (B,).
    Built from one dataclass config kept as `.config`, so the registry can rebuild it."""

    BODIES = {"cnn": SmallCNN, "resnet": SmallResNet}

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        if config.name not in self.BODIES:
            raise ValueError(f"backbone={config.name!r} is not allowed; allowed: one of {', '.join(self.BODIES)}")
        self.config = config
        self.body = self.BODIES[config.name](config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def build_backbone(name: str, width: int) -> PatchClassifier:
    """The patch classifier `name` ("cnn" or "resnet") at `width`."""
    return PatchClassifier(BackboneConfig(name, width))
