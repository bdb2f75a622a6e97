"""DP training of the tabular families: epsilon within the target, nothing read from the data
outside the clipped examples, a clear refusal without declared bounds, and noise that matters."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from pydantic import ValidationError

from synthaug.errors import BadInput
from synthaug.generators.base import get_generator, load_generator
from synthaug.schema import infer_schema
from synthaug.training import privacy
from synthaug.training.config import TrainerConfig
from synthaug.training.privacy import (
    DPSGD,
    PrivacyConfig,
    dp_encoder,
    dp_preprocessing_plan,
    dp_schema,
    epsilon_of,
    per_sample_grads,
    resolve_delta,
)
from tests.test_gan import association_gap

# Public bounds and categories for penguins: wider than the data, as a person would declare them.
DECLARED = {
    "species": {"categories": ["Adelie", "Chinstrap", "Gentoo"]},
    "island": {"categories": ["Biscoe", "Dream", "Torgersen"]},
    "bill_length_mm": {"min": 30, "max": 60},
    "bill_depth_mm": {"min": 13, "max": 22},
    "flipper_length_mm": {"min": 170, "max": 235},
    "body_mass_g": {"min": 2500, "max": 6500},
    "sex": {"categories": ["female", "male"]},
    "year": {"min": 2007, "max": 2009},
}
TINY = {
    "vae": {"latent_dim": 4, "hidden": [16]},
    "gan": {"embedding_dim": 8, "generator_dim": [16], "discriminator_dim": [16]},
    "rbm": {"n_hidden": 16, "burn_in": 10, "thinning": 2},
    "rbm_pcd": {"n_hidden": 16, "burn_in": 10, "thinning": 2, "method": "pcd"},
}
TRAINER = TrainerConfig(batch_size=64, progress_bar=False)


def sample(gen, n: int = 200, seed: int = 1) -> pd.DataFrame:
    return pd.concat(list(gen.sample(n, seed=seed)), ignore_index=True)


def private(family: str, epsilon: float, params: dict | None = None, **cfg):
    name = "rbm" if family.startswith("rbm") else family
    return get_generator(name)(params if params is not None else TINY[family]).with_privacy(PrivacyConfig(epsilon=epsilon, **cfg), DECLARED)


# -- config and preprocessing --------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"epsilon": math.nan},
        {"epsilon": math.inf},
        {"epsilon": -1.0},
        {"epsilon": 0.0},
        {"epsilon": 1, "delta": 1.5},
        {"epsilon": 1, "nope": 1},
    ],
)
def test_privacy_config_refuses_bad_values(bad):
    with pytest.raises(ValidationError):
        PrivacyConfig(**bad)


def test_auto_delta_is_below_one_over_n():
    assert resolve_delta("auto", 344) == 1e-5
    assert resolve_delta("auto", 1_000_000) == pytest.approx(1e-9)
    assert resolve_delta(1e-7, 344) == 1e-7


def test_missing_bounds_refuse_with_what_to_declare(penguins_table):
    # Setup: one numeric column and one categorical column left undeclared, in turn
    no_bounds = {k: v for k, v in DECLARED.items() if k != "body_mass_g"}
    no_categories = {k: v for k, v in DECLARED.items() if k != "island"}
    # Run / Assert: refused before any training, naming the column and what to add where
    gen = get_generator("vae")(TINY["vae"]).with_privacy(PrivacyConfig(epsilon=3), no_bounds)
    with pytest.raises(
        BadInput, match=r"column 'body_mass_g' has no declared min/max; DP mode needs public bounds: add them to your schema file"
    ):
        gen.fit(penguins_table, trainer=TRAINER)
    assert gen.module is None
    gen = get_generator("gan")(TINY["gan"]).with_privacy(PrivacyConfig(epsilon=3), no_categories)
    with pytest.raises(BadInput, match=r"column 'island' has no declared categories.*synthaug schema DATA --out"):
        gen.fit(penguins_table, trainer=TRAINER)


def test_user_id_unit_is_refused_clearly(penguins_table):
    gen = get_generator("rbm")(TINY["rbm"]).with_privacy(PrivacyConfig(epsilon=3, unit="island"), DECLARED)
    with pytest.raises(BadInput, match="privacy.unit='island': user-level privacy .* not implemented yet; use privacy.unit=row"):
        gen.fit(penguins_table, trainer=TRAINER)


def test_plan_names_a_public_source_for_every_statistic(penguins_table):
    plan = dp_preprocessing_plan(infer_schema(penguins_table), DECLARED)
    assert list(plan) == penguins_table.column_names
    assert plan["species"]["categories"] == "declared" and plan["body_mass_g"]["min"] == "declared"
    assert plan["year"]["kind"] == "arrow type" and plan["sex"]["nulls"].startswith("fixed")
    assert all(
        source.split(":")[0] in ("declared", "arrow type", "fixed", "declared not nullable")
        for col in plan.values()
        for source in col.values()
    )


def test_preprocessing_reads_nothing_from_the_data(penguins_table):
    # Setup: the same columns with very different values (an outlier, an undeclared category, no nulls)
    df = penguins_table.to_pandas()
    other = df.fillna({"sex": "male", "body_mass_g": 4000}).assign(island="Atlantis")
    other.loc[0, "body_mass_g"] = 60000.0
    other = pa.Table.from_pandas(other, schema=penguins_table.schema, preserve_index=False)
    # Run
    states = []
    for table in (penguins_table, other):
        schema = dp_schema(infer_schema(table), DECLARED)
        states.append((schema.model_dump(), dp_encoder(schema, modes=3).state_dict()))
    # Assert: schema and encoder are identical, and hold the declared bounds and categories
    assert states[0] == states[1]
    schema, state = states[0]
    mass = next(c for c in schema["columns"] if c["name"] == "body_mass_g")
    assert (mass["min"], mass["max"]) == (2500, 6500) and state["columns"]["island"]["categories"] == DECLARED["island"]["categories"]
    assert state["columns"]["body_mass_g"]["means"] == pytest.approx([2500 + 4000 / 6, 4500, 6500 - 4000 / 6])


def test_declared_bounds_round_trip_and_clamp(penguins_table):
    schema = dp_schema(infer_schema(penguins_table), DECLARED)
    encoder = dp_encoder(schema, modes=4)
    table = penguins_table
    decoded = encoder.decode(encoder.encode(table)).to_pandas()
    real = table.to_pandas()
    assert np.allclose(decoded["body_mass_g"], real["body_mass_g"], equal_nan=True)
    assert decoded["year"].equals(real["year"])
    clamped = encoder.decode(encoder.encode(table.set_column(5, "body_mass_g", pa.array([9e9] * len(real)))))
    assert set(clamped.column("body_mass_g").to_pylist()) == {6500}


# -- the DP-SGD machinery --------------------------------------------------------------------------
def test_each_example_is_clipped_before_summing():
    # Setup: loss w * x per example, so example gradients are x = 10 and 0.1; no noise
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    dp = DPSGD(
        torch.optim.SGD(model.parameters(), lr=1.0),
        PrivacyConfig(epsilon=1, max_grad_norm=1.0),
        n_rows=4,
        batch_size=2,
        seed=0,
        noise_multiplier=0.0,
    )
    x = torch.tensor([[10.0], [0.1]])
    # Run
    dp.step(per_sample_grads(model, lambda m, xi: m(xi).sum(), x))
    # Assert: (min(10, 1) + 0.1) / expected batch 2, not (10 + 0.1) / 2 (batch clipping would give 1 / 2)
    assert model.weight.item() == pytest.approx(-(1.0 + 0.1) / 2)
    assert len(dp.accountant.history) == 1


@pytest.mark.parametrize("family", list(TINY))
def test_epsilon_spent_is_within_target(family, penguins_table, one_thread, tmp_path):
    # Setup / Run
    gen = private(family, 3.0, epochs=2).fit(penguins_table, trainer=TRAINER, seed=0)
    p = gen.fit_info["privacy"]
    # Assert: the accountant's epsilon for the schedule run is at most the target, and close to it
    q = 64 / penguins_table.num_rows
    assert p["sample_rate"] == pytest.approx(q) and p["steps"] == math.ceil(2 / q) and p["noise_multiplier"] > 0.5
    assert p["epsilon"] == pytest.approx(epsilon_of("rdp", [(p["noise_multiplier"], q, p["steps"])], p["delta"]))
    assert 0.9 * 3.0 < p["epsilon"] <= 3.0 and p["delta"] == 1e-5 and p["accountant"] == "rdp"
    assert gen.fit_info["data_sha256"] is None and gen.fit_info["best_epoch"] is None
    # Samples keep the declared categories; the saved model (config changes included) samples the same rows
    rows = sample(gen, n=100)
    assert set(rows["island"].dropna()) <= set(DECLARED["island"]["categories"])
    gen.save(tmp_path / "m")
    pd.testing.assert_frame_equal(sample(load_generator(tmp_path / "m"), n=100), rows)
    # Seeded: a second fit gives the same model
    again = private(family, 3.0, epochs=2).fit(penguins_table, trainer=TRAINER, seed=0)
    pd.testing.assert_frame_equal(sample(again, n=100), rows)


def test_data_derived_state_stays_data_free(penguins_table, one_thread):
    # The normal paths start from the data (output bias, mixture prior, category frequencies,
    # standardisation); in DP mode those buffers keep their data-free values.
    vae = private("vae", 8.0, epochs=1).fit(penguins_table, trainer=TRAINER)
    gan = private("gan", 8.0, epochs=1).fit(penguins_table, trainer=TRAINER)
    rbm = private("rbm", 8.0, epochs=1).fit(penguins_table, trainer=TRAINER)
    assert vae.config.prior == "standard" and vae.fit_info["privacy"]["config_overrides"] == {"prior": "standard"}
    assert gan.config.pac == 1 and gan.config.gp_lambda == 0 and not gan.module.cond_freq.any()
    assert torch.equal(rbm.module.value_mean, torch.zeros_like(rbm.module.value_mean)) and torch.equal(
        rbm.module.value_std, torch.ones_like(rbm.module.value_std)
    )
    assert gan.fit_info["privacy"]["private"].startswith("the critic")


def test_gan_charges_only_real_rows(penguins_table, one_thread, monkeypatch):
    # Setup: record, at every private step, how many per-example gradients the critic has
    seen: list[tuple[int, int]] = []
    batches, step = DPSGD.batches, DPSGD.step

    def record_batches(self, *a):
        for idx in batches(self, *a):
            self.last = len(idx)
            yield idx

    def record_step(self, grad_samples=None, public=None):
        seen.append((self.last, {len(p.grad_sample) for p in self.params if getattr(p, "grad_sample", None) is not None}))
        return step(self, grad_samples, public)

    monkeypatch.setattr(privacy.DPSGD, "batches", record_batches)
    monkeypatch.setattr(privacy.DPSGD, "step", record_step)
    # Run
    private("gan", 8.0, epochs=2).fit(penguins_table, trainer=TRAINER)
    # Assert: one per real row of the Poisson batch (not the fake batch of 64 too)
    assert seen and all(sizes in ({rows}, set()) and (sizes or rows == 0) for rows, sizes in seen), seen
    assert len({rows for rows, _ in seen}) > 1  # Poisson batches vary in size


# -- noise matters --------------------------------------------------------------------------------
def marginal_error(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Mean over columns of the total variation distance (categories, nulls as a category) or the KS statistic (numbers)."""
    from scipy.stats import ks_2samp

    errors = []
    for c in real.columns:
        if "categories" in DECLARED[c]:
            a = real[c].fillna("<null>").value_counts(normalize=True)
            b = synthetic[c].fillna("<null>").value_counts(normalize=True)
            errors.append(0.5 * a.subtract(b, fill_value=0).abs().sum())
        else:
            b = synthetic[c].dropna()
            errors.append(ks_2samp(real[c].dropna(), b).statistic if len(b) else 1.0)
    return float(np.mean(errors))


