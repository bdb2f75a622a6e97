"""Privacy metrics: chunked nearest neighbours, DCR share, exact matches, membership inference."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pc
import pytest
from scipy.spatial.distance import cdist

from synthaug.schema import infer_schema
from synthaug.validation import privacy
from synthaug.validation.encoding import MixedEncoder
from synthaug.validation.privacy import nearest_two, privacy_metrics

PENGUINS = Path(__file__).resolve().parents[1] / "data" / "penguins.csv"


def draw(n: int, seed: int) -> pd.DataFrame:
    """A known mixed-type distribution; each call with a new seed is a fresh independent sample."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "y": 0.8 * x + 0.6 * rng.normal(size=n),
            "count": rng.poisson(5, size=n).astype("int64"),
            "colour": rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) < 0.3,
        }
    )


@pytest.fixture(scope="module")
def frames():
    train, holdout = draw(600, 1), draw(600, 2)
    schema = infer_schema(pa.Table.from_pandas(train, preserve_index=False))
    return train, holdout, schema


@pytest.mark.parametrize("block", [None, 200])  # 200: the memory cap, not `chunk`, sets the step
def test_nearest_two_matches_brute_force(block, monkeypatch):
    # Setup
    if block:
        monkeypatch.setattr(privacy, "_BLOCK", block)
    rng = np.random.default_rng(0)
    query, reference = rng.normal(size=(57, 5)), rng.normal(size=(83, 5))
    reference[10] = query[3]  # an exact duplicate must come out as distance 0
    # Run
    d1, d2 = nearest_two(query, reference, chunk=7)
    # Assert
    brute = np.sort(cdist(query, reference), axis=1)
    np.testing.assert_allclose(d1, brute[:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d2, brute[:, 1], rtol=1e-9, atol=1e-12)
    assert d1[3] == 0.0


def test_nearest_two_with_one_reference_row_has_no_second_neighbour():
    d1, d2 = nearest_two(np.zeros((3, 2)), np.ones((1, 2)))
    np.testing.assert_allclose(d1, np.sqrt(2))
    assert np.isinf(d2).all()


def test_copied_training_rows_are_flagged_as_leaking(frames):
    # Setup: the "synthetic" data is the training data; counts arrive as float (nulls elsewhere
    # in a shard do that), which must not hide the exact matches.
    train, holdout, schema = frames
    synthetic = train.sample(frac=1.0, random_state=0).astype({"count": "float64"})
    # Run
    m = privacy_metrics(train, holdout, synthetic, schema, seed=0)
    # Assert
    assert m["dcr_share"] > 0.95
    assert m["exact_match_rate"] == 1.0
    assert m["holdout_exact_match_rate"] < 0.05
    assert m["mia_auc"] > 0.9
    assert m["dcr_p05_synthetic_train"] == 0.0 < m["dcr_p05_holdout_train"]
    assert m["nndr_p05_synthetic"] < m["nndr_p05_holdout"]


def test_fresh_draw_from_the_same_distribution_looks_private(frames):
    # Setup
    train, holdout, schema = frames
    synthetic = draw(600, 3)
    # Run
    m = privacy_metrics(train, holdout, synthetic, schema, seed=0)
    # Assert
    assert 0.4 < m["dcr_share"] < 0.6
    assert 0.4 < m["mia_auc"] < 0.6
    assert m["exact_match_rate"] == 0.0
    assert m["dcr_p05_synthetic_train"] > 0.0


def test_train_and_holdout_are_subsampled_to_equal_size(frames):
    # Setup: a big training set against a small holdout would push dcr_share up on its own.
    train, _, schema = frames
    holdout, synthetic = draw(150, 4), draw(300, 5)
    # Run
    m = privacy_metrics(train, holdout, synthetic, schema, seed=1)
    # Assert
    assert m["rows_compared"] == 150
    assert 0.35 < m["dcr_share"] < 0.65


def test_histograms_are_plottable_json(frames):
    train, holdout, schema = frames
    synthetic = draw(200, 6)
    m = privacy_metrics(train, holdout, synthetic, schema, seed=0, bins=20)
    json.dumps(m)  # plain floats and lists only
    syn, ho = m["dcr_histogram_synthetic_train"], m["dcr_histogram_holdout_train"]
    assert len(syn["edges"]) == 21 and syn["edges"] == ho["edges"]
    assert sum(syn["counts"]) == 200
    assert sum(ho["counts"]) == m["rows_compared"]


def test_encoder_scales_imputes_and_one_hots():
    # Setup
    train = pd.DataFrame({"v": [0.0, 10.0, np.nan, 5.0], "c": ["a", "b", "a", "b"], "key_id": [1, 2, 3, 4]})
    schema = infer_schema(pa.Table.from_pandas(train, preserve_index=False))
    new = pd.DataFrame({"v": [20.0, np.nan], "c": ["zzz", "b"], "key_id": [9, 8]})
    # Run
    x = MixedEncoder(schema).fit(train).transform(new)
    # Assert: [v scaled, v null?, c=a, c=b]; the id column is dropped, the unseen level is all-zero
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [[2.0, 0.0, 0.0, 0.0], [0.5, 1.0, 0.0, 1.0]])


# -- issue 10: distances on wide, high-cardinality and extreme-valued tables ---------------


