"""A small numeric encoding of mixed tabular data, for distances and classifiers.

Numeric kinds (continuous, integer, datetime as seconds) are min-max scaled by the training
data; nulls are imputed with the training median plus a null indicator. Categorical and
boolean columns are one-hot (unseen values encode as all zeros, nulls as their own level).
Id and constant columns carry no signal and are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthaug.errors import BadInput
from synthaug.schema import Schema

_NULL = "\x00null"  # the level nulls get in one-hot columns


def modelled_columns(schema: Schema, exclude: tuple[str, ...] = ()) -> list[str]:
    """Columns that carry signal: everything but id, constant and `exclude`."""
    return [c.name for c in schema.columns if c.kind not in ("id", "constant") and c.name not in exclude]


def as_float(values: pd.Series, kind: str) -> np.ndarray:
    """A numeric column as float64 (datetimes as seconds since the epoch, UTC); nulls -> NaN."""
    if kind == "datetime":
        ts = pd.to_datetime(values, utc=True)
        return ((ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def as_keys(values: pd.Series) -> pd.Series:
    """Category values as strings, so True / 'True' and int / float labels compare alike."""
    return values.astype(object).where(values.notna(), _NULL).astype(str)


@dataclass
class _Numeric:
    name: str
    kind: str
    low: float
    span: float
    fill: float
    has_nulls: bool


@dataclass
class _OneHot:
    name: str
    levels: list[str]


@dataclass
class MixedEncoder:
    """Fit on real training data; `transform` gives a float32 matrix (rows x features)."""

    schema: Schema
    exclude: tuple[str, ...] = ()
    parts_: list[_Numeric | _OneHot] = field(default_factory=list, init=False)

    def fit(self, df: pd.DataFrame) -> MixedEncoder:
        self.parts_ = []
        for name in modelled_columns(self.schema, self.exclude):
            if name not in df.columns:
                raise BadInput(f"column '{name}' from the schema is not in the data; columns there are: {', '.join(df.columns)}")
            kind = self.schema.column(name).kind
            if kind in ("continuous", "integer", "datetime"):
                v = as_float(df[name], kind)
                ok = v[~np.isnan(v)]
                low, high = (float(ok.min()), float(ok.max())) if ok.size else (0.0, 1.0)
                fill = float(np.median(ok)) if ok.size else 0.0
                self.parts_.append(_Numeric(name, kind, low, (high - low) or 1.0, fill, bool(np.isnan(v).any())))
            else:
                self.parts_.append(_OneHot(name, sorted(as_keys(df[name]).unique())))
        return self

    @property
    def n_features(self) -> int:
        return sum((1 + p.has_nulls) if isinstance(p, _Numeric) else len(p.levels) for p in self.parts_)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(df), self.n_features), dtype=np.float32)
        j = 0
        for p in self.parts_:
            if isinstance(p, _Numeric):
                v = as_float(df[p.name], p.kind)
                null = np.isnan(v)
                out[:, j] = (np.where(null, p.fill, v) - p.low) / p.span
                if p.has_nulls:
                    out[:, j + 1] = null
                j += 1 + p.has_nulls
            else:
                # int64: pandas codes are int8 for few levels, and j + int8 overflows past column 127.
                codes = pd.Categorical(as_keys(df[p.name]), categories=p.levels).codes.astype(np.int64)
                seen = codes >= 0  # unseen values stay all-zero
                out[np.flatnonzero(seen), j + codes[seen]] = 1.0
                j += len(p.levels)
        return out

    def fit_transform(self, df: pd.DataFrame) -> np.ndarray:
        return self.fit(df).transform(df)