def uniform_columns(n: int, seed: int) -> pd.DataFrame:
    """The trivial baseline: every column independent and uniform over its declared bounds or categories."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {c: rng.choice(d["categories"], n) if "categories" in d else rng.uniform(d["min"], d["max"], n) for c, d in DECLARED.items()}
    )


def test_dp_at_epsilon_8_beats_the_baseline_and_huge_noise_destroys_utility(penguins_table, one_thread):
    # Setup: a small VAE (few parameters: more signal per coordinate under DP noise), larger batches
    params = {"latent_dim": 4, "hidden": [32], "lr": 2e-2}
    trainer = TrainerConfig(batch_size=172, progress_bar=False)
    real = penguins_table.to_pandas()
    # Run
    fits = {eps: private("vae", eps, params, epochs=40).fit(penguins_table, trainer=trainer, seed=0) for eps in (8.0, 0.3)}
    errors = {eps: marginal_error(real, sample(g, len(real))) for eps, g in fits.items()}
    gap = association_gap(real, sample(fits[8.0], len(real)))
    baseline = uniform_columns(len(real), seed=0)
    # Assert: epsilon 8 beats independent uniform columns on marginals and on pairwise associations ...
    assert errors[8.0] < 0.75 * marginal_error(real, baseline), (errors, marginal_error(real, baseline))
    assert gap < 0.8 * association_gap(real, baseline), (gap, association_gap(real, baseline))
    # ... and the same training with ~20x the noise (epsilon 0.3) loses most of it: DP noise is really added.
    assert fits[0.3].fit_info["privacy"]["noise_multiplier"] > 10 * fits[8.0].fit_info["privacy"]["noise_multiplier"]
    assert errors[0.3] > 2 * errors[8.0], errors
