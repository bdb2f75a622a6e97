"""What the conv families (GAN, VAE) truly share: the resolution plan and the conditional
upsampling decoder (the GAN's generator and the VAE's decoder are the same network).

Resolution plan: halve both sides while both are even and the smaller stays at least 4, so
8x8 starts at 4x4 (one doubling), 28x28 at 7x7 (two), 32x32 at 4x4 (three). Channels double as
the resolution halves (DCGAN), from `channels` at full size up to `MAX_CHANNELS`.

No batch statistics anywhere in the decoder (GroupNorm, not BatchNorm): an image depends only
on its own noise and label, never on the batch it was drawn in, and the GAN's weight average
needs no running statistics.
"""

from __future__ import annotations

import torch
from torch import nn

MAX_CHANNELS = 256


def conv_plan(height: int, width: int) -> tuple[int, int, int]:
    """(start height, start width, doublings) for an upsampling stack that ends at height x width."""
    h, w, n = height, width, 0
    while h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= 4:
        h, w, n = h // 2, w // 2, n + 1
    return h, w, n


def level_channels(channels: int, doublings: int) -> list[int]:
    """Channels per resolution level, coarsest first: channels * 2^doublings ... channels (capped)."""
    return [min(channels * 2 ** (doublings - i), MAX_CHANNELS) for i in range(doublings + 1)]


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class ConvDecoder(nn.Module):
    """(latent, label) -> (C, H, W) outputs: label embedding concatenated to the latent, a linear
    map to the coarsest feature maps, then per doubling nearest upsampling + two 3x3 convs."""

    def __init__(self, latent_dim: int, n_classes: int, label_dim: int, out_shape: list[int], channels: int) -> None:
        super().__init__()
        c, h, w = out_shape
        h0, w0, n = conv_plan(h, w)
        widths = level_channels(channels, n)
        self.start = (widths[0], h0, w0)
        self.embed = nn.Embedding(n_classes, label_dim)
        self.fc = nn.Linear(latent_dim + label_dim, widths[0] * h0 * w0)
        blocks: list[nn.Module] = [_norm(widths[0]), nn.ReLU()]
        for a, b in zip(widths, widths[1:]):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(a, b, 3, padding=1),
                _norm(b),
                nn.ReLU(),
                nn.Conv2d(b, b, 3, padding=1),
                _norm(b),
                nn.ReLU(),
            ]
        blocks.append(nn.Conv2d(widths[-1], c, 3, padding=1))
        self.body = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.cat([z, self.embed(labels)], dim=1))
        return self.body(x.view(len(z), *self.start))
