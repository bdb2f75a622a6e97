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
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from synthaug.generators.base import TrainerConfig


def lightning():
    """Import pytorch_lightning (slow, so only when training) without its import-time warnings."""
    with warnings.catch_warnings():  # Lightning 2.6 warns about torch's pytree API on import
        warnings.simplefilter("ignore")
        import pytorch_lightning as pl
    return pl


def split_validation(x: np.ndarray, cfg: TrainerConfig, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Hold out `val_fraction` of the rows (at least 8) for epoch selection; None if too few rows."""
    n_val = int(round(len(x) * cfg.val_fraction))
    if n_val < 8 or len(x) - n_val < 8:
        return x, None
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[n_val:]], x[order[:n_val]]


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
    train_dl = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True)
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


class FidelityValidation:
    """Mixin for a tabular LightningModule with `generate(n, generator)`.

    Its `val_loss` is a cheap fidelity gap between the validation rows and `val_rows` rows
    generated with a fixed seed, so early stopping and checkpoint selection follow sample
    quality rather than the training loss. Set `fidelity_spans = (value_idx, groups)`.
    """

    val_rows: int = 2000
    fidelity_spans: tuple[list[int], list[tuple[int, int]]] = ([], [])

    def on_validation_epoch_start(self) -> None:
        self._val_stats: dict = {}

    def validation_step(self, batch, _batch_idx):
        x = batch[0].double()
        s = self._val_stats
        s["n"] = s.get("n", 0) + len(x)
        s["sum"] = s.get("sum", 0) + x.sum(0)
        s["outer"] = s.get("outer", 0) + x.T @ x

    def validation_sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.generate(n, generator)

    def on_validation_epoch_end(self) -> None:
        s = self._val_stats
        if not s:
            return
        was_training = self.training
        self.eval()
        fake = self.validation_sample(self.val_rows, torch.Generator().manual_seed(0)).double()
        self.train(was_training)
        real_mean = s["sum"] / s["n"]
        real_cov = s["outer"] / s["n"] - torch.outer(real_mean, real_mean)
        fake_mean = fake.mean(0)
        fake_cov = fake.T @ fake / len(fake) - torch.outer(fake_mean, fake_mean)
        self.log("val_loss", fidelity_gap(real_mean, real_cov, fake_mean, fake_cov, *self.fidelity_spans), prog_bar=True)


def fidelity_gap(real_mean, real_cov, fake_mean, fake_cov, value_idx, groups) -> float:
    """Total variation of one-hot groups + offset mean/std gaps + mean |correlation difference|."""
    tv = [0.5 * (real_mean[a:b] - fake_mean[a:b]).abs().sum() for a, b in groups]
    std_r, std_f = real_cov.diagonal().clamp_min(0).sqrt(), fake_cov.diagonal().clamp_min(0).sqrt()
    off = [(real_mean[i] - fake_mean[i]).abs() + (std_r[i] - std_f[i]).abs() for i in value_idx]

    def corr(cov, std):
        d = torch.where(std > 1e-6, std, torch.ones_like(std))
        return torch.where(torch.outer(std > 1e-6, std > 1e-6), cov / torch.outer(d, d), torch.zeros_like(cov))

    gap = (corr(real_cov, std_r) - corr(fake_cov, std_f)).abs().mean()
    terms = [torch.stack(t).mean() for t in (tv, off) if t] + [gap]
    return float(sum(terms))
