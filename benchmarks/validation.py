"""Validation speed: GX + fidelity + privacy, on two tables.

- `--table customers` (default): 100k synthetic vs 50k real rows (~15 columns). Target (issue 4):
  the whole validation stage in <= 30 s on 2 cores.
- `--table high-cardinality`: 20k synthetic vs 10k real training rows of a table with one
  ~4,700-category column (issue 10: 375-555 s before; target <= 60 s). See `merchant_table`.

This times it the way a pipeline run (and `synthaug validate`) executes it after sampling:

1. imports     great_expectations, sdmetrics, matplotlib (a fresh process pays these once);
2. suite       `ShardValidator(...)`: the GX suite built from the 40k training rows;
3. shards      the validator called once per written shard (4 x 25k rows): shape checks + GX;
4. finish      `checks.build_report(...)` with conf/gates/default.yaml (`metrics_rows` synthetic
               rows sampled from the shards, SDMetrics quality, detection AUC, TSTR, privacy:
               DCR, NNDR, exact matches, MIA), then `io.artifacts.write_report` (Data Docs,
               report.json, junit.xml, report.html) -- what `pipeline/run.py` calls.
               Its parts are timed by wrapping the functions they call (same code path).

The data: a seeded generator makes 50k "real" rows with 16 columns (an id; correlated
continuous and integer columns; categoricals, booleans, two datetimes; nulls in four columns;
a 3-class target), split stratified 40k train / 10k holdout as the pipeline does. The
"synthetic" data is 100k rows resampled from the training rows with noise on every column
(numbers jittered and clipped to the real bounds, 10 % of categories redrawn, dates shifted),
written as 4 Parquet shards of 25k rows in the real Arrow schema.

Each configuration runs in a fresh subprocess so its peak RSS (ru_maxrss) and imports are its
own: the default `metrics_rows` (20,000) and `metrics_rows=100_000` (metrics on every
synthetic row, so full-size nearest-neighbour work is visible).

    .venv/bin/python benchmarks/validation.py                       # both configurations
    .venv/bin/python benchmarks/validation.py --metrics-rows 20000  # one
    .venv/bin/python benchmarks/validation.py --profile /tmp/val.prof --metrics-rows 100000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/validation.py --table high-cardinality   # issue 10

No network; data is written to a temporary folder (or --workdir) and removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
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
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Per table: real rows (train + holdout), holdout rows, synthetic rows, shards, TSTR target, seconds target.
TABLES = {
    "customers": {
        "real": 50_000,
        "holdout": 10_000,
        "synthetic": 100_000,
        "shards": 4,
        "target": "plan",
        "seconds": 30.0,
        "metrics_rows": [20_000, 100_000],
    },
    "high-cardinality": {
        "real": 12_500,
        "holdout": 2_500,
        "synthetic": 20_000,
        "shards": 2,
        "target": "category",
        "seconds": 60.0,
        "metrics_rows": [20_000],
    },
}
MERCHANTS = 4_700


# ---------------------------------------------------------------------------- data


def real_table(n: int, seed: int) -> pa.Table:
    """A customer-like table: 16 columns of every kind, correlated, with some nulls."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(4), [[1, 0.6, 0.4, 0.3], [0.6, 1, 0.5, 0.2], [0.4, 0.5, 1, 0.1], [0.3, 0.2, 0.1, 1]], size=n)
    age = np.clip(np.round(42 + 13 * z[:, 0]), 18, 90).astype(np.int64)
    income = np.round(np.exp(10.6 + 0.45 * z[:, 1]), 2)
    credit = np.clip(np.round(650 + 70 * z[:, 2] + 20 * z[:, 1]), 300, 850).astype(np.int64)
    balance = np.round(np.maximum(0.0, 3000 + 2500 * z[:, 3] + 0.02 * income + rng.normal(0, 500, n)), 2)
    tenure = np.clip(np.round(rng.gamma(2.0, 18.0, n) + 0.5 * (age - 18)), 0, 240).astype(np.int64)
    products = np.clip(1 + rng.poisson(0.8 + 0.3 * (z[:, 1] > 0), n), 1, 5).astype(np.int64)
    utilisation = np.round(1 / (1 + np.exp(-(0.8 * z[:, 3] - 0.5 * z[:, 2]))), 4)
    regions = np.array(["north", "south", "east", "west", "central", "islands", "capital", "abroad"])
    region = regions[rng.choice(8, n, p=[0.18, 0.17, 0.15, 0.15, 0.14, 0.06, 0.13, 0.02])]
    segment = np.array(["student", "retail", "affluent", "private"])[np.digitize(z[:, 1] + 0.3 * rng.normal(size=n), [-1.0, 0.6, 1.6])]
    channel = np.array(["branch", "web", "app", "phone", "partner"])[rng.choice(5, n, p=[0.2, 0.3, 0.35, 0.1, 0.05])]
    active = rng.random(n) < 1 / (1 + np.exp(-(0.5 + 0.8 * z[:, 3])))
    has_card = rng.random(n) < 0.3 + 0.4 * (products > 1)
    start = np.datetime64("2015-01-01")
    signup = start + np.minimum(3650, (tenure * 30.4).astype(np.int64) % 3650 + rng.integers(0, 30, n)).astype("timedelta64[D]")
    last_login = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")
    score = 0.9 * z[:, 1] + 0.5 * (products - 1) + 0.4 * z[:, 2] + rng.normal(0, 0.7, n)
    plan = np.array(["basic", "plus", "premium"])[np.digitize(score, [0.0, 1.2])]

    def nulls(values, rate: float):
        mask = rng.random(n) < rate
        return pa.array(values, mask=mask)

    return pa.table(
        {
            "customer_id": pa.array(np.arange(1_000_000, 1_000_000 + n), pa.int64()),
            "age": pa.array(age),
            "income": nulls(income, 0.05),
            "credit_score": pa.array(credit),
            "balance": pa.array(balance),
            "tenure_months": pa.array(tenure),
            "n_products": pa.array(products),
            "utilisation": nulls(utilisation, 0.02),
            "region": pa.array(region),
            "segment": pa.array(segment),
            "channel": nulls(channel, 0.03),
            "is_active": pa.array(active),
            "has_card": pa.array(has_card),
            "signup_date": pa.array(signup.astype("datetime64[ms]")),
            "last_login": nulls(last_login.astype("datetime64[ms]"), 0.10),
            "plan": pa.array(plan),
        }
    )


