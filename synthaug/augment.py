"""Class rebalancing: the synthetic share of each category of one column (pipeline key `augment`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthaug.config.pipeline import BalanceConfig
from synthaug.errors import BadInput
from synthaug.schema import Schema


def balance_shares(balance: BalanceConfig, schema: Schema, train: pd.DataFrame) -> dict[Any, float]:
    """Category -> weight of the synthetic rows, from the strategy and the real class counts."""
    col = balance.column
    if col not in schema.names:
        raise BadInput(f"augment.balance.column '{col}' is not a column; columns are: {', '.join(schema.names)}")
    spec = schema.column(col)
    if spec.kind not in ("categorical", "boolean"):
        raise BadInput(f"augment.balance.column '{col}' is {spec.kind}; rebalancing needs a categorical or boolean column")
    counts = train[col].value_counts()
    categories = list(spec.categories or [])
    return shares_for(balance, categories, {c: int(counts.get(c, 0)) for c in categories})


def shares_for(balance: BalanceConfig, categories: list[Any], counts: dict[Any, int]) -> dict[Any, float]:
    """The strategy applied to real class counts (tables and images alike)."""
    col = balance.column
    if balance.strategy == "ratios":
        if not balance.ratios:
            raise BadInput("augment.balance.ratios is empty; give {category: share, ...} or use strategy: equalize")
        by_name = {str(c): c for c in categories}
        unknown = [k for k in balance.ratios if k not in by_name]
        if unknown:
            raise BadInput(f"augment.balance.ratios: '{unknown[0]}' is not a category of '{col}'; categories: {categories}")
        if any(v < 0 for v in balance.ratios.values()) or sum(balance.ratios.values()) <= 0:
            raise BadInput("augment.balance.ratios: shares must be >= 0 and not all 0")
        return {by_name[k]: float(v) for k, v in balance.ratios.items() if v > 0}
    if balance.ratios:
        raise BadInput(f"augment.balance.ratios is only read with strategy: ratios (strategy is {balance.strategy})")
    if balance.strategy == "complement":
        top = max(counts.get(c, 0) for c in categories)
        deficit = {c: float(top - counts.get(c, 0)) for c in categories}
        if sum(deficit.values()) > 0:
            return {c: d for c, d in deficit.items() if d > 0}
    return {c: 1.0 for c in categories}


def reweight(real: pd.DataFrame, column: str, shares: dict[Any, float], seed: int) -> pd.DataFrame:
    """Real rows resampled (with replacement) to the synthetic class shares: the fair reference
    for fidelity metrics when the synthetic classes were rebalanced on purpose."""
    rng = np.random.default_rng(seed)
    total = sum(shares.values())
    parts = []
    for category, weight in shares.items():
        rows = real[real[column] == category]
        k = int(round(len(real) * weight / total))
        if len(rows) and k:
            parts.append(rows.iloc[rng.integers(0, len(rows), k)])
    return pd.concat(parts, ignore_index=True) if parts else real
