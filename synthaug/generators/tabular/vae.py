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
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from synthaug.generators.base import TrainerConfig
from synthaug.generators.tabular.common import TabularGenerator, sample_onehots
from synthaug.training.lightning import FidelityLayout, FidelityValidation, fit_module, lightning, loaders, split_indices


PRIOR_ROWS = 20_000  # training rows whose codes fit the sampling mixture
ROWS_PER_COMPONENT = 30  # at least this many training rows per mixture component


class VAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latent_dim: int = Field(32, gt=0)
    hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    beta: float = Field(1.0, ge=0, description="weight of the KL term")
    kl_warmup_epochs: int = Field(10, ge=0, description="epochs over which beta rises from 0")
    categorical_weight: float = Field(1.0, gt=0, description="loss weight of one-hot groups relative to offsets")
    prior: Literal["mixture", "standard"] = Field("mixture", description="sample z from a Gaussian mixture fitted to the training rows' latent codes, or from N(0, I)")
    prior_components: int = Field(10, gt=0, description="components of the fitted mixture (full covariances; at most one per 30 training rows)")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


def _lightning_module(width: int, spans, cfg: VAEConfig):
    pl = lightning()

    value_idx = [s.start for s in spans if s.kind == "value"]
    groups = [(s.start, s.stop) for s in spans if s.kind == "softmax"]

    class TabularVAEModule(FidelityValidation, pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = _mlp([width, *cfg.hidden])
            self.to_mu = nn.Linear(cfg.hidden[-1], cfg.latent_dim)
            self.to_logvar = nn.Linear(cfg.hidden[-1], cfg.latent_dim)
            self.decoder = nn.Sequential(_mlp([cfg.latent_dim, *reversed(cfg.hidden)]), nn.Linear(cfg.hidden[0], width))
            self.log_sigma = nn.Parameter(torch.full((len(value_idx),), math.log(0.1)))
            self.register_buffer("value_idx", torch.tensor(value_idx, dtype=torch.long))
            # The sampling distribution of z (saved): a Gaussian mixture; N(0, I) (all weight on
            # a standard component) until fit_prior runs.
            k, d = cfg.prior_components, cfg.latent_dim
            self.register_buffer("prior_weights", torch.nn.functional.one_hot(torch.tensor(0), k).float())
            self.register_buffer("prior_means", torch.zeros(k, d))
            self.register_buffer("prior_chols", torch.eye(d).repeat(k, 1, 1))

        @torch.no_grad()
        def init_output_bias(self, column_means: np.ndarray) -> None:
            """Start each one-hot head at the training frequencies (log p), so even a briefly
            trained decoder gets category, mode and null rates right."""
            last = self.decoder[-1]
            for a, b in groups:
                p = torch.as_tensor(column_means[a:b], dtype=last.bias.dtype).clamp_min(1e-4)
                last.bias[a:b] = torch.log(p / p.sum())

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.decoder(z)

        def terms(self, x: torch.Tensor, stochastic: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
            """Mean reconstruction loss and mean KL for a batch."""
            h = self.encoder(x)
            mu, logvar = self.to_mu(h), self.to_logvar(h).clamp(-10, 10)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if stochastic else mu
            out = self(z)
            log_sigma = self.log_sigma.clamp(math.log(1e-3), math.log(1.0))
            mean = torch.tanh(out[:, self.value_idx])
            recon = (((x[:, self.value_idx] - mean) ** 2) / (2 * torch.exp(2 * log_sigma)) + log_sigma).sum(1)
            for a, b in groups:
                ce = nn.functional.cross_entropy(out[:, a:b], x[:, a:b].argmax(1), reduction="none")
                recon = recon + cfg.categorical_weight * ce
            kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)
            return recon.mean(), kl.mean()

        @torch.no_grad()
        def fit_prior(self, x: torch.Tensor, seed: int) -> None:
            """Fit the sampling mixture to codes z ~ q(z | x) of the rows `x` (at least 2,000 draws)."""
            from sklearn.mixture import GaussianMixture

            h = self.encoder(x)
            mu, std = self.to_mu(h), torch.exp(0.5 * self.to_logvar(h).clamp(-10, 10))
            g = torch.Generator().manual_seed(seed)
            reps = -(-2000 // len(x))
            z = torch.cat([mu + std * torch.randn(mu.shape, generator=g) for _ in range(reps)]).double().numpy()
            # Few rows per component would let components sit on single rows' codes and decode near them.
            k = max(1, min(cfg.prior_components, len(x) // ROWS_PER_COMPONENT))
            gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(z)
            self.prior_weights.zero_()[:k] = torch.from_numpy(gmm.weights_)
            self.prior_means[:k] = torch.from_numpy(gmm.means_)
            self.prior_chols[:k] = torch.linalg.cholesky(torch.from_numpy(gmm.covariances_))

        def training_step(self, batch, _):
            recon, kl = self.terms(batch[0])
            warm = min(1.0, (self.current_epoch + 1) / cfg.kl_warmup_epochs) if cfg.kl_warmup_epochs else 1.0
            loss = recon + cfg.beta * warm * kl
            self.log("train_loss", recon + cfg.beta * kl, on_step=False, on_epoch=True, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        @torch.no_grad()
        def generate(self, n: int, generator: torch.Generator) -> torch.Tensor:
            if cfg.prior == "mixture":
                k = torch.multinomial(self.prior_weights, n, replacement=True, generator=generator)
                eps = torch.randn(n, cfg.latent_dim, generator=generator)
                every = torch.einsum("kij,nj->nki", self.prior_chols, eps)  # eps through every component's factor
                z = self.prior_means[k] + every[torch.arange(n), k]
            else:
                z = torch.randn(n, cfg.latent_dim, generator=generator)
            out = self(z)
            sigma = torch.exp(self.log_sigma.clamp(math.log(1e-3), math.log(1.0)))
            noise = torch.randn(n, len(value_idx), generator=generator) * sigma
            out[:, self.value_idx] = torch.tanh(out[:, self.value_idx]) + noise
            return sample_onehots(out, spans, generator)

    return TabularVAEModule()


class TabularVAE(TabularGenerator):
    """Variational autoencoder for mixed-type tables."""

    name = "vae"
    Config = VAEConfig

    def _build(self):
        return _lightning_module(self.encoder.width, self.encoder.spans, self.config)

    def _fit(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = self._build()
        self.module.fidelity = FidelityLayout(self.encoder)
        self.module.init_output_bias(x.mean(axis=0))
        train_dl, val_dl = loaders(x, trainer, seed)
        fit_module(self.module, train_dl, val_dl, trainer, seed)
        if self.config.prior == "mixture":
            train, _ = split_indices(len(x), trainer, seed)
            rows = np.random.default_rng(seed).permutation(train)[:PRIOR_ROWS]
            self.module.fit_prior(torch.from_numpy(x[rows]), seed)

    def _sample(self, n: int, generator, fixed: dict[int, int]) -> np.ndarray:
        # The VAE does not condition natively: conditions are met by the rejection filter.
        self.module.eval()
        return self.module.generate(n, generator).numpy()
