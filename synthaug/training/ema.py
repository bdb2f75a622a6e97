"""Exponential moving average of a network's weights (GAN generators sample from it)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(average: nn.Module, live: nn.Module, decay: float, steps: int) -> None:
    """One step of `average <- decay * average + (1 - decay) * live`, with a short memory while
    young (`steps` updates so far); buffers (BatchNorm statistics) are copied, not averaged."""
    decay = min(decay, (1 + steps) / (10 + steps))
    for avg, now in zip(average.parameters(), live.parameters()):
        avg.lerp_(now, 1 - decay)
    for avg, now in zip(average.buffers(), live.buffers()):
        avg.copy_(now)
