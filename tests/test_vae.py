"""The VAE learns structure; saved models fail clearly when damaged or too new."""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.errors import BadInput
from synthaug.generators.base import load_generator
from synthaug.generators.tabular.vae import TabularVAE, TabularVAEModule
from synthaug.training.config import TrainerConfig
from synthaug.transforms.tabular import Span
from synthaug.validation.fidelity import quality_report

TRAINER = TrainerConfig(max_epochs=40, batch_size=64, patience=0, progress_bar=False)


@pytest.fixture(scope="module")
def fitted():
    from synthaug.io.sources import read_table
    from tests.conftest import PENGUINS

    table = read_table(PENGUINS)
    return TabularVAE({"latent_dim": 8, "hidden": [64, 64]}).fit(table, trainer=TRAINER, seed=0), table.to_pandas()


def test_vae_beats_independent_columns(fitted):
    gen, real = fitted
    synthetic = next(gen.sample(len(real), seed=1))
    rng = np.random.default_rng(0)
    independent = pd.DataFrame({c: real[c].to_numpy()[rng.integers(0, len(real), len(real))] for c in real.columns})
    ours = quality_report(real, synthetic, gen.schema)["column_pair_trends"]
    baseline = quality_report(real, independent, gen.schema)["column_pair_trends"]
    assert ours > baseline + 0.05, (ours, baseline)


def test_impossible_condition_is_bad_input(fitted):
    gen, _ = fitted
    # Gentoo penguins live only on Biscoe: the model should (almost) never make one on Torgersen.
    with pytest.raises(BadInput, match="were met by 0 of .* too rare for vae"):
        next(gen.sample(200, seed=0, conditions={"species": "Gentoo", "island": "Torgersen", "bill_length_mm": [32.1, 32.2]}))


def test_newer_model_format_is_bad_input(fitted, tmp_path):
    gen, _ = fitted
    gen.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "generator.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "m" / "generator.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["sample", str(tmp_path / "m"), "-n", "10", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "model format version 99 is newer" in result.stderr
    assert not (tmp_path / "o").exists()


def test_corrupt_weights_are_bad_input(fitted, tmp_path):
    gen, _ = fitted
    gen.save(tmp_path / "m")
    (tmp_path / "m" / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(BadInput, match="weights.pt: weights cannot be read"):
        load_generator(tmp_path / "m")
    result = CliRunner().invoke(app, ["sample", str(tmp_path / "m"), "-n", "10", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "the file is corrupt" in result.stderr


def test_mixture_prior_is_fitted_and_saved(penguins_table, tmp_path):
    # Setup: prior "mixture" fits a Gaussian mixture to the training codes after training.
    trainer = TrainerConfig(max_epochs=5, batch_size=64, progress_bar=False)
    gen = TabularVAE({"latent_dim": 4, "hidden": [32], "prior": "mixture", "prior_components": 3}).fit(
        penguins_table, trainer=trainer, seed=0
    )
    module = gen.module
    # Assert: weights sum to one over several used components, valid covariances, saved with the weights.
    assert module.prior_weights.sum() == pytest.approx(1.0) and int((module.prior_weights > 0.01).sum()) >= 2
    covs = module.prior_chols @ module.prior_chols.transpose(1, 2)
    assert torch.all(torch.linalg.eigvalsh(covs) > 0)
    gen.save(tmp_path / "m")
    again = load_generator(tmp_path / "m")
    for name in ("prior_weights", "prior_means", "prior_chols"):
        assert torch.equal(getattr(again.module, name), getattr(module, name))
    pd.testing.assert_frame_equal(next(again.sample(50, seed=3)), next(gen.sample(50, seed=3)))


def test_samples_follow_the_mixture():
    # Two far-apart components with weights 0.8 / 0.2: the drawn z split the same way.
    config = TabularVAE({"latent_dim": 2, "hidden": [4], "prior": "mixture", "prior_components": 2}).config
    m = TabularVAEModule(1, [dataclasses.asdict(Span("x", "value", 0, 1, "offset"))], config.model_dump())
    m.prior_weights.copy_(torch.tensor([0.8, 0.2]))
    m.prior_means.copy_(torch.tensor([[-10.0, 0.0], [10.0, 0.0]]))
    m.decoder = torch.nn.Sequential(torch.nn.Identity())  # generate() then returns z's first coordinate, tanh-squashed
    m.log_sigma.data.fill_(math.log(1e-3))
    out = m.generate(20_000, torch.Generator().manual_seed(0))
    share = float((out[:, 0] > 0).double().mean())
    assert abs(share - 0.2) < 0.015, share


def test_standard_prior_is_n01(penguins_table):
    trainer = TrainerConfig(max_epochs=2, batch_size=64, progress_bar=False)
    module = TabularVAE({"latent_dim": 4, "hidden": [16], "prior": "standard"}).fit(penguins_table, trainer=trainer, seed=0).module
    assert torch.equal(module.prior_weights, torch.tensor([1.0] + [0.0] * 9))
    assert torch.equal(module.prior_means[0], torch.zeros(4)) and torch.equal(module.prior_chols[0], torch.eye(4))


def test_mixture_has_one_component_per_30_rows(penguins_table):
    # 80 rows -> 72 after the validation split -> at most 2 components, whatever prior_components asks.
    trainer = TrainerConfig(max_epochs=2, batch_size=64, progress_bar=False)
    gen = TabularVAE({"latent_dim": 4, "hidden": [16], "prior_components": 10}).fit(penguins_table.slice(0, 80), trainer=trainer, seed=0)
    assert int((gen.module.prior_weights > 0).sum()) == 2
