"""checkpoints/best.ckpt of every tabular family loads back with Lightning's load_from_checkpoint."""

import pytest
import torch

from synthaug.generators.base import get_generator
from synthaug.generators.tabular.gan import TabularGANModule
from synthaug.generators.tabular.rbm import TabularRBMModule
from synthaug.generators.tabular.vae import TabularVAEModule
from synthaug.testing import tiny_table
from synthaug.training.config import TrainerConfig

FAMILIES = {
    "vae": ({"latent_dim": 4, "hidden": [16]}, TabularVAEModule),
    "gan": ({"embedding_dim": 8, "generator_dim": [16], "discriminator_dim": [16], "pac": 2}, TabularGANModule),
    "rbm": ({"n_hidden": 8, "burn_in": 5, "thinning": 1, "n_chains": 20}, TabularRBMModule),
}
AFTER_FIT = ("prior_",)  # the VAE's sampling mixture is fitted after training, so not in the checkpoint


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_best_checkpoint_reloads(family, tmp_path, one_thread):
    # Setup
    params, module_cls = FAMILIES[family]
    trainer = TrainerConfig(max_epochs=3, batch_size=32, patience=0, progress_bar=False, checkpoint_dir=str(tmp_path))
    gen = get_generator(family)(params).fit(tiny_table(120), trainer=trainer, seed=0)

    # Run
    loaded = module_cls.load_from_checkpoint(tmp_path / "best.ckpt", map_location="cpu")

    # Assert: same class, same hyperparameters, the weights of the best epoch (which fit kept)
    assert type(loaded) is module_cls and loaded.hparams["config"] == gen.config.model_dump(mode="json")
    want = {k: v for k, v in gen.module.state_dict().items() if not k.startswith(AFTER_FIT)}
    got = {k: v for k, v in loaded.state_dict().items() if not k.startswith(AFTER_FIT)}
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want), [k for k in want if not torch.equal(want[k], got[k])]
