"""Scale benchmark: each tabular family (defaults) on a large seeded mixed-type table.

For each family, in a fresh subprocess (so peak RSS is per family), with the family's
default config and the default TrainerConfig except `max_minutes` (a wall-clock cap on
training) and `progress_bar=False`:

- schema inference time, and encode time (Arrow -> pandas, encoder fit, encode: everything
  `fit` does before the family's `_fit`);
- training: epochs completed within the cap, seconds per epoch (training wall time / epochs),
  why training stopped (time cap, early stopping, max_epochs), and the epoch with the best
  `val_loss` (the fidelity gap early stopping follows);
- peak RSS (`ru_maxrss` of the subprocess) after encoding, after training and at the end;
- sampling throughput: `--sample-rows` rows (default 1,000,000) streamed through
  `sample_batches` into a ShardWriter (100,000 rows per shard, zstd Parquet) in a temp dir,
  stopped early after `--sample-minutes` (throughput is then over the rows written);
- fidelity: SDMetrics QualityReport (synthaug.validation.fidelity.quality_report) of a seeded
  20,000-row sample of the real table against the first 20,000 streamed synthetic rows.

    python benchmarks/scale.py                                  # 1,000,000 rows, 4 min per family
    python benchmarks/scale.py --rows 20000 --minutes 0.5 --families vae --sample-rows 50000

The table is generated in numpy (no downloads): 12 columns of correlated continuous values,
integers, categoricals (one with 50 categories), a boolean, a datetime, and nulls in 3 columns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FAMILIES = ("vae", "gan", "rbm")
QUALITY_ROWS = 20_000
ROWS_PER_SHARD = 100_000


# -- the table -------------------------------------------------------------------
def make_table(n: int, seed: int = 0) -> pa.Table:
    """A seeded mixed-type table of n rows, 12 columns, built from three correlated latents."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, 0.5], [0.3, 0.5, 1.0]])
    z = rng.standard_normal((n, 3)) @ np.linalg.cholesky(cov).T

    def strings(idx: np.ndarray, names: list[str], null: np.ndarray | None = None) -> pa.Array:
        arr = pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32), mask=null), pa.array(names))
        return arr.cast(pa.string())

    regions = ["north", "south", "east", "west", "centre"]
    region = rng.choice(5, n, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    zipf = 1.0 / np.arange(1, 11) ** 0.8
    city = region * 10 + rng.choice(10, n, p=zipf / zipf.sum())  # 50 cities, 10 per region
    city_names = [f"{r}_city_{i:02d}" for r in regions for i in range(10)]

    age = np.clip(np.round(41 + 12 * z[:, 0]), 18, 90).astype(np.int64)
    log_income = 10.4 + 0.45 * z[:, 1] + 0.15 * (region == 0) - 0.1 * (region == 4)
    income = np.round(np.exp(log_income), 2)
    income_null = rng.random(n) < 0.04
    buys = rng.random(n) > 0.3  # zero-inflated spend
    spend = np.where(buys, np.round(0.04 * income * np.exp(0.35 * rng.standard_normal(n)), 2), 0.0)
    high = z[:, 2] + 0.3 * rng.standard_normal(n) > 0.4  # bimodal score
    score = np.where(high, 715 + 25 * rng.standard_normal(n), 590 + 45 * rng.standard_normal(n))
    n_orders = rng.poisson(np.exp(0.8 + 0.5 * z[:, 1] + 0.3 * buys)).astype(np.int64)

    plan_logits = np.stack([np.zeros(n), 0.9 * z[:, 1], 1.8 * z[:, 1] - 1.5], axis=1)
    plan_p = np.exp(plan_logits - plan_logits.max(1, keepdims=True))
    plan_p /= plan_p.sum(1, keepdims=True)
    plan = (plan_p.cumsum(1) > rng.random((n, 1))).argmax(1)
    channel = rng.choice(4, n, p=[0.45, 0.3, 0.15, 0.1])
    channel_null = rng.random(n) < 0.02
    active = 1 / (1 + np.exp(-(0.8 * z[:, 2] + 0.4 * (plan > 0) - 0.2))) > rng.random(n)

    start = np.datetime64("2015-01-01T00:00:00", "s").astype(np.int64)
    span_s = 9 * 365 * 86400
    signup = start + (rng.beta(2.0, 1.2, n) * span_s).astype(np.int64)  # more recent sign-ups
    rating = np.clip(np.round(3.2 + 0.8 * z[:, 2] + 0.6 * rng.standard_normal(n)), 1, 5).astype(np.int64)
    rating_null = rng.random(n) < 0.15

    return pa.table(
        {
            "age": pa.array(age),
            "income": pa.array(income, mask=income_null),
            "spend": pa.array(spend),
            "score": pa.array(score),
            "n_orders": pa.array(n_orders),
            "rating": pa.array(rating, mask=rating_null),
            "region": strings(region, regions),
            "city": strings(city, city_names),
            "plan": strings(plan, ["basic", "plus", "premium"]),
            "channel": strings(channel, ["web", "app", "store", "phone"], channel_null),
            "active": pa.array(active),
            "signup": pa.array(signup, type=pa.int64()).cast(pa.timestamp("s")).cast(pa.timestamp("us")),
        }
    )


# -- one family, in its own process --------------------------------------------
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


EPOCHS: list[dict] = []  # filled by EpochLog, which trainer.extra builds by import path (this script runs as __main__)


def epoch_log_callback():
    """A passive callback (given to synthaug through trainer.extra.callbacks) recording each epoch's end."""
    from synthaug.training.lightning import pl

    class EpochLog(pl.Callback):
        def on_train_start(self, trainer, module) -> None:
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, module) -> None:  # validation has run by now
            m = trainer.callback_metrics
            EPOCHS.append(
                {
                    "epoch": trainer.current_epoch,
                    "t": time.perf_counter() - self.t0,
                    "val_loss": float(m["val_loss"]) if "val_loss" in m else None,
                }
            )

        def on_train_end(self, trainer, module) -> None:
            stopped = [c for c in trainer.callbacks if type(c).__name__ == "EarlyStopping"]
            EPOCHS.append(
                {"end": True, "early_stopped_epoch": stopped[0].stopped_epoch if stopped else 0, "max_epochs": trainer.max_epochs}
            )

    return EpochLog()


