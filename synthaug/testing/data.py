"""Tiny data per modality, built in code so the checks need no data file and run anywhere."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def tiny_table(n: int = 120, seed: int = 0) -> pa.Table:
    """A small mixed-type table with every column kind (an id, nulls, a date, a bool).

    Built in code, so the checks need no data file and run anywhere.
    """
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], size=n, p=[0.45, 0.35, 0.2])
    island = np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen", "Biscoe"], size=n))
    base = np.select([species == "Adelie", species == "Gentoo"], [39.0, 47.5], 49.0)
    length = np.round(base + rng.normal(0, 2.5, n), 1)
    length_mask = rng.random(n) < 0.1
    sex = rng.choice(["female", "male"], size=n).astype(object)
    sex[rng.random(n) < 0.05] = None
    days = rng.integers(0, 365, n).astype("int64") * 86_400
    return pa.table(
        {
            "row_id": pa.array(np.arange(1, n + 1), pa.int64()),
            "species": pa.array(species.tolist(), pa.string()),
            "island": pa.array(island.tolist(), pa.string()),
            "length_mm": pa.array(length, pa.float64(), mask=length_mask),
            "count": pa.array(rng.integers(1, 21, n), pa.int64()),
            "tagged": pa.array(rng.random(n) < 0.3, pa.bool_()),
            "sex": pa.array(sex.tolist(), pa.string()),
            "seen": pa.array(days + 1_577_836_800, pa.int64()).cast(pa.timestamp("s")),
        }
    )
