"""Tabular VAE (in the spirit of TVAE, Xu et al. 2019).

MLP encoder -> Gaussian latent -> MLP decoder with one output head per encoded span: a mean
and a learned standard deviation for each mode-normalised offset, logits for each one-hot
group (modes, categories, null indicators). Loss = Gaussian NLL + cross-entropy + beta * KL,
with beta warmed up linearly over the first epochs. Epochs are selected by the fidelity gap of
generated rows against the validation rows (FidelityValidation), not by the ELBO.

Sampling draws z from a Gaussian mixture fitted, after training, to the latent codes of the
training rows (ex-post density estimation, Ghosh et al. 2020) rather than from N(0, I): the codes
the decoder learned on rarely fill the prior evenly, and clusters in the data stay clusters in z.
Each component must cover at least 30 training rows, so no component sits on one row's code.
`prior: standard` samples N(0, I). Epoch selection during training always samples N(0, I).

DP mode (`with_privacy`, see synthaug.training.privacy): the whole model is private. DP-SGD on
Poisson batches with per-example gradients of (reconstruction + beta * KL) (torch.func, since
`log_sigma` is used outside `forward`), for a fixed number of steps; no data-derived output bias,
`prior: standard` (no mixture fitted to real codes), no epoch selection on validation rows.
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
from synthaug.generators.tabular.onehot import sample_onehots
from synthaug.training import random as draws
from synthaug.training.config import TrainerConfig
from synthaug.training.data import loaders, split_indices
from synthaug.training.fidelity import FidelityLayout, FidelityValidation
from synthaug.training.lightning import fit_module, pl
from synthaug.training.privacy import DPSGD, PrivateTabular, per_sample_grads
from synthaug.transforms.tabular import Span

PRIOR_ROWS = 20_000  # training rows whose codes fit the sampling mixture
ROWS_PER_COMPONENT = 30  # at least this many training rows per mixture component


class VAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latent_dim: int = Field(32, gt=0, le=4096)
    hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    beta: float = Field(1.0, ge=0, description="weight of the KL term")
    kl_warmup_epochs: int = Field(10, ge=0, description="epochs over which beta rises from 0")
    categorical_weight: float = Field(1.0, gt=0, description="loss weight of one-hot groups relative to offsets")
    prior: Literal["mixture", "standard"] = Field(
        "mixture", description="sample z from a Gaussian mixture fitted to the training rows' latent codes, or from N(0, I)"
    )
    prior_components: int = Field(
        10, gt=0, le=1000, description="components of the fitted mixture (full covariances; at most one per 30 training rows)"
    )


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class TabularVAEModule(FidelityValidation, pl.LightningModule):
    """Hyperparameters are plain data (width, spans as dicts, config dict), so
    `TabularVAEModule.load_from_checkpoint("checkpoints/best.ckpt")` rebuilds it."""

    def __init__(self, width: int, spans: list[dict[str, Any]], config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        cfg = self.cfg = VAEConfig(**config)
        self.spans = [Span(**s) for s in spans]
        self.value_spans = [s.start for s in self.spans if s.kind == "value"]
        self.groups = [(s.start, s.stop) for s in self.spans if s.kind == "softmax"]
        self.encoder = _mlp([width, *cfg.hidden])
        self.to_mu = nn.Linear(cfg.hidden[-1], cfg.latent_dim)
        self.to_logvar = nn.Linear(cfg.hidden[-1], cfg.latent_dim)
        self.decoder = nn.Sequential(_mlp([cfg.latent_dim, *reversed(cfg.hidden)]), nn.Linear(cfg.hidden[0], width))
        self.log_sigma = nn.Parameter(torch.full((len(self.value_spans),), math.log(0.1)))
        self.register_buffer("value_idx", torch.tensor(self.value_spans, dtype=torch.long))
        # The sampling distribution of z (saved): a Gaussian mixture; N(0, I) (all weight on a
        # standard component) until fit_prior runs.
        k, d = cfg.prior_components, cfg.latent_dim
        self.register_buffer("prior_weights", torch.nn.functional.one_hot(torch.tensor(0), k).float())
        self.register_buffer("prior_means", torch.zeros(k, d))
        self.register_buffer("prior_chols", torch.eye(d).repeat(k, 1, 1))

    @torch.no_grad()
    def init_output_bias(self, column_means: np.ndarray) -> None:
        """Start each one-hot head at the training frequencies (log p), so even a briefly
        trained decoder gets category, mode and null rates right."""
        last = self.decoder[-1]
        for a, b in self.groups:
            p = torch.as_tensor(column_means[a:b], dtype=last.bias.dtype, device=last.bias.device).clamp_min(1e-4)
            last.bias[a:b] = torch.log(p / p.sum())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def terms(self, x: torch.Tensor, stochastic: bool = True, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean reconstruction loss and mean KL for a batch (`eps`: the reparametrisation noise, else drawn here)."""
        cfg = self.cfg
        h = self.encoder(x)
        mu, logvar = self.to_mu(h), self.to_logvar(h).clamp(-10, 10)
        if stochastic:
            noise = draws.randn(*mu.shape, device=mu.device, dtype=mu.dtype) if eps is None else eps
            z = mu + noise * torch.exp(0.5 * logvar)
        else:
            z = mu
        out = self(z)
        log_sigma = self.log_sigma.clamp(math.log(1e-3), math.log(1.0))
        mean = torch.tanh(out[:, self.value_idx])
        recon = (((x[:, self.value_idx] - mean) ** 2) / (2 * torch.exp(2 * log_sigma)) + log_sigma).sum(1)
        for a, b in self.groups:
            ce = nn.functional.cross_entropy(out[:, a:b], x[:, a:b].argmax(1), reduction="none")
            recon = recon + cfg.categorical_weight * ce
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)
        return recon.mean(), kl.mean()

    @torch.no_grad()
    def fit_prior(self, x: torch.Tensor, seed: int) -> None:
        """Fit the sampling mixture to codes z ~ q(z | x) of the rows `x` (at least 2,000 draws)."""
        from sklearn.mixture import GaussianMixture

        x = x.to(self.device)
        h = self.encoder(x)
        mu, std = self.to_mu(h), torch.exp(0.5 * self.to_logvar(h).clamp(-10, 10))
        g = torch.Generator().manual_seed(seed)
        reps = -(-2000 // len(x))
        z = torch.cat([mu + std * draws.randn(*mu.shape, generator=g, device=mu.device) for _ in range(reps)])
        z = z.double().cpu().numpy()
        # Few rows per component would let components sit on single rows' codes and decode near them.
        k = max(1, min(self.cfg.prior_components, len(x) // ROWS_PER_COMPONENT))
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(z)
        self.prior_weights.zero_()[:k] = torch.from_numpy(gmm.weights_).to(self.prior_weights)
        self.prior_means[:k] = torch.from_numpy(gmm.means_).to(self.prior_means)
        self.prior_chols[:k] = torch.linalg.cholesky(torch.from_numpy(gmm.covariances_)).to(self.prior_chols)

    def training_step(self, batch, _):
        cfg = self.cfg
        recon, kl = self.terms(batch[0])
        warm = min(1.0, (self.current_epoch + 1) / cfg.kl_warmup_epochs) if cfg.kl_warmup_epochs else 1.0
        loss = recon + cfg.beta * warm * kl
        self.log("train_loss", recon + cfg.beta * kl, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator) -> torch.Tensor:
        d, dev = self.cfg.latent_dim, self.device
        if self.cfg.prior == "mixture":
            k = draws.multinomial(self.prior_weights, n, generator=generator)
            eps = draws.randn(n, d, generator=generator, device=dev)
            every = torch.einsum("kij,nj->nki", self.prior_chols, eps)  # eps through every component's factor
            z = self.prior_means[k] + every[torch.arange(n, device=dev), k]
        else:
            z = draws.randn(n, d, generator=generator, device=dev)
        out = self(z)
        sigma = torch.exp(self.log_sigma.clamp(math.log(1e-3), math.log(1.0)))
        noise = draws.randn(n, len(self.value_spans), generator=generator, device=dev) * sigma
        out[:, self.value_idx] = torch.tanh(out[:, self.value_idx]) + noise
        return sample_onehots(out, self.spans, generator)


class TabularVAE(PrivateTabular, TabularGenerator):
    """Variational autoencoder for mixed-type tables."""

    name = "vae"
    Config = VAEConfig
    tags = Tags(rebalance=True, multi_device=True, dp=True)

    def _build(self) -> TabularVAEModule:
        spans = [asdict(s) for s in self.encoder.spans]
        return TabularVAEModule(self.encoder.width, spans, self.config.model_dump(mode="json"))

    def _fit_encoded(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> dict[str, Any]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = self._build()
        self.module.fidelity = FidelityLayout(self.encoder)
        self.module.init_output_bias(x.mean(axis=0))
        train_dl, val_dl = loaders(x, trainer, seed)
        info = fit_module(self.module, train_dl, val_dl, trainer, seed)
        if self.config.prior == "mixture":
            train, _ = split_indices(len(x), trainer, seed)
            rows = np.random.default_rng(seed).permutation(train)[:PRIOR_ROWS]
            self.module.fit_prior(torch.from_numpy(x[rows]), seed)
        return info

    def _dp_config_overrides(self) -> dict[str, Any]:
        return {"prior": "standard"}  # a mixture fitted to real codes would be outside the budget

    def _fit_private(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> DPSGD:
        """DP-SGD over the whole model: per-example (reconstruction + beta * warm-up * KL), the
        reparametrisation noise drawn per step outside the per-example map; KL warm-up by the
        public step count. The module starts untrained (no output bias from the data)."""
        module, cfg = self.module, self.config
        module.train()
        dp = DPSGD(module.configure_optimizers(), self.privacy, n_rows=len(x), batch_size=trainer.batch_size, seed=seed)
        rows = torch.from_numpy(np.ascontiguousarray(x))

        for step, idx in enumerate(dp.batches(trainer.max_minutes)):
            epoch = step // dp.steps_per_epoch
            warm = min(1.0, (epoch + 1) / cfg.kl_warmup_epochs) if cfg.kl_warmup_epochs else 1.0
            batch = rows[idx]
            eps = draws.randn(len(batch), cfg.latent_dim)

            def loss(m: TabularVAEModule, xi: torch.Tensor, ei: torch.Tensor, warm: float = warm) -> torch.Tensor:
                recon, kl = m.terms(xi, eps=ei)
                return recon + cfg.beta * warm * kl

            dp.step(per_sample_grads(module, loss, batch, eps))
        return dp

    def _sample(self, n: int, generator, fixed: dict[int, int]) -> np.ndarray:
        # The VAE does not condition natively: conditions are met by the rejection filter.
        self.module.eval()
        return self.module.generate(n, generator).cpu().numpy()
