"""The score that picks every family's epoch: a fidelity gap between generated rows and the
held-out validation rows, computed the way SDMetrics scores quality (per-column KS / total
variation on decoded values, plus correlation differences)."""

from __future__ import annotations

import torch
from torch import nn


class FidelityLayout(nn.Module):
    """Where a fidelity score finds each column in the encoded matrix.

    Numeric columns are decoded (mode mean + 4 * mode std * offset, as the encoder does), so the
    score sees the values SDMetrics will see, not offsets in per-mode units; categorical and null
    groups are one-hot frequencies. The mode statistics are non-persistent buffers: they move
    with the LightningModule to its device but stay out of its checkpoints (the encoder state
    is saved with the model).
    """

    def __init__(self, encoder) -> None:
        super().__init__()
        self.numeric, self.groups, self.onehot_cols = [], [], []
        # Per numeric column, the one-hot position that marks a null row (None without nulls):
        # null rows carry a placeholder value, so they stay out of that column's KS statistic.
        self.null_flag = [
            next((t.start + 1 for t in encoder.spans_of(s.column) if t.role == "null"), None) for s in encoder.spans if s.role == "offset"
        ]
        for s in encoder.spans:
            if s.role == "offset":
                state = encoder.columns[s.column]
                k = len(self.numeric)
                self.register_buffer(f"means{k}", torch.tensor(state["means"], dtype=torch.float64), persistent=False)
                self.register_buffer(f"stds{k}", torch.tensor(state["stds"], dtype=torch.float64), persistent=False)
                self.numeric.append((s.start, s.stop, s.stop + len(state["means"])))
            elif s.kind == "softmax" and s.role in ("category", "null"):
                self.groups.append((s.start, s.stop))
                if s.role == "category":
                    self.onehot_cols += list(range(s.start, s.stop))

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Rows x numeric columns, in the columns' own units."""
        x = x.double()
        cols = []
        for k, (off, a, b) in enumerate(self.numeric):
            means, stds = getattr(self, f"means{k}"), getattr(self, f"stds{k}")
            mode = x[:, a:b].argmax(1)
            cols.append(x[:, off].clamp(-1, 1) * 4 * stds[mode] + means[mode])
        return torch.stack(cols, 1) if cols else x.new_zeros(len(x), 0)

    def gap(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """(1 - column shapes) + (1 - pair trends), approximately, as SDMetrics scores them:
        per-column KS statistic or total variation, plus half the mean |correlation difference|
        over pairs of decoded numeric columns and category indicators."""
        real_num, fake_num = self.decode(real), self.decode(fake)
        shapes = [self._numeric_ks(real, fake, real_num, fake_num)] if real_num.shape[1] else []
        shapes += [0.5 * (real[:, a:b].double().mean(0) - fake[:, a:b].double().mean(0)).abs().sum().reshape(1) for a, b in self.groups]
        real_f = torch.cat([real_num, real[:, self.onehot_cols].double()], 1)
        fake_f = torch.cat([fake_num, fake[:, self.onehot_cols].double()], 1)
        total = torch.cat(shapes).mean() if shapes else real.new_zeros((), dtype=torch.float64)
        if real_f.shape[1] > 1:
            upper = torch.triu_indices(real_f.shape[1], real_f.shape[1], offset=1)
            diff = (_corr(real_f) - _corr(fake_f))[upper[0], upper[1]]
            total = total + 0.5 * diff.abs().mean()
        return float(total)

    def _numeric_ks(self, real, fake, real_num, fake_num) -> torch.Tensor:
        ks = ks_statistic(real_num, fake_num)
        for j, flag in enumerate(self.null_flag):
            if flag is None:
                continue
            a, b = real_num[real[:, flag] < 0.5, j : j + 1], fake_num[fake[:, flag] < 0.5, j : j + 1]
            ks[j] = ks_statistic(a, b)[0] if len(a) and len(b) else float(len(a) != len(b))  # all null on one side only: 1
        return ks


def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two-sample KS statistic of each column of `a` (m x k) against the same column of `b` (n x k)."""
    a_sorted, b_sorted = a.T.contiguous().sort(1).values, b.T.contiguous().sort(1).values
    points = torch.cat([a_sorted, b_sorted], 1)
    cdf_a = torch.searchsorted(a_sorted, points, right=True) / a.shape[0]
    cdf_b = torch.searchsorted(b_sorted, points, right=True) / b.shape[0]
    return (cdf_a - cdf_b).abs().amax(1)


def _corr(x: torch.Tensor) -> torch.Tensor:
    """Pearson correlations; a constant column correlates 0 with everything."""
    x = x - x.mean(0)
    std = x.pow(2).mean(0).sqrt()
    ok = std > 1e-9
    x = x / torch.where(ok, std, torch.ones_like(std))
    zeros = torch.zeros(x.shape[1], x.shape[1], dtype=x.dtype, device=x.device)
    return torch.where(torch.outer(ok, ok), x.T @ x / len(x), zeros)


class FidelityValidation:
    """Mixin for a tabular LightningModule with `generate(n, generator)`.

    Its `val_loss` is `FidelityLayout.gap` between (up to `max_real_rows` of) the validation rows
    and `val_rows` rows generated with a fixed seed, so early stopping and checkpoint selection
    follow sample quality rather than the training loss. The family's `_fit` sets
    `module.fidelity = FidelityLayout(encoder)` before training. Every rank scores the same rows
    with the same seed and the same weights, so the value (synced) and early stopping agree.
    """

    val_rows: int = 2000
    max_real_rows: int = 10_000

    def on_validation_epoch_start(self) -> None:
        self._val_real: list[torch.Tensor] = []

    def validation_step(self, batch, _batch_idx):
        have = sum(len(b) for b in self._val_real)
        if have < self.max_real_rows:
            self._val_real.append(batch[0][: self.max_real_rows - have])

    def validation_sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.generate(n, generator)

    def on_validation_epoch_end(self) -> None:
        if not self._val_real:
            return
        if "fidelity" not in self._modules:  # a submodule, so its buffers follow the module's device
            raise RuntimeError(f"{type(self).__name__}.fidelity is not set; set module.fidelity = FidelityLayout(encoder) before training")
        was_training = self.training
        self.eval()
        with torch.autocast(self.device.type, enabled=False):  # sampling maths in full precision under mixed-precision training
            fake = self.validation_sample(self.val_rows, torch.Generator().manual_seed(0))
        self.train(was_training)
        gap = self.fidelity.gap(torch.cat(self._val_real), fake)
        self.log("val_loss", gap, sync_dist=True)  # what early stopping and checkpoints monitor
        self.log("fidelity_gap", gap, prog_bar=True, sync_dist=True)  # the same number, named for the progress bar
