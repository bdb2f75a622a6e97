"""A small numeric encoding of mixed tabular data, for distances and classifiers.

Numeric kinds (continuous, integer, datetime as seconds) are min-max scaled by the fitted data
(computed on halves, so a column spanning -1e308..1e308 does not overflow to an infinite span);
nulls and +-inf are imputed with the median plus a null indicator. Id and constant columns carry
no signal and are dropped.

Categorical and boolean columns with at most `max_one_hot` levels (nulls are a level of their
own) are one-hot; unseen values encode as all zeros. With ``categorical="ordinal"`` (for
HistGradientBoosting's native categorical splits, and trees) each such column is instead one
column of level codes 0..levels-1 (unseen values NaN); `categorical_features` marks them.

Wider columns -- free-text-like columns with thousands of values -- would make every metric
slow (a 4,700-level column made the detection, TSTR and distance matrices ~5,000 wide: 375-555 s
of validation for 10k rows), so they are encoded with a bounded width, chosen by
`high_cardinality`:

- ``"frequency"`` (classifiers: detection, TSTR): the `top_levels` most frequent values one-hot,
  one "other" column for every remaining (or unseen) value (ordinal: one code column, "other"
  being code `top_levels`), and the value's log-frequency in the fitted data scaled to [0, 1]
  (0 for unseen values). Trees split on frequency to tell common from rare or invented values;
  callers add a cross-fitted target encoding where the label is known (see
  `synthaug.validation.fidelity`).
- ``"hash"`` (distances: DCR, NNDR, membership inference): each value -- nulls and values never
  seen in the fitted data included -- maps to a fixed pseudo-random unit vector in `hash_dims`
  dimensions, derived from a stable hash of its string key (one-hot rows are unit vectors too).
  Equal values are at distance exactly 0 and distinct values at about sqrt(2), the one-hot
  distance (with 64 dims even the nearest of thousands of other values is about 1.0 away),
  whatever the number of levels, so nearest-neighbour distances keep their exact-match meaning.
  A frequency rank would not: it puts rare values next to each other for no reason. The
  encoding needs no fitted vocabulary, so a value seen only in the holdout (or only in the
  synthetic data) is treated exactly like any other distinct value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from synthaug.errors import BadInput
from synthaug.schema import Schema

_NULL = "\x00null"  # the level nulls get in one-hot columns
# Scaled numeric values are clipped here, so a wild synthetic value (1e308 against a 0..1 real
# range) stays finite in float32 and in squared distances, and still sits far from every real row.
_CLIP = 1e3


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


def scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """(v - low) / (high - low), computed on halves so +-1e308 columns neither overflow nor
    collapse to 0; a constant range scales by 1. Results are clipped to +-`_CLIP`."""
    half_span = high / 2 - low / 2
    if not half_span > 0:
        half_span = 0.5  # (v - low) / 1
    with np.errstate(over="ignore", invalid="ignore"):
        out = (values / 2 - low / 2) / half_span
    return np.clip(out, -_CLIP, _CLIP)


def _unit_vector(key: str, dims: int) -> np.ndarray:
    """A pseudo-random unit vector fixed by the key (stable across processes and versions)."""
    seed = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dims)
    return v / np.linalg.norm(v)


@dataclass
class _Numeric:
    name: str
    kind: str
    low: float
    high: float
    fill: float
    has_nulls: bool

    @property
    def width(self) -> int:
        return 1 + self.has_nulls

    def feature_names(self) -> list[str]:
        return [self.name] + ([f"{self.name} (missing)"] if self.has_nulls else [])


@dataclass
class _OneHot:
    name: str
    levels: list[str]

    @property
    def width(self) -> int:
        return len(self.levels)

    def feature_names(self) -> list[str]:
        return [f"{self.name} = {'(missing)' if v == _NULL else v}" for v in self.levels]


@dataclass
class _Ordinal:
    name: str
    levels: list[str]

    @property
    def width(self) -> int:
        return 1

    def feature_names(self) -> list[str]:
        return [self.name]


@dataclass
class _Frequency:
    """Top levels one-hot (or one code column) + "other" + scaled log-frequency."""

    name: str
    top: list[str]
    counts: dict[str, int]
    rows: int
    ordinal: bool = False

    @property
    def width(self) -> int:
        return 2 if self.ordinal else len(self.top) + 2

    def feature_names(self) -> list[str]:
        if self.ordinal:
            return [self.name, f"{self.name} (frequency)"]
        return [f"{self.name} = {'(missing)' if v == _NULL else v}" for v in self.top] + [
            f"{self.name} = (other)",
            f"{self.name} (frequency)",
        ]


@dataclass
class _Hashed:
    name: str
    dims: int

    @property
    def width(self) -> int:
        return self.dims

    def feature_names(self) -> list[str]:
        return [f"{self.name} (hash {i})" for i in range(self.dims)]


_Part = _Numeric | _OneHot | _Ordinal | _Frequency | _Hashed


@dataclass
class MixedEncoder:
    """Fit on real data; `transform` gives a float32 matrix (rows x features).

    `max_one_hot`: categorical columns with at most this many levels are fully one-hot, or one
    code column with ``categorical="ordinal"`` (the width stays at most `max_one_hot` per column;
    the default keeps everything up to 200 levels exact; at most 254 with "ordinal", the
    HistGradientBoosting limit). Wider ones are encoded as `high_cardinality` says (see the
    module docstring): ``"frequency"`` uses `top_levels` + 2 features (2 with "ordinal"),
    ``"hash"`` uses `hash_dims`.
    """

    schema: Schema
    exclude: tuple[str, ...] = ()
    max_one_hot: int = 200
    high_cardinality: Literal["frequency", "hash"] = "frequency"
    categorical: Literal["one_hot", "ordinal"] = "one_hot"
    top_levels: int = 30
    hash_dims: int = 64
    parts_: list[_Part] = field(default_factory=list, init=False)

    def fit(self, df: pd.DataFrame) -> MixedEncoder:
        if self.high_cardinality not in ("frequency", "hash"):
            raise ValueError(f"high_cardinality must be 'frequency' or 'hash', not {self.high_cardinality!r}")
        if self.categorical not in ("one_hot", "ordinal"):
            raise ValueError(f"categorical must be 'one_hot' or 'ordinal', not {self.categorical!r}")
        ordinal = self.categorical == "ordinal"
        if ordinal and max(self.max_one_hot, self.top_levels + 1) > 254:
            raise ValueError("with categorical='ordinal', max_one_hot and top_levels + 1 must be at most 254")
        self.parts_ = []
        for name in modelled_columns(self.schema, self.exclude):
            if name not in df.columns:
                raise BadInput(f"column '{name}' from the schema is not in the data; columns there are: {', '.join(df.columns)}")
            kind = self.schema.column(name).kind
            if kind in ("continuous", "integer", "datetime"):
                v = as_float(df[name], kind)
                ok = v[np.isfinite(v)]
                low, high = (float(ok.min()), float(ok.max())) if ok.size else (0.0, 1.0)
                fill = float(np.median(ok)) if ok.size else 0.0
                self.parts_.append(_Numeric(name, kind, low, high, fill, bool(ok.size < len(v))))
                continue
            counts = as_keys(df[name]).value_counts(sort=False)
            if len(counts) <= self.max_one_hot:
                self.parts_.append((_Ordinal if ordinal else _OneHot)(name, sorted(counts.index)))
            elif self.high_cardinality == "hash":
                self.parts_.append(_Hashed(name, self.hash_dims))
            else:
                # Most frequent first; ties by value, so the choice does not depend on row order.
                ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                top = [k for k, _ in ranked[: self.top_levels]]
                self.parts_.append(_Frequency(name, top, {k: int(c) for k, c in counts.items()}, len(df), ordinal))
        return self

    @property
    def n_features(self) -> int:
        return sum(p.width for p in self.parts_)

    @property
    def feature_names(self) -> list[str]:
        """One readable name per output column ("amount", "amount (missing)", "island = Dream" ...)."""
        return [n for p in self.parts_ for n in p.feature_names()]

    @property
    def feature_columns(self) -> list[str]:
        """The source column of each output column (for grouping importances by column)."""
        return [p.name for p in self.parts_ for _ in range(p.width)]

    @property
    def categorical_features(self) -> np.ndarray:
        """Per output column: True for level-code columns (HistGradientBoosting `categorical_features`)."""
        return np.array(
            [isinstance(p, _Ordinal) or (isinstance(p, _Frequency) and p.ordinal and i == 0) for p in self.parts_ for i in range(p.width)],
            dtype=bool,
        )

    @property
    def high_cardinality_columns(self) -> list[str]:
        """Columns encoded with a bounded width instead of a full one-hot."""
        return [p.name for p in self.parts_ if isinstance(p, _Frequency | _Hashed)]

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(df), self.n_features), dtype=np.float32)
        j = 0
        for p in self.parts_:
            if isinstance(p, _Numeric):
                v = as_float(df[p.name], p.kind)
                null = ~np.isfinite(v)
                out[:, j] = scale(np.where(null, p.fill, v), p.low, p.high)
                if p.has_nulls:
                    out[:, j + 1] = null
            elif isinstance(p, _OneHot):
                # int64: pandas codes are int8 for few levels, and j + int8 overflows past column 127.
                codes = pd.Categorical(as_keys(df[p.name]), categories=p.levels).codes.astype(np.int64)
                seen = codes >= 0  # unseen values stay all-zero
                out[np.flatnonzero(seen), j + codes[seen]] = 1.0
            elif isinstance(p, _Ordinal):
                codes = pd.Categorical(as_keys(df[p.name]), categories=p.levels).codes.astype(np.float32)
                out[:, j] = np.where(codes >= 0, codes, np.nan)  # unseen: missing
            elif isinstance(p, _Frequency):
                keys = as_keys(df[p.name])
                codes = pd.Categorical(keys, categories=p.top).codes.astype(np.int64)
                codes[codes < 0] = len(p.top)  # the "other" level
                if p.ordinal:
                    out[:, j] = codes
                else:
                    out[np.arange(len(df)), j + codes] = 1.0
                count = keys.map(p.counts).fillna(0).to_numpy(dtype=np.float64)
                out[:, j + p.width - 1] = np.log1p(count) / np.log1p(max(p.rows, 1))
            else:
                keys = as_keys(df[p.name])
                uniques, inverse = np.unique(keys.to_numpy(dtype=str), return_inverse=True)
                vectors = np.array([_unit_vector(k, p.dims) for k in uniques]).reshape(len(uniques), p.dims)
                out[:, j : j + p.dims] = vectors[inverse.reshape(-1)]
            j += p.width
        return out

    def fit_transform(self, df: pd.DataFrame) -> np.ndarray:
        return self.fit(df).transform(df)