def merchant_table(n: int, seed: int) -> pa.Table:
    """Card transactions: one ~4,700-category column (`merchant`), a 7-class `category` that
    `subcategory` determines exactly (the TSTR target), amounts mostly on multiples of 100, a
    derived total, nulls. Every merchant occurs at least once in the source; the rest are drawn
    Zipf-like, so the training split misses some merchants that the holdout has (as real tables do).
    """
    rng = np.random.default_rng(seed)
    merchants = np.array([f"merchant {i:04d} {w}" for i, w in enumerate(rng.choice(["ltd", "shop", "store", "co", "market"], MERCHANTS))])
    weights = 1.0 / np.arange(1, MERCHANTS + 1) ** 0.8
    merchant_idx = np.r_[np.arange(MERCHANTS), rng.choice(MERCHANTS, n - MERCHANTS, p=weights / weights.sum())]
    rng.shuffle(merchant_idx)
    subcats = np.array([f"sub{j:02d}" for j in range(35)])
    sub_idx = (merchant_idx * 7 + rng.integers(0, 3, n)) % 35  # merchant hints at its subcategory
    category = np.array(["food", "travel", "fuel", "health", "retail", "leisure", "utilities"])[sub_idx % 7]
    z = rng.normal(size=n)
    on_step = rng.random(n) < 0.9
    amount = np.where(on_step, 100.0 * np.maximum(1, np.round(np.exp(1.5 + 0.8 * z + 0.1 * (sub_idx % 7)))), np.round(np.exp(5.5 + z), 2))
    quantity = rng.integers(1, 6, n).astype(np.int64)
    unit_price = np.round(np.exp(2.5 + 0.5 * rng.normal(size=n)), 2)
    age = np.clip(np.round(40 + 12 * rng.normal(size=n) + 3 * z), 18, 90).astype(np.int64)
    region = np.array(["north", "south", "east", "west", "central", "abroad"])[rng.choice(6, n, p=[0.25, 0.2, 0.2, 0.15, 0.15, 0.05])]
    channel = np.array(["pos", "web", "app", "phone"])[rng.choice(4, n, p=[0.5, 0.25, 0.2, 0.05])]
    when = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")

    def nulls(values, rate: float):
        return pa.array(values, mask=rng.random(n) < rate)

    return pa.table(
        {
            "txn_id": pa.array(np.arange(10_000_000, 10_000_000 + n), pa.int64()),
            "merchant": pa.array(merchants[merchant_idx]),
            "subcategory": pa.array(subcats[sub_idx]),
            "category": pa.array(category),
            "amount": pa.array(amount),
            "quantity": pa.array(quantity),
            "unit_price": nulls(unit_price, 0.03),
            "total": pa.array(np.round(quantity * unit_price, 2)),
            "age": nulls(age, 0.05),
            "region": pa.array(region),
            "channel": nulls(channel, 0.02),
            "contactless": pa.array(rng.random(n) < 0.6),
            "when": pa.array(when.astype("datetime64[ms]")),
        }
    )


