"""How to train: one frozen TrainerConfig shared by every family and saved with each model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from synthaug.errors import BadInput

# pl.Trainer keywords that TrainerConfig sets itself; `extra` may not set them twice.
_OWNED = {
    "max_epochs",
    "max_time",
    "accelerator",
    "devices",
    "num_nodes",
    "strategy",
    "precision",
    "deterministic",
    "enable_progress_bar",
    "enable_model_summary",
    "logger",
    "enable_checkpointing",
    "default_root_dir",
    "num_sanity_val_steps",
    "use_distributed_sampler",
}
# Strategies that start their processes from inside this one; others (plain "ddp") re-run the
# whole command once per rank, which the pipeline cannot do safely yet.
IN_PROCESS_STRATEGIES = ("auto", "ddp_spawn", "ddp_fork", "ddp_notebook")
# Precisions the families train in: their data is float32, so a whole-network 16/bf16/64 ("-true")
# precision fails on the first batch; mixed precision casts inside the step and works.
SUPPORTED_PRECISIONS = ("32-true", "32", 32, "16-mixed", "16", 16, "bf16-mixed", "bf16")


class TrainerConfig(BaseModel):
    """Presets live in synthaug/config/presets/trainers/ (and a project's conf/trainers/)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_epochs: int = Field(300, gt=0)
    batch_size: int = Field(500, gt=0)
    patience: int = Field(30, ge=0, description="epochs without improvement before stopping; 0 disables")
    val_fraction: float = Field(0.1, ge=0.0, lt=0.5, description="share of training rows used to pick the best epoch")
    min_steps_per_epoch: int = Field(10, gt=0, description="small tables: an epoch repeats passes until this many steps")
    max_steps_per_epoch: int = Field(200, gt=0, description="large tables: an epoch ends after this many steps, so epochs stay comparable")
    progress_bar: bool = True
    deterministic: bool = True
    accelerator: str = Field("cpu", description="cpu, gpu, cuda, mps or auto")
    devices: int = Field(1, gt=0)
    num_nodes: int = Field(1, gt=0)
    strategy: str = Field("auto", description="auto, or ddp_spawn / ddp_fork for several CPU processes or GPUs")
    precision: str | int = Field("32-true", description="pl.Trainer precision, e.g. 32-true, bf16-mixed, 16-mixed")
    max_minutes: float | None = Field(None, gt=0)
    checkpoint_dir: str | None = Field(None, description="set by the pipeline: <run>/checkpoints")
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="further pl.Trainer keywords, e.g. {gradient_clip_val: 1.0, callbacks: ['pkg.module:Callback']}",
    )

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    def public(self) -> dict[str, Any]:
        """What shapes the model (saved with it and hashed): everything but display and paths."""
        return self.model_dump(mode="json", exclude={"progress_bar", "checkpoint_dir"})


def check_trainer(cfg: TrainerConfig, where: str = "trainer") -> None:
    """Refuse settings that cannot work on this machine before any training starts."""
    accel = cfg.accelerator.lower()
    if accel not in ("cpu", "gpu", "cuda", "mps", "auto"):
        raise BadInput(f"{where}.accelerator '{cfg.accelerator}' is unknown; use cpu, gpu, cuda, mps or auto")
    if accel in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BadInput(f"{where}.accelerator={cfg.accelerator} but this machine has no CUDA GPU; use accelerator=cpu")
        if cfg.devices > torch.cuda.device_count():
            raise BadInput(f"{where}.devices={cfg.devices} but this machine has {torch.cuda.device_count()} GPU(s); lower devices")
    if accel == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise BadInput(f"{where}.accelerator=mps but MPS is not available here; use accelerator=cpu")
    if cfg.world_size > 1 and cfg.strategy not in IN_PROCESS_STRATEGIES[1:]:
        raise BadInput(
            f"{where}.strategy={cfg.strategy} with {cfg.world_size} processes would re-run the whole command per rank; "
            f"use {where}.strategy=ddp_spawn (or ddp_fork) for now"
        )
    if cfg.precision not in SUPPORTED_PRECISIONS:
        raise BadInput(f"{where}.precision={cfg.precision} is not supported (the data is float32); use 32-true, 16-mixed or bf16-mixed")
    clash = sorted(set(cfg.extra) & _OWNED)
    if clash:
        raise BadInput(f"{where}.extra.{clash[0]}: set it as {where}.{_own_key(clash[0])}, not through extra")


def _own_key(name: str) -> str:
    return {"enable_progress_bar": "progress_bar", "max_time": "max_minutes"}.get(name, name)


def trainer_extra(cfg: TrainerConfig, where: str = "trainer") -> dict[str, Any]:
    """`extra` as pl.Trainer keywords: unknown keywords refused, callbacks given by import path built."""
    import inspect

    from synthaug.training.lightning import lightning

    pl = lightning()
    known = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    out = dict(cfg.extra)
    unknown = sorted(set(out) - known)
    if unknown:
        raise BadInput(f"{where}.extra.{unknown[0]} is not a pl.Trainer keyword; see Lightning's Trainer docs")
    if "callbacks" in out:
        out["callbacks"] = [_build_callback(c, where) for c in _as_list(out["callbacks"])]
    return out


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _build_callback(spec: Any, where: str):
    """'package.module:Class' or {'class': 'package.module:Class', 'init': {...}} -> an instance."""
    from importlib import import_module

    path, init = (spec.get("class"), spec.get("init") or {}) if isinstance(spec, dict) else (spec, {})
    module, _, attr = str(path).partition(":")
    try:
        cls = getattr(import_module(module), attr)
        return cls(**init)
    except Exception as exc:  # an import or constructor error names the callback
        raise BadInput(
            f"{where}.extra.callbacks: cannot build '{path}' ({type(exc).__name__}: {exc}); write it as 'module:Class'"
        ) from None
