"""Seeded random draws on any device, the one way every family draws noise.

A `torch.Generator` lives on one device; a CPU generator is the reproducible choice (the same
seed gives the same numbers on any machine), so draws are made on the generator's device and
moved to the target device (as diffusers' `randn_tensor` does). Without a generator, the draw is
made directly on the target device from that device's global stream (seeded by `fit`).
"""

from __future__ import annotations

import torch


def _where(generator: torch.Generator | None, device) -> torch.device:
    return generator.device if generator is not None else torch.device(device or "cpu")


def randn(*shape: int, generator=None, device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=_where(generator, device), dtype=dtype).to(device or "cpu")


def rand(*shape: int, generator=None, device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_where(generator, device), dtype=dtype).to(device or "cpu")


def randint(high: int, *shape: int, generator=None, device=None) -> torch.Tensor:
    return torch.randint(high, shape, generator=generator, device=_where(generator, device)).to(device or "cpu")


def randperm(n: int, *, generator=None, device=None) -> torch.Tensor:
    return torch.randperm(n, generator=generator, device=_where(generator, device)).to(device or "cpu")


def multinomial(probs: torch.Tensor, n: int, *, generator=None) -> torch.Tensor:
    """n draws with replacement from each row of `probs`, on the device of `probs`."""
    where = _where(generator, probs.device)
    return torch.multinomial(probs.to(where), n, replacement=True, generator=generator).to(probs.device)