def noisy_resample(train: pd.DataFrame, schema, n: int, seed: int) -> pd.DataFrame:
    """Rows resampled from `train`, every column perturbed; values stay inside the real bounds."""
    rng = np.random.default_rng(seed)
    df = train.iloc[rng.integers(0, len(train), n)].reset_index(drop=True)
    for spec in schema.columns:
        col = df[spec.name]
        if spec.kind == "id":
            df[spec.name] = np.arange(5_000_000, 5_000_000 + n, dtype=np.int64)
        elif spec.kind in ("continuous", "integer"):
            std = float(np.nanstd(col.to_numpy(dtype=float, na_value=np.nan)))
            noisy = np.clip(col.to_numpy(dtype=float, na_value=np.nan) + rng.normal(0, 0.08 * std, n), spec.min, spec.max)
            if spec.kind == "integer":  # nullable, so a null stays null rather than a garbage int64
                df[spec.name] = pd.array(np.round(noisy), dtype="Int64")
            else:
                df[spec.name] = pd.Series(np.round(noisy, spec.decimals or 2)).where(col.notna().to_numpy())
        elif spec.kind in ("categorical", "boolean"):
            levels = np.array(spec.categories, dtype=object)
            redraw = (rng.random(n) < 0.10) & col.notna().to_numpy()
            values = col.to_numpy(dtype=object).copy()
            values[redraw] = levels[rng.integers(0, len(levels), int(redraw.sum()))]
            df[spec.name] = values.astype(bool) if spec.kind == "boolean" else values
        elif spec.kind == "datetime":
            shift = pd.to_timedelta(rng.integers(-15, 16, n), unit="D")
            lo = pd.Timestamp(int(spec.min), unit=spec.unit)
            hi = pd.Timestamp(int(spec.max), unit=spec.unit)
            df[spec.name] = (col + shift).clip(lo, hi)
    return df


def make_data(workdir: Path, seed: int, name: str) -> None:
    from sklearn.model_selection import train_test_split

    from synthaug.schema import infer_schema

    spec = TABLES[name]
    table = (real_table if name == "customers" else merchant_table)(spec["real"], seed)
    schema = infer_schema(table, source="benchmark")  # as the pipeline: on the whole source
    labels = table.column(spec["target"]).to_numpy(zero_copy_only=False)
    train_idx, hold_idx = train_test_split(np.arange(table.num_rows), test_size=spec["holdout"], random_state=seed, stratify=labels)
    train, holdout = table.take(np.sort(train_idx)), table.take(np.sort(hold_idx))
    pq.write_table(train, workdir / "train.parquet")
    pq.write_table(holdout, workdir / "holdout.parquet")
    schema.save(workdir / "schema.json")
    synthetic = noisy_resample(train.to_pandas(), schema, spec["synthetic"], seed + 1)
    arrow = pa.Table.from_pandas(synthetic, preserve_index=False).select(schema.names).cast(schema.arrow_schema())
    shards = workdir / "data"
    shards.mkdir()
    per = spec["synthetic"] // spec["shards"]
    for i in range(spec["shards"]):
        pq.write_table(arrow.slice(i * per, per), shards / f"part-{i:05d}.parquet")


# ---------------------------------------------------------------------------- one timed run