def test_high_cardinality_width_is_capped_and_exact_matches_survive():
    # Setup: a 5,000-level column (one-hot would be 5,000 features wide)
    rng = np.random.default_rng(0)
    n = 6000
    train = pd.DataFrame({"merchant": [f"m{v:05d}" for v in rng.permutation(np.arange(n)) % 5000], "amount": rng.normal(size=n)})
    schema = infer_schema(pa.Table.from_pandas(train, preserve_index=False))
    # Run
    hashed = MixedEncoder(schema, high_cardinality="hash").fit(train)
    frequency = MixedEncoder(schema).fit(train)
    x = hashed.transform(train.iloc[:3])
    same = hashed.transform(train.iloc[:3].copy())
    other = hashed.transform(train.iloc[:3].assign(merchant=["never seen", "m_unseen", "zzz"]))
    # Assert
    assert hashed.n_features == 1 + hashed.hash_dims
    assert frequency.n_features == 1 + frequency.top_levels + 2
    np.testing.assert_array_equal(x, same)  # equal values encode identically: distance exactly 0
    d = np.linalg.norm(x[:, 1:] - other[:, 1:], axis=1)  # distinct values: about the one-hot sqrt(2)
    assert ((d > 1.0) & (d < 1.8)).all()


def test_copied_rows_of_a_high_cardinality_table_are_exact_matches():
    # Setup: copies of training rows, and copies with only the (rare) merchant changed
    rng = np.random.default_rng(1)
    n = 3000
    df = pd.DataFrame({"merchant": [f"m{v}" for v in rng.integers(0, 2500, n)], "amount": np.round(rng.gamma(2, 50, n), 2)})
    schema = infer_schema(pa.Table.from_pandas(df, preserve_index=False))
    train, holdout = df.iloc[:1500], df.iloc[1500:]
    copies = train.sample(frac=1.0, random_state=0)
    renamed = copies.assign(merchant=[f"x{i}" for i in range(len(copies))])
    # Run
    same = privacy_metrics(train, holdout, copies, schema, seed=0)
    moved = privacy_metrics(train, holdout, renamed, schema, seed=0)
    # Assert: a copy is at distance 0; another merchant is not (no shared "other" bucket)
    assert same["exact_match_rate"] == 1.0
    assert same["dcr_p05_synthetic_train"] == 0.0
    assert same["dcr_share"] > 0.95
    assert moved["exact_match_rate"] == 0.0
    assert moved["dcr_p05_synthetic_train"] > 0.8


def test_holdout_only_categories_do_not_pull_the_dcr_share_down():
    # Setup: real vs real -- penguins in three parts, plus a 150-level tag so most holdout tags
    # are never seen in train. Encoded on train alone, those were all-zero and looked closer
    # to every "synthetic" row: DCR share 0.07-0.11 instead of ~0.5.
    df = pc.read_csv(PENGUINS).to_pandas()
    rng = np.random.default_rng(0)
    df["tag"] = [f"t{v}" for v in rng.integers(0, 150, len(df))]
    schema = infer_schema(pa.Table.from_pandas(df, preserve_index=False))
    order = rng.permutation(len(df))
    k = len(df) // 3
    a, b, other = df.iloc[order[:k]], df.iloc[order[k : 2 * k]], df.iloc[order[2 * k : 3 * k]]
    # Run: both ways round, as the two halves are exchangeable
    shares = [privacy_metrics(a, b, other, schema, seed=0)["dcr_share"], privacy_metrics(b, a, other, schema, seed=0)["dcr_share"]]
    # Assert
    assert np.mean(shares) >= 0.45
    assert min(shares) >= 0.35


def test_values_near_the_float_limits_give_finite_meaningful_distances():
    # Setup: +-1e308 in one column: high - low overflows to inf, which used to scale every value to 0
    train = pd.DataFrame({"v": [-1e308, 0.0, 1e308, 5e307], "c": ["a", "b", "a", "b"]})
    schema = infer_schema(pa.Table.from_pandas(train, preserve_index=False))
    query = pd.DataFrame({"v": [1e308, -1e308, 1.0, np.inf], "c": ["a", "a", "b", "a"]})
    # Run
    enc = MixedEncoder(schema).fit(train)
    x_train, x_query = enc.transform(train), enc.transform(query)
    d1, d2 = nearest_two(x_query, x_train)
    # Assert
    assert np.isfinite(x_train).all() and np.isfinite(x_query).all()
    np.testing.assert_allclose(x_train[:, 0], [0.0, 0.5, 1.0, 0.75])
    assert d1[0] == 0.0 and d1[1] == 0.0  # each extreme finds its own copy
    assert d1[2] == pytest.approx(0.0, abs=1e-6)  # 1.0 is next to 0.0 at this scale
    assert np.isfinite(d2).all() and (d2[:3] > 0.2).all()


def test_privacy_metrics_run_on_extreme_magnitudes():
    # Setup
    rng = np.random.default_rng(3)
    n = 300
    frame = lambda: pd.DataFrame({"v": rng.choice([-1e308, 1e308], n) * rng.random(n), "w": rng.normal(size=n)})  # noqa: E731
    train, holdout, synthetic = frame(), frame(), frame()
    schema = infer_schema(pa.Table.from_pandas(train, preserve_index=False))
    # Run
    m = privacy_metrics(train, holdout, synthetic, schema, seed=0)
    # Assert
    assert all(np.isfinite(m[k]) for k in ("dcr_share", "dcr_p05_synthetic_train", "nndr_p05_synthetic", "mia_auc"))
    assert m["dcr_p05_synthetic_train"] > 0.0
    assert 0.35 < m["dcr_share"] < 0.65
