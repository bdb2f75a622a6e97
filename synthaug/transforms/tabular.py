"""Reversible encoding of a mixed-type table into a float matrix, and back.

Numeric columns (continuous, integer, datetime ticks) use mode-specific normalisation
(as in CTGAN): a Bayesian Gaussian mixture is fit on a bounded subsample, each value is
represented by its most likely mode (one-hot) and its offset inside that mode (a scalar in
[-1, 1]). Categoricals and booleans are one-hot, every category kept. Columns with nulls get
a two-way null indicator. Ids are not modelled (new unique ids are made on decode) and
constants are re-emitted. `decode` restores the exact Arrow types of the source.
"""

from __future__ import annotations

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


def _numeric(spec: ColumnSpec, values: pd.Series) -> np.ndarray:
    """Column -> float array (datetimes as integer ticks of their unit); nulls and inf -> NaN."""
    if spec.kind == "datetime":
        ticks = pa.array(values, type=pa.timestamp(spec.unit, tz=spec.tz)).cast(pa.int64())
        return ticks.to_numpy(zero_copy_only=False).astype(float)
    out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out[~np.isfinite(out)] = np.nan
    return out


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
        self.schema: Schema | None = None
        self.columns: dict[str, dict[str, Any]] = {}
        self.spans: list[Span] = []

    # -- fitting -----------------------------------------------------------------
    def fit(self, df: pd.DataFrame, schema: Schema, seed: int = 0) -> TabularEncoder:
        self.schema = schema
        self.columns = {}
        for i, spec in enumerate(schema.columns):
            state: dict[str, Any] = {"has_nulls": spec.null_rate > 0}
            if spec.is_numeric:
                x = _numeric(spec, df[spec.name])
                observed = x[~np.isnan(x)]
                means, stds, weights = _fit_modes(observed, seed + i)
                state.update(means=means.tolist(), stds=stds.tolist(), weights=weights.tolist(), fill=float(np.median(observed)))
            elif spec.kind in ("categorical", "boolean"):
                state["categories"] = list(spec.categories or [])
            self.columns[spec.name] = state
        self._build_spans()
        return self

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
    def encode(self, df: pd.DataFrame) -> np.ndarray:
        assert self.schema is not None, "fit the encoder first"
        out = np.zeros((len(df), self.width), dtype=np.float32)
        rows = np.arange(len(df))
        for span in self.spans:
            spec = self.schema.column(span.column)
            state = self.columns[span.column]
            values = df[span.column]
            if span.role == "null":
                out[rows, span.start + values.isna().to_numpy().astype(int)] = 1.0
            elif span.role == "category":
                cats = pd.Index(state["categories"])
                idx = cats.get_indexer(values.to_numpy(dtype=object))
                seen = idx >= 0  # unseen and null rows stay all-zero here
                out[rows[seen], span.start + idx[seen]] = 1.0
            elif span.role == "offset":
                x = _numeric(spec, values)
                x = np.where(np.isnan(x), state["fill"], x)
                mode, offset = self._modes(state, x)
                out[:, span.start] = offset
                out[rows, span.start + 1 + mode] = 1.0  # the mode span follows the offset
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
            values = np.full(n, spec.value, dtype=object)
            if pa.types.is_timestamp(field.type):
                return _to_arrow(np.full(n, spec.value, dtype=np.int64), field.type, null, ticks_unit="ns")
            return _to_arrow(values, field.type, null)
        if spec.kind == "id":
            return self.new_ids(spec.name, start_index, n)
        if spec.kind in ("categorical", "boolean"):
            s = spans["category"]
            cats = np.asarray(state["categories"], dtype=object)
            return _to_arrow(cats[matrix[:, s.start : s.stop].argmax(axis=1)], field.type, null)
        # numeric kinds
        s_off, s_mode = spans["offset"], spans["mode"]
        mode = matrix[:, s_mode.start : s_mode.stop].argmax(axis=1)
        offset = np.clip(matrix[:, s_off.start], -1.0, 1.0)
        x = offset * 4.0 * np.asarray(state["stds"])[mode] + np.asarray(state["means"])[mode]
        x = np.clip(x, spec.min, spec.max)
        if spec.kind == "datetime":
            x = np.round(x / (spec.step or 1)) * (spec.step or 1)
        elif spec.kind == "integer":
            x = np.round(x)
        elif spec.decimals is not None:
            x = np.round(x, spec.decimals)
        if spec.kind == "datetime":
            return _to_arrow(x.astype(np.int64), field.type, null, ticks_unit=spec.unit)
        return _to_arrow(x, field.type, null)

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
        enc._build_spans()
        return enc


def _to_arrow(values: np.ndarray, t: pa.DataType, null: np.ndarray, ticks_unit: str | None = None) -> pa.Array:
    """Values -> Arrow array of type `t`, with `null` rows set to null."""
    mask = null if null.any() else None
    if pa.types.is_timestamp(t):
        ticks = pa.array(values.astype(np.int64), type=pa.int64(), mask=mask)
        return ticks.cast(pa.timestamp(ticks_unit or t.unit, tz=t.tz)).cast(t)
    if pa.types.is_dictionary(t):
        dense = _to_arrow(values, t.value_type, null)
        return dense.dictionary_encode().cast(t)
    if pa.types.is_integer(t):
        return pa.array(values.astype(np.int64), mask=mask).cast(t)
    if pa.types.is_boolean(t):
        return pa.array(values.astype(bool), mask=mask)
    if pa.types.is_floating(t):
        return pa.array(values.astype(float), mask=mask).cast(t)
    return pa.array(values.tolist(), type=t, mask=mask)
