"""Tabular restricted Boltzmann machine (Gaussian + softmax visibles, Bernoulli hiddens).

Visible layer: one Gaussian unit per mode offset (standardised inside the model, with a learned
or unit standard deviation) and one softmax group per one-hot span (modes, categories, nulls).
Hidden layer: Bernoulli units. Energy

    E(v, h) = sum_g (v_g - b_g)^2 / (2 s_g^2) - sum_j b_j v_j - c.h - sum_i (v_i / s_i) W_i.h

(s_i = 1 for softmax units). Training: contrastive divergence CD-k or persistent CD, written as
the loss mean F(v_data) - mean F(v_model) with v_model detached (F = free energy), minimised by
Adam. `val_loss` is the fidelity gap of generated rows (FidelityValidation); `val_recon` the
one-step mean-field reconstruction error of validation rows;
`free_energy_gap` (validation minus training rows) grows when the model overfits.

Epochs are scored on persistent chains: `val_rows` chains started once from noise and moved
`val_steps` Gibbs steps per epoch, so they follow the model as it trains. Their states at the
best epoch are saved with the weights as the *chain bank*: model samples, no training rows.

Generation: Gibbs chains started from states drawn from the bank (from noise if there is none),
`burn_in` steps, then one draw every `thinning` steps; softmax groups are categorical draws,
Gaussian units mean + noise (offsets clipped to [-1, 1]). Starting near equilibrium makes a short
burn-in enough, where chains from noise mix slowly once the model is sharp. Equality conditions
clamp the group's visible units at every step.

DP mode (`with_privacy`, see synthaug.training.privacy): the whole model is private. The CD-k
update is the gradient of a free-energy difference, so DP-SGD applies to it directly: per-example
gradients (torch.func; W, b, c are used outside `forward`), clipped, summed, noised, on Poisson
batches. Nothing is read from the data outside the clipped examples: no offset standardisation
(`value_mean` 0, `value_std` 1: the declared bounds already put offsets in [-1, 1]), no
log-frequency initialisation of softmax biases, no validation rows (the chain bank is filled
from noise after training, with a long burn-in).
- `method: cd`: example i is F(v_i) - F(v~_i), where v~_i is k Gibbs steps started from v_i
  itself; both terms depend on row i alone, so clipping their difference bounds its influence.
- `method: pcd`: the shared chains would carry real rows from batch to batch (the normal path
  starts them at a batch), outside any clipping. In DP mode they start from noise and never
  touch a real row: they are a function of the (already private) weights and fresh randomness.
  The data term F(v_i) is clipped per example and noised; the chain term, public, is clipped per
  chain with the same norm (so both phases are shrunk alike) and averaged, and is added after
  the noise without being charged.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from synthaug.generators.base import Tags
from synthaug.generators.tabular.base import TabularGenerator
from synthaug.generators.tabular.onehot import draw_groups
from synthaug.training import random as draws
from synthaug.training.config import TrainerConfig
from synthaug.training.data import loaders, split_indices
from synthaug.training.fidelity import FidelityLayout, FidelityValidation
from synthaug.training.lightning import fit_module, pl
from synthaug.training.privacy import DPSGD, PrivateTabular, clip_rows, per_sample_grads
from synthaug.transforms.tabular import Span

LOG_SIGMA_RANGE = (math.log(0.05), math.log(2.0))
NOISE_BURN_IN = 500  # Gibbs steps for chains started from noise (no chain bank yet)
VAL_START_BURN_IN = 100  # the scoring chains start at the first epoch, when the model is nearly independent and mixes fast


class RBMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_hidden: int = Field(256, gt=0, description="Bernoulli hidden units")
    method: Literal["cd", "pcd"] = Field("cd", description="contrastive divergence, or persistent CD (chains carried across batches)")
    k: int = Field(1, gt=0, description="Gibbs steps per update (CD-k / PCD-k)")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="L2 penalty on the weights")
    learn_variance: bool = Field(
        True, description="learn a standard deviation per Gaussian unit (else unit variance on standardised offsets)"
    )
    init_std: float = Field(0.01, gt=0, description="standard deviation of the initial weights")
    burn_in: int = Field(100, ge=0, description="Gibbs steps before the first sample is kept (chains start from the saved chain bank)")
    thinning: int = Field(10, gt=0, description="Gibbs steps between samples kept from one chain")
    n_chains: int = Field(1000, gt=0, description="parallel Gibbs chains per sampled batch (fewer rows -> one chain per row)")
    val_steps: int = Field(5, gt=0, description="Gibbs steps per epoch of the persistent chains that score each epoch")


class TabularRBMModule(FidelityValidation, pl.LightningModule):
    """Hyperparameters are plain data (width, spans as dicts, config dict), so
    `TabularRBMModule.load_from_checkpoint("checkpoints/best.ckpt")` rebuilds it."""

    def __init__(self, width: int, spans: list[dict[str, Any]], config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        cfg = self.cfg = RBMConfig(**config)
        self.width = width
        self.spans = [Span(**s) for s in spans]
        value_idx = [s.start for s in self.spans if s.kind == "value"]
        self.n_values = len(value_idx)
        self.groups = tuple((s.start, s.stop) for s in self.spans if s.kind == "softmax")
        self.group_cols = [j for a, b in self.groups for j in range(a, b)]
        self.W = nn.Parameter(torch.randn(width, cfg.n_hidden) * cfg.init_std)
        self.b = nn.Parameter(torch.zeros(width))  # visible biases (Gaussian means in standardised units)
        self.c = nn.Parameter(torch.zeros(cfg.n_hidden))
        self.log_sigma = nn.Parameter(torch.zeros(len(value_idx)), requires_grad=cfg.learn_variance)
        self.register_buffer("value_idx", torch.tensor(value_idx, dtype=torch.long))
        # Standardisation of the offsets, set from the training rows (saved with the weights).
        self.register_buffer("value_mean", torch.zeros(len(value_idx)))
        self.register_buffer("value_std", torch.ones(len(value_idx)))
        self.chains: torch.Tensor | None = None  # persistent chains (PCD); not saved
        self.val_chains: torch.Tensor | None = None  # persistent chains that score each epoch; not saved
        # Chain states at the best epoch (standardised visibles), saved: generation starts from them.
        self.register_buffer("bank", torch.zeros(self.val_rows, width))
        self.register_buffer("bank_ready", torch.zeros((), dtype=torch.bool))
        self.train_probe: torch.Tensor | None = None  # training rows for the free-energy gap; not saved
        self.val_sums: dict[str, float] = {}
        self.history: list[dict[str, float]] = []  # metrics logged at each epoch's end, for inspection

    # -- model pieces -------------------------------------------------------------
    def sigma(self) -> torch.Tensor:
        return torch.exp(self.log_sigma.clamp(*LOG_SIGMA_RANGE))

    def scale(self) -> torch.Tensor:
        """Per visible unit: 1 / sigma for Gaussian units, 1 for softmax units."""
        s = torch.ones(self.width, dtype=self.W.dtype, device=self.W.device)
        return s.index_copy(0, self.value_idx, 1.0 / self.sigma())

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[:, self.value_idx] = (x[:, self.value_idx] - self.value_mean) / self.value_std
        return x

    def unstandardise(self, v: torch.Tensor) -> torch.Tensor:
        v = v.clone()
        v[:, self.value_idx] = (v[:, self.value_idx] * self.value_std + self.value_mean).clamp(-1.0, 1.0)
        return v

    def hidden_prob(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.c + (v * self.scale()) @ self.W)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        sig = self.sigma()
        vg, bg = v[:, self.value_idx], self.b[self.value_idx]
        quad = ((vg - bg) ** 2 / (2 * sig**2)).sum(1)
        mask = torch.ones(self.width, dtype=v.dtype, device=v.device).index_fill(0, self.value_idx, 0.0)
        lin = (v * self.b * mask).sum(1)
        return quad - lin - nn.functional.softplus(self.c + (v * self.scale()) @ self.W).sum(1)

    def visible_params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian means (at value_idx) and softmax logits (elsewhere), and the Gaussian sigmas."""
        act = h @ self.W.T
        sig = self.sigma()
        out = self.b + act
        out[:, self.value_idx] = self.b[self.value_idx] + sig * act[:, self.value_idx]
        return out, sig

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        out, sig = self.visible_params(h)
        v = torch.zeros_like(out)
        noise = draws.randn(len(h), self.n_values, generator=generator, device=h.device, dtype=h.dtype)
        v[:, self.value_idx] = out[:, self.value_idx] + sig * noise
        if self.groups:
            v[:, self.group_cols] = draw_groups(out, self.groups, generator)[:, self.group_cols]
        return v

    def sample_hidden(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        p = self.hidden_prob(v)
        return (draws.rand(*p.shape, generator=generator, device=p.device, dtype=p.dtype) < p).to(p.dtype)

    def gibbs(self, v: torch.Tensor, steps: int, generator=None, clamp=None) -> torch.Tensor:
        for _ in range(steps):
            v = self.sample_visible(self.sample_hidden(v, generator), generator)
            if clamp is not None:
                v[:, clamp[0]] = clamp[1]
        return v

    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Per row: squared error of the Gaussian means + cross-entropy of the self.groups, one mean-field step."""
        out, _ = self.visible_params(self.hidden_prob(v))
        err = ((out[:, self.value_idx] - v[:, self.value_idx]) ** 2).sum(1)
        for a, b in self.groups:
            err = err - (v[:, a:b] * torch.log_softmax(out[:, a:b], 1)).sum(1)
        return err

    # -- training -------------------------------------------------------------------
    def training_step(self, batch, _):
        v = self.standardise(batch[0])
        with torch.no_grad():
            if self.cfg.method == "pcd":
                if self.chains is None or len(self.chains) != len(v):
                    self.chains = v.clone()
                self.chains = self.gibbs(self.chains, self.cfg.k)
                negative = self.chains
            else:
                negative = self.gibbs(v, self.cfg.k)
        loss = self.free_energy(v).mean() - self.free_energy(negative.detach()).mean()
        with torch.no_grad():  # picks the epoch when there are no validation rows
            self.log("train_loss", self.reconstruction_error(v).mean(), on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self.val_sums = {"n": 0, "recon": 0.0, "free": 0.0}

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        v = self.standardise(batch[0])
        s = self.val_sums
        s["n"] += len(v)
        s["recon"] += float(self.reconstruction_error(v).sum().detach())
        s["free"] += float(self.free_energy(v).sum().detach())

    @torch.no_grad()
    def validation_sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """States of `n` chains carried from epoch to epoch, `val_steps` Gibbs steps each time.

        The weights move little between epochs, so chains that are already near the previous
        model's equilibrium track the current one after a few steps; chains restarted from
        noise would need the full burn-in, which grows as the model sharpens.
        """
        if self.val_chains is None or len(self.val_chains) != n:
            # `generator` restarts at the same seed every epoch; the chains need fresh noise each time.
            self.val_gen = torch.Generator().manual_seed(int(draws.randint(2**62, 1, generator=generator)))
            self.val_chains = self.gibbs(self.start(n, self.val_gen), VAL_START_BURN_IN, self.val_gen)
        self.val_chains = self.gibbs(self.val_chains, self.cfg.val_steps, self.val_gen)
        self.fill_bank(self.val_chains)
        return self.unstandardise(self.val_chains)

    def fill_bank(self, states: torch.Tensor) -> None:
        self.bank.copy_(states[torch.arange(len(self.bank), device=states.device) % len(states)])
        self.bank_ready.fill_(True)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()  # val_loss: the fidelity gap of generated rows
        s = self.val_sums
        if not s.get("n"):
            return
        self.log("val_recon", s["recon"] / s["n"], sync_dist=True)
        if self.train_probe is not None:
            train_free = float(self.free_energy(self.standardise(self.train_probe.to(self.device))).mean())
            self.log("free_energy_gap", s["free"] / s["n"] - train_free, sync_dist=True)

    def on_train_epoch_end(self) -> None:
        self.history.append({k: float(v) for k, v in self.trainer.callback_metrics.items()})

    def configure_optimizers(self):
        decay = [self.W]
        rest = [p for n, p in self.named_parameters() if n != "W" and p.requires_grad]
        return torch.optim.Adam(
            [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}], lr=self.cfg.lr
        )

    # -- generation -------------------------------------------------------------------
    def start(self, chains: int, generator: torch.Generator) -> torch.Tensor:
        """Random chain starts: standard-normal offsets, uniform one-hot self.groups."""
        v = torch.zeros(chains, self.width, device=self.device)
        v[:, self.value_idx] = draws.randn(chains, self.n_values, generator=generator, device=self.device)
        return draw_groups(v, self.groups, generator)

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator, fixed: dict[int, int] | None = None) -> torch.Tensor:
        chains = min(n, self.cfg.n_chains)
        clamp = None
        if fixed:
            cols, vals = [], []
            for start, cat in fixed.items():
                stop = next(b for a, b in self.groups if a == start)
                cols += list(range(start, stop))
                vals += [1.0 if j == cat else 0.0 for j in range(stop - start)]
            clamp = (torch.tensor(cols, device=self.device), torch.tensor(vals, device=self.device))
        v, burn_in = self.chain_starts(chains, generator, clamp)
        if clamp is not None:
            v[:, clamp[0]] = clamp[1]
        v = self.gibbs(v, burn_in, generator, clamp)
        kept = [v]
        while sum(len(k) for k in kept) < n:
            v = self.gibbs(v, self.cfg.thinning, generator, clamp)
            kept.append(v)
        return self.unstandardise(torch.cat(kept)[:n])

    def chain_starts(self, chains: int, generator: torch.Generator, clamp) -> tuple[torch.Tensor, int]:
        """Start states and burn-in: bank states that already meet the clamp (so conditional
        chains start in the conditional distribution, not the marginal), else noise and a long burn-in."""
        pool = self.bank if self.bank_ready else self.bank[:0]
        if clamp is not None:
            pool = pool[(pool[:, clamp[0]] == clamp[1]).all(1)]
        if not len(pool):
            return self.start(chains, generator), max(self.cfg.burn_in, NOISE_BURN_IN)
        if chains <= len(pool):
            pick = draws.randperm(len(pool), generator=generator, device=self.device)[:chains]
        else:
            pick = draws.randint(len(pool), chains, generator=generator, device=self.device)
        return pool[pick].clone(), self.cfg.burn_in


class TabularRBM(PrivateTabular, TabularGenerator):
    """Gaussian-softmax-Bernoulli restricted Boltzmann machine for mixed-type tables."""

    name = "rbm"
    Config = RBMConfig
    tags = Tags(conditional=True, rebalance=True, multi_device=True, dp=True)

    def _build(self) -> TabularRBMModule:
        spans = [asdict(s) for s in self.encoder.spans]
        return TabularRBMModule(self.encoder.width, spans, self.config.model_dump(mode="json"))

    def _fit_encoded(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> dict[str, Any]:
        train_idx, val_idx = split_indices(len(x), trainer, seed)
        train, n_val = x[train_idx], 0 if val_idx is None else len(val_idx)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = self._build()
        self.module.fidelity = FidelityLayout(self.encoder)
        module = self.module
        values = torch.from_numpy(train[:, module.value_idx.cpu().numpy()])
        if len(module.value_idx):
            module.value_mean.copy_(values.mean(0))
            module.value_std.copy_(values.std(0).clamp_min(1e-3))
        for s in self.encoder.spans:  # start softmax groups at the data's log-frequencies (Hinton's practical guide)
            if s.kind == "softmax":
                freq = train[:, s.start : s.stop].mean(0)
                module.b.data[s.start : s.stop] = torch.from_numpy(np.log(np.maximum(freq, 1e-3)))
        probe = train[np.random.default_rng(seed).permutation(len(train))[: max(n_val, 1000)]]
        module.train_probe = torch.from_numpy(probe)
        del train, values  # loaders() makes its own split (same rows, same seed); don't hold two copies
        train_dl, val_dl = loaders(x, trainer, seed)
        info = fit_module(module, train_dl, val_dl, trainer, seed)
        module.train_probe = module.chains = module.val_chains = None
        if not module.bank_ready:  # no validation rows: fill the bank from noise with a long burn-in
            gen = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                start = module.start(len(module.bank), gen)
                module.fill_bank(module.gibbs(start, max(self.config.burn_in, NOISE_BURN_IN), gen))
        return info

    def _fit_private(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> DPSGD:
        """DP-SGD on the free-energy difference (see the module docstring for CD and PCD)."""
        module, cfg = self.module, self.config
        module.train()
        dp = DPSGD(module.configure_optimizers(), self.privacy, n_rows=len(x), batch_size=trainer.batch_size, seed=seed)
        rows = torch.from_numpy(np.ascontiguousarray(x))
        gen = torch.Generator().manual_seed(seed)
        chains = module.start(dp.expected_batch, gen) if cfg.method == "pcd" else None  # from noise: never a real row

        def data_term(m: TabularRBMModule, v: torch.Tensor) -> torch.Tensor:
            return m.free_energy(v).mean()

        def cd_term(m: TabularRBMModule, v: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
            return m.free_energy(v).mean() - m.free_energy(neg).mean()

        for idx in dp.batches(trainer.max_minutes):
            v = module.standardise(rows[idx])  # the identity in DP mode: value_mean 0, value_std 1
            with torch.no_grad():
                if chains is not None:
                    chains = module.gibbs(chains, cfg.k)
                else:
                    negative = module.gibbs(v, cfg.k) if len(v) else v
            if chains is None:
                dp.step(per_sample_grads(module, cd_term, v, negative))
            else:
                model = clip_rows(per_sample_grads(module, data_term, chains), self.privacy.max_grad_norm)
                dp.step(per_sample_grads(module, data_term, v), public={p: -g.mean(0) for p, g in model.items()})
        with torch.no_grad():
            start = module.start(len(module.bank), gen)
            module.fill_bank(module.gibbs(start, max(cfg.burn_in, NOISE_BURN_IN), gen))
        return dp

    def _sample(self, n: int, generator, fixed: dict[int, int]) -> np.ndarray:
        self.module.eval()
        return self.module.generate(n, generator, fixed).cpu().numpy()
