"""Validity: rows that could not be real, measured against the training data and the schema's rules.

- `novel_combination_rate`: share of rows holding a pair of categorical values (over every pair
  of categorical/boolean columns with at most PAIR_MAX_CATEGORIES categories each) that never occurs
  together in the training data. Unseen pairs also occur in real rows the model never saw, so the
  gated number is `novel_combination_excess` = synthetic rate - the holdout's own rate (against the
  same training rows), floored at 0. Without a holdout it is the raw synthetic rate (and
  `holdout_novel_combination_rate` is None, with a note saying so).
- `rule_violation`: share of rows breaking any hard rule of the schema (derived, inequality,
  functional dependency, allowed combinations; discovered or declared), with the rate per rule.
- `granularity_tv`: per column with a granularity rule, the total-variation distance between the
  step levels (coarsest listed step each value is a multiple of) of training and synthetic rows;
  granularity is a distribution, so it is reported, not part of `rule_violation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthaug.schema import Schema
from synthaug.schema.rules import GranularityRule, frame_of, granularity_tv, labels, rule_violations

PAIR_MAX_CATEGORIES = 100  # columns with more categories are left out of the pair search
TOP_PAIRS = 5  # the column pairs with the most novel combinations, shown in the report


def category_pairs(schema: Schema) -> list[tuple[str, str]]:
    cols = [c.name for c in schema.columns if c.kind in ("categorical", "boolean") and 2 <= len(c.categories or []) <= PAIR_MAX_CATEGORIES]
    return [(a, b) for i, a in enumerate(cols) for b in cols[i + 1 :]]


def _keys(reference: pd.Series, other: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """int64 codes of two columns over one shared vocabulary (-1 for missing)."""
    both = pd.concat([reference.astype(object), other.astype(object)], ignore_index=True)
    codes, _ = pd.factorize(both, use_na_sentinel=True)
    codes = codes.astype(np.int64)  # never narrow codes added to an offset (that overflowed before)
    return codes[: len(reference)], codes[len(reference) :]


def novel_rows(train: pd.DataFrame, data: pd.DataFrame, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, dict[str, float]]:
    """Rows of `data` with a value pair never seen in `train`, and the rate per column pair."""
    novel = np.zeros(len(data), dtype=bool)
    per_pair: dict[str, float] = {}
    for a, b in pairs:
        ta, da = _keys(train[a], data[a])
        tb, db = _keys(train[b], data[b])
        width = np.int64(max(int(tb.max(initial=-1)), int(db.max(initial=-1))) + 2)
        seen = np.unique((ta * width + tb)[(ta >= 0) & (tb >= 0)])
        present = (da >= 0) & (db >= 0)
        mask = present & ~np.isin(da * width + db, seen)
        novel |= mask
        per_pair[f"{a} x {b}"] = float(mask.mean()) if len(mask) else 0.0
    return novel, per_pair


def validity_metrics(train: pd.DataFrame, holdout: pd.DataFrame | None, synthetic: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pairs = category_pairs(schema)
    novel, per_pair = novel_rows(train, synthetic, pairs)
    rate = float(novel.mean()) if len(novel) else 0.0
    out["novel_combination_rate"] = rate
    out["pairs_checked"] = len(pairs)
    out["novel_pairs_top"] = dict(sorted(((k, v) for k, v in per_pair.items() if v > 0), key=lambda kv: -kv[1])[:TOP_PAIRS])
    if holdout is not None and len(holdout):
        hold_novel, _ = novel_rows(train, holdout, pairs)
        hold_rate = float(hold_novel.mean())
        out["holdout_novel_combination_rate"] = hold_rate
        out["novel_combination_excess"] = max(0.0, rate - hold_rate)
    else:
        out["holdout_novel_combination_rate"] = None
        out["novel_combination_excess"] = rate
        out["note"] = "no holdout: novel_combination_excess is the raw synthetic rate (real unseen rows would have some too)"
    specs = {c.name: c for c in schema.columns}
    hard = [r for r in schema.rules if r.hard]
    frame = frame_of(synthetic[schema.names])
    broken = np.zeros(len(synthetic), dtype=bool)
    per_rule: dict[str, float] = {}
    for rule, label in zip(schema.rules, labels(schema.rules)):
        if not rule.hard:
            continue
        mask = rule_violations(frame, rule, specs)
        broken |= mask
        per_rule[label] = float(mask.mean()) if len(mask) else 0.0
    out["rule_violation"] = float(broken.mean()) if len(broken) and hard else 0.0
    out["rules_checked"] = len(hard)
    out["rule_violations"] = per_rule
    real = frame_of(train[schema.names])
    tv = {}
    for rule in schema.rules:
        if isinstance(rule, GranularityRule):
            value = granularity_tv(real.floats(rule.column), frame.floats(rule.column), rule)
            if value is not None:
                tv[rule.column] = value
    out["granularity_tv"] = tv
    out["granularity_tv_max"] = max(tv.values()) if tv else None
    return out
