"""The VAE learns structure; saved models fail clearly when damaged or too new."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.errors import BadInput
from synthaug.generators.base import TrainerConfig, load_generator
from synthaug.generators.tabular.vae import TabularVAE
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