def run_family(name: str, rows: int, minutes: float, sample_rows: int, sample_minutes: float, seed: int) -> dict:
    import torch

    from synthaug.generators.base import get_generator
    from synthaug.io.shards import ShardWriter
    from synthaug.schema import infer_schema
    from synthaug.training.config import TrainerConfig
    from synthaug.validation.fidelity import quality_report

    out: dict = {"family": name, "rows": rows, "torch_threads": torch.get_num_threads()}
    t = time.perf_counter()
    table = make_table(rows, seed)
    out["make_table_s"] = time.perf_counter() - t
    out["rss_after_table_mb"] = peak_rss_mb()

    t = time.perf_counter()
    schema = infer_schema(table)
    out["schema_s"] = time.perf_counter() - t
    out["kinds"] = {c.name: c.kind for c in schema.columns}

    epochs = EPOCHS
    epochs.clear()
    trainer = TrainerConfig(max_minutes=minutes, progress_bar=False, extra={"callbacks": ["__main__:epoch_log_callback"]})
    out["trainer"] = trainer.model_dump(exclude={"checkpoint_dir"})
    gen = get_generator(name)()
    marks: dict = {}
    inner_fit = gen._fit_encoded

    def timed_fit(x, trainer_cfg, fit_seed):  # everything before this call is encoding
        marks["fit_start"], marks["encoded_shape"] = time.perf_counter(), list(x.shape)
        marks["rss_after_encode_mb"] = peak_rss_mb()
        info = inner_fit(x, trainer_cfg, fit_seed)
        marks["fit_end"] = time.perf_counter()
        return info

    gen._fit_encoded = timed_fit
    t0 = time.perf_counter()
    gen.fit(table, schema, trainer, seed=seed)
    out["encode_s"] = marks["fit_start"] - t0
    out["encoded_shape"] = marks["encoded_shape"]
    out["rss_after_encode_mb"] = marks["rss_after_encode_mb"]
    out["train_s"] = marks["fit_end"] - marks["fit_start"]
    out["rss_after_fit_mb"] = peak_rss_mb()
    done = [e for e in epochs if "epoch" in e]
    end = next((e for e in epochs if e.get("end")), {})
    out["epochs"] = len(done)
    out["s_per_epoch"] = out["train_s"] / len(done) if done else None
    losses = [(e["epoch"], e["val_loss"]) for e in done if e["val_loss"] is not None]
    if losses:
        best = min(losses, key=lambda p: p[1])
        out["best_epoch"], out["best_val_loss"] = best[0] + 1, best[1]  # 1-based
        out["first_val_loss"], out["last_val_loss"] = losses[0][1], losses[-1][1]
        out["val_loss_curve"] = [round(v, 4) for _, v in losses]
    if end.get("early_stopped_epoch"):
        out["stopped_by"] = "early stopping"
    elif len(done) >= trainer.max_epochs:
        out["stopped_by"] = "max_epochs"
    else:
        out["stopped_by"] = f"time cap ({minutes:g} min)"
    print(f"[{name}] trained: {json.dumps({k: out[k] for k in ('encode_s', 'train_s', 'epochs', 'stopped_by')})}", flush=True)

    # Sampling: stream into Parquet shards, stop after the sampling cap.
    synthetic_head: list[pa.Table] = []
    head_rows = 0
    with tempfile.TemporaryDirectory(prefix="synthaug-scale-") as tmp:
        writer = ShardWriter(Path(tmp), schema.arrow_schema(), ROWS_PER_SHARD)
        written = 0
        t = time.perf_counter()
        batches = gen.sample_batches(sample_rows, seed=seed + 1, batch_size=10_000)
        for batch in batches:
            writer.write(batch)
            written += batch.num_rows
            if head_rows < QUALITY_ROWS:
                synthetic_head.append(batch.slice(0, QUALITY_ROWS - head_rows))
                head_rows += synthetic_head[-1].num_rows
            if time.perf_counter() - t > sample_minutes * 60:
                break
        shards = writer.close()
        out["sample_s"] = time.perf_counter() - t
        out["sample_rows_written"] = written
        out["sample_complete"] = written >= sample_rows
        out["shards"] = len(shards)
        out["shard_bytes"] = sum(s.bytes for s in shards)
    out["sample_rows_per_s"] = written / out["sample_s"]
    out["rss_after_sample_mb"] = peak_rss_mb()

    t = time.perf_counter()
    take = np.sort(np.random.default_rng(seed + 2).choice(rows, min(QUALITY_ROWS, rows), replace=False))
    real = table.take(pa.array(take)).to_pandas()
    synthetic = pa.concat_tables(synthetic_head).to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quality_report(real, synthetic, schema, seed=seed, max_rows=QUALITY_ROWS)
    out["quality_s"] = time.perf_counter() - t
    out["quality_rows"] = [len(real), len(synthetic)]
    out["quality"] = q["overall"]
    out["column_shapes"] = q["column_shapes"]
    out["column_pair_trends"] = q["column_pair_trends"]
    out["column_shape_scores"] = q["column_shape_scores"]
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def child(args) -> int:
    try:
        result = run_family(args.child, args.rows, args.minutes, args.sample_rows, args.sample_minutes, args.seed)
    except Exception as exc:
        traceback.print_exc()
        result = {
            "family": args.child,
            "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            "peak_rss_mb": peak_rss_mb(),
        }
    args.result.write_text(json.dumps(result, indent=1))
    return 0


