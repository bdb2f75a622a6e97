"""Contract checks for any tabular generator: ours, the SDV baselines, and third parties'.

Use them like scikit-learn's ``parametrize_with_checks``::

    import pytest
    from synthaug.testing import check_generator, generator_checks

    @pytest.mark.parametrize("check_name, check", generator_checks("my_family"))
    def test_contract(check_name, check):
        check()

    # or, all at once (raises AssertionError listing every failed check):
    check_generator(MyGenerator, config={"hidden": [16]})

Nothing here imports pytest: failures are plain ``AssertionError`` with a message naming the
check, the generator and what to fix. The checks share one fitted model per
``generator_checks`` call (fitted on first use), so a whole suite costs a handful of fits.

A generator that cannot be saved without pickling (the SDV baselines) sets the class
attribute ``supports_save = False``; the save check then asserts that ``save`` refuses with
``BadInput`` and writes nothing, instead of the save -> load round trip.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synthaug.errors import BadInput
from synthaug.generators.base import Generator, TrainerConfig, get_generator, load_generator, make_config
from synthaug.schema import Schema, infer_schema

__all__ = ["TINY_TRAINER", "check_generator", "generator_checks", "tiny_table"]

# A few epochs, no validation split, no progress bar: every check fits in seconds on 2 CPU cores.
TINY_TRAINER = TrainerConfig(max_epochs=3, batch_size=64, patience=0, val_fraction=0.0, progress_bar=False)
N_SAMPLE = 50  # rows per sampling check
BATCH = 20  # batch size used by the sampling checks, so several batches are exercised


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


# -- shared state ----------------------------------------------------------------
@dataclass
class _Context:
    """What the checks of one generator share: its class, the data, and one lazily fitted model."""

    target: str | type[Generator]
    data: pa.Table | pd.DataFrame | None
    config: Any
    trainer: TrainerConfig
    _fitted: Generator | None = field(default=None, repr=False)
    _fit_returned: Any = field(default=None, repr=False)
    _refit: tuple[Generator, str | None] | None = field(default=None, repr=False)
    fit_seconds: float | None = None

    @property
    def cls(self) -> type[Generator]:
        return get_generator(self.target) if isinstance(self.target, str) else self.target

    @property
    def label(self) -> str:
        return getattr(self.cls, "name", self.cls.__name__)

    @property
    def table(self) -> pa.Table:
        if self.data is None:
            return tiny_table()
        return self.data if isinstance(self.data, pa.Table) else pa.Table.from_pandas(self.data, preserve_index=False)

    @property
    def schema(self) -> Schema:
        return infer_schema(self.table)

    def new(self) -> Generator:
        return self.cls(self.config)

    def fit(self, seed: int = 0) -> tuple[Generator, Any]:
        gen = self.new()
        start = time.perf_counter()
        returned = gen.fit(self.table, self.schema, self.trainer, seed=seed)
        self.fit_seconds = round(time.perf_counter() - start, 2)
        return gen, returned

    @property
    def refitted(self) -> tuple[Generator, str | None]:
        """A second fit with seed 0 (sampled once), and what it did to the global RNGs (None: nothing)."""
        if self._refit is None:
            import torch

            np_before, torch_before = np.random.get_state()[1].copy(), torch.random.get_rng_state().clone()
            gen, _ = self.fit(seed=0)
            self.sample(gen, seed=1)
            changed = None
            if not np.array_equal(np.random.get_state()[1], np_before):
                changed = "numpy's global random state; use a local np.random.Generator or save and restore it"
            elif not torch.equal(torch.random.get_rng_state(), torch_before):
                changed = "torch's global random state; use torch.random.fork_rng or a torch.Generator"
            self._refit = (gen, changed)
        return self._refit

    @property
    def fitted(self) -> Generator:
        if self._fitted is None:
            self._fitted, self._fit_returned = self.fit(seed=0)
        return self._fitted

    def sample(self, gen: Generator | None = None, *, n: int = N_SAMPLE, seed: int = 0, conditions=None) -> pa.Table:
        gen = gen or self.fitted
        batches = list(gen.sample_tables(n, seed=seed, conditions=conditions, batch_size=BATCH))
        return pa.concat_tables(batches) if batches else pa.table({})


def _fail(ctx: _Context, check: str, message: str) -> AssertionError:
    return AssertionError(f"{ctx.label}: {check}: {message}")


def _same(a: pa.Table, b: pa.Table) -> bool:
    return a.schema.equals(b.schema) and a.equals(b)


def _schema_difference(got: pa.Schema, want: pa.Schema) -> str:
    if got.names != want.names:
        return f"columns {got.names}, want {want.names} (same names, same order)"
    for g, w in zip(got, want):
        if not g.equals(w):
            return f"column '{w.name}' is {g.type}{'' if g.nullable else ' not null'}, want {w.type}{'' if w.nullable else ' not null'}"
    return f"got {got}, want {want}"


def _first_difference(a: pa.Table, b: pa.Table) -> str:
    for name in a.column_names:
        if name in b.column_names and not a[name].equals(b[name]):
            return f"column '{name}' differs, e.g. {a[name].slice(0, 3).to_pylist()} vs {b[name].slice(0, 3).to_pylist()}"
    return f"schemas differ: {a.schema} vs {b.schema}"


# -- the checks ----------------------------------------------------------------------
def check_config(ctx: _Context) -> None:
    """Config is a pydantic model with a default for every field; unknown keys are BadInput."""
    cls = ctx.cls
    name = "config"
    for attr in ("name", "modality", "Config"):
        if not hasattr(cls, attr):
            raise _fail(ctx, name, f"class attribute '{attr}' is missing; see synthaug.generators.base.Generator")
    try:
        make_config(cls.Config, {})
    except BadInput as exc:
        raise _fail(ctx, name, f"Config() without arguments fails ({exc}); give every field a default") from None
    try:
        cls({"no_such_key_xyz": 1})
    except BadInput as exc:
        if "no_such_key_xyz" not in str(exc):
            raise _fail(ctx, name, f"the BadInput for an unknown config key does not name it: {exc}") from None
    else:
        raise _fail(ctx, name, "an unknown config key was accepted; set model_config = ConfigDict(extra='forbid')")


def check_sample_before_fit(ctx: _Context) -> None:
    """Sampling (or saving) an unfitted generator raises RuntimeError mentioning fit."""
    gen = ctx.new()
    for method in ("sample", "sample_tables"):
        if not hasattr(gen, method):
            continue
        try:
            next(iter(getattr(gen, method)(5, seed=0)))
        except RuntimeError as exc:
            if "fit" not in str(exc):
                raise _fail(ctx, "sample before fit", f"{method}() raised RuntimeError({exc!r}), which does not mention fit") from None
        except Exception as exc:
            raise _fail(ctx, "sample before fit", f"{method}() raised {type(exc).__name__}({exc}); raise RuntimeError saying to call fit") from None
        else:
            raise _fail(ctx, "sample before fit", f"{method}() on an unfitted generator returned rows; it must raise RuntimeError")


def check_fit_returns_self(ctx: _Context) -> None:
    ctx.fitted  # noqa: B018 - fits on first use
    if ctx._fit_returned is not ctx._fitted:
        raise _fail(ctx, "fit returns self", f"fit() returned {type(ctx._fit_returned).__name__}, not the generator itself")


def check_samples_match_schema(ctx: _Context) -> None:
    """Right row count and batching; Arrow schema equal to the source; values within what the data showed."""
    name = "samples match schema"
    gen = ctx.fitted
    if not hasattr(gen, "sample_tables"):
        raise _fail(ctx, name, "tabular generators must provide sample_tables(n, *, seed, conditions, batch_size) yielding Arrow tables")
    batches = list(gen.sample_tables(N_SAMPLE, seed=0, batch_size=BATCH))
    sizes = [b.num_rows for b in batches]
    if sum(sizes) != N_SAMPLE or any(s > BATCH or s == 0 for s in sizes):
        raise _fail(ctx, name, f"sample_tables({N_SAMPLE}, batch_size={BATCH}) yielded batches of {sizes} rows")
    table = pa.concat_tables(batches)
    schema = ctx.schema
    expected = schema.arrow_schema()
    if not table.schema.equals(expected, check_metadata=False):
        raise _fail(ctx, name, f"Arrow schema differs from the source's: {_schema_difference(table.schema, expected)}")
    frames = list(gen.sample(N_SAMPLE, seed=0, batch_size=BATCH))
    if not all(isinstance(f, pd.DataFrame) for f in frames) or sum(len(f) for f in frames) != N_SAMPLE:
        raise _fail(ctx, name, f"sample() must yield DataFrames totalling {N_SAMPLE} rows")
    if list(frames[0].columns) != schema.names:
        raise _fail(ctx, name, f"sample() columns {list(frames[0].columns)} are not the schema's {schema.names}")
    for spec in schema.columns:
        col = table[spec.name]
        if spec.null_rate == 0 and col.null_count:
            raise _fail(ctx, name, f"column '{spec.name}' has no nulls in the data but {col.null_count} in the samples")
        if spec.kind in ("categorical", "boolean"):
            dense = col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
            unseen = set(pc.unique(dense).drop_null().to_pylist()) - set(spec.categories or [])
            if unseen:
                raise _fail(ctx, name, f"column '{spec.name}' has values never seen in the data: {sorted(unseen, key=str)[:5]}")
        elif spec.kind == "constant":
            values = set(col.drop_null().cast(pa.int64()).to_pylist() if pa.types.is_timestamp(col.type) else col.drop_null().to_pylist())
            if values - {spec.value}:
                raise _fail(ctx, name, f"constant column '{spec.name}' has values {sorted(values, key=str)[:5]}, want only {spec.value!r}")
        elif spec.kind in ("continuous", "integer", "datetime"):
            numeric = col.cast(pa.int64()) if spec.kind == "datetime" else col
            lo, hi = pc.min(numeric).as_py(), pc.max(numeric).as_py()
            if lo is not None and (lo < spec.min or hi > spec.max):
                raise _fail(ctx, name, f"column '{spec.name}' ranges over [{lo}, {hi}], outside the data's [{spec.min}, {spec.max}]")
        elif spec.kind == "id":
            if pc.count_distinct(col).as_py() != table.num_rows:
                raise _fail(ctx, name, f"id column '{spec.name}' repeats values across the {table.num_rows} sampled rows")


def check_seeded_sampling(ctx: _Context) -> None:
    """The same seed gives identical samples (twice in a row); a different seed gives different ones."""
    a, b = ctx.sample(seed=7), ctx.sample(seed=7)
    if not _same(a, b):
        raise _fail(ctx, "seeded sampling", f"two samples with seed=7 differ ({_first_difference(a, b)}); seed every draw from the seed argument")
    c = ctx.sample(seed=8)
    if _same(a, c):
        raise _fail(ctx, "seeded sampling", "seed=7 and seed=8 gave identical samples; the seed argument is ignored")


def check_seeded_fit(ctx: _Context) -> None:
    """Fitting twice with the same seed gives the same model (same samples)."""
    again, _ = ctx.refitted
    a, b = ctx.sample(seed=3), ctx.sample(again, seed=3)
    if not _same(a, b):
        raise _fail(ctx, "seeded fit", f"two fits with seed=0 sample differently ({_first_difference(a, b)}); seed all training randomness from fit(seed=...)")


def check_global_rng_untouched(ctx: _Context) -> None:
    """fit and sample leave numpy's and torch's global random state as they found it (only the CLI seeds globally)."""
    _, changed = ctx.refitted
    if changed:
        raise _fail(ctx, "global RNG untouched", f"fit/sample changed {changed}")


def check_save_load(ctx: _Context) -> None:
    """save -> load (by the class and by load_generator) gives identical samples; or save refuses cleanly."""
    gen = ctx.fitted
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        if not getattr(ctx.cls, "supports_save", True):
            try:
                gen.save(path)
            except BadInput as exc:
                if path.exists() and any(path.iterdir()):
                    raise _fail(ctx, "save/load", f"save() refused ({exc}) but left files in {path}") from None
                return
            raise _fail(ctx, "save/load", "supports_save is False but save() did not raise BadInput")
        gen.save(path)
        pickles = [p.name for p in path.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib", ".cloudpickle")]
        if pickles:
            raise _fail(ctx, "save/load", f"save() wrote pickles {pickles}; save config JSON + weights (no pickled code)")
        by_class = type(gen).load(path)
        by_registry = load_generator(path) if isinstance(ctx.target, str) else by_class
        want = ctx.sample(seed=5)
        for how, loaded in (("cls.load", by_class), ("load_generator", by_registry)):
            if not isinstance(loaded, type(gen)):
                raise _fail(ctx, "save/load", f"{how}() returned {type(loaded).__name__}, not {type(gen).__name__}")
            got = ctx.sample(loaded, seed=5)
            if not _same(want, got):
                raise _fail(ctx, "save/load", f"after {how}() the samples differ ({_first_difference(want, got)}); save every piece of fitted state")


def _condition_column(schema: Schema, table: pa.Table) -> tuple[str, Any] | None:
    """A categorical column and its second most common category (not just the mode)."""
    for spec in schema.columns:
        if spec.kind == "categorical" and spec.categories and len(spec.categories) >= 2 and spec.null_rate == 0:
            counts = table[spec.name].to_pandas().value_counts()
            return spec.name, counts.index[1 if len(counts) > 1 else 0]
    return None


def check_conditions(ctx: _Context) -> None:
    """conditions={column: category} yields only rows with that category."""
    found = _condition_column(ctx.schema, ctx.table)
    if found is None:
        return  # nothing to condition on in this data
    column, value = found
    table = ctx.sample(seed=0, conditions={column: value})
    values = set(table[column].to_pylist())
    if table.num_rows != N_SAMPLE or values != {value}:
        raise _fail(ctx, "conditions", f"conditions={{{column!r}: {value!r}}} gave {table.num_rows} rows with values {sorted(values, key=str)}")


def check_bad_conditions(ctx: _Context) -> None:
    """An unknown column or an unseen category in conditions is BadInput naming it."""
    gen = ctx.fitted
    found = _condition_column(ctx.schema, ctx.table)
    bad = [({"no_such_column_xyz": 1}, "no_such_column_xyz")]
    if found:
        bad.append(({found[0]: "never_seen_value_xyz"}, "never_seen_value_xyz"))
    for conditions, needle in bad:
        try:
            next(iter(gen.sample_tables(5, seed=0, conditions=conditions)))
        except BadInput as exc:
            if needle not in str(exc):
                raise _fail(ctx, "bad conditions", f"BadInput for conditions={conditions} does not name '{needle}': {exc}") from None
        except Exception as exc:
            raise _fail(ctx, "bad conditions", f"conditions={conditions} raised {type(exc).__name__}({exc}), not synthaug.errors.BadInput") from None
        else:
            raise _fail(ctx, "bad conditions", f"conditions={conditions} were accepted; raise BadInput naming the column or value")


def check_fit_rejects_missing_column(ctx: _Context) -> None:
    """A schema naming a column the data lacks is BadInput naming it."""
    data = ctx.table
    dropped = data.column_names[-1]
    try:
        ctx.new().fit(data.drop_columns([dropped]), ctx.schema, ctx.trainer, seed=0)
    except BadInput as exc:
        if dropped not in str(exc):
            raise _fail(ctx, "fit rejects missing column", f"BadInput does not name the missing column '{dropped}': {exc}") from None
    except Exception as exc:
        raise _fail(ctx, "fit rejects missing column", f"raised {type(exc).__name__}({exc}), not BadInput naming '{dropped}'") from None
    else:
        raise _fail(ctx, "fit rejects missing column", f"fit() accepted data without the schema's column '{dropped}'")


CHECKS: dict[str, Callable[[_Context], None]] = {
    "config": check_config,
    "sample_before_fit": check_sample_before_fit,
    "fit_returns_self": check_fit_returns_self,
    "samples_match_schema": check_samples_match_schema,
    "seeded_sampling": check_seeded_sampling,
    "seeded_fit": check_seeded_fit,
    "global_rng_untouched": check_global_rng_untouched,
    "save_load": check_save_load,
    "conditions": check_conditions,
    "bad_conditions": check_bad_conditions,
    "fit_rejects_missing_column": check_fit_rejects_missing_column,
}


# -- entry points --------------------------------------------------------------------
def generator_checks(
    name_or_cls: str | type[Generator],
    data: pa.Table | pd.DataFrame | None = None,
    *,
    config: Any = None,
    trainer: TrainerConfig | None = None,
) -> Iterator[tuple[str, Callable[[], None]]]:
    """Yield (check_name, check) pairs; each check() raises AssertionError on failure.

    The generator is resolved and fitted only when a check runs, so this is cheap to call at
    pytest collection time. `data` defaults to `tiny_table()`, `config` to the family's
    defaults, `trainer` to `TINY_TRAINER`.
    """
    ctx = _Context(name_or_cls, data, config, trainer or TINY_TRAINER)
    for check_name, check in CHECKS.items():
        yield check_name, (lambda c=check: c(ctx))


def check_generator(
    name_or_cls: str | type[Generator],
    data: pa.Table | pd.DataFrame | None = None,
    *,
    config: Any = None,
    trainer: TrainerConfig | None = None,
) -> list[str]:
    """Run every check; return the names of those that passed, or raise one AssertionError listing all failures."""
    failures, passed = [], []
    for check_name, check in generator_checks(name_or_cls, data, config=config, trainer=trainer):
        try:
            check()
        except AssertionError as exc:
            failures.append(f"[{check_name}] {exc}")
        except Exception as exc:  # a crash is a failure too, reported with the others
            failures.append(f"[{check_name}] crashed: {type(exc).__name__}: {exc}")
        else:
            passed.append(check_name)
    if failures:
        raise AssertionError(f"{len(failures)} of {len(CHECKS)} contract checks failed:\n" + "\n".join(failures))
    return passed
