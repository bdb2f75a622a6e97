"""The stages of an image run: load images -> split (stratified on the label) -> fit -> sample
into image shards -> validate (shards decode, GX on a per-image metadata table, image metrics,
gates) -> publish or quarantine. Same staging, manifest and exit codes as tables.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthaug.config.pipeline import PipelineConfig, SampleConfig, SourceConfig, SplitConfig
from synthaug.errors import BadInput
from synthaug.generators.base import MIN_ROWS, Generator, get_generator
from synthaug.io.images import ImageSet, open_image_sink, read_images
from synthaug.validation.image.gates import ImageGatesConfig

IMAGE_FORMATS = ("hf_parquet", "imagefolder", "webdataset")
METRICS_IMAGES = 5000  # synthetic images the metrics compare (seeded sample)


@dataclass(frozen=True)
class ImageSource:
    images: ImageSet
    path: str
    sha256: str


@dataclass
class Balance:
    column: str
    shares: dict[Any, float]


def load(cfg: SourceConfig) -> ImageSource:
    opts = cfg.image
    images = read_images(cfg.path, size=opts.size, mode=opts.mode, format=opts.format, key="source.path")
    if len(images) < MIN_ROWS:
        raise BadInput(f"{cfg.path}: has {len(images)} image(s); synthaug needs at least {MIN_ROWS} to learn from")
    return ImageSource(images, cfg.path, _sha256(cfg.path, images))


def _sha256(path: str, images: ImageSet) -> str:
    """sha256 of the source files, or of the decoded pixels and labels for a built-in source."""
    if not path.startswith("sklearn:") and Path(path).exists():
        from synthaug.io.sources import data_hash

        return data_hash(path)
    h = hashlib.sha256(images.images.tobytes())
    h.update(images.labels.tobytes())
    return h.hexdigest()


def split(source: ImageSource, cfg: SplitConfig, *, seed: int) -> tuple[ImageSet, ImageSet | None]:
    """Seeded train/holdout split, stratified on the label."""
    from sklearn.model_selection import train_test_split

    data = source.images
    if cfg.holdout == 0:
        return data, None
    index = np.arange(len(data))
    labels = data.labels if cfg.stratify and np.bincount(data.labels).min(initial=0) >= 2 else None
    try:
        train, hold = train_test_split(index, test_size=cfg.holdout, random_state=seed, stratify=labels)
    except ValueError:
        train, hold = train_test_split(index, test_size=cfg.holdout, random_state=seed)
    if len(train) < MIN_ROWS:
        raise BadInput(f"split.holdout={cfg.holdout} leaves {len(train)} training images; lower it (need {MIN_ROWS})")
    return data.take(np.sort(train)), data.take(np.sort(hold))


def check_plan(config: PipelineConfig, source: ImageSource) -> tuple[type[Generator], Balance | None, ImageGatesConfig]:
    """What can be refused before training: the family, conditions, rebalancing, shard format, gates."""
    from synthaug.augment import shares_for

    cls = get_generator(config.generator.name)
    names = source.images.label_names
    label = source.images.schema.label_column
    sample = config.sample
    if sample.format == "parquet":
        raise BadInput("sample.format=parquet is for tables; image shards are hf_parquet, imagefolder or webdataset")
    if sample.synthetic_column:
        raise BadInput("sample.synthetic_column is for tables; image shards carry their own keys")
    for key in sample.conditions or {}:
        if key != label:
            raise BadInput(f"sample.conditions: image runs condition on '{label}' only (got '{key}')")
    if sample.conditions:
        _label_index(sample.conditions[label], names, "sample.conditions")
    balance = None
    if config.augment.balance:
        cfg = config.augment.balance
        if cfg.column != label:
            raise BadInput(f"augment.balance.column '{cfg.column}' is not the label column '{label}'")
        counts = dict(zip(names, np.bincount(source.images.labels, minlength=len(names)).tolist()))
        balance = Balance(label, shares_for(cfg, list(names), counts))
    return cls, balance, image_gates(config)


def _label_index(value: Any, names: list[str], where: str) -> int:
    if str(value) in names:
        return names.index(str(value))
    if isinstance(value, int) and 0 <= value < len(names):
        return value
    raise BadInput(f"{where}: label {value!r} is not one of the labels {names}")


def image_gates(config: PipelineConfig) -> ImageGatesConfig:
    """The pipeline's gates as image gates; a gate that only applies to tables is refused."""
    gates = config.gates
    if isinstance(gates, ImageGatesConfig):
        return gates
    given = {k: v for k, v in gates.model_dump().items() if v not in (None, [], False) or k == "expectations"}
    tabular_only = sorted(k for k in given if k not in ImageGatesConfig.model_fields)
    if tabular_only:
        raise BadInput(f"gates.{tabular_only[0]} applies to tables, not images; use gates: images (or none)")
    return ImageGatesConfig(**given)


def sample(generator, cfg: SampleConfig, run_dir: Path, names: list[str], *, seed: int, balance: Balance | None):
    """Stream image batches into shards; returns (shard infos, a seeded sample of the images and
    labels for the metrics, the per-image metadata table)."""
    fmt = cfg.format or "hf_parquet"
    rows_per_shard = None if fmt == "imagefolder" else cfg.rows_per_shard
    sink = open_image_sink(fmt, run_dir, names, **({} if rows_per_shard is None else {"rows_per_shard": rows_per_shard}))
    if balance is None:
        batches = generator.sample_batches(cfg.n_rows, seed=seed, conditions=cfg.conditions, batch_size=cfg.batch_size)
    else:
        batches = generator.sample_mixture(cfg.n_rows, column=balance.column, shares=balance.shares, seed=seed, batch_size=cfg.batch_size)
    keep = np.sort(np.random.default_rng(seed).permutation(cfg.n_rows)[:METRICS_IMAGES])
    kept_images, kept_labels, meta, done = [], [], [], 0
    for batch in batches:
        sink.write(batch.images, batch.labels, batch.keys)
        mine = keep[(keep >= done) & (keep < done + len(batch))] - done
        kept_images.append(batch.images[mine])
        kept_labels.append(batch.labels[mine])
        meta.append(metadata(batch.images, batch.labels, batch.keys, names))
        done += len(batch)
    shards = sink.close()
    return shards, np.concatenate(kept_images), np.concatenate(kept_labels), pd.concat(meta, ignore_index=True)


