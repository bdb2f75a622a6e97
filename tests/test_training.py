"""Shared training pieces: vectorised one-hot draws and the fidelity score that picks epochs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from synthaug.generators.tabular.onehot import draw_groups
from synthaug.io.sources import read_table
from synthaug.schema import infer_schema
from synthaug.training.fidelity import FidelityLayout, ks_statistic
from synthaug.transforms.tabular import TabularEncoder
from tests.conftest import PENGUINS


def test_draw_groups_follows_each_softmax():
    # Setup: two groups with different logits, a value column between them that must be left alone.
    logits = torch.tensor([[0.0, 1.0, 2.0, 5.0, -1.0, 0.3, 3.0]]).repeat(100_000, 1)
    # Run
    out = draw_groups(logits, ((0, 3), (4, 7)), torch.Generator().manual_seed(0))
    # Assert: one hot per group, frequencies within 3 standard errors of the softmax.
    assert torch.equal(out[:, 3], logits[:, 3])
    assert torch.equal(out[:, :3].sum(1), torch.ones(len(out))) and torch.equal(out[:, 4:].sum(1), torch.ones(len(out)))
    for a, b in ((0, 3), (4, 7)):
        p = torch.softmax(logits[0, a:b], 0)
        assert torch.allclose(out[:, a:b].mean(0), p, atol=3 * float((p * (1 - p) / len(out)).sqrt().max()))


def test_draw_groups_handles_extreme_logits():
    # A group whose logits differ by 2000 must not underflow to an empty draw.
    logits = torch.tensor([[1000.0, -1000.0, 0.0, 7.0, 7.0]]).repeat(10_000, 1)
    out = draw_groups(logits, ((0, 3), (3, 5)), torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 0], torch.ones(len(out)))
    assert 0.45 < float(out[:, 3].mean()) < 0.55


def test_ks_statistic_matches_scipy():
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.normal(size=300), rng.integers(0, 4, 300)])  # ties in the second column
    b = np.column_stack([rng.normal(0.3, 1.2, size=500), rng.integers(0, 5, 500)])
    got = ks_statistic(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    want = [ks_2samp(a[:, j], b[:, j]).statistic for j in range(2)]
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.fixture(scope="module")
def encoded():
    table = read_table(PENGUINS)
    df = table.to_pandas()
    encoder = TabularEncoder().fit(df, infer_schema(table), seed=0)
    return encoder, torch.from_numpy(encoder.encode(df))


def test_gap_is_zero_for_the_same_rows(encoded):
    encoder, x = encoded
    assert FidelityLayout(encoder).gap(x, x) == pytest.approx(0.0, abs=1e-12)


def test_gap_decodes_numeric_columns(encoded):
    # The layout's decode must agree with the encoder's own decode (before rounding and bounds).
    encoder, x = encoded
    layout = FidelityLayout(encoder)
    decoded = encoder.decode(x.numpy()).to_pandas()
    numeric = [s.column for s in encoder.spans if s.role == "offset"]
    observed = decoded[numeric].notna().to_numpy()
    np.testing.assert_allclose(layout.decode(x).numpy()[observed], decoded[numeric].to_numpy(float)[observed], atol=0.051)


def test_gap_sees_broken_shapes_and_broken_pairs(encoded):
    # Setup: a resample of the rows (the noise floor); the resample with one column shifted by
    # two of its mode's standard deviations; the resample with every column shuffled on its own
    # (marginals kept, pairs destroyed). A column's spans move together, so rows stay valid.
    encoder, x = encoded
    layout = FidelityLayout(encoder)
    g = torch.Generator().manual_seed(0)
    resample = x[torch.randint(len(x), (len(x),), generator=g)]
    shifted = resample.clone()
    flipper = next(s for s in encoder.spans if s.column == "flipper_length_mm" and s.role == "offset")
    shifted[:, flipper.start] = (shifted[:, flipper.start] + 0.5).clamp(-1, 1)
    shuffled = resample.clone()
    for column in dict.fromkeys(s.column for s in encoder.spans):
        cols = [j for t in encoder.spans_of(column) for j in range(t.start, t.stop)]
        shuffled[:, cols] = resample[torch.randperm(len(x), generator=g)][:, cols]
    # Run
    floor, shift, shuffle = (layout.gap(x, y) for y in (resample, shifted, shuffled))
    # Assert: one bad column of 13 scored items moves the mean shape term by its KS / 13 (~0.035).
    assert shift > floor + 0.02, (floor, shift)
    assert shuffle > floor + 0.05, (floor, shuffle)


def test_null_rows_stay_out_of_the_numeric_ks(encoded):
    # Setup: in the copy, null rows of bill_length_mm carry an absurd placeholder offset; the gap must not see it.
    encoder, x = encoded
    layout = FidelityLayout(encoder)
    offset = next(s for s in encoder.spans if s.column == "bill_length_mm" and s.role == "offset")
    null = next(s for s in encoder.spans if s.column == "bill_length_mm" and s.role == "null")
    is_null = x[:, null.start + 1] > 0.5
    assert 0 < int(is_null.sum()) < len(x)
    moved = x.clone()
    moved[is_null, offset.start] = 1.0
    # Run / Assert: the observed values are identical, so the column's KS is zero; unmasked, it would not be.
    j = [s.column for s in encoder.spans if s.role == "offset"].index("bill_length_mm")
    real_num, moved_num = layout.decode(x), layout.decode(moved)
    assert float(layout._numeric_ks(x, moved, real_num, moved_num)[j]) == 0.0
    assert float(ks_statistic(real_num, moved_num)[j]) > 0.0
