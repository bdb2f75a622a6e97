"""Class-conditional image RBM: Bernoulli pixel units, a softmax group of label units, Bernoulli
hidden units (a joint "classification RBM", Larochelle & Bengio 2008, used generatively).

Visible vector v = [pixels (C*H*W, intensities in [0, 1] read as probabilities), one-hot label
(K)]; energy E(v, h) = -b.v - c.h - v W h. Pixels given h are independent Bernoullis, the label
is one softmax draw. Training: contrastive divergence CD-k (`cd`) or persistent CD (`pcd`), as
the loss mean F(v_data) - mean F(v_model) with v_model detached (F = free energy), minimised by
Adam; the negative statistics use the pixels' probabilities at the last Gibbs step (less noise
than binary draws, Hinton 2010). Labels move freely in the negative chains: the model learns the
joint p(pixels, label). Hybrid training adds `discriminative_weight` * -log p(label | pixels),
computed exactly from free energies, which ties the label units to the image. On digits (60
epochs) CD-5 beat CD-1 (classifier agreement of clamped samples 0.82 vs 0.74, Fréchet distance
0.70 vs 1.05) and PCD at the same rates did worse (0.45), hence the defaults.

Epochs are scored on persistent chains whose label units are clamped (to the validation images'
labels, tiled to `val_images` chains), started once from noise and moved `val_steps` Gibbs
steps per epoch, so they follow the model as it trains. Their states at the best epoch are saved
with the weights as the *chain bank*: model samples, no training images.

Generation: for each requested label, Gibbs chains with the label clamped, started from bank
states of that label (from noise with a long burn-in if there are none), `burn_in` steps, then
one image every `thinning` steps; an image is the pixel probabilities at that step (`output:
mean`, default) or a binary draw from them (`output: sample`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from synthaug.errors import BadInput
from synthaug.generators.base import Tags
from synthaug.generators.image.base import ImageGenerator
from synthaug.generators.image.fidelity import ImageFidelity, ImageFidelityValidation
from synthaug.training import random as draws
from synthaug.training.config import TrainerConfig
from synthaug.training.lightning import fit_module, pl

MAX_PIXELS = 4096  # C * H * W: a dense RBM beyond this is slow and mixes poorly; use the GAN or VAE
NOISE_BURN_IN = 500  # Gibbs steps for chains started from noise (no bank state of that label)
VAL_START_BURN_IN = 100  # the scoring chains start at the first epoch, when the model is nearly independent and mixes fast


class ImageRBMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_hidden: int = Field(256, gt=0, le=65_536, description="Bernoulli hidden units")
    method: Literal["cd", "pcd"] = Field("cd", description="contrastive divergence, or persistent CD (chains carried across batches)")
    k: int = Field(5, gt=0, description="Gibbs steps per update (CD-k / PCD-k)")
    lr: float = Field(5e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="L2 penalty on the weights")
    init_std: float = Field(0.01, gt=0, description="standard deviation of the initial weights")
    burn_in: int = Field(100, ge=0, description="Gibbs steps before the first image is kept (chains start from the saved chain bank)")
    thinning: int = Field(10, gt=0, description="Gibbs steps between images kept from one chain")
    n_chains: int = Field(1000, gt=0, description="parallel Gibbs chains per label and batch (fewer images -> one chain per image)")
    discriminative_weight: float = Field(
        1.0, ge=0, description="weight of -log p(label | pixels) added to the CD loss (hybrid training): ties label to image"
    )
    val_steps: int = Field(5, gt=0, description="Gibbs steps per epoch of the persistent chains that score each epoch")
    output: Literal["mean", "sample"] = Field("mean", description="emit pixel probabilities (mean field) or binary draws from them")
    val_images: int = Field(
        500, gt=0, description="scoring chains (images compared with the validation images each epoch); also the chain bank's size"
    )


class ImageRBMModule(ImageFidelityValidation, pl.LightningModule):
    """Hyperparameters are plain data (image shape [C, H, W], class count, config dict), so
    `ImageRBMModule.load_from_checkpoint("checkpoints/best.ckpt")` rebuilds it."""

    def __init__(self, shape: list[int], n_classes: int, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        cfg = self.cfg = ImageRBMConfig(**config)
        self.shape = tuple(int(s) for s in shape)
        self.n_pixels = int(np.prod(self.shape))
        self.n_classes = n_classes
        width = self.n_pixels + n_classes
        self.W = nn.Parameter(torch.randn(width, cfg.n_hidden) * cfg.init_std)
        self.b = nn.Parameter(torch.zeros(width))  # visible biases: pixels, then labels
        self.c = nn.Parameter(torch.zeros(cfg.n_hidden))
        self.chains: torch.Tensor | None = None  # persistent chains (PCD); not saved
        self.val_chains: torch.Tensor | None = None  # persistent chains that score each epoch; not saved
        # Scoring-chain states at the best epoch (binary pixels + one-hot label), saved: generation starts from them.
        self.register_buffer("bank", torch.zeros(cfg.val_images, width))
        self.register_buffer("bank_ready", torch.zeros((), dtype=torch.bool))

    # -- model pieces -------------------------------------------------------------------
    def visible(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.flatten(1), nn.functional.one_hot(labels, self.n_classes).to(x.dtype)], 1)

    def hidden_prob(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.c + v @ self.W)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -(v @ self.b) - nn.functional.softplus(self.c + v @ self.W).sum(1)

    def label_logits(self, x: torch.Tensor) -> torch.Tensor:
        """log p(label | pixels) up to a constant: -F(pixels, label) for every label, exactly."""
        p = self.n_pixels
        base = self.c + x.flatten(1) @ self.W[:p]  # (N, hidden)
        per_label = nn.functional.softplus(base[:, None, :] + self.W[p:][None, :, :]).sum(2)  # (N, K)
        return self.b[p:] + per_label

    def gibbs(self, v: torch.Tensor, steps: int, generator=None, clamp: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`steps` Gibbs steps from states `v`; returns (new binary states, pixel probabilities of the
        last step with the state's label). `clamp`: one-hot labels held fixed at every step."""
        p = self.n_pixels
        mean = v
        for _ in range(steps):
            hp = self.hidden_prob(v)
            h = (draws.rand(*hp.shape, generator=generator, device=hp.device, dtype=hp.dtype) < hp).to(hp.dtype)
            act = self.b + h @ self.W.T
            pix = torch.sigmoid(act[:, :p])
            drawn = (draws.rand(*pix.shape, generator=generator, device=pix.device, dtype=pix.dtype) < pix).to(pix.dtype)
            if clamp is None:
                label = draws.multinomial(torch.softmax(act[:, p:], 1), 1, generator=generator).squeeze(1)
                onehot = nn.functional.one_hot(label, self.n_classes).to(pix.dtype)
            else:
                onehot = clamp
            v, mean = torch.cat([drawn, onehot], 1), torch.cat([pix, onehot], 1)
        return v, mean

    def noise(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Chain starts: uniformly random binary pixels with the given labels."""
        pix = (draws.rand(len(labels), self.n_pixels, generator=generator, device=self.device) < 0.5).float()
        return torch.cat([pix, nn.functional.one_hot(labels, self.n_classes).float()], 1)

    # -- training -------------------------------------------------------------------------
    def training_step(self, batch, _):
        x, labels = batch
        v = self.visible(x, labels)
        with torch.no_grad():
            if self.cfg.method == "pcd":
                if self.chains is None or len(self.chains) != len(v):
                    self.chains = v.clone()
                self.chains, negative = self.gibbs(self.chains, self.cfg.k)
            else:
                _, negative = self.gibbs(v, self.cfg.k)
        loss = self.free_energy(v).mean() - self.free_energy(negative).mean()
        if self.cfg.discriminative_weight:
            loss = loss + self.cfg.discriminative_weight * nn.functional.cross_entropy(self.label_logits(x), labels)
        with torch.no_grad():  # picks the epoch when there are no validation images
            recon = ((self.gibbs(v, 1, clamp=v[:, self.n_pixels :])[1][:, : self.n_pixels] - v[:, : self.n_pixels]) ** 2).sum(1).mean()
        self.log("train_loss", recon, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def configure_optimizers(self):
        rest = [p for n, p in self.named_parameters() if n != "W"]
        return torch.optim.Adam(
            [{"params": [self.W], "weight_decay": self.cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}], lr=self.cfg.lr
        )

    @torch.no_grad()
    def validation_sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Pixels of scoring chains carried from epoch to epoch (labels clamped), `val_steps` steps each time.

        The weights move little between epochs, so chains near the previous model's equilibrium
        track the current one after a few steps; chains restarted from noise would need the
        full burn-in, which grows as the model sharpens.
        """
        clamp = nn.functional.one_hot(labels, self.n_classes).float()
        if self.val_chains is None or len(self.val_chains) != len(labels):
            # `generator` restarts at the same seed every epoch; the chains need fresh noise each time.
            self.val_gen = torch.Generator().manual_seed(int(draws.randint(2**62, 1, generator=generator)))
            self.val_chains, _ = self.gibbs(self.noise(labels, self.val_gen), VAL_START_BURN_IN, self.val_gen, clamp)
        self.val_chains, mean = self.gibbs(self.val_chains, self.cfg.val_steps, self.val_gen, clamp)
        self.fill_bank(self.val_chains)
        return self.image(mean, self.val_chains)

    def fill_bank(self, states: torch.Tensor) -> None:
        self.bank.copy_(states[torch.arange(len(self.bank), device=states.device) % len(states)])
        self.bank_ready.fill_(True)

    # -- generation -----------------------------------------------------------------------
    def image(self, mean: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        pixels = mean if self.cfg.output == "mean" else state
        return pixels[:, : self.n_pixels].reshape(len(pixels), *self.shape)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Images in [0, 1] for `labels`: per label, chains clamped to it, from bank states of that label."""
        out = torch.empty(len(labels), *self.shape, device=self.device)
        for c in torch.unique(labels).tolist():  # sorted
            rows = torch.nonzero(labels == c).squeeze(1)
            out[rows] = self.chains_for(c, len(rows), generator)
        return out

    def chains_for(self, label: int, n: int, generator: torch.Generator) -> torch.Tensor:
        chains = min(n, self.cfg.n_chains)
        clamp = nn.functional.one_hot(torch.full((chains,), label, device=self.device), self.n_classes).float()
        pool = self.bank[self.bank[:, self.n_pixels + label] > 0.5] if self.bank_ready else self.bank[:0]
        if len(pool):
            pick = (
                draws.randperm(len(pool), generator=generator, device=self.device)[:chains]
                if chains <= len(pool)
                else draws.randint(len(pool), chains, generator=generator, device=self.device)
            )
            v, burn_in = pool[pick].clone(), self.cfg.burn_in
        else:
            v, burn_in = self.noise(clamp.argmax(1), generator), max(self.cfg.burn_in, NOISE_BURN_IN)
        v, mean = self.gibbs(v, max(burn_in, 1), generator, clamp)
        kept = [self.image(mean, v)]
        while sum(len(k) for k in kept) < n:
            v, mean = self.gibbs(v, self.cfg.thinning, generator, clamp)
            kept.append(self.image(mean, v))
        return torch.cat(kept)[:n]


class ImageRBM(ImageGenerator):
    """Bernoulli-pixel restricted Boltzmann machine with a softmax label group, sampled by clamped Gibbs chains."""

    name = "image_rbm"
    Config = ImageRBMConfig
    tags = Tags(conditional=True, rebalance=True, multi_device=True, dp=False)
    value_range = (0.0, 1.0)

    def _check_size(self, height: int, width: int, channels: int) -> None:
        if height * width * channels > MAX_PIXELS:
            raise BadInput(
                f"{self.name}: images are {height}x{width}x{channels} = {height * width * channels} pixel values; "
                f"a dense RBM takes at most {MAX_PIXELS} (e.g. 64x64 L or 32x32 RGB); resize the source or use image_vae"
            )

    def _build(self) -> ImageRBMModule:
        s = self.schema
        return ImageRBMModule([s.channels, s.height, s.width], len(s.label_names), self.config.model_dump(mode="json"))

    def _fit_encoded(
        self, x: np.ndarray, y: np.ndarray, fidelity: ImageFidelity | None, trainer: TrainerConfig, seed: int
    ) -> dict[str, Any]:
        self.module = module = self._build_seeded(seed)
        module.fidelity = fidelity
        # Start the visible biases at the data's log-odds and log-frequencies (Hinton's practical guide).
        k = module.n_classes
        pix = np.clip(x.reshape(len(x), -1).mean(0), 1e-3, 1 - 1e-3)
        freq = np.maximum(np.bincount(y, minlength=k) / len(y), 1e-3)
        module.b.data.copy_(torch.from_numpy(np.concatenate([np.log(pix / (1 - pix)), np.log(freq)]).astype(np.float32)))
        train_dl, val_dl = self._loaders(x, y, fidelity, trainer, seed)
        info = fit_module(module, train_dl, val_dl, trainer, seed)
        module.chains = module.val_chains = None
        if not module.bank_ready:  # no validation images: fill the bank from noise with a long burn-in
            gen = torch.Generator().manual_seed(seed)
            present = torch.from_numpy(np.flatnonzero(np.bincount(y, minlength=k)))
            labels = present[torch.arange(len(module.bank)) % len(present)]
            with torch.no_grad():
                clamp = nn.functional.one_hot(labels, k).float()
                states, _ = module.gibbs(module.noise(labels, gen), max(self.config.burn_in, NOISE_BURN_IN), gen, clamp)
                module.fill_bank(states)
        return info
