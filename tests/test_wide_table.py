"""Validation metrics on a wide, messy real table (data/wide_messy.parquet, issue 10).

50 columns of 10,000 nycflights13 flights joined with their airline, plane, weather and
airports (built by data/make_wide_messy.py): 18 categorical columns, two of them with ~2,800
levels (tailnum, flight_code), ~33k missing cells, nullable integers, a timestamp, a constant.
"Synthetic" is a perturbed copy of the training rows.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthaug.schema import infer_schema
from synthaug.validation.encoding import MixedEncoder
from synthaug.validation.fidelity import detection_details, quality_report, tstr
from synthaug.validation.privacy import privacy_metrics

WIDE = Path(__file__).resolve().parents[1] / "data" / "wide_messy.parquet"


def perturbed(train: pd.DataFrame, schema, n: int, seed: int) -> pd.DataFrame:
    """Training rows resampled, numbers jittered (nulls kept), 10 % of categories redrawn."""
    rng = np.random.default_rng(seed)
    df = train.iloc[rng.integers(0, len(train), n)].reset_index(drop=True)
    for spec in schema.columns:
        col = df[spec.name]
        present = col.notna().to_numpy()
        if spec.kind in ("continuous", "integer"):
            v = col.to_numpy(dtype=float, na_value=np.nan)
            noisy = np.clip(v + rng.normal(0, 0.05 * np.nanstd(v), n), spec.min, spec.max)
            df[spec.name] = pd.array(np.round(noisy), dtype="Int64") if spec.kind == "integer" else np.round(noisy, spec.decimals or 2)
        elif spec.kind == "categorical":
            levels = np.array(spec.categories, dtype=object)
            values = col.to_numpy(dtype=object).copy()
            redraw = (rng.random(n) < 0.10) & present
            values[redraw] = levels[rng.integers(0, len(levels), int(redraw.sum()))]
            df[spec.name] = values
        elif spec.kind == "datetime":
            df[spec.name] = col + pd.to_timedelta(rng.integers(-2, 3, n), unit="h")
    return df


@pytest.fixture(scope="module")
def wide():
    table = pq.read_table(WIDE)
    schema, df = infer_schema(table), table.to_pandas()
    order = np.random.default_rng(0).permutation(len(df))
    train, holdout, rest = df.iloc[order[:4000]], df.iloc[order[4000:7000]], df.iloc[order[7000:]]
    return schema, train, holdout, rest, perturbed(train, schema, 4000, seed=1)


def test_the_bundled_table_is_wide_and_messy(wide):
    schema, train, holdout, rest, _ = wide
    df = pd.concat([train, holdout, rest])
    kinds = [c.kind for c in schema.columns]
    levels = {c.name: len(c.categories) for c in schema.columns if c.kind == "categorical"}
    assert len(df) == 10_000 and len(schema.columns) >= 45
    assert kinds.count("categorical") >= 12
    assert sum(n >= 2000 for n in levels.values()) >= 2  # free-text-like columns
    assert int(df.isna().sum().sum()) >= 20_000
    assert any(str(df[c].dtype) == "Int64" and df[c].isna().any() for c in df.columns)  # ints with nulls


def test_encoder_width_stays_bounded(wide):
    schema, train, *_ = wide
    one_hot = MixedEncoder(schema).fit(train)
    ordinal = MixedEncoder(schema, categorical="ordinal").fit(train)
    hashed = MixedEncoder(schema, high_cardinality="hash").fit(train)
    for enc in (one_hot, ordinal, hashed):
        assert set(enc.high_cardinality_columns) >= {"tailnum", "flight_code"}
        x = enc.transform(train.iloc[:500])
        assert x.shape[1] == enc.n_features == len(enc.feature_names)
        assert np.isfinite(x[:, ~enc.categorical_features]).all()
    assert one_hot.n_features < 1000  # ~6,300 with a full one-hot of every column
    assert ordinal.n_features < 100
    assert hashed.n_features < 1000


def test_quality_and_detection_are_sane(wide):
    schema, train, holdout, _, synthetic = wide
    # Run
    quality = quality_report(train, synthetic, schema)
    real_vs_real = detection_details(train, holdout, schema, seed=0, max_rows=3000)
    detect = detection_details(train, synthetic, schema, seed=0, max_rows=3000)
    # Assert
    assert 0.75 < quality["overall"] <= 1.0
    assert quality["sampling"]["real_rows_used"] == len(train)
    assert real_vs_real["auc"] < 0.6
    assert real_vs_real["auc"] + 0.1 < detect["auc"] <= 1.0
    assert detect["top_features"] and all(f["importance"] > 0 for f in detect["top_features"])
    assert real_vs_real["n_features"] < 200


def test_tstr_reference_is_strong_on_a_derived_label(wide):
    # `status` follows from dep_time / arr_delay being missing and arr_delay > 15
    schema, train, holdout, _, synthetic = wide
    result = tstr(train, holdout, synthetic, schema, target="status", seed=0)
    assert result["real"]["accuracy"] >= 0.95
    assert 0.0 < result["gap"]["accuracy"] < 0.2  # 10 % of synthetic labels are redrawn
    assert result["recipe"]["model"] in ("decision tree", "random forest", "gradient boosting")


def test_privacy_metrics_are_sane_and_holdout_only_values_do_not_look_closer(wide):
    schema, train, holdout, rest, synthetic = wide
    # Run: real vs real ("synthetic" = other real rows, whose tail numbers are often in neither)
    real_a = privacy_metrics(train, holdout, rest, schema, seed=0)
    real_b = privacy_metrics(holdout, train, rest, schema, seed=0)
    leaky = privacy_metrics(train, holdout, synthetic, schema, seed=0)
    # Assert
    assert np.mean([real_a["dcr_share"], real_b["dcr_share"]]) >= 0.45
    assert min(real_a["dcr_share"], real_b["dcr_share"]) >= 0.4
    assert 0.4 < real_a["mia_auc"] < 0.6
    assert leaky["dcr_share"] > 0.6  # rows resampled from train sit nearer train
    assert np.isfinite([leaky[k] for k in ("dcr_p05_synthetic_train", "nndr_p05_synthetic", "mia_auc")]).all()
