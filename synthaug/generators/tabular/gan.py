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
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from synthaug.generators.base import TrainerConfig
from synthaug.generators.tabular.common import TabularGenerator, sample_onehots
from synthaug.training.lightning import FidelityLayout, FidelityValidation, fit_module, lightning, split_validation, steps_per_epoch


class GANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedding_dim: int = Field(128, gt=0, description="size of the generator's noise input")
    generator_dim: list[int] = Field(default_factory=lambda: [256, 256], min_length=1, description="widths of the generator's residual blocks")
    discriminator_dim: list[int] = Field(default_factory=lambda: [256, 256], min_length=1, description="widths of the critic's hidden layers")
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
    ema_decay: float = Field(0.99, ge=0, lt=1, description="sample from an exponential moving average of the generator's weights (0 = the live weights)")


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


class TrainingBySampling(IterableDataset):
    """Yields (real rows, their conditional vector) batches; epoch e is seeded by (seed, e)."""

    def __init__(self, x: np.ndarray, cond: CondSpans, batch: int, steps: int, seed: int) -> None:
        self.x, self.cond, self.batch, self.steps, self.seed = torch.from_numpy(x), cond, batch, steps, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        for _ in range(self.steps):
            yield self.draw(rng)

    def draw(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        b, cond = self.batch, self.cond
        if not len(cond.live):
            return self.x[torch.from_numpy(rng.integers(len(self.x), size=b))], torch.zeros(b, cond.width)
        span = cond.live[rng.integers(len(cond.live), size=b)]
        u, v = rng.random(b), rng.random(b)
        rows = np.empty(b, dtype=np.int64)
        vec = torch.zeros(b, cond.width)
        for k in range(len(cond.spans)):
            sel = np.flatnonzero(span == k)
            if not len(sel):
                continue
            cat = np.minimum(np.searchsorted(cond.train_cdf[k], u[sel], side="right"), len(cond.counts[k]) - 1)
            pick = (v[sel] * cond.counts[k][cat]).astype(np.int64)
            rows[sel] = cond.flat_rows[cond.starts[k][cat] + pick]
            vec[torch.from_numpy(sel), torch.from_numpy(cond.offsets[k] + cat)] = 1.0
        return self.x[torch.from_numpy(rows)], vec


# -- the Lightning module ----------------------------------------------------------
def _lightning_module(width: int, spans, cond: CondSpans, cfg: GANConfig):
    pl = lightning()

    value_idx = [s.start for s in spans if s.kind == "value"]
    groups = [(s.start, s.stop) for s in spans if s.kind == "softmax"]
    cond_groups = [(s.start, s.stop) for s in cond.spans]

    class TabularGANModule(FidelityValidation, pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.generator = _generator_net(cfg.embedding_dim + cond.width, cfg.generator_dim, width)
            # Weight averaging smooths the generator's oscillation around the equilibrium (Yazici et al. 2019):
            # samples get better sooner and the epoch-selection signal gets less noisy.
            self.ema = copy.deepcopy(self.generator).requires_grad_(False)
            self.ema_steps = 0
            self.critic = Critic(width + cond.width, cfg.discriminator_dim, cfg.pac, cfg.dropout)
            # Empirical frequencies of each conditional group, for unconditioned sampling (saved with the weights).
            self.register_buffer("cond_freq", torch.zeros(cond.width))
            self.register_buffer("value_idx", torch.tensor(value_idx, dtype=torch.long))
            self.val_rows = cfg.val_rows

        # -- generation ----------------------------------------------------------
        def raw(self, z: torch.Tensor, c: torch.Tensor, net: nn.Module | None = None) -> torch.Tensor:
            return (net or self.generator)(torch.cat([z, c], dim=1))

        @torch.no_grad()
        def update_ema(self) -> None:
            if not cfg.ema_decay:
                return
            self.ema_steps += 1
            decay = min(cfg.ema_decay, (1 + self.ema_steps) / (10 + self.ema_steps))  # short memory while young
            for avg, live in zip(self.ema.parameters(), self.generator.parameters()):
                avg.lerp_(live, 1 - decay)
            for avg, live in zip(self.ema.buffers(), self.generator.buffers()):
                avg.copy_(live)  # BatchNorm running statistics

        def activate(self, out: torch.Tensor) -> torch.Tensor:
            """Training heads: tanh offsets, Gumbel-softmax one-hot groups (differentiable)."""
            parts = out.clone()
            parts[:, self.value_idx] = torch.tanh(out[:, self.value_idx])
            for a, b in groups:
                parts[:, a:b] = nn.functional.gumbel_softmax(out[:, a:b], tau=cfg.gumbel_tau)
            return parts

        def condition(self, n: int, generator: torch.Generator, fixed: dict[int, int]) -> torch.Tensor:
            """Conditional vectors: the fixed category, else a column uniformly and a category by empirical frequency."""
            c = torch.zeros(n, cond.width)
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
            span = torch.tensor(live)[torch.randint(len(live), (n,), generator=generator)]
            for k in live:
                sel = torch.nonzero(span == k).squeeze(1)
                if len(sel):
                    a, w = int(cond.offsets[k]), cond.spans[k].width
                    cat = torch.multinomial(self.cond_freq[a : a + w], len(sel), replacement=True, generator=generator)
                    c[sel, a + cat] = 1.0
            return c

        @torch.no_grad()
        def generate(self, n: int, generator: torch.Generator, fixed: dict[int, int] | None = None) -> torch.Tensor:
            c = self.condition(n, generator, fixed or {})
            z = torch.randn(n, cfg.embedding_dim, generator=generator)
            out = self.raw(z, c, self.ema if cfg.ema_decay else self.generator)
            out[:, self.value_idx] = torch.tanh(out[:, self.value_idx])
            return sample_onehots(out, spans, generator)

        # -- losses ----------------------------------------------------------------
        def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
            n = len(real) // cfg.pac
            alpha = torch.rand(n, 1, 1).expand(n, cfg.pac, 1).reshape(n * cfg.pac, 1)
            mix = (alpha * real[: n * cfg.pac] + (1 - alpha) * fake[: n * cfg.pac]).requires_grad_(True)
            score = self.critic(mix)
            grad = torch.autograd.grad(score.sum(), mix, create_graph=True)[0]
            grad = grad.reshape(n, -1)
            return ((grad.norm(2, dim=1) - 1) ** 2).mean()

        def cond_loss(self, out: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            """Cross-entropy of each row's conditioned group against its condition."""
            if not cond.spans:
                return out.new_zeros(())
            total = out.new_zeros(len(out))
            for k, (a, b) in enumerate(cond_groups):
                ck = c[:, cond.offsets[k] : cond.offsets[k] + (b - a)]
                on = ck.sum(1)
                total = total + nn.functional.cross_entropy(out[:, a:b], ck.argmax(1), reduction="none") * on
            return total.mean()

        def training_step(self, batch, batch_idx):
            real, c_real = batch
            opt_g, opt_d = self.optimizers()
            n = len(real)
            c_fake = c_real[torch.randperm(n)]  # as CTGAN: fakes carry an independent draw of conditions

            self.toggle_optimizer(opt_d)
            z = torch.randn(n, cfg.embedding_dim)
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
            c = c_real[torch.randperm(n)]
            z = torch.randn(n, cfg.embedding_dim)
            out = self.raw(z, c)
            fake = self.activate(out)
            loss_g = -self.critic(torch.cat([fake, c], 1)).mean() + self.cond_loss(out, c)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            self.update_ema()
            self.log("train_loss", loss_g.detach(), on_step=False, on_epoch=True, prog_bar=True)
            self.log("critic_loss", loss_d.detach(), on_step=False, on_epoch=True)

        # -- validation: a fidelity proxy ------------------------------------------------
        def configure_optimizers(self):
            opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.generator_lr, betas=cfg.betas, weight_decay=cfg.generator_decay)
            opt_d = torch.optim.Adam(self.critic.parameters(), lr=cfg.discriminator_lr, betas=cfg.betas, weight_decay=cfg.discriminator_decay)
            return opt_g, opt_d

    return TabularGANModule()


class TabularGAN(TabularGenerator):
    """Conditional Wasserstein GAN for mixed-type tables."""

    name = "gan"
    Config = GANConfig

    def _cond(self) -> CondSpans:
        roles = ("category", "null") if self.config.condition_on_nulls else ("category",)
        return CondSpans(self.encoder.spans, roles)

    def _build(self):
        return _lightning_module(self.encoder.width, self.encoder.spans, self._cond(), self.config)

    def _fit(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> None:
        cfg = self.config
        train, val = split_validation(x, trainer, seed)
        cond = self._cond()
        cond.index(train, cfg.log_frequency)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = _lightning_module(self.encoder.width, self.encoder.spans, cond, cfg)
        self.module.fidelity = FidelityLayout(self.encoder)
        if cond.spans:
            self.module.cond_freq.copy_(torch.from_numpy(np.concatenate(cond.empirical())).float())
        batch = min(trainer.batch_size, len(train))  # a batch larger than the table only repeats rows
        batch = max(cfg.pac, batch - batch % cfg.pac)
        g_steps = steps_per_epoch(len(train), batch, trainer)
        data = TrainingBySampling(train, cond, batch, g_steps * cfg.n_critic, seed)
        train_dl = DataLoader(data, batch_size=None)
        val_dl = None if val is None else DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(val)), batch_size=4096)
        with warnings.catch_warnings():  # Lightning warns that __len__ of an IterableDataset may be wrong with workers; we use none
            warnings.filterwarnings("ignore", message=".*IterableDataset.*has `__len__` defined.*")
            fit_module(self.module, train_dl, val_dl, trainer, seed)

    def _sample(self, n: int, generator, fixed: dict[int, int]) -> np.ndarray:
        self.module.eval()
        return self.module.generate(n, generator, fixed).numpy()
