"""The tabular RBM on the bundled penguins table, with a small hidden layer."""

from __future__ import annotations

import pytest
import torch

from synthaug.generators.base import get_generator
from synthaug.generators.tabular.rbm import NOISE_BURN_IN, TabularRBM
from synthaug.io.sources import read_table
from synthaug.pipeline.run import run_pipeline
from synthaug.training.config import TrainerConfig
from tests.conftest import PENGUINS
from tests.test_gan import association_gap, independent_columns, sample

TINY = {"n_hidden": 64, "burn_in": 100, "thinning": 5, "lr": 3e-3}
TRAINER = TrainerConfig(max_epochs=60, batch_size=100, patience=0, progress_bar=False)


@pytest.fixture(scope="module")
def fitted(one_thread):
    table = read_table(PENGUINS)
    return table, TabularRBM(TINY).fit(table, trainer=TRAINER, seed=0)


def test_registry_knows_rbm():
    assert get_generator("rbm") is TabularRBM


def test_conditions_are_met_by_clamping(fitted):
    _, gen = fitted
    # Run: through the public API (rejection filter included), then the raw clamped Gibbs sampler.
    rows = sample(gen, n=200, conditions={"species": "Chinstrap", "sex": "female"})
    fixed = gen._fixed_categories({"species": "Chinstrap"})
    raw = gen.encoder.decode(gen._sample(1000, torch.Generator().manual_seed(0), fixed)).to_pandas()
    free = gen.encoder.decode(gen._sample(1000, torch.Generator().manual_seed(0), {})).to_pandas()
    # Assert
    assert len(rows) == 200 and set(rows["species"]) == {"Chinstrap"} and set(rows["sex"]) == {"female"}
    assert (raw["species"] == "Chinstrap").mean() >= 0.9
    # Clamping moves the other columns too: every real Chinstrap lives on Dream.
    assert (raw["island"] == "Dream").mean() > (free["island"] == "Dream").mean() + 0.15


def test_beats_independent_columns_on_associations(fitted):
    # Setup: the fidelity of resampling each column independently is the bar to clear.
    table, gen = fitted
    real = table.to_pandas()
    # Run
    model_gap = association_gap(real, sample(gen, n=len(real), seed=1))
    baseline_gap = association_gap(real, independent_columns(real, len(real), seed=1))
    # Assert: a broken RBM (no coupling, chains stuck at the start) loses to the baseline.
    assert model_gap < 0.75 * baseline_gap, (model_gap, baseline_gap)


def test_free_energy_gap_is_logged_every_epoch(fitted):
    _, gen = fitted
    epochs = gen.module.history
    assert len(epochs) == TRAINER.max_epochs
    assert all({"train_loss", "val_loss", "val_recon", "free_energy_gap"} <= e.keys() for e in epochs)
    assert all(abs(e["free_energy_gap"]) < 1e3 for e in epochs)  # finite, not blown up
    assert epochs[-1]["val_recon"] < epochs[0]["val_recon"]  # reconstruction improves
    assert min(e["val_loss"] for e in epochs) < epochs[0]["val_loss"]  # and so do generated rows


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_cd_and_pcd_both_train(method, one_thread):
    table = read_table(PENGUINS)
    gen = TabularRBM({**TINY, "method": method, "k": 2, "burn_in": 50})
    gen.fit(table, trainer=TrainerConfig(max_epochs=10, batch_size=100, patience=0, progress_bar=False), seed=0)
    df = sample(gen, n=200, seed=0)
    assert len(df) == 200 and torch.isfinite(gen.module.W).all()
    assert df["species"].nunique() == 3  # chains do not collapse onto one category


def test_pipeline_runs_with_rbm(write_pipeline, one_thread):
    result = run_pipeline(write_pipeline(generator="rbm"))
    assert result.exit_code in (0, 1) and (result.path / "manifest.json").is_file()
    assert result.manifest["generator"] == "rbm" and sum(s["rows"] for s in result.manifest["shards"]) == 300


def test_chain_bank_is_saved_and_starts_the_chains(fitted, tmp_path):
    # Setup: the bank holds the scoring chains' states at the best epoch, saved with the weights.
    _, gen = fitted
    module = gen.module
    gen.save(tmp_path / "m")
    loaded = TabularRBM.load(tmp_path / "m")
    # Assert: saved; unconditioned chains start from bank states and use the short burn-in.
    assert bool(loaded.module.bank_ready) and torch.equal(loaded.module.bank, module.bank)
    starts, burn_in = module.chain_starts(50, torch.Generator().manual_seed(0), None)
    assert burn_in == TINY["burn_in"]
    assert all((module.bank == row).all(1).any() for row in starts)


def test_conditioned_chains_start_from_matching_bank_states(fitted):
    _, gen = fitted
    module = gen.module
    span = next(s for s in gen.encoder.spans if s.column == "species")
    want = torch.zeros(span.width)
    want[gen._fixed_categories({"species": "Chinstrap"})[span.start]] = 1.0
    clamp = (torch.arange(span.start, span.stop), want)
    # Run
    starts, burn_in = module.chain_starts(300, torch.Generator().manual_seed(0), clamp)
    # Assert: every start already holds the condition (so chains begin in the conditional distribution).
    assert (starts[:, span.start : span.stop] == want).all() and burn_in == TINY["burn_in"]
    # A condition no bank state meets falls back to noise and the long burn-in.
    impossible = (clamp[0], torch.full((span.width,), 0.5))
    _, burn_in = module.chain_starts(10, torch.Generator().manual_seed(0), impossible)
    assert burn_in == NOISE_BURN_IN


def test_bank_without_validation_rows(one_thread):
    # No validation rows (val_fraction 0): the bank is filled from noise after training.
    table = read_table(PENGUINS)
    trainer = TrainerConfig(max_epochs=2, batch_size=100, val_fraction=0.0, progress_bar=False)
    gen = TabularRBM({**TINY, "burn_in": 5}).fit(table, trainer=trainer, seed=0)
    assert bool(gen.module.bank_ready) and gen.module.bank.abs().sum() > 0
    assert len(sample(gen, n=30)) == 30
