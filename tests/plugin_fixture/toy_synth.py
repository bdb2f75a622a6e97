"""A toy synthaug plugin: every encoded column drawn independently from its marginal.

It subclasses TabularGenerator, so checks, encoding, conditions and save/load (config JSON +
torch state dict, no pickles) come from synthaug; the "model" is three buffers. `BrokenToy`
samples from torch's global RNG instead of the seeded generator it is given: the contract
checks must catch it.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from synthaug.generators.tabular.base import TabularGenerator
from synthaug.generators.tabular.onehot import sample_onehots


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    smoothing: float = Field(1.0, ge=0, description="add-k smoothing of one-hot frequencies")


class Marginals(nn.Module):
    """Mean and std of each value column, log-frequency of each one-hot slot."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.register_buffer("logp", torch.zeros(width))


class ToyGenerator(TabularGenerator):
    name = "toy"
    Config = ToyConfig

    def _build(self) -> Marginals:
        return Marginals(self.encoder.width)

    def _fit_encoded(self, x: np.ndarray, trainer, seed: int) -> None:
        module, data = self._build(), torch.from_numpy(x)
        module.mean.copy_(data.mean(0))
        module.std.copy_(data.std(0).clamp_min(1e-3))
        for s in self.encoder.spans:
            if s.kind == "softmax":
                counts = data[:, s.start : s.stop].sum(0) + self.config.smoothing
                module.logp[s.start : s.stop] = torch.log(counts / counts.sum())
        self.module = module

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.encoder.width, generator=generator)

    def _sample(self, n: int, generator: torch.Generator, fixed: dict[int, int]) -> np.ndarray:
        m = self.module
        out = m.mean + m.std * self._noise(n, generator)
        for s in self.encoder.spans:
            if s.kind == "softmax":
                out[:, s.start : s.stop] = m.logp[s.start : s.stop]
        out = sample_onehots(out, self.encoder.spans, generator)
        for start, index in fixed.items():
            span = next(s for s in self.encoder.spans if s.start == start)
            out[:, span.start : span.stop] = 0.0
            out[:, span.start + index] = 1.0
        return out.numpy()


class BrokenToy(ToyGenerator):
    """Ignores the seed: draws its noise from torch's global RNG."""

    name = "toy_broken"

    def _noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.encoder.width)
