"""Fidelity metrics on the bundled penguins data: quality report, detection AUC, TSTR."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pc
import pytest

from synthaug.errors import BadInput
from synthaug.schema import infer_schema
from synthaug.validation.fidelity import detection_auc, quality_report, tstr

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
    shuffled = pd.DataFrame(
        {c: train[c].sample(frac=1.0, random_state=i).to_numpy() for i, c in enumerate(train.columns)}
    )
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
