"""Tabular benchmark: every registered synthaug family against SDV's GaussianCopula, CTGAN and TVAE.

For each table (penguins, and scikit-learn's bundled breast_cancer and wine, each with its
target as a categorical column) and each generator, in one run on the same machine:

- fit time (seconds, wall clock);
- sampling speed (rows/s while sampling `--sample-rows` rows through `sample_batches`);
- SDMetrics QualityReport (overall, Column Shapes, Column Pair Trends) of a synthetic table
  the size of the training table against the training table (synthaug.validation.fidelity);
- for our families, when each first beats CTGAN's quality: the same trainer rerun with epoch
  budgets of 5, 10, 20, ... (BUDGETS) until one does (skip with --no-reach).

Every generator trains on the whole table with its default config and the same
TrainerConfig: `max_epochs` is the epoch budget for ours *and* for SDV's CTGAN/TVAE (their
`epochs` default to the trainer's), 300 by default as in SDV; our families may stop earlier
(early stopping, `patience`), SDV's always run the full budget.

    python benchmarks/tabular.py                        # 300 epochs, patience 30
    python benchmarks/tabular.py --quick                # 30 epochs, patience 10
    python benchmarks/tabular.py --quick --out benchmarks/RESULTS.md

No network: the tables are data/penguins.csv and scikit-learn's bundled datasets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shlex
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthaug.generators.base import available, get_generator  # noqa: E402
from synthaug.io.sources import read_table  # noqa: E402
from synthaug.schema import infer_schema  # noqa: E402
from synthaug.training.config import TrainerConfig
from synthaug.validation.fidelity import quality_report  # noqa: E402

SDV = ("sdv_gaussian_copula", "sdv_ctgan", "sdv_tvae")
BUDGETS = (5, 10, 20, 40, 80, 160)  # epoch budgets tried for "time to CTGAN's quality"
REFERENCE, SIMPLE = "sdv_ctgan", "sdv_gaussian_copula"


def sklearn_table(loader) -> pa.Table:
    bunch = loader(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]  # class names: categorical
    return pa.Table.from_pandas(frame, preserve_index=False)


def tables() -> dict[str, pa.Table]:
    from sklearn.datasets import load_breast_cancer, load_wine

    return {
        "penguins": read_table(ROOT / "data" / "penguins.csv"),
        "breast_cancer": sklearn_table(load_breast_cancer),
        "wine": sklearn_table(load_wine),
    }


def families(only: list[str] | None) -> list[str]:
    names = [n for n in available() if get_generator(n).modality == "tabular"]
    ours = [n for n in names if not n.startswith("sdv_")]
    chosen = ours + [n for n in SDV if n in names]
    return [n for n in chosen if not only or n in only]


def variant(spec: str) -> tuple[str, str, dict]:
    """'vae:prior=mixture,latent_dim=16' -> ('vae (prior=mixture, latent_dim=16)', 'vae', {...}); values parsed as YAML."""
    import yaml

    family, _, settings = spec.partition(":")
    params = {k.strip(): yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in settings.split(",") if kv)}
    label = f"{family} ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else family
    return label, family, params


def run_one(name: str, table: pa.Table, trainer: TrainerConfig, sample_rows: int, seed: int) -> dict:
    schema = infer_schema(table)
    _, family, params = variant(name)
    gen = get_generator(family)(params)
    start = time.perf_counter()
    gen.fit(table, schema, trainer, seed=seed)
    fit_s = time.perf_counter() - start

    rows, sample_s = 0, float("nan")
    if sample_rows:
        start = time.perf_counter()
        rows = sum(b.num_rows for b in gen.sample_batches(sample_rows, seed=seed + 1, batch_size=10_000))
        sample_s = time.perf_counter() - start

    synthetic = pa.concat_tables(list(gen.sample_batches(table.num_rows, seed=seed, batch_size=10_000))).to_pandas()
    q = quality_report(table.to_pandas(), synthetic, schema, seed=seed)
    return {
        "fit_s": fit_s,
        "rows_per_s": rows / sample_s,
        "overall": q["overall"],
        "shapes": q["column_shapes"],
        "pairs": q["column_pair_trends"],
    }


def time_to_reach(name: str, table: pa.Table, trainer: TrainerConfig, target: float, seed: int) -> dict | None:
    """The shortest epoch budget in BUDGETS (below the full one) whose run beats `target` quality:
    the same trainer with a smaller max_epochs, so it is what a user gets by asking for fewer epochs."""
    for epochs in BUDGETS:
        if epochs >= trainer.max_epochs:
            return None
        r = run_one(name, table, trainer.model_copy(update={"max_epochs": epochs}), 0, seed)
        print(f"    {epochs} epochs: quality {r['overall']:.3f} in {r['fit_s']:.1f} s", flush=True)
        if r["overall"] > target:
            return {"epochs": epochs, "fit_s": r["fit_s"], "overall": r["overall"]}
    return None


def fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def markdown(results: dict, args, trainer: TrainerConfig, command: str, started: str, total_s: float, shapes: dict) -> str:
    lines = [
        "# Tabular benchmark results",
        "",
        f"- command: `{command}`",
        f"- date: {started} (total {total_s / 60:.1f} min)",
        f"- machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}, torch threads {_threads()}; CPU only",
        f"- versions: {_versions()}",
        f"- trainer (ours and SDV CTGAN/TVAE epochs): max_epochs={trainer.max_epochs}, patience={trainer.patience} "
        f"(ours only; SDV runs every epoch), batch_size={trainer.batch_size}, val_fraction={trainer.val_fraction} (ours only)",
        f"- configs: every family's defaults (rows with settings in parentheses: `--variant`); seed {args.seed}; quality = SDMetrics QualityReport of {'{'}synthetic of train size{'}'} vs train "
        f"(the whole table); sampling speed over {args.sample_rows} rows",
        "- tables: " + ", ".join(f"{k} {v[0]}×{v[1]}" for k, v in shapes.items()),
        "",
    ]
    for table, by_gen in results.items():
        lines += [
            f"## {table}",
            "",
            "| generator | fit s | sample rows/s | quality | column shapes | pair trends | fit time / CTGAN | quality − CTGAN | quality − GaussianCopula | beats CTGAN after (epochs, s, × CTGAN fit) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        ref, simple = by_gen.get(REFERENCE, {}), by_gen.get(SIMPLE, {})
        for name, r in by_gen.items():
            if "error" in r:
                lines.append(f"| {name} | error: {r['error']} | | | | | | | | |")
                continue
            ratio = r["fit_s"] / ref["fit_s"] if ref.get("fit_s") else None
            d_ref = r["overall"] - ref["overall"] if ref.get("overall") is not None and r["overall"] is not None else None
            d_simple = r["overall"] - simple["overall"] if simple.get("overall") is not None and r["overall"] is not None else None
            lines.append(
                f"| {name} | {fmt(r['fit_s'], 1)} | {r['rows_per_s']:,.0f} | {fmt(r['overall'])} | {fmt(r['shapes'])} | {fmt(r['pairs'])} "
                f"| {fmt(ratio, 2)} | {'' if d_ref is None else f'{d_ref:+.3f}'} | {'' if d_simple is None else f'{d_simple:+.3f}'} | {_reach(r, ref)} |"
            )
        lines.append("")
    return "\n".join(lines)


def _reach(r: dict, ref: dict) -> str:
    if "reach" not in r:
        return ""
    if r["reach"] is None:
        return "only with the full budget" if r["overall"] > ref.get("overall", float("inf")) else "no"
    x = r["reach"]
    return f"{x['epochs']} epochs, {x['fit_s']:.1f} s, {x['fit_s'] / ref['fit_s']:.2f}× (quality {x['overall']:.3f})"


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("synthaug", "torch", "pytorch-lightning", "sdv", "ctgan", "sdmetrics"):
        try:
            out.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 epochs (patience 10) instead of 300 (patience 30)")
    parser.add_argument("--epochs", type=int, help="override the epoch budget (ours and SDV's)")
    parser.add_argument("--tables", nargs="*", help="subset of: penguins breast_cancer wine")
    parser.add_argument("--generators", nargs="*", help="subset of the registered names")
    parser.add_argument(
        "--variant", action="append", default=[], help="an extra row with non-default settings, e.g. vae:prior=mixture (repeatable)"
    )
    parser.add_argument("--sample-rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the results as Markdown here")
    parser.add_argument("--no-reach", action="store_true", help="skip the shorter runs that find when each family first beats CTGAN")
    args = parser.parse_args(argv)

    epochs = args.epochs or (30 if args.quick else 300)
    trainer = TrainerConfig(max_epochs=epochs, patience=10 if args.quick else 30, progress_bar=False)
    command = "python " + " ".join(
        shlex.quote(a)
        for a in [
            str(Path(sys.argv[0]).resolve().relative_to(ROOT)) if Path(sys.argv[0]).exists() else sys.argv[0],
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    t0 = time.perf_counter()
    data = {k: v for k, v in tables().items() if not args.tables or k in args.tables}
    names = families(args.generators)
    for spec in args.variant:  # "family:key=value,..." runs like a family; its row is labelled by variant()
        names.insert(len([n for n in names if n not in SDV]), spec)
    print(f"tables: {list(data)}; generators: {names}; epochs {epochs}", flush=True)
    results: dict[str, dict[str, dict]] = {}
    for table_name, table in data.items():
        results[table_name] = {}
        for name in sorted(names, key=lambda n: n not in SDV):  # SDV first: CTGAN's quality is the target below
            print(f"[{table_name}] {name} ...", flush=True)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = run_one(name, table, trainer, args.sample_rows, args.seed)
            except Exception as exc:  # a failing family is reported, the others still run
                traceback.print_exc()
                r = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"}
            ref = results[table_name].get(REFERENCE, {})
            if name not in SDV and "error" not in r and ref.get("overall") is not None and not args.no_reach:
                r["reach"] = time_to_reach(name, table, trainer, ref["overall"], args.seed)
            results[table_name][variant(name)[0]] = r
            print(f"[{table_name}] {name}: {r}", flush=True)
        results[table_name] = {variant(n)[0]: results[table_name][variant(n)[0]] for n in names}  # report ours first
    text = markdown(
        results, args, trainer, command, started, time.perf_counter() - t0, {k: (v.num_rows, v.num_columns) for k, v in data.items()}
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
