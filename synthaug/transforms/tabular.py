"""Reversible encoding of a mixed-type table into a float matrix, and back.

Numeric columns (continuous, integer, datetime ticks) use mode-specific normalisation
(as in CTGAN): a Bayesian Gaussian mixture is fit on a bounded subsample, each value is
represented by its most likely mode (one-hot) and its offset inside that mode (a scalar in
[-1, 1]). Categoricals and booleans are one-hot, every category kept. Columns with nulls get
a two-way null indicator (NaN and +-inf count as missing). Ids are not modelled (new unique
ids are made on decode) and constants are re-emitted. `decode` restores the exact Arrow types
of the source (float16 included).

Integer and timestamp columns never pass through float64 as whole values: the mixture sees
offsets from an integer origin, and decoding adds them back in integer arithmetic, so int64
near its limits and uint64 above 2**63 come back exact when their spread is moderate. Pass
an Arrow table to `fit`/`encode` to keep integer columns with nulls exact too (pandas turns
them into float64).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthaug.schema import ColumnSpec, Schema

MAX_MODES = 10
GMM_SUBSAMPLE = 5000
MIN_MODE_WEIGHT = 0.005


@dataclass(frozen=True)
class Span:
    """A slice of the encoded matrix: one scalar ('value') or a one-hot group ('softmax')."""

    column: str
    kind: str  # "value" | "softmax"
    start: int
    width: int
    role: str  # "offset", "mode", "category" or "null"

    @property
    def stop(self) -> int:
        return self.start + self.width


# -- numbers as the model sees them ----------------------------------------------------
# Integer and timestamp columns stay exact end to end: values become order-preserving uint64
# keys (int64 with its sign bit flipped), the model sees float offsets from an integer origin
# (the fit data's minimum), and decoding adds the rounded offset back in integer arithmetic,
# clipped to the bounds. Float columns are divided by a power of two (exact) only when their
# magnitude would overflow or vanish in the mixture fit (+-1e308, 1e-30).
_SIGN = np.uint64(1 << 63)


def _base_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _is_exact(t: pa.DataType) -> bool:
    t = _base_type(t)
    return pa.types.is_integer(t) or pa.types.is_timestamp(t)


def _signed(t: pa.DataType) -> bool:
    t = _base_type(t)
    return pa.types.is_timestamp(t) or pa.types.is_signed_integer(t)


def _key(value: int, signed: bool) -> int:
    return value + (1 << 63) if signed else value


def _type_range(t: pa.DataType) -> tuple[int, int]:
    t = _base_type(t)
    info = np.iinfo(np.int64 if pa.types.is_timestamp(t) else t.to_pandas_dtype())
    return int(info.min), int(info.max)


def _key_bounds(spec: ColumnSpec, t: pa.DataType) -> tuple[int, int]:
    """The column's [min, max] as keys, clamped to what its Arrow type can hold."""
    tmin, tmax = _type_range(t)
    lo = tmin if spec.min is None else math.ceil(spec.min)
    hi = tmax if spec.max is None else math.floor(spec.max)
    lo, hi = min(max(lo, tmin), tmax), min(max(hi, tmin), tmax)
    return _key(lo, _signed(t)), _key(hi, _signed(t))


