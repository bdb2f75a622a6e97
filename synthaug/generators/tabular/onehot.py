"""Seeded categorical draws for one-hot groups, shared by every tabular family."""

from __future__ import annotations

import functools

import torch

from synthaug.training import random as draws


def sample_onehots(logits: torch.Tensor, spans, generator: torch.Generator | None) -> torch.Tensor:
    """Replace each softmax span of `logits` (rows x width) by a one-hot draw from it."""
    return draw_groups(logits, tuple((s.start, s.stop) for s in spans if s.kind == "softmax"), generator)


def draw_groups(logits: torch.Tensor, groups: tuple[tuple[int, int], ...], generator) -> torch.Tensor:
    """Replace each `(start, stop)` group of `logits` by a one-hot categorical draw from its softmax.

    All groups at once (inverse CDF with one uniform per row and group), so the cost does not
    grow with the number of groups in Python; wide tables have dozens of mode and category groups.
    """
    out = logits.clone()
    if not groups:
        return out
    cols, gid, member, first, last = (t.to(logits.device) for t in _group_index(groups))
    n = len(logits)
    x = logits[:, cols].double()
    index = gid.expand(n, -1)
    peak = torch.full((n, len(groups)), -torch.inf, dtype=x.dtype, device=x.device).scatter_reduce(1, index, x, "amax")
    e = torch.exp(x - peak.gather(1, index))
    cum = e.cumsum(1)
    within = cum - (cum - e)[:, first].gather(1, index)  # cumulative sum restarted at each group
    u = draws.rand(n, len(groups), generator=generator, device=x.device, dtype=x.dtype)
    threshold = u * within[:, last]
    rank = ((within <= threshold.gather(1, index)).to(x.dtype) @ member).long()  # units passed in each group
    pick = first + torch.minimum(rank, last - first)
    out[:, cols] = torch.zeros(n, len(cols), dtype=out.dtype, device=out.device).scatter_(1, pick, 1.0)
    return out


@functools.lru_cache(maxsize=64)
def _group_index(groups: tuple[tuple[int, int], ...]):
    """Columns of the groups, each column's group, the column-to-group 0/1 matrix, and each group's first and last position."""
    cols = torch.tensor([j for a, b in groups for j in range(a, b)])
    gid = torch.tensor([g for g, (a, b) in enumerate(groups) for _ in range(a, b)])
    member = torch.nn.functional.one_hot(gid, len(groups)).double()
    widths = torch.tensor([b - a for a, b in groups])
    first = widths.cumsum(0) - widths
    return cols, gid, member, first, first + widths - 1
