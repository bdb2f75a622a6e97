"""The stages of a run, as plain functions with typed inputs and outputs.

load -> split -> fit -> sample (shards) -> validate -> (gate: report["passed"]) -> publish.
`pipeline/run.py` only orders them, times them and publishes; `synthaug fit`, `sample` and
`report` call single stages. File I/O goes through `synthaug.io`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthaug.config.pipeline import MIN_METRIC_ROWS, GeneratorSection, PipelineConfig, SampleConfig, SourceConfig, SplitConfig
from synthaug.errors import BadInput
from synthaug.generators.base import MIN_ROWS, Generator, get_generator
from synthaug.io.shards import ShardInfo, ShardWriter
from synthaug.io.sources import data_hash, read_table
from synthaug.schema import Schema, infer_schema, read_overrides
from synthaug.training.config import TrainerConfig
from synthaug.validation.checks import ShardValidator, build_report
from synthaug.validation.gates import GatesConfig


@dataclass(frozen=True)
class Source:
    table: pa.Table
    schema: Schema
    path: str
    sha256: str


@dataclass(frozen=True)
class Split:
    train: pa.Table
    holdout: pa.Table | None
    train_index: np.ndarray | None = None  # row numbers in the source
    holdout_index: np.ndarray | None = None


@dataclass(frozen=True)
class Balance:
    column: str
    shares: dict[Any, float]


def load(cfg: SourceConfig, *, target: str | None = None) -> Source:
    """Read the source and infer (or take) its schema; BadInput names what is wrong."""
    table = read_table(cfg.path, cfg.format)
    if table.num_rows < MIN_ROWS:
        raise BadInput(f"{cfg.path}: has {table.num_rows} row(s); synthaug needs at least {MIN_ROWS} to learn from")
    if cfg.sdv_metadata:
        if cfg.schema_path:
            raise BadInput("source.schema and source.sdv_metadata both set; give one of them")
        from synthaug.generators.sdv import schema_from_sdv_metadata  # the SDV interop lives in the adapter

        schema = schema_from_sdv_metadata(cfg.sdv_metadata, table)
    else:
        overrides = read_overrides(cfg.schema_path) if cfg.schema_path else {}
        schema = infer_schema(table, source=cfg.path, overrides=overrides, overrides_source=str(cfg.schema_path))
    if target and target not in table.column_names:
        raise BadInput(f"target '{target}' is not a column of {cfg.path}; columns there: {', '.join(table.column_names)}")
    return Source(table, schema, cfg.path, data_hash(cfg.path))


def split(source: Source, cfg: SplitConfig, *, target: str | None, seed: int) -> Split:
    """Seeded train/holdout split, stratified on the target when one is declared."""
    from sklearn.model_selection import train_test_split

    table = source.table
    if cfg.holdout == 0:
        return Split(table, None, np.arange(table.num_rows), None)
    index = np.arange(table.num_rows)
    labels = None
    if target and cfg.stratify:
        labels = np.asarray(table[target].to_pandas().astype(str))
        if np.unique(labels, return_counts=True)[1].min() < 2:
            labels = None  # a class with one row cannot be stratified
    try:
        train_idx, hold_idx = train_test_split(index, test_size=cfg.holdout, random_state=seed, stratify=labels)
    except ValueError:
        train_idx, hold_idx = train_test_split(index, test_size=cfg.holdout, random_state=seed)
    if len(train_idx) < MIN_ROWS:
        raise BadInput(f"split.holdout={cfg.holdout} leaves {len(train_idx)} training rows; lower it (need {MIN_ROWS})")
    train_idx, hold_idx = np.sort(train_idx), np.sort(hold_idx)
    return Split(table.take(train_idx), table.take(hold_idx), train_idx, hold_idx)


def check_plan(config: PipelineConfig, source: Source, train: pd.DataFrame) -> tuple[type[Generator], Balance | None]:
    """Everything that can be refused before training: the family and what it is asked to do, the
    trainer on this machine (GPU, strategy, precision), enough rows to measure the gates,
    conditions, rebalancing, the marker column."""
    from synthaug.augment import balance_shares
    from synthaug.generators.sampling import condition_filter
    from synthaug.training.config import check_trainer

    cls = get_generator(config.generator.name)
    if cls.modality != "tabular":
        raise BadInput(f"generator '{cls.name}' is for {cls.modality} data; {source.path} is a table")
    check_trainer(config.trainer)  # this machine can run it: a GPU when asked for, a strategy that works
    if cls.tags.multi_device is False and config.trainer.world_size > 1:
        raise BadInput(f"generator '{cls.name}' cannot train on {config.trainer.world_size} devices; set trainer.devices=1")
    sample = config.sample
    gates = config.gates
    if (gates.needs_fidelity() or gates.needs_privacy()) and sample.n_rows < MIN_METRIC_ROWS:
        raise BadInput(
            f"sample.n_rows={sample.n_rows} is too few rows to measure the fidelity and privacy gates (at least "
            f"{MIN_METRIC_ROWS}); raise it, or use gates: none (per-shard checks only)"
        )
    if sample.conditions:
        try:
            _check_ranges(source.schema, sample.conditions)
            condition_filter(source.schema, sample.conditions)  # BadInput for an unknown column or value
        except BadInput as exc:
            raise BadInput(f"sample.conditions: {exc}") from None
    if sample.synthetic_column and sample.synthetic_column in source.schema.names:
        raise BadInput(f"sample.synthetic_column '{sample.synthetic_column}' is already a column of {source.path}; choose another name")
    balance = None
    if config.augment.balance:
        if not cls.tags.rebalance:
            raise BadInput(f"augment.balance needs a family that can rebalance (vae, gan, rbm); '{cls.name}' cannot rebalance")
        cfg = config.augment.balance
        balance = Balance(cfg.column, balance_shares(cfg, source.schema, train))
    return cls, balance


def _check_ranges(schema: Schema, conditions: dict[str, Any]) -> None:
    """A range condition on a numeric column is [low, high] of two finite numbers."""
    import math

    from synthaug.generators.base import short_repr

    for name, want in conditions.items():
        if name not in schema.names or schema.column(name).kind not in ("continuous", "integer"):
            continue
        if not isinstance(want, (list, tuple)):
            continue
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in want)
        if len(want) != 2 or not numbers:
            raise BadInput(f"condition '{name}': a range is [low, high] of two finite numbers (got {short_repr(want)})")


def fit(
    train: pa.Table,
    schema: Schema,
    section: GeneratorSection,
    trainer: TrainerConfig,
    *,
    seed: int,
    privacy: Any = None,
    declared: dict | None = None,
) -> Generator:
    """Train the family; with `privacy`, by DP-SGD from the `declared` public schema facts only."""
    generator = get_generator(section.name)(section.params)
    if privacy is not None:
        generator.with_privacy(privacy, declared or {})
    return generator.fit(train, schema, trainer, seed=seed)


def model_schema(schema: Schema, declared: dict | None) -> Schema:
    """The schema the model and the checks use: the inferred one, or in DP mode (declared given)
    the one built from the declared public facts only."""
    if declared is None:
        return schema
    from synthaug.training.privacy import dp_schema

    return dp_schema(schema, declared)


def check_privacy(config: PipelineConfig, source: Source, n_train: int) -> dict:
    """DP mode, before anything is reserved or trained: a family that can train privately, and a
    public source (the schema file) for every statistic the encoder needs. Returns the declared facts."""
    from synthaug.training.privacy import check_unit, dp_preprocessing_plan

    cls = get_generator(config.generator.name)
    if not cls.tags.dp:
        raise BadInput(f"generator '{cls.name}' cannot train with differential privacy; use vae, gan or rbm")
    if config.augment.balance:
        raise BadInput("augment.balance with privacy: rebalancing reads real class counts outside the budget; drop one of them")
    declared = dict(read_overrides(config.source.schema_path)) if config.source.schema_path else {}
    check_unit(config.privacy, source.schema)
    dp_preprocessing_plan(source.schema, declared)
    return declared


def sample(
    generator: Generator,
    cfg: SampleConfig,
    run_dir: Path,
    *,
    seed: int,
    balance: Balance | None = None,
    on_shard=None,
    provenance: dict | None = None,
) -> list[ShardInfo]:
    """Stream batches into zstd Parquet shards under run_dir/data/ (plain, or rebalanced)."""
    if balance is None:
        batches = generator.sample_batches(cfg.n_rows, seed=seed, conditions=cfg.conditions, batch_size=cfg.batch_size)
    else:
        batches = generator.sample_mixture(
            cfg.n_rows, column=balance.column, shares=balance.shares, seed=seed, conditions=cfg.conditions, batch_size=cfg.batch_size
        )
    writer = ShardWriter(
        run_dir, generator.schema.arrow_schema(), cfg.rows_per_shard, cfg.synthetic_column, on_shard=on_shard, provenance=provenance
    )
    for batch in batches:
        writer.write(batch)
    return writer.close()


def validator(config: PipelineConfig, schema: Schema, train: pd.DataFrame) -> ShardValidator:
    """The per-shard checks (GX suite from the training data), built before training so a bad
    expectation is refused early; called by `sample` as each shard is written."""
    return ShardValidator(
        schema,
        train,
        config.gates,
        config.name,
        rows_per_shard=config.sample.rows_per_shard,
        extra=config.validation.expectations,
        suite_path=config.validation.suite,
    )


def validate(
    shard_validator: ShardValidator,
    shard_paths: list[Path],
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    gates: GatesConfig,
    *,
    target: str | None,
    seed: int,
    metrics_rows: int,
    header: dict[str, Any],
    balance: Balance | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Metrics and gate verdicts. Returns (report, the real reference the fidelity metrics used,
    the synthetic rows they used)."""
    from synthaug.augment import reweight

    reference = reweight(train, balance.column, balance.shares, seed) if balance else None
    report, synthetic = build_report(
        shard_validator,
        shard_paths,
        train,
        holdout,
        gates,
        target=target,
        seed=seed,
        metrics_rows=metrics_rows,
        header=header,
        fidelity_real=reference,
    )
    return report, train if reference is None else reference, synthetic
