"""The public Python API: dir(synthaug), in-memory evaluate, stable pandas dtypes across batches."""

import numpy as np
import pandas as pd
import pyarrow as pa

import synthaug
from synthaug.generators.tabular.base import to_pandas


def test_dir_lists_the_public_api():
    assert {"run_pipeline", "evaluate", "load_generator", "get_generator", "load_config", "__version__"} <= set(dir(synthaug))
    assert synthaug.__version__.count(".") == 2


def test_evaluate_in_memory_passes_real_rows_and_fails_copies(penguins_table):
    # Setup: three disjoint thirds of the real table
    order = np.random.default_rng(0).permutation(penguins_table.num_rows)
    train, holdout, fresh = (penguins_table.take(np.sort(part)) for part in np.array_split(order, 3))
    gates = {"dcr_share_max": 0.6, "exact_match_excess_max": 0.02, "mia_auc_max": 0.6}

    # Run
    honest = synthaug.evaluate(train, fresh, holdout=holdout, gates=gates)
    copies = synthaug.evaluate(train, train, holdout=holdout, gates=gates)

    # Assert
    assert honest["passed"], [g for g in honest["gates"] if not g["passed"]]
    failed = {g["name"] for g in copies["gates"] if not g["passed"]}
    assert {"dcr_share_max", "exact_match_excess_max", "mia_auc_max"} <= failed


def test_pandas_batches_keep_their_dtypes():
    # An int column with a null in one batch only: both batches stay Int64 (not float64 in one).
    with_null = pa.table({"n": pa.array([1, None, 3], pa.int64()), "b": pa.array([True, None, False])})
    without = pa.table({"n": pa.array([4, 5, 6], pa.int64()), "b": pa.array([True, True, False])})
    a, b = to_pandas(with_null), to_pandas(without)
    assert a.dtypes.to_dict() == b.dtypes.to_dict() == {"n": pd.Int64Dtype(), "b": pd.BooleanDtype()}
    assert a["n"].isna().tolist() == [False, True, False]
