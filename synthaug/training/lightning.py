"""Run a LightningModule under a pl.Trainer built from TrainerConfig.

Every family trains through here, so early stopping, checkpoints, progress bars, devices and
seeding behave the same everywhere. The seed is applied inside a forked RNG so fitting does not
change the caller's global random state.
"""

from __future__ import annotations

import logging
import warnings

import torch

from synthaug.training.config import TrainerConfig, check_trainer, trainer_extra


def lightning():
    """Import pytorch_lightning (slow, so only when training) without its import-time warnings."""
    with warnings.catch_warnings():  # Lightning 2.6 warns about torch's pytree API on import
        warnings.simplefilter("ignore")
        import pytorch_lightning as pl
    return pl


pl = lightning()


class BestWeights(pl.Callback):
    """Keeps an in-memory copy of the weights at the best value of `monitor`, records why training
    stopped, and puts the best weights back into the module when training ends (on every rank,
    so a spawned run hands the best weights back to the main process)."""

    def __init__(self, monitor: str, cfg: TrainerConfig) -> None:
        self.monitor, self.cfg = monitor, cfg
        self.best = float("inf")
        self.best_epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer, module) -> None:  # validation has run by now
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) < self.best:
            self.best, self.best_epoch = float(value), trainer.current_epoch
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_train_end(self, trainer, module) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)
        # Callback metrics travel back to the main process of a spawned/forked run; callbacks don't.
        trainer.callback_metrics["best_epoch"] = torch.tensor(-1 if self.best_epoch is None else self.best_epoch)
        trainer.callback_metrics["best_score"] = torch.tensor(self.best, dtype=torch.float64)
        trainer.callback_metrics["epochs_run"] = torch.tensor(trainer.current_epoch)
        trainer.callback_metrics["stop_reason"] = torch.tensor(_REASONS.index(stop_reason(trainer, self.cfg)[0]))


_REASONS = ("interrupted", "early stopping", "time limit", "max_epochs")


def stop_reason(trainer, cfg: TrainerConfig) -> tuple[str, str]:
    """(kind, words) for why training ended; kind is one of _REASONS."""
    if trainer.interrupted:
        return "interrupted", "interrupted"
    for cb in trainer.callbacks:
        if isinstance(cb, pl.callbacks.EarlyStopping) and cb.stopped_epoch:
            return "early stopping", f"early stopping: no better {cb.monitor} for {cfg.patience} epochs"
    if cfg.max_minutes and trainer.current_epoch < cfg.max_epochs:
        return "time limit", f"time limit ({cfg.max_minutes} min)"
    return "max_epochs", f"max_epochs ({cfg.max_epochs})"


def _words(kind: str, cfg: TrainerConfig, monitor: str) -> str:
    return {
        "interrupted": "interrupted",
        "early stopping": f"early stopping: no better {monitor} for {cfg.patience} epochs",
        "time limit": f"time limit ({cfg.max_minutes} min)",
        "max_epochs": f"max_epochs ({cfg.max_epochs})",
    }[kind]


def _strategy(module, cfg: TrainerConfig) -> str:
    """GANs step their two networks separately (manual optimisation), so under DDP each backward
    leaves the other network's parameters without gradients: DDP must be told to expect that."""
    if cfg.world_size > 1 and not module.automatic_optimization and cfg.strategy in ("ddp_spawn", "ddp_fork", "ddp_notebook"):
        return f"{cfg.strategy}_find_unused_parameters_true"
    return cfg.strategy


def fit_module(module, train_dl, val_dl, cfg: TrainerConfig, seed: int, monitor: str = "val_loss") -> dict:
    """Fit `module` in place, restore the weights of its best epoch; return what happened
    ({best_epoch, epochs, stopped, monitor, best_score})."""
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    check_trainer(cfg)
    extra = trainer_extra(cfg)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if val_dl is None:
        monitor = monitor.replace("val_", "train_")
    checkpoint = (
        ModelCheckpoint(dirpath=cfg.checkpoint_dir, filename="best", monitor=monitor, mode="min", save_top_k=1)
        if cfg.checkpoint_dir
        else None
    )
    best = BestWeights(monitor, cfg)
    callbacks = [best, *([checkpoint] if checkpoint else []), *extra.pop("callbacks", [])]
    if cfg.patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode="min", patience=cfg.patience))
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs,
        max_time={"minutes": cfg.max_minutes} if cfg.max_minutes else None,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=_strategy(module, cfg),
        precision=cfg.precision,
        deterministic=cfg.deterministic,
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=checkpoint is not None,
        default_root_dir=cfg.checkpoint_dir,
        callbacks=callbacks,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # training.data.StepSampler is rank-aware
        **extra,
    )
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
        warnings.filterwarnings("ignore", message=".*LightningModule.*has no.*")
        warnings.filterwarnings("ignore", message=".*defined a `validation_step` but have no `val_dataloader`.*")
        torch.manual_seed(seed)
        try:
            trainer.fit(module, train_dl, val_dl)
        except SystemExit:
            # Lightning 2.x answers Ctrl-C with a graceful shutdown and then exit(1), which reads as
            # "a gate failed"; it stays a KeyboardInterrupt (the CLI's exit 130).
            if trainer.interrupted:
                raise KeyboardInterrupt from None
            raise
    if trainer.interrupted:
        raise KeyboardInterrupt
    module.cpu().eval()
    done = trainer.callback_metrics  # filled by BestWeights in this process or in rank 0 of a spawned run
    best_epoch = int(done["best_epoch"]) if "best_epoch" in done else -1
    return {
        "best_epoch": None if best_epoch < 0 else best_epoch,
        "best_score": None if best_epoch < 0 else float(done["best_score"]),
        "monitor": monitor,
        "epochs": int(done["epochs_run"]) if "epochs_run" in done else trainer.current_epoch,
        "stopped": _words(_REASONS[int(done["stop_reason"])], cfg, monitor) if "stop_reason" in done else stop_reason(trainer, cfg)[1],
    }