def _int_arrow(values: Any, t: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """An integer or timestamp column as int64/uint64 Arrow values (ticks for timestamps), exactly."""
    base = _base_type(t)
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = _series_to_arrow(values, base)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values.cast(pa.int64() if _signed(base) else pa.uint64())


def _series_to_arrow(values: pd.Series, t: pa.DataType) -> pa.Array:
    if pd.api.types.is_float_dtype(values.dtype):
        # pandas turns an integer column with nulls into float64: exact below 2**53, no better above.
        f = values.to_numpy(dtype=float, na_value=np.nan)
        null = ~np.isfinite(f)
        tmin, tmax = _type_range(t)
        f = np.clip(np.round(np.where(null, 0.0, f)), _float_within(tmin, up=True), _float_within(tmax, up=False))
        return pa.array(f.astype(np.int64 if _signed(t) else np.uint64), mask=null)
    if pa.types.is_timestamp(t):
        return pa.array(values, type=t, from_pandas=True)
    return pa.Array.from_pandas(values)


def _float_within(v: int, up: bool) -> float:
    """The double nearest to integer `v` on its inner side (float(2**63 - 1) would be 2**63)."""
    f = float(v)
    if (up and int(f) < v) or (not up and int(f) > v):
        f = math.nextafter(f, math.inf if up else -math.inf)
    return f


def _keys(values: Any, t: pa.DataType) -> tuple[np.ndarray, np.ndarray]:
    """Order-preserving uint64 keys of an integer/timestamp column, and its null mask."""
    arr = _int_arrow(values, t)
    null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    raw = np.ascontiguousarray(arr.fill_null(0).to_numpy())
    keys = raw.view(np.uint64) ^ _SIGN if _signed(t) else raw.astype(np.uint64)
    return keys, null


def _plain_float_range(low: int, span: int) -> bool:
    """True when every value in [low, low + span] is exact as a float64 (|x| <= 2**53)."""
    return -(2**53) <= low and low + span <= 2**53


def _offsets(keys: np.ndarray, origin_key: int) -> np.ndarray:
    """keys - origin as floats, computed in integer space (no wrap-around either side)."""
    o = np.uint64(origin_key)
    with np.errstate(over="ignore"):
        return np.where(keys >= o, (keys - o).astype(float), -(o - keys).astype(float))


def _keys_from_offsets(d: np.ndarray, origin_key: int, lo_key: int, hi_key: int) -> np.ndarray:
    """Whole float offsets -> keys origin + d, clipped to [lo_key, hi_key] in integer space."""
    d = np.where(np.isfinite(d), d, 0.0)
    mag = np.minimum(np.abs(d), _float_within(2**64 - 1, up=False)).astype(np.uint64)
    o = np.uint64(origin_key)
    up = o + np.minimum(mag, np.uint64(max(hi_key - origin_key, 0)))
    down = o - np.minimum(mag, np.uint64(max(origin_key - lo_key, 0)))
    return np.clip(np.where(d >= 0, up, down), np.uint64(lo_key), np.uint64(hi_key))


def _from_keys(keys: np.ndarray, signed: bool) -> np.ndarray:
    return (keys ^ _SIGN).view(np.int64) if signed else keys


def _floats(values: Any) -> np.ndarray:
    """A float column as float64; nulls, NaN and +-inf -> NaN (inf counts as missing)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        out = values.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float, copy=True)
    else:
        out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan).copy()
    out[~np.isfinite(out)] = np.nan
    return out


def _float_scale(observed: np.ndarray) -> float:
    """1.0, or a power of two bringing extreme magnitudes near 1 (exact in both directions)."""
    m = float(np.max(np.abs(observed))) if observed.size else 0.0
    if m == 0.0:
        return 1.0
    e = math.frexp(m)[1]  # m < 2**e
    return math.ldexp(1.0, e - 1) if e > 64 or e < -16 else 1.0  # 2**1024 itself would overflow


def _fit_modes(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.mixture import BayesianGaussianMixture

    rng = np.random.default_rng(seed)
    if len(x) > GMM_SUBSAMPLE:
        x = rng.choice(x, GMM_SUBSAMPLE, replace=False)
    n_unique = len(np.unique(x))
    span = float(x.max() - x.min()) or 1.0
    floor = 1e-3 * span
    if n_unique <= 1:
        return np.array([x[0]]), np.array([floor]), np.array([1.0])
    gmm = BayesianGaussianMixture(
        n_components=min(MAX_MODES, n_unique),
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=0.001,
        max_iter=200,
        random_state=seed,
    )
    with warnings.catch_warnings():  # a non-converged fit still gives usable modes
        warnings.simplefilter("ignore")
        gmm.fit(x.reshape(-1, 1))
    keep = gmm.weights_ > MIN_MODE_WEIGHT
    means = gmm.means_[keep, 0]
    stds = np.maximum(np.sqrt(gmm.covariances_[keep, 0, 0]), floor)
    weights = gmm.weights_[keep] / gmm.weights_[keep].sum()
    order = np.argsort(means)
    return means[order], stds[order], weights[order]


class TabularEncoder:
    """fit(df, schema) -> encode(df) -> float32 matrix -> decode(matrix) -> Arrow table."""

    def __init__(self) -> None:
        self._arrow: pa.Schema | None = None
        self.schema: Schema | None = None
        self.columns: dict[str, dict[str, Any]] = {}
        self.spans: list[Span] = []

    # -- fitting -----------------------------------------------------------------
    def fit(self, data: pd.DataFrame | pa.Table, schema: Schema, seed: int = 0) -> TabularEncoder:
        """Learn per-column state from `data` (a DataFrame, or an Arrow table: then integers with
        nulls stay exact, where pandas would have made them float64)."""
        self.schema = schema
        self._arrow = schema.arrow_schema()
        self.columns = {}
        for i, spec in enumerate(schema.columns):
            state: dict[str, Any] = {"has_nulls": spec.null_rate > 0}
            if spec.is_numeric:
                self._fit_numeric(spec, _column(data, spec.name), state, seed + i)
            elif spec.kind in ("categorical", "boolean"):
                state["categories"] = list(spec.categories or [])
            self.columns[spec.name] = state
        self._build_spans()
        return self

    def _fit_numeric(self, spec: ColumnSpec, values: Any, state: dict[str, Any], seed: int) -> None:
        t = self._arrow.field(spec.name).type
        if _is_exact(t):
            keys, null = _keys(values, t)
            low = int(keys[~null].min()) if (~null).any() else _key_bounds(spec, t)[0]
            high = int(keys[~null].max()) if (~null).any() else low
            state["origin"] = low - (1 << 63) if _signed(t) else low  # the fit data's minimum
            if spec.kind != "datetime" and _plain_float_range(state["origin"], high - low):
                state["origin"] = 0  # floats hold these integers exactly: model the values themselves
        else:
            x = _floats(values)
            state["scale"] = _float_scale(x[~np.isnan(x)])
        x = self._model_values(spec, values, state)
        observed = x[~np.isnan(x)]
        if not observed.size:  # all missing in this split: one mode at the origin
            observed = np.zeros(1)
        means, stds, weights = _fit_modes(observed, seed)
        state.update(means=means.tolist(), stds=stds.tolist(), weights=weights.tolist(), fill=float(np.median(observed)))

    def _model_values(self, spec: ColumnSpec, values: Any, state: dict[str, Any]) -> np.ndarray:
        """A numeric column in model units (offsets from the origin, or scaled floats); NaN = missing."""
        t = self._arrow.field(spec.name).type
        if _is_exact(t):
            keys, null = _keys(values, t)
            x = _offsets(keys, _key(int(state.get("origin", 0)), _signed(t)))
            x[null] = np.nan
            return x
        return _floats(values) / float(state.get("scale", 1.0))

    def _build_spans(self) -> None:
        spans, pos = [], 0

        def add(column: str, kind: str, width: int, role: str) -> None:
            nonlocal pos
            spans.append(Span(column, kind, pos, width, role))
            pos += width

        assert self.schema is not None
        for spec in self.schema.columns:
            state = self.columns[spec.name]
            if spec.is_numeric:
                add(spec.name, "value", 1, "offset")
                add(spec.name, "softmax", len(state["means"]), "mode")
            elif spec.kind in ("categorical", "boolean"):
                add(spec.name, "softmax", len(state["categories"]), "category")
            if state["has_nulls"] and spec.kind != "id":
                add(spec.name, "softmax", 2, "null")
        self.spans = spans

    @property
    def width(self) -> int:
        return self.spans[-1].stop if self.spans else 0

    def spans_of(self, column: str) -> list[Span]:
        return [s for s in self.spans if s.column == column]

    # -- encoding ----------------------------------------------------------------
    def encode(self, data: pd.DataFrame | pa.Table) -> np.ndarray:
        assert self.schema is not None, "fit the encoder first"
        out = np.zeros((len(data), self.width), dtype=np.float32)
        rows = np.arange(len(data))
        for spec in self.schema.columns:
            spans = {s.role: s for s in self.spans_of(spec.name)}
            if not spans:
                continue
            state = self.columns[spec.name]
            values = _column(data, spec.name)
            missing = _missing(values)
            if "offset" in spans:
                x = self._model_values(spec, values, state)
                missing = np.isnan(x)  # inf counts as missing too
                mode, offset = self._modes(state, np.where(missing, state["fill"], x))
                s = spans["offset"]
                out[:, s.start] = offset
                out[rows, s.start + 1 + mode] = 1.0  # the mode span follows the offset
            if "category" in spans:
                idx = pd.Index(state["categories"]).get_indexer(_objects(values)).astype(np.int64)
                seen = idx >= 0  # unseen and null rows stay all-zero here
                out[rows[seen], spans["category"].start + idx[seen]] = 1.0
            if "null" in spans:
                out[rows, spans["null"].start + missing.astype(np.int64)] = 1.0
        return out

    @staticmethod
    def _modes(state: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means, stds = np.asarray(state["means"]), np.asarray(state["stds"])
        log_w = np.log(np.asarray(state["weights"]))
        z = (x[:, None] - means[None, :]) / stds[None, :]
        log_post = log_w[None, :] - np.log(stds)[None, :] - 0.5 * z**2
        mode = np.argmax(log_post, axis=1)
        offset = np.clip(z[np.arange(len(x)), mode] / 4.0, -1.0, 1.0)
        return mode, offset.astype(np.float32)

    # -- decoding ----------------------------------------------------------------
    def decode(self, matrix: np.ndarray, *, start_index: int = 0) -> pa.Table:
        """Encoded rows -> Arrow table with the source's exact schema.

        One-hot groups are read by argmax, so callers pass sampled one-hots or probabilities.
        `start_index` numbers the rows globally so regenerated ids stay unique across batches.
        """
        assert self.schema is not None, "fit the encoder first"
        arrow_schema = self.schema.arrow_schema()
        n = len(matrix)
        arrays = []
        for spec in self.schema.columns:
            field = arrow_schema.field(spec.name)
            spans = {s.role: s for s in self.spans_of(spec.name)}
            null = np.zeros(n, dtype=bool)
            if "null" in spans:
                s = spans["null"]
                null = matrix[:, s.start : s.stop].argmax(axis=1) == 1
            arrays.append(self._decode_column(spec, field, matrix, spans, null, start_index))
        return pa.Table.from_arrays(arrays, schema=arrow_schema)

    def _decode_column(self, spec, field, matrix, spans, null, start_index) -> pa.Array:
        n = len(matrix)
        state = self.columns[spec.name]
        if spec.kind == "constant":
            if pa.types.is_timestamp(_base_type(field.type)):  # ticks of spec.unit (ns in older schemas)
                return _to_arrow(np.full(n, spec.value, dtype=np.int64), field.type, null, ticks_unit=spec.unit or "ns")
            return _to_arrow(np.full(n, spec.value, dtype=object), field.type, null)
        if spec.kind == "id":
            return self.new_ids(spec.name, start_index, n)
        if spec.kind in ("categorical", "boolean"):
            s = spans["category"]
            cats = np.asarray(state["categories"], dtype=object)
            return _to_arrow(cats[matrix[:, s.start : s.stop].argmax(axis=1)], field.type, null)
        return self._decode_numeric(spec, field.type, matrix, spans, null)

    def _decode_numeric(self, spec: ColumnSpec, t: pa.DataType, matrix: np.ndarray, spans, null: np.ndarray) -> pa.Array:
        state = self.columns[spec.name]
        s_off, s_mode = spans["offset"], spans["mode"]
        mode = matrix[:, s_mode.start : s_mode.stop].argmax(axis=1)
        offset = np.clip(matrix[:, s_off.start], -1.0, 1.0).astype(float)
        x = offset * 4.0 * np.asarray(state["stds"])[mode] + np.asarray(state["means"])[mode]
        if _is_exact(t):
            step = (spec.step or 1) if spec.kind == "datetime" else 1
            x = np.round(x / step) * step  # the origin sits on the step grid: it is a data value
            lo_key, hi_key = _key_bounds(spec, t)
            keys = _keys_from_offsets(x, _key(int(state.get("origin", 0)), _signed(t)), lo_key, hi_key)
            return _to_arrow(_from_keys(keys, _signed(t)), t, null)
        with np.errstate(over="ignore", invalid="ignore"):
            x = x * float(state.get("scale", 1.0))
            x = np.clip(x, -np.inf if spec.min is None else spec.min, np.inf if spec.max is None else spec.max)
            if spec.kind == "integer":
                x = np.round(x)
            elif spec.decimals is not None:  # doubles above 2**52 have no digits after the point anyway
                x = np.where(np.abs(x) < 2.0**52, np.round(x, spec.decimals), x)
        return _to_arrow(x, t, null)

    def new_ids(self, column: str, start: int, n: int) -> pa.Array:
        from synthaug.generators.sampling import new_ids

        return new_ids(self.schema.column(column), self.schema.arrow_schema().field(column).type, start, n)

    # -- state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"columns": self.columns}

    @classmethod
    def from_state(cls, state: dict[str, Any], schema: Schema) -> TabularEncoder:
        enc = cls()
        enc.schema, enc.columns = schema, state["columns"]
        enc._arrow = schema.arrow_schema()
        enc._build_spans()
        return enc


def _column(data: pd.DataFrame | pa.Table, name: str) -> Any:
    return data.column(name) if isinstance(data, pa.Table) else data[name]


def _missing(values: Any) -> np.ndarray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return np.asarray(values.is_null(nan_is_null=True).to_numpy(zero_copy_only=False), dtype=bool)
    return values.isna().to_numpy()


def _objects(values: Any) -> np.ndarray:
    """Values as Python objects, so categories compare exactly (no int -> float detour)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return np.asarray(values.to_pandas(integer_object_nulls=True).to_numpy(dtype=object))
    return values.to_numpy(dtype=object)


def _to_arrow(values: np.ndarray, t: pa.DataType, null: np.ndarray, ticks_unit: str | None = None) -> pa.Array:
    """Values -> Arrow array of type `t`, with `null` rows set to null."""
    mask = null if null.any() else None
    if pa.types.is_timestamp(t):
        ticks = pa.array(values.astype(np.int64), type=pa.int64(), mask=mask)
        return ticks.cast(pa.timestamp(ticks_unit or t.unit, tz=t.tz)).cast(t)
    if pa.types.is_dictionary(t):
        dense = _to_arrow(values, t.value_type, null, ticks_unit)
        return dense.dictionary_encode().cast(t)
    if pa.types.is_integer(t):
        if values.dtype == object:  # Python ints (categories, constants): exact at any size
            return pa.array(values.tolist(), type=t, mask=mask)
        return pa.array(values, mask=mask).cast(t)
    if pa.types.is_boolean(t):
        return pa.array(values.astype(bool), mask=mask)
    if pa.types.is_floating(t):
        return pa.array(values.astype(float), mask=mask).cast(t)
    return pa.array(values.tolist(), type=t, mask=mask)
