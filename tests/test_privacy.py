"""Privacy metrics: chunked nearest neighbours, DCR share, exact matches, membership inference."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.spatial.distance import cdist

from synthaug.schema import infer_schema
from synthaug.validation import privacy
from synthaug.validation.encoding import MixedEncoder
from synthaug.validation.privacy import nearest_two, privacy_metrics


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