# -- the parent ------------------------------------------------------------------
def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def fmt(x, digits: int = 1, comma: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}" if comma else f"{x:.{digits}f}"


def markdown(results: list[dict], args, command: str, started: str, total_s: float, load_before: str, load_after: str) -> str:
    lines = [
        f"- command: `{command}`",
        f"- date: {started} (total {total_s / 60:.1f} min)",
        f"- machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, CPU only; "
        f"load average (1/5/15 min) {load_before} before, {load_after} after",
        f"- table: {args.rows:,} rows × 12 columns (benchmarks/scale.py `make_table`, seed {args.seed})",
        f"- trainer: TrainerConfig defaults (max_epochs 300, patience 30, batch_size 500, val_fraction 0.1, "
        f"max_steps_per_epoch 200) + max_minutes={args.minutes:g}, progress_bar=False; family configs: defaults",
        f"- sampling: {args.sample_rows:,} rows through `sample_batches` (batch 10,000) into a ShardWriter "
        f"({ROWS_PER_SHARD:,} rows/shard), stopped after {args.sample_minutes:g} min if not done",
        f"- quality: SDMetrics QualityReport, {QUALITY_ROWS:,} real rows (seeded sample) vs the first {QUALITY_ROWS:,} synthetic rows",
        "",
        "| family | encode s | epochs done (stopped by) | s/epoch | best epoch | peak RSS MB (encode / fit / end) | sample rows/s (rows written) | quality | shapes | pairs |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['family']} | error: {r['error']} | | | | {fmt(r.get('peak_rss_mb'), 0)} | | | | |")
            continue
        lines.append(
            f"| {r['family']} | {fmt(r['encode_s'])} | {r['epochs']} ({r['stopped_by']}) | {fmt(r['s_per_epoch'])} "
            f"| {r.get('best_epoch', '–')} | {fmt(r['rss_after_encode_mb'], 0)} / {fmt(r['rss_after_fit_mb'], 0)} / {fmt(r['peak_rss_mb'], 0)} "
            f"| {fmt(r['sample_rows_per_s'], 0, comma=True)} ({r['sample_rows_written']:,}{'' if r['sample_complete'] else ', capped'}) "
            f"| {fmt(r['quality'], 3)} | {fmt(r['column_shapes'], 3)} | {fmt(r['column_pair_trends'], 3)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--minutes", type=float, default=4.0, help="training wall-clock cap per family (TrainerConfig.max_minutes)")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--sample-rows", type=int, default=1_000_000)
    parser.add_argument("--sample-minutes", type=float, default=3.0, help="stop streaming samples after this long")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="keep per-family JSON results and logs here (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="write the Markdown section here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/scale.py", *(argv if argv is not None else sys.argv[1:])])
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    load_before = load_average()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="synthaug-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = []
    # A family that hangs past its training cap, sampling cap and a generous margin is reported, not waited for.
    timeout = args.minutes * 60 + args.sample_minutes * 60 + 600
    for name in args.families:
        result_file = workdir / f"{name}.json"
        result_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            name,
            "--result",
            str(result_file),
            "--rows",
            str(args.rows),
            "--minutes",
            str(args.minutes),
            "--sample-rows",
            str(args.sample_rows),
            "--sample-minutes",
            str(args.sample_minutes),
            "--seed",
            str(args.seed),
        ]
        print(f"[{name}] starting ({args.rows:,} rows, cap {args.minutes:g} min); load {load_average()}", flush=True)
        t = time.perf_counter()
        try:
            subprocess.run(cmd, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            results.append({"family": name, "error": f"did not finish within {timeout / 60:.0f} min (killed)"})
            continue
        if result_file.exists():
            r = json.loads(result_file.read_text())
        else:
            r = {"family": name, "error": "the subprocess died without a result (out of memory?)"}
        r["wall_s"] = time.perf_counter() - t
        results.append(r)
        print(f"[{name}] {json.dumps({k: v for k, v in r.items() if k not in ('column_shape_scores', 'trainer')})}", flush=True)
    text = markdown(results, args, command, started, time.perf_counter() - t0, load_before, load_average())
    (workdir / "results.json").write_text(json.dumps(results, indent=1))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
