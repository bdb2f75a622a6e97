"""The conditional tabular GAN on the bundled penguins table, with a tiny network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthaug.generators.base import get_generator
from synthaug.generators.tabular.gan import Critic, TabularGAN
from synthaug.io.sources import read_table
from synthaug.pipeline.run import run_pipeline
from synthaug.training.config import TrainerConfig
from tests.conftest import PENGUINS

# pac=2 so the tiny critic sees enough packs per batch of 100 to learn in a few hundred steps.
TINY = {
    "embedding_dim": 32,
    "generator_dim": [64, 64],
    "discriminator_dim": [64, 64],
    "generator_lr": 1e-3,
    "discriminator_lr": 1e-3,
    "pac": 2,
    "val_rows": 500,
}
TRAINER = TrainerConfig(max_epochs=40, batch_size=100, patience=0, progress_bar=False)


@pytest.fixture(scope="module")
def fitted(one_thread):
    table = read_table(PENGUINS)
    return table, TabularGAN(TINY).fit(table, trainer=TRAINER, seed=0)


def sample(gen, n=344, seed=1, **kw) -> pd.DataFrame:
    return pd.concat(list(gen.sample(n, seed=seed, **kw)), ignore_index=True)


def associations(df: pd.DataFrame) -> np.ndarray:
    """Pairwise association matrix: |Pearson| (numeric pairs), Cramér's V (categorical), correlation ratio (mixed)."""
    cols = list(df.columns)
    numeric = {c for c in cols if pd.api.types.is_numeric_dtype(df[c])}

    def cramers_v(a, b):
        t = pd.crosstab(a, b).to_numpy(float)
        if min(t.shape) < 2:
            return 0.0
        expected = t.sum(1, keepdims=True) * t.sum(0, keepdims=True) / t.sum()
        return float(np.sqrt(((t - expected) ** 2 / expected).sum() / t.sum() / (min(t.shape) - 1)))

    def eta(cat, x):
        ok = cat.notna() & x.notna()
        cat, x = cat[ok], x[ok].astype(float)
        total = ((x - x.mean()) ** 2).sum()
        if total == 0:
            return 0.0
        g = x.groupby(cat)
        return float(np.sqrt((g.count() * (g.mean() - x.mean()) ** 2).sum() / total))

    m = np.zeros((len(cols), len(cols)))
    for i, a in enumerate(cols):
        for j in range(i + 1, len(cols)):
            b = cols[j]
            if a in numeric and b in numeric:
                v = abs(df[a].astype(float).corr(df[b].astype(float)))
            elif a in numeric or b in numeric:
                v = eta(df[b], df[a]) if a in numeric else eta(df[a], df[b])
            else:
                v = cramers_v(df[a], df[b])
            m[i, j] = m[j, i] = 0.0 if np.isnan(v) else v
    return m


def association_gap(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    return float(np.abs(associations(real) - associations(synthetic)).mean())


def independent_columns(real: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: real[c].to_numpy()[rng.integers(len(real), size=n)] for c in real.columns})


def test_registry_knows_gan():
    assert get_generator("gan") is TabularGAN


def test_training_is_deterministic(one_thread):
    # Setup: the same seed twice, a different one once (sampler, noise and dropout all seeded).
    table = read_table(PENGUINS)
    trainer = TrainerConfig(max_epochs=2, batch_size=50, progress_bar=False)
    fits = [TabularGAN(TINY).fit(table, trainer=trainer, seed=s) for s in (0, 0, 1)]
    # Run
    a, b, c = (sample(g, n=50, seed=0) for g in fits)
    # Assert
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_conditions_are_met_natively(fitted):
    _, gen = fitted
    # Run: through the public API (rejection filter included), then the raw conditional generator.
    rows = sample(gen, n=200, conditions={"species": "Chinstrap"})
    fixed = gen._fixed_categories({"species": "Chinstrap"})
    raw = gen.encoder.decode(gen._sample(1000, torch.Generator().manual_seed(0), fixed)).to_pandas()
    # Assert
    assert len(rows) == 200 and set(rows["species"]) == {"Chinstrap"}
    assert (raw["species"] == "Chinstrap").mean() >= 0.9


def test_beats_independent_columns_on_associations(fitted):
    # Setup: the fidelity of resampling each column independently is the bar to clear.
    table, gen = fitted
    real = table.to_pandas()
    # Run
    model_gap = association_gap(real, sample(gen, n=len(real), seed=1))
    baseline_gap = association_gap(real, independent_columns(real, len(real), seed=1))
    # Assert: a broken GAN (noise, mode collapse, ignored conditions) loses to the baseline.
    assert model_gap < 0.75 * baseline_gap, (model_gap, baseline_gap)


def test_critic_trims_batches_to_whole_packs():
    critic = Critic(in_dim=5, dims=[8], pac=10, dropout=0.0)
    assert critic(torch.zeros(23, 5)).shape == (2, 1)


def test_pipeline_runs_with_gan(write_pipeline, one_thread):
    # The conf/generators/gan.yaml preset (pac 10) with the tiny trainer (batch 64, trimmed to 60).
    result = run_pipeline(write_pipeline(generator="gan"))
    assert result.exit_code in (0, 1) and (result.path / "manifest.json").is_file()
    assert result.manifest["generator"] == "gan" and sum(s["rows"] for s in result.manifest["shards"]) == 300


def test_samples_come_from_the_weight_average(fitted):
    # Setup: the averaged generator lags the live one, so their samples differ.
    _, gen = fitted
    module = gen.module
    live = dict(module.generator.named_parameters())
    # Run / Assert: the average moved from its initial copy towards the live weights, and sampling uses it.
    assert any(not torch.equal(p, live[n]) for n, p in module.ema.named_parameters())
    a = gen._sample(50, torch.Generator().manual_seed(0), {})
    average = {k: v.clone() for k, v in module.ema.state_dict().items()}
    module.ema.load_state_dict(module.generator.state_dict())
    b = gen._sample(50, torch.Generator().manual_seed(0), {})
    module.ema.load_state_dict(average)  # the fixture is shared with other tests
    assert not np.array_equal(a, b)


def test_live_weights_when_averaging_is_off(one_thread):
    table = read_table(PENGUINS)
    gen = TabularGAN({**TINY, "ema_decay": 0.0}).fit(table, trainer=TrainerConfig(max_epochs=1, batch_size=50, progress_bar=False), seed=0)
    gen.module.ema.load_state_dict({k: torch.zeros_like(v) for k, v in gen.module.ema.state_dict().items()})
    assert np.isfinite(gen._sample(20, torch.Generator().manual_seed(0), {})).all()  # the zeroed average is unused
    assert len(sample(gen, n=20)) == 20
