"""Fidelity metrics on the bundled penguins data: quality report, detection AUC, TSTR."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pc
import pytest

from synthaug.errors import BadInput
from synthaug.schema import infer_schema
from synthaug.validation.fidelity import detection_auc, detection_details, granularity, quality_report, tstr

PENGUINS = Path(__file__).resolve().parents[1] / "data" / "penguins.csv"


@pytest.fixture(scope="module")
def penguins():
    """train / holdout halves, a column-wise shuffled copy of train, and the schema."""
    table = pc.read_csv(PENGUINS)
    schema, df = infer_schema(table), table.to_pandas()
    order = np.random.default_rng(0).permutation(len(df))
    half = len(df) // 2
    train, holdout = df.iloc[order[:half]], df.iloc[order[half:]]
    # Each column permuted on its own: marginals kept, every relation between columns broken.
    shuffled = pd.DataFrame({c: train[c].sample(frac=1.0, random_state=i).to_numpy() for i, c in enumerate(train.columns)})
    return train, holdout, shuffled, schema


def test_quality_report_scores_pair_trends_of_shuffled_columns_lower(penguins):
    # Setup
    train, holdout, shuffled, schema = penguins
    # Run
    real = quality_report(train, holdout, schema)
    broken = quality_report(train, shuffled, schema)
    # Assert
    assert broken["column_pair_trends"] < real["column_pair_trends"] - 0.08
    assert broken["column_shapes"] > 0.99  # the marginals are untouched: only pairs are wrong
    assert set(real["column_shape_scores"]) == set(schema.names)
    assert 0.0 <= real["overall"] <= 1.0
    json.dumps(real)


def test_detection_auc_separates_shuffled_columns_but_not_holdout(penguins):
    # Setup
    train, holdout, shuffled, schema = penguins
    # Run
    auc_holdout = detection_auc(train, holdout, schema, seed=0)
    auc_shuffled = detection_auc(train, shuffled, schema, seed=0)
    # Assert
    assert auc_holdout < 0.65
    assert auc_shuffled > 0.75
    assert auc_shuffled > auc_holdout + 0.15


def test_tstr_species_real_is_accurate_and_shuffled_is_not(penguins):
    # Setup
    train, holdout, shuffled, schema = penguins
    # Run
    good = tstr(train, holdout, train, schema, target="species")
    bad = tstr(train, holdout, shuffled, schema, target="species")
    # Assert
    assert good["task"] == "classification"
    assert good["real"]["accuracy"] > 0.9
    assert good["real"]["macro_f1"] > 0.9
    assert good["gap"]["accuracy"] == pytest.approx(0.0)
    assert bad["synthetic"]["accuracy"] < 0.7
    assert bad["gap"]["accuracy"] > 0.2


def test_tstr_numeric_target_reports_r2(penguins):
    train, holdout, shuffled, schema = penguins
    result = tstr(train, holdout, shuffled, schema, target="body_mass_g")
    assert result["task"] == "regression"
    assert result["real"]["r2"] > 0.6
    assert result["gap"]["r2"] > 0.3


def test_tstr_rejects_unknown_target(penguins):
    train, holdout, _, schema = penguins
    with pytest.raises(BadInput, match="'beak'"):
        tstr(train, holdout, train, schema, target="beak")


# -- issue 10: metrics that stay honest on wide, high-cardinality tables -------------------


def coded_table(n: int, levels: int, seed: int, as_int: bool) -> pd.DataFrame:
    """A 7-class label that the `code` column determines exactly, next to noise columns.

    With ~10 rows per code, one-hot codes (or codes binned into 255 histogram bins) are out of
    reach of default gradient boosting, which scored 0.16 (text codes) / 0.72 (integer codes)
    here; a decision tree scores ~1.0.
    """
    rng = np.random.default_rng(seed)
    code = rng.integers(0, levels, n)
    label = np.array(list("abcdefg"))[(code * 3) % 7]
    return pd.DataFrame(
        {
            "code": code if as_int else [f"p{c:04d}" for c in code],
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "kind": rng.choice(["u", "v"], n),
            "label": label,
        }
    )


@pytest.mark.parametrize("as_int", [False, True], ids=["text-code", "integer-code"])
def test_tstr_train_on_real_is_strong_when_a_column_determines_the_label(as_int):
    # Setup
    df = coded_table(3000, 300, seed=0, as_int=as_int)
    schema = infer_schema(pa.Table.from_pandas(df, preserve_index=False))
    train, holdout = df.iloc[:2000], df.iloc[2000:]
    # Run
    result = tstr(train, holdout, train, schema, target="label")
    # Assert
    assert result["real"]["accuracy"] >= 0.95
    assert result["gap"]["accuracy"] == pytest.approx(0.0, abs=0.02)
    recipe = result["recipe"]
    assert recipe["model"] in recipe["validation"]
    assert recipe["validation"][recipe["model"]] >= max(recipe["validation"].values()) - 0.005
    json.dumps(result)


def test_tstr_recipe_is_chosen_on_real_rows_and_reused_for_synthetic(penguins):
    # Setup: a one-class synthetic label cannot train the recipe; it falls back to the majority
    train, holdout, shuffled, schema = penguins
    one_class = shuffled.assign(species="Adelie")
    # Run
    result = tstr(train, holdout, one_class, schema, target="species")
    # Assert
    assert result["real"]["accuracy"] > 0.9
    assert result["synthetic"]["accuracy"] < 0.6  # predicts "Adelie" for everything
    assert set(result["recipe"]["validation"]) == {"decision tree", "random forest", "gradient boosting"}


def test_quality_report_scores_every_row_and_reports_the_sampling(penguins):
    # Setup
    train, holdout, _, schema = penguins
    # Run
    full = quality_report(train, holdout, schema)
    capped = quality_report(train, holdout, schema, max_rows=100)
    # Assert
    assert full["sampling"]["real_rows_used"] == len(train)
    assert full["sampling"]["synthetic_rows_used"] == len(holdout)
    assert full["sampling"]["method"] == "all rows"
    assert capped["sampling"]["real_rows_used"] == capped["sampling"]["synthetic_rows_used"] == 100
    assert capped["sampling"]["method"].startswith("seeded subsample")
    json.dumps(full)


def granular(n: int, seed: int, rounded: bool) -> pd.DataFrame:
    """Money amounts: real ones sit on multiples of 100 (90 %), the "synthetic" ones do not."""
    rng = np.random.default_rng(seed)
    raw = np.exp(rng.normal(6.5, 0.7, n))
    amount = np.where(rng.random(n) < 0.9, np.maximum(100, np.round(raw / 100) * 100), np.round(raw, 2)) if rounded else np.round(raw, 2)
    return pd.DataFrame(
        {
            "amount": amount,
            "age": rng.integers(18, 90, n).astype("int64"),
            "score": rng.normal(size=n),
            "shop": rng.choice(["a", "b", "c", "d"], n),
        }
    )


def test_detection_top_features_name_the_granularity_artefact():
    # Setup
    real, synthetic = granular(1500, 0, rounded=True), granular(1500, 1, rounded=False)
    schema = infer_schema(pa.Table.from_pandas(real, preserve_index=False))
    # Run
    details = detection_details(real, synthetic, schema, seed=0)
    auc = detection_auc(real, synthetic, schema, seed=0)
    # Assert
    assert details["auc"] == pytest.approx(auc)
    assert details["auc"] > 0.8
    top = details["top_features"][0]
    assert top["feature"].startswith("amount granularity")
    assert top["detail"].startswith("multiple of 100: real 9")
    assert top["importance"] > 0.1
    json.dumps(details)


def test_detection_of_real_vs_real_stays_near_half_with_a_high_cardinality_column():
    # Setup: 3,000 levels, most seen once; encoding them on all real rows would leak the fold
    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame(
        {
            "merchant": [f"m{v}" for v in rng.integers(0, 3000, n)],
            "amount": np.round(np.exp(rng.normal(4, 1, n)), 2),
            "region": rng.choice(["n", "s", "e", "w"], n),
        }
    )
    schema = infer_schema(pa.Table.from_pandas(df, preserve_index=False))
    # Run
    details = detection_details(df.iloc[: n // 2], df.iloc[n // 2 :], schema, seed=0)
    # Assert
    assert details["auc"] < 0.6
    assert details["n_features"] < 20  # a 3,000-level column is not 3,000 features


def test_granularity_is_the_largest_round_step_dividing_each_value():
    values = np.array([300.0, 250.0, 0.05, 973.41, 7.0, 0.0, np.nan, 1e308, 1.0 / 3])
    levels = granularity(values, "continuous")
    np.testing.assert_allclose(levels[:5], np.log10([100, 50, 0.05, 0.01, 1]))
    assert levels[5] == levels.max()  # 0 is on every step
    assert levels[6] == levels[8] == -7.0  # missing, and finer than every step
    seconds = granularity(np.array([86400.0 * 3, 3600.0 * 5, 61.0]), "datetime")
    np.testing.assert_allclose(seconds, np.log10([86400, 3600, 1]))