class Stages:
    """Wall-clock seconds and the peak RSS (MB, high-water mark so far) after each stage."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    @contextlib.contextmanager
    def time(self, name: str, part_of: str | None = None):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
            self.rows.append({"stage": name, "part_of": part_of, "seconds": time.perf_counter() - t0, "peak_rss_mb": peak})

    def wrap(self, module, attr: str, name: str) -> None:
        """Time every call of module.attr as a part of `finish` (same function, same arguments)."""
        original = getattr(module, attr)

        def timed(*args, **kwargs):
            with self.time(name, part_of="finish"):
                return original(*args, **kwargs)

        setattr(module, attr, timed)


def run_once(workdir: Path, metrics_rows: int, seed: int, name: str) -> dict:
    stages = Stages()
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t_start = time.perf_counter()
    with stages.time("imports (GX, SDMetrics, matplotlib)"):
        import great_expectations  # noqa: F401
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot
        import sdmetrics.reports  # noqa: F401

    from synthaug.config.pipeline import conf_dirs, load_preset
    from synthaug.io import artifacts
    from synthaug.report import shell, tabular
    from synthaug.schema import Schema
    from synthaug.validation import checks, fidelity, privacy
    from synthaug.validation.checks import ShardValidator
    from synthaug.validation.gates import GatesConfig

    spec = TABLES[name]
    schema = Schema.load(workdir / "schema.json")
    gates = GatesConfig(**load_preset("gates", "default", conf_dirs(), "--gates"))
    train_df = pq.read_table(workdir / "train.parquet").to_pandas()
    holdout_df = pq.read_table(workdir / "holdout.parquet").to_pandas()
    shard_paths = sorted((workdir / "data").glob("part-*.parquet"))

    with stages.time("suite: ShardValidator (GX suite from train)"):
        validator = ShardValidator(schema, train_df, gates, "bench", rows_per_shard=spec["synthetic"] // spec["shards"])
    for path in shard_paths:
        table = pq.read_table(path)  # the pipeline hands over the table it has just written
        with stages.time(f"shard {path.stem}: shape checks + GX", part_of="shards"):
            validator(path, table)

    stages.wrap(checks, "sample_rows", "sample metrics_rows from shards")
    stages.wrap(fidelity, "quality_report", "SDMetrics quality")
    stages.wrap(fidelity, "detection_auc", "detection AUC")
    stages.wrap(fidelity, "tstr", "TSTR (train vs synthetic sample)")
    stages.wrap(privacy, "privacy_metrics", "privacy (DCR, NNDR, exact, MIA)")
    stages.wrap(artifacts, "write_expectations", "GX suite + results + Data Docs")
    stages.wrap(shell, "junit_xml", "junit.xml")
    stages.wrap(tabular, "sections", "report.html sections (matplotlib)")
    with tempfile.TemporaryDirectory(prefix="synthaug-bench-out-") as out, stages.time("finish (metrics + reports)"):
        report, synthetic = checks.build_report(
            validator, shard_paths, train_df, holdout_df, gates,
            target=spec["target"], seed=seed, metrics_rows=metrics_rows, header={"name": "validation-benchmark", "rows": spec["synthetic"]},
        )  # fmt: skip
        artifacts.write_report(Path(out), report, validator, train_df, synthetic, schema)
    total = time.perf_counter() - t_start
    metrics = report["metrics"]
    return {
        "table": name,
        "target_seconds": spec["seconds"],
        "metrics_rows": metrics_rows,
        "total_seconds": total,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "start_rss_mb": start_rss,
        "stages": stages.rows,
        "gates": [{k: g[k] for k in ("name", "value", "passed")} for g in report["gates"]],
        "privacy": {k: v for k, v in metrics.get("privacy", {}).items() if not k.startswith("dcr_histogram")},
        "fidelity": {k: v for k, v in metrics.get("fidelity", {}).items() if k != "quality"}
        | {"quality": {k: v for k, v in metrics["fidelity"]["quality"].items() if k != "column_shape_scores"}},
    }


# ---------------------------------------------------------------------------- driver


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def child(workdir: Path, metrics_rows: int, seed: int, profile: str | None, result: Path, name: str) -> None:
    warnings.filterwarnings("ignore")
    if profile:
        import cProfile

        prof = cProfile.Profile()
        out = prof.runcall(run_once, workdir, metrics_rows, seed, name)
        prof.dump_stats(profile)
    else:
        out = run_once(workdir, metrics_rows, seed, name)
    result.write_text(json.dumps(out, default=float))


def _tstr_real(f: dict) -> str:
    """Train-on-real score and the chosen recipe (older code had no recipe)."""
    t = f.get("tstr", {})
    score = ", ".join(f"{k} {v:.4f}" for k, v in t.get("real", {}).items())
    recipe = t.get("recipe")
    return f"{score}; {recipe['model']} {recipe['params']}" if recipe else score


def print_run(r: dict) -> None:
    print(f"\n### metrics_rows = {r['metrics_rows']:,}\n")
    print("| stage | seconds | peak RSS so far (MB) |")
    print("|---|---:|---:|")
    shard_rows = [s for s in r["stages"] if s["part_of"] == "shards"]
    for s in r["stages"]:
        if s["part_of"] == "shards":
            if s is shard_rows[0]:
                secs = sum(x["seconds"] for x in shard_rows)
                each = ", ".join(f"{x['seconds']:.2f}" for x in shard_rows)
                print(f"| shards: {len(shard_rows)} × shape checks + GX ({each}) | {secs:.2f} | {shard_rows[-1]['peak_rss_mb']:,.0f} |")
            continue
        if s["part_of"] == "finish":
            continue
        print(f"| {s['stage']} | {s['seconds']:.2f} | {s['peak_rss_mb']:,.0f} |")
        if s["stage"].startswith("finish"):
            parts = [x for x in r["stages"] if x["part_of"] == "finish"]
            for x in parts:
                print(f"| &nbsp;&nbsp;└ {x['stage']} | {x['seconds']:.2f} | {x['peak_rss_mb']:,.0f} |")
            rest = s["seconds"] - sum(x["seconds"] for x in parts)
            print(f"| &nbsp;&nbsp;└ (rest of finish: gates, dict building) | {rest:.2f} | |")
    print(f"| **total** | **{r['total_seconds']:.2f}** | **{r['peak_rss_mb']:,.0f}** |")
    share = r["total_seconds"] / r["target_seconds"]
    print(f"\ntotal / {r['target_seconds']:.0f} s target = {share:.2f}; peak RSS {r['peak_rss_mb']:,.0f} MB")
    p, f = r["privacy"], r["fidelity"]
    print(
        f"metrics (sanity, synthetic = noisy resample of train): quality {f['quality']['overall']:.4f}, "
        f"detection AUC {f['detection_auc']:.4f}, TSTR gap {f['tstr_gap']:.4f} (train-on-real {_tstr_real(f)}), "
        f"DCR share {p['dcr_share']:.4f}, "
        f"MIA AUC {p['mia_auc']:.4f}, exact-match rate {p['exact_match_rate']:.4f}; "
        f"gates failed: {[g['name'] for g in r['gates'] if not g['passed']] or 'none'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", choices=sorted(TABLES), default="customers")
    ap.add_argument("--metrics-rows", type=int, nargs="+", help="default: 20000 and 100000 (customers), 20000 (high-cardinality)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, help="reuse / keep the generated data here")
    ap.add_argument("--profile", help="write cProfile stats of the (single) run to this path")
    ap.add_argument("--json", type=Path, help="also write the raw results as JSON")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    spec = TABLES[args.table]
    args.metrics_rows = args.metrics_rows or spec["metrics_rows"]
    if args.child:
        child(args.workdir, args.metrics_rows[0], args.seed, args.profile, args.result, args.table)
        return 0

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"date: {dt.datetime.now().isoformat(timespec='minutes')}; {platform.platform()}; python {platform.python_version()}; "
          f"{os.cpu_count()} CPUs; load average (1/5/15 min) before: {load_average()}")  # fmt: skip
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="synthaug-bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / "schema.json").exists():
            t0 = time.perf_counter()
            make_data(workdir, args.seed, args.table)
            train_rows = spec["real"] - spec["holdout"]
            print(f"data ({args.table}): {spec['real']:,} real rows ({train_rows:,} train / {spec['holdout']:,} holdout), "
                  f"{spec['synthetic']:,} synthetic in {spec['shards']} shards; made in {time.perf_counter() - t0:.1f} s "
                  "(not timed below)")  # fmt: skip
        runs = []
        for rows in args.metrics_rows:
            result = workdir / f"result-{rows}.json"
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--table",
                args.table,
                "--workdir",
                str(workdir),
                "--metrics-rows",
                str(rows),
                "--seed",
                str(args.seed),
                "--result",
                str(result),
            ]
            if args.profile:
                cmd += ["--profile", args.profile if len(args.metrics_rows) == 1 else f"{args.profile}.{rows}"]
            subprocess.run(cmd, check=True)
            runs.append(json.loads(result.read_text()))
            print_run(runs[-1])
    print(f"\nload average (1/5/15 min) after: {load_average()}")
    if len(runs) > 1:
        print(f"\n| metrics_rows | total s | / {spec['seconds']:.0f} s target | peak RSS MB |")
        print("|---:|---:|---:|---:|")
        for r in runs:
            share = r["total_seconds"] / spec["seconds"]
            print(f"| {r['metrics_rows']:,} | {r['total_seconds']:.2f} | {share:.2f} | {r['peak_rss_mb']:,.0f} |")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
