"""Conditional tabular GAN (in the spirit of CTGAN, Xu et al. 2019).

- Conditional vector: one one-hot over every discrete group (category spans, optionally null
  spans). Training-by-sampling: per row pick a discrete column uniformly, a category by its
  log-frequency, then a real row holding that category; the generator is also penalised by the
  cross-entropy between its output for the chosen group and the condition.
- Generator: residual blocks (Linear + BatchNorm + ReLU, concatenated with their input); heads
  are tanh for mode offsets and Gumbel-softmax (tau 0.2) for one-hot groups while training.
- Critic: PacGAN (`pac` rows judged together; batches are trimmed to a multiple of `pac`),
  LeakyReLU + dropout, trained as a WGAN with gradient penalty.
- Lightning manual optimisation: `n_critic` critic steps per generator step.
- Samples come from an exponential moving average of the generator's weights (`ema_decay`).
- `val_loss` is the fidelity gap of generated rows against the validation rows
  (`training.FidelityLayout`: per-column KS / total variation and correlation differences).

Sampling draws unconditioned rows with conditions from the *empirical* category frequencies (so
marginals stay right); an equality condition on a categorical column sets the conditional vector.

DP mode (`with_privacy`, see synthaug.training.privacy): only the critic sees real rows, so only
the critic is private (DP-SGD through Opacus' per-example hooks on its Linear layers, clipped,
noised, accounted); the generator learns from the private critic only (post-processing).
- Poisson batches replace training-by-sampling (which picks rows by category: not a Poisson
  sample). A real row's conditional vector is its *own* category in one group chosen uniformly,
  or no condition (half the rows), so it is part of that row's clipped example.
- The fake batch is public: its size is the expected batch size, its conditions are drawn
  without any real row (none for half, else a group and a category uniformly), and its backward
  runs with the Opacus hooks disabled; its gradient is added after clipping and noise, so only
  real examples are charged. The generator step also runs with the hooks disabled.
- Loss: non-saturating (softplus) instead of WGAN-GP, whose gradient penalty needs a double
  backward that per-example hooks do not support; pac=1, since a pack would mix several rows
  into one example. No BatchNorm in the critic (there is none); the generator's BatchNorm only
  sees fakes.
- No empirical category frequencies are kept (`cond_freq` stays zero): unconditioned samples use
  the empty conditional vector the generator was also trained with.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.data import Dataset

from synthaug.generators.base import Tags
from synthaug.generators.tabular.base import TabularGenerator
from synthaug.generators.tabular.onehot import sample_onehots
from synthaug.training import random as draws
from synthaug.training.config import TrainerConfig
from synthaug.training.data import split_indices, steps_per_epoch, train_loader, val_loader
from synthaug.training.ema import ema_update
from synthaug.training.fidelity import FidelityLayout, FidelityValidation
from synthaug.training.lightning import fit_module, pl
from synthaug.training.privacy import DPSGD, PrivateTabular
from synthaug.transforms.tabular import Span


class GANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedding_dim: int = Field(128, gt=0, description="size of the generator's noise input")
    generator_dim: list[int] = Field(
        default_factory=lambda: [256, 256], min_length=1, description="widths of the generator's residual blocks"
    )
    discriminator_dim: list[int] = Field(
        default_factory=lambda: [256, 256], min_length=1, description="widths of the critic's hidden layers"
    )
    generator_lr: float = Field(2e-4, gt=0, description="Adam learning rate of the generator")
    discriminator_lr: float = Field(2e-4, gt=0, description="Adam learning rate of the critic")
    betas: tuple[float, float] = Field((0.5, 0.9), description="Adam betas of both optimisers")
    generator_decay: float = Field(1e-6, ge=0, description="weight decay of the generator")
    discriminator_decay: float = Field(1e-6, ge=0, description="weight decay of the critic")
    pac: int = Field(10, gt=0, description="rows the critic judges together (PacGAN); batches are trimmed to a multiple")
    n_critic: int = Field(1, gt=0, description="critic steps per generator step")
    gp_lambda: float = Field(10.0, ge=0, description="weight of the WGAN gradient penalty")
    gumbel_tau: float = Field(0.2, gt=0, description="Gumbel-softmax temperature of one-hot heads while training")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout in the critic")
    condition_on_nulls: bool = Field(False, description="also put null-indicator groups in the conditional vector")
    log_frequency: bool = Field(True, description="training-by-sampling draws categories by log-frequency (else by frequency)")
    val_rows: int = Field(2000, gt=0, description="generated rows compared with the validation rows each epoch")
    ema_decay: float = Field(
        0.99, ge=0, lt=1, description="sample from an exponential moving average of the generator's weights (0 = the live weights)"
    )


# -- networks --------------------------------------------------------------------
class Residual(nn.Module):
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.fc = nn.Linear(i, o)
        self.bn = nn.BatchNorm1d(o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)


def _generator_net(in_dim: int, dims: list[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for d in dims:
        layers.append(Residual(in_dim, d))
        in_dim += d
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Critic(nn.Module):
    def __init__(self, in_dim: int, dims: list[int], pac: int, dropout: float) -> None:
        super().__init__()
        self.pac = pac
        layers: list[nn.Module] = []
        dim = in_dim * pac
        for d in dims:
            layers += [nn.Linear(dim, d), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            dim = d
        layers.append(nn.Linear(dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[: len(x) - len(x) % self.pac]  # trim to whole packs
        return self.net(x.reshape(-1, x.shape[1] * self.pac))


# -- conditional vector and training-by-sampling ----------------------------------
class CondSpans:
    """The discrete groups in the conditional vector, their frequencies and the rows holding each category."""

    def __init__(self, spans, roles: tuple[str, ...]) -> None:
        self.spans = [s for s in spans if s.kind == "softmax" and s.role in roles]
        self.offsets = np.cumsum([0] + [s.width for s in self.spans])[:-1].astype(int)
        self.width = int(sum(s.width for s in self.spans))

    def index(self, x: np.ndarray, log_frequency: bool) -> None:
        """Learn per-category counts and row lists from the encoded training rows."""
        self.rows, self.starts, self.counts, self.train_cdf = [], [], [], []
        pos = 0
        for s in self.spans:
            hot = x[:, s.start : s.stop]
            counts, rows = [], []
            for j in range(s.width):
                r = np.flatnonzero(hot[:, j] > 0.5)
                rows.append(r)
                counts.append(len(r))
            counts = np.asarray(counts, dtype=float)
            self.counts.append(counts)
            self.starts.append(pos + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64))
            self.rows.extend(rows)
            pos += int(counts.sum())
            w = np.log1p(counts) if log_frequency else counts
            self.train_cdf.append(np.cumsum(w / w.sum()) if w.sum() > 0 else np.ones_like(w))
        self.live = np.array([k for k, c in enumerate(self.counts) if c.sum() > 0], dtype=np.int64)
        self.flat_rows = np.concatenate(self.rows) if self.rows else np.zeros(0, dtype=np.int64)

    def empirical(self) -> list[np.ndarray]:
        return [c / c.sum() for c in self.counts]


class BySampling:
    """Training-by-sampling batch keys: per row a conditioned group uniformly, a category by its
    (log-)frequency, then a real row holding it. A key is (rows, group, category); without
    discrete groups, rows are drawn uniformly and group is -1. (A class, so spawned runs pickle it.)"""

    def __init__(self, cond: CondSpans, n_rows: int) -> None:
        self.cond, self.n_rows = cond, n_rows

    def __call__(self, rng: np.random.Generator, batch: int, steps: int):
        cond = self.cond
        for _ in range(steps):
            if not len(cond.live):
                yield rng.integers(self.n_rows, size=batch), np.full(batch, -1), np.zeros(batch, dtype=np.int64)
                continue
            span = cond.live[rng.integers(len(cond.live), size=batch)]
            u, v = rng.random(batch), rng.random(batch)
            rows = np.empty(batch, dtype=np.int64)
            cats = np.zeros(batch, dtype=np.int64)
            for k in range(len(cond.spans)):
                sel = np.flatnonzero(span == k)
                if not len(sel):
                    continue
                cat = np.minimum(np.searchsorted(cond.train_cdf[k], u[sel], side="right"), len(cond.counts[k]) - 1)
                pick = (v[sel] * cond.counts[k][cat]).astype(np.int64)
                rows[sel] = cond.flat_rows[cond.starts[k][cat] + pick]
                cats[sel] = cat
            yield rows, span, cats


class CondRows(Dataset):
    """Encoded rows and their conditional vectors, built from a training-by-sampling key."""

    def __init__(self, x: np.ndarray, cond: CondSpans) -> None:
        self.x, self.cond = torch.from_numpy(np.ascontiguousarray(x)), cond

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key) -> tuple[torch.Tensor, torch.Tensor]:
        rows, span, cats = key
        vec = torch.zeros(len(rows), self.cond.width)
        on = np.flatnonzero(span >= 0)
        if len(on):
            vec[torch.from_numpy(on), torch.from_numpy(self.cond.offsets[span[on]] + cats[on])] = 1.0
        return self.x[torch.from_numpy(rows)], vec


# -- the Lightning module ----------------------------------------------------------
class TabularGANModule(FidelityValidation, pl.LightningModule):
    """Hyperparameters are plain data (width, spans as dicts, the conditioned roles, config dict),
    so `TabularGANModule.load_from_checkpoint("checkpoints/best.ckpt")` rebuilds it."""

    def __init__(self, width: int, spans: list[dict[str, Any]], cond_roles: list[str], config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        cfg = self.cfg = GANConfig(**config)
        self.spans = [Span(**s) for s in spans]
        self.cond = cond = CondSpans(self.spans, tuple(cond_roles))
        self.groups = [(s.start, s.stop) for s in self.spans if s.kind == "softmax"]
        self.cond_groups = [(s.start, s.stop) for s in cond.spans]
        self.generator = _generator_net(cfg.embedding_dim + cond.width, cfg.generator_dim, width)
        # Weight averaging smooths the generator's oscillation around the equilibrium (Yazici et al. 2019):
        # samples get better sooner and the epoch-selection signal gets less noisy.
        self.ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.ema_steps = 0
        self.critic = Critic(width + cond.width, cfg.discriminator_dim, cfg.pac, cfg.dropout)
        # Empirical frequencies of each conditional group, for unconditioned sampling (saved with the weights).
        self.register_buffer("cond_freq", torch.zeros(cond.width))
        self.register_buffer("value_idx", torch.tensor([s.start for s in self.spans if s.kind == "value"], dtype=torch.long))
        self.val_rows = cfg.val_rows

    # -- generation ----------------------------------------------------------
    def raw(self, z: torch.Tensor, c: torch.Tensor, net: nn.Module | None = None) -> torch.Tensor:
        return (net or self.generator)(torch.cat([z, c], dim=1))

    @torch.no_grad()
    def update_ema(self) -> None:
        if not self.cfg.ema_decay:
            return
        self.ema_steps += 1
        ema_update(self.ema, self.generator, self.cfg.ema_decay, self.ema_steps)

    def activate(self, out: torch.Tensor) -> torch.Tensor:
        """Training heads: tanh offsets, Gumbel-softmax one-hot groups (differentiable)."""
        parts = out.clone()
        parts[:, self.value_idx] = torch.tanh(out[:, self.value_idx])
        for a, b in self.groups:
            parts[:, a:b] = nn.functional.gumbel_softmax(out[:, a:b], tau=self.cfg.gumbel_tau)
        return parts

    def condition(self, n: int, generator: torch.Generator, fixed: dict[int, int]) -> torch.Tensor:
        """Conditional vectors: the fixed category, else a group uniformly and a category by empirical frequency."""
        cond, dev = self.cond, self.device
        c = torch.zeros(n, cond.width, device=dev)
        if not cond.spans:
            return c
        starts = [s.start for s in cond.spans]
        chosen = [starts.index(k) for k in fixed if k in starts]
        if chosen:
            # The conditional vector holds one group; the rarest fixed category is the most useful to set.
            k = min(chosen, key=lambda i: float(self.cond_freq[cond.offsets[i] + fixed[starts[i]]]))
            c[:, cond.offsets[k] + fixed[starts[k]]] = 1.0
            return c
        live = [k for k, a in enumerate(cond.offsets) if float(self.cond_freq[a : a + cond.spans[k].width].sum()) > 0]
        if not live:
            return c
        span = torch.tensor(live, device=dev)[draws.randint(len(live), n, generator=generator, device=dev)]
        for k in live:
            sel = torch.nonzero(span == k).squeeze(1)
            if len(sel):
                a, w = int(cond.offsets[k]), cond.spans[k].width
                cat = draws.multinomial(self.cond_freq[a : a + w], len(sel), generator=generator)
                c[sel, a + cat] = 1.0
        return c

    def own_conditions(self, real: torch.Tensor) -> torch.Tensor:
        """DP mode: each real row's own category in one conditioned group chosen uniformly, or no
        condition (half the rows); a function of that row alone, so clipping covers it."""
        cond, n = self.cond, len(real)
        c = torch.zeros(n, cond.width, device=real.device)
        if not cond.spans or not n:
            return c
        keep = draws.rand(n, device=real.device) < 0.5
        group = draws.randint(len(cond.spans), n, device=real.device)
        for k, (a, b) in enumerate(self.cond_groups):
            hot = real[:, a:b]
            sel = torch.nonzero(keep & (group == k) & (hot.sum(1) > 0.5)).squeeze(1)  # a null category stays unconditioned
            c[sel, int(cond.offsets[k]) + hot[sel].argmax(1)] = 1.0
        return c

    def public_conditions(self, n: int) -> torch.Tensor:
        """DP mode: conditions drawn without any real row: none (half), else a group and a category uniformly."""
        cond, dev = self.cond, self.device
        c = torch.zeros(n, cond.width, device=dev)
        if not cond.spans or not n:
            return c
        keep = draws.rand(n, device=dev) < 0.5
        group = draws.randint(len(cond.spans), n, device=dev)
        u = draws.rand(n, device=dev)
        for k, s in enumerate(cond.spans):
            sel = torch.nonzero(keep & (group == k)).squeeze(1)
            cat = (u[sel] * s.width).long().clamp(max=s.width - 1)
            c[sel, int(cond.offsets[k]) + cat] = 1.0
        return c

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator, fixed: dict[int, int] | None = None) -> torch.Tensor:
        c = self.condition(n, generator, fixed or {})
        z = draws.randn(n, self.cfg.embedding_dim, generator=generator, device=self.device)
        out = self.raw(z, c, self.ema if self.cfg.ema_decay else self.generator)
        out[:, self.value_idx] = torch.tanh(out[:, self.value_idx])
        return sample_onehots(out, self.spans, generator)

    # -- losses ----------------------------------------------------------------
    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        pac = self.cfg.pac
        n = len(real) // pac
        alpha = draws.rand(n, 1, 1, device=self.device).expand(n, pac, 1).reshape(n * pac, 1)
        mix = (alpha * real[: n * pac] + (1 - alpha) * fake[: n * pac]).requires_grad_(True)
        score = self.critic(mix)
        grad = torch.autograd.grad(score.sum(), mix, create_graph=True)[0]
        grad = grad.reshape(n, -1)
        return ((grad.norm(2, dim=1) - 1) ** 2).mean()

    def cond_loss(self, out: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each row's conditioned group against its condition."""
        cond = self.cond
        if not cond.spans:
            return out.new_zeros(())
        total = out.new_zeros(len(out))
        for k, (a, b) in enumerate(self.cond_groups):
            ck = c[:, cond.offsets[k] : cond.offsets[k] + (b - a)]
            on = ck.sum(1)
            total = total + nn.functional.cross_entropy(out[:, a:b], ck.argmax(1), reduction="none") * on
        return total.mean()

    def training_step(self, batch, batch_idx):
        cfg, dev = self.cfg, self.device
        real, c_real = batch
        opt_g, opt_d = self.optimizers()
        n = len(real)
        c_fake = c_real[draws.randperm(n, device=dev)]  # as CTGAN: fakes carry an independent draw of conditions

        self.toggle_optimizer(opt_d)
        z = draws.randn(n, cfg.embedding_dim, device=dev)
        fake = self.activate(self.raw(z, c_fake)).detach()
        real_in, fake_in = torch.cat([real, c_real], 1), torch.cat([fake, c_fake], 1)
        loss_d = -(self.critic(real_in).mean() - self.critic(fake_in).mean())
        if cfg.gp_lambda:
            loss_d = loss_d + cfg.gp_lambda * self.gradient_penalty(real_in, fake_in)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        if (batch_idx + 1) % cfg.n_critic:
            return
        self.toggle_optimizer(opt_g)
        c = c_real[draws.randperm(n, device=dev)]
        z = draws.randn(n, cfg.embedding_dim, device=dev)
        out = self.raw(z, c)
        fake = self.activate(out)
        loss_g = -self.critic(torch.cat([fake, c], 1)).mean() + self.cond_loss(out, c)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.update_ema()
        self.log("train_loss", loss_g.detach(), on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("critic_loss", loss_d.detach(), on_step=False, on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        cfg = self.cfg
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.generator_lr, betas=cfg.betas, weight_decay=cfg.generator_decay)
        opt_d = torch.optim.Adam(self.critic.parameters(), lr=cfg.discriminator_lr, betas=cfg.betas, weight_decay=cfg.discriminator_decay)
        return opt_g, opt_d


class TabularGAN(PrivateTabular, TabularGenerator):
    """Conditional Wasserstein GAN for mixed-type tables."""

    name = "gan"
    Config = GANConfig
    tags = Tags(conditional=True, rebalance=True, multi_device=True, dp=True)
    dp_private_part = "the critic (the only network that sees real rows)"

    def _roles(self) -> list[str]:
        return ["category", "null"] if self.config.condition_on_nulls else ["category"]

    def _build(self) -> TabularGANModule:
        spans = [asdict(s) for s in self.encoder.spans]
        return TabularGANModule(self.encoder.width, spans, self._roles(), self.config.model_dump(mode="json"))

    def _fit_encoded(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> dict[str, Any]:
        cfg = self.config
        train_idx, val_idx = split_indices(len(x), trainer, seed)
        train = x[train_idx]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = self._build()
        cond = self.module.cond
        cond.index(train, cfg.log_frequency)
        self.module.fidelity = FidelityLayout(self.encoder)
        if cond.spans:
            self.module.cond_freq.copy_(torch.from_numpy(np.concatenate(cond.empirical())).float())
        batch = min(trainer.batch_size, len(train))  # a batch larger than the table only repeats rows
        batch = max(cfg.pac, batch - batch % cfg.pac)
        steps = steps_per_epoch(len(train), batch, trainer) * cfg.n_critic
        train_dl = train_loader(CondRows(train, cond), BySampling(cond, len(train)), batch, steps, seed)
        return fit_module(self.module, train_dl, val_loader(None if val_idx is None else x[val_idx]), trainer, seed)

    def _dp_config_overrides(self) -> dict[str, Any]:
        # A pack would make several rows one example; the gradient penalty's double backward does not mix with per-example hooks.
        return {"pac": 1, "gp_lambda": 0.0}

    def _fit_private(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> DPSGD:
        """One private critic step per Poisson batch (real part clipped and noised, fake part public),
        one generator step every `n_critic` critic steps. See the module docstring."""
        from opacus import GradSampleModule

        module = self.module
        module.train()
        opt_g, opt_d = module.configure_optimizers()
        dp = DPSGD(opt_d, self.privacy, n_rows=len(x), batch_size=trainer.batch_size, seed=seed)
        critic = GradSampleModule(module.critic, loss_reduction="sum")  # per-example gradients of the real rows
        params = list(module.critic.parameters())
        rows = torch.from_numpy(np.ascontiguousarray(x))
        with warnings.catch_warnings():
            # The real rows do not require grad, so torch notes the critic's first hook fires on outputs only: as intended.
            warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
            self._train_private(module, critic, dp, opt_g, rows, trainer, params)
        return dp

    def _train_private(self, module, critic, dp: DPSGD, opt_g, rows: torch.Tensor, trainer: TrainerConfig, params) -> None:
        cfg, n = self.config, dp.expected_batch
        try:
            for step, idx in enumerate(dp.batches(trainer.max_minutes)):
                real = rows[idx]
                c_real = module.own_conditions(real)
                c_fake = module.public_conditions(n)
                with torch.no_grad():
                    fake = module.activate(module.raw(draws.randn(n, cfg.embedding_dim), c_fake))
                critic.disable_hooks()  # the fake batch is public: not charged, not clipped
                loss_fake = nn.functional.softplus(critic(torch.cat([fake, c_fake], 1))).mean()
                public = dict(zip(params, torch.autograd.grad(loss_fake, params)))
                critic.enable_hooks()
                if len(real):
                    nn.functional.softplus(-critic(torch.cat([real, c_real], 1))).sum().backward()
                dp.step(public=public)
                if (step + 1) % cfg.n_critic:
                    continue
                critic.disable_hooks()
                module.critic.requires_grad_(False)
                c = module.public_conditions(n)
                out = module.raw(draws.randn(n, cfg.embedding_dim), c)
                loss_g = nn.functional.softplus(-critic(torch.cat([module.activate(out), c], 1))).mean() + module.cond_loss(out, c)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                module.critic.requires_grad_(True)
                critic.enable_hooks()
                module.update_ema()
        finally:
            critic.remove_hooks()

    def _sample(self, n: int, generator, fixed: dict[int, int]) -> np.ndarray:
        self.module.eval()
        return self.module.generate(n, generator, fixed).cpu().numpy()