def metadata(images: np.ndarray, labels: np.ndarray, keys: list[str], names: list[str]) -> pd.DataFrame:
    """One row per image: what the expectation suite checks."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    return pd.DataFrame(
        {
            "key": keys,
            "label": [names[i] for i in labels],
            "height": np.full(len(images), images.shape[1]),
            "width": np.full(len(images), images.shape[2]),
            "channels": np.full(len(images), images.shape[3]),
            "pixel_mean": flat.mean(1),
            "pixel_std": flat.std(1),
        }
    )


def expectation_suite(train: ImageSet):
    """A GX suite over the metadata table, from the real training images: the label set, the
    size and channels, unique keys, and pixel mean and std within the real range widened by 10%
    of it for at least 99% of the images: fresh real images pass (a few sit beyond the training
    extremes), noise or blank images fail."""
    import great_expectations as gx

    from synthaug.validation.expectations import _make

    real = metadata(train.images, train.labels, train.keys, train.label_names)
    items = [
        _make("ExpectTableColumnsToMatchOrderedList", column_list=list(real.columns)),
        _make("ExpectColumnValuesToBeUnique", column="key"),
        _make("ExpectColumnValuesToBeInSet", column="label", value_set=list(train.label_names)),
    ]
    for col in ("height", "width", "channels"):
        items.append(_make("ExpectColumnValuesToBeInSet", column=col, value_set=[int(real[col].iloc[0])]))
    for col in ("pixel_mean", "pixel_std"):
        lo, hi = float(real[col].min()), float(real[col].max())
        margin = 0.1 * (hi - lo)
        items.append(
            _make("ExpectColumnValuesToBeBetween", column=col, min_value=max(0.0, lo - margin), max_value=hi + margin, mostly=0.99)
        )
    return gx.ExpectationSuite(name="synthaug_images", expectations=items)


def decode_check(run_dir: Path, fmt: str, n: int, names: list[str]) -> list[str]:
    """Read the written shards back with synthaug's own reader: every image decodes, the count and
    the label names match. Returns what is wrong (empty when all is well)."""
    data_dir = run_dir / "data"
    try:
        back = read_images(str(data_dir), format=fmt, key="shards")
    except BadInput as exc:
        return [f"shards do not read back: {exc}"]
    problems = []
    if len(back) != n:
        problems.append(f"{len(back)} images read back, {n} written")
    if not set(back.label_names) <= set(names):
        problems.append(f"labels {sorted(set(back.label_names) - set(names))} are not the source's")
    return problems


def validate(
    train: ImageSet,
    holdout: ImageSet | None,
    synth_images: np.ndarray,
    synth_labels: np.ndarray,
    meta: pd.DataFrame,
    gates: ImageGatesConfig,
    *,
    run_dir: Path,
    fmt: str,
    n: int,
    seed: int,
    header: dict[str, Any],
    trainer_device: str = "cpu",
) -> tuple[dict[str, Any], Any, dict]:
    """Metrics and gate verdicts for an image run; returns (report, suite, per-shard GX results)."""
    from synthaug.validation.expectations import validate_shard
    from synthaug.validation.gates import GateResult
    from synthaug.validation.image import image_metrics
    from synthaug.validation.image.gates import evaluate_images

    started = time.perf_counter()
    problems = decode_check(run_dir, fmt, n, train.label_names)
    suite = expectation_suite(train) if gates.expectations else None
    results = {"images": validate_shard(meta, suite, run_name=f"{header['name']}-images")} if suite is not None else {}
    metrics = image_metrics(
        train.images,
        train.labels,
        None if holdout is None else holdout.images,
        None if holdout is None else holdout.labels,
        synth_images,
        synth_labels,
        len(train.label_names),
        seed=seed,
        device=trainer_device,
    )
    fid = metrics.get("fidelity", {})
    if fid.get("frechet_distance") is not None and fid.get("frechet_distance_holdout"):
        fid["frechet_ratio"] = fid["frechet_distance"] / fid["frechet_distance_holdout"]
    privacy = metrics.get("privacy", {})
    shares = [privacy.get(k) for k in ("dcr_share_pixel", "dcr_share_feature") if privacy.get(k) is not None]
    if shares:
        privacy["dcr_share"] = max(shares)
    failed = [name for name, r in results.items() if not r["success"]]
    gate_results = [GateResult("shard_checks", float(len(problems)), "<=", 0, not problems, "; ".join(problems))]
    gate_results += evaluate_images(gates, metrics, failed if suite is not None else None)
    passed = all(g.passed for g in gate_results)
    metrics["validate_seconds"] = round(time.perf_counter() - started, 2)
    report = {
        **header,
        "status": "passed" if passed else "failed",
        "passed": passed,
        "gates": [g.to_dict() for g in gate_results],
        "metrics": metrics,
        "checks": [{"name": "shards decode", "passed": not problems, "detail": "; ".join(problems)}],
        "expectations_detail": {k: {x: v for x, v in r.items() if x != "gx"} for k, r in results.items()},
    }
    return report, suite, results
