"""Run a LightningModule under a pl.Trainer built from TrainerConfig.

Every family trains through here, so early stopping, checkpoints, progress bars and seeding
behave the same everywhere. The seed is applied inside a forked RNG so fitting does not change
the caller's global random state.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from synthaug.generators.base import TrainerConfig


def lightning():
    """Import pytorch_lightning (slow, so only when training) without its import-time warnings."""
    with warnings.catch_warnings():  # Lightning 2.6 warns about torch's pytree API on import
        warnings.simplefilter("ignore")
        import pytorch_lightning as pl
    return pl


def split_validation(x: np.ndarray, cfg: TrainerConfig, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Hold out `val_fraction` of the rows (at least 8) for epoch selection; None if too few rows."""
    train, val = split_indices(len(x), cfg, seed)
    return (x, None) if val is None else (x[train], x[val])


def split_indices(n: int, cfg: TrainerConfig, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The row indices of split_validation's two parts, without copying any rows."""
    n_val = int(round(n * cfg.val_fraction))
    if n_val < 8 or n - n_val < 8:
        return np.arange(n), None
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def steps_per_epoch(n_rows: int, batch: int, cfg: TrainerConfig) -> int:
    """One pass over the rows, clamped: small tables repeat passes so an epoch does real work,
    large ones stop early so epochs (and early stopping) stay comparable across table sizes."""
    return int(np.clip(n_rows // batch, cfg.min_steps_per_epoch, cfg.max_steps_per_epoch))


def loaders(x: np.ndarray, cfg: TrainerConfig, seed: int) -> tuple[DataLoader, DataLoader | None]:
    train, val = split_validation(x, cfg, seed)
    gen = torch.Generator().manual_seed(seed)
    batch = min(cfg.batch_size, len(train))
    dataset = TensorDataset(torch.from_numpy(train))
    steps = steps_per_epoch(len(train), batch, cfg)
    sampler = RandomSampler(dataset, num_samples=steps * batch, generator=gen)
    # Whole batches of indices: one tensor gather per step instead of collating rows one by one.
    train_dl = DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler, batch, drop_last=True))
    val_dl = None if val is None else DataLoader(TensorDataset(torch.from_numpy(val)), batch_size=4096)
    return train_dl, val_dl


def fit_module(module, train_dl, val_dl, cfg: TrainerConfig, seed: int, monitor: str = "val_loss") -> None:
    """Fit `module` in place and restore the weights of its best epoch."""
    pl = lightning()
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if val_dl is None:
        monitor = monitor.replace("val_", "train_")
    checkpoint = ModelCheckpoint(
        dirpath=cfg.checkpoint_dir, filename="best", monitor=monitor, mode="min", save_top_k=1, save_weights_only=True
    ) if cfg.checkpoint_dir else None
    callbacks = [checkpoint] if checkpoint else []
    if cfg.patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode="min", patience=cfg.patience))
    best = _best_weights(monitor)
    callbacks.append(best)
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs,
        max_time={"minutes": cfg.max_minutes} if cfg.max_minutes else None,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        deterministic=cfg.deterministic,
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=checkpoint is not None,
        default_root_dir=cfg.checkpoint_dir,
        callbacks=callbacks,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
        warnings.filterwarnings("ignore", message=".*LightningModule.*has no.*")
        torch.manual_seed(seed)
        trainer.fit(module, train_dl, val_dl)
    if best.state is not None:
        module.load_state_dict(best.state)
    module.eval()


def _best_weights(monitor: str):
    """A callback keeping an in-memory copy of the weights at the best value of `monitor`."""
    pl = lightning()

    class BestWeights(pl.Callback):
        def __init__(self) -> None:
            self.best = float("inf")
            self.state = None

        def on_train_epoch_end(self, trainer, module) -> None:  # validation has run by now
            value = trainer.callback_metrics.get(monitor)
            if value is not None and float(value) < self.best:
                self.best = float(value)
                self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    return BestWeights()


class FidelityLayout:
    """Where a fidelity score finds each column in the encoded matrix.

    Numeric columns are decoded (mode mean + 4 * mode std * offset, as the encoder does), so the
    score sees the values SDMetrics will see, not offsets in per-mode units; categorical and null
    groups are one-hot frequencies.
    """

    def __init__(self, encoder) -> None:
        self.numeric, self.groups, self.onehot_cols = [], [], []
        # Per numeric column, the one-hot position that marks a null row (None without nulls):
        # null rows carry a placeholder value, so they stay out of that column's KS statistic.
        self.null_flag = [next((t.start + 1 for t in encoder.spans_of(s.column) if t.role == "null"), None) for s in encoder.spans if s.role == "offset"]
        for s in encoder.spans:
            if s.role == "offset":
                state = encoder.columns[s.column]
                means = torch.tensor(state["means"], dtype=torch.float64)
                stds = torch.tensor(state["stds"], dtype=torch.float64)
                self.numeric.append((s.start, s.stop, s.stop + len(means), means, stds))
            elif s.kind == "softmax" and s.role in ("category", "null"):
                self.groups.append((s.start, s.stop))
                if s.role == "category":
                    self.onehot_cols += list(range(s.start, s.stop))

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Rows x numeric columns, in the columns' own units."""
        x = x.double()
        cols = []
        for off, a, b, means, stds in self.numeric:
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
    return torch.where(torch.outer(ok, ok), x.T @ x / len(x), torch.zeros(x.shape[1], x.shape[1], dtype=x.dtype))


class FidelityValidation:
    """Mixin for a tabular LightningModule with `generate(n, generator)`.

    Its `val_loss` is `FidelityLayout.gap` between (up to `max_real_rows` of) the validation rows
    and `val_rows` rows generated with a fixed seed, so early stopping and checkpoint selection
    follow sample quality rather than the training loss. The family's `_fit` sets
    `module.fidelity = FidelityLayout(encoder)` before training.
    """

    val_rows: int = 2000
    max_real_rows: int = 10_000
    fidelity: FidelityLayout | None = None

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
        if self.fidelity is None:
            raise RuntimeError(f"{type(self).__name__}.fidelity is not set; set module.fidelity = FidelityLayout(encoder) before training")
        was_training = self.training
        self.eval()
        fake = self.validation_sample(self.val_rows, torch.Generator().manual_seed(0))
        self.train(was_training)
        self.log("val_loss", self.fidelity.gap(torch.cat(self._val_real), fake), prog_bar=True)
