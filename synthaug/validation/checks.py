"""Run the checks of one run: GX + shape checks shard by shard, then fidelity and privacy metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthaug.schema import Schema
from synthaug.validation.gates import GatesConfig
from synthaug.validation.shape import check_shard


class ShardValidator:
    """Called once per written shard: shape checks always, the GX suite when gates ask for it."""

    def __init__(
        self,
        schema: Schema,
        train: pd.DataFrame,
        gates: GatesConfig,
        run_name: str,
        *,
        rows_per_shard: int | None = None,
        extra: list[dict] | None = None,
        suite_path: str | None = None,
    ):
        self.schema, self.run_name = schema, run_name
        self.checks: list = []
        self.results: dict[str, dict] = {}
        self.suite = None
        if gates.expectations:
            from synthaug.validation import expectations

            self.suite = (
                expectations.load_suite(suite_path)
                if suite_path
                else expectations.build_suite(train, schema, extra=extra, rows_per_shard=rows_per_shard)
            )

    def __call__(self, path: Path, table: pa.Table) -> None:
        table = table.select(self.schema.names)  # drop an optional synthetic marker column
        self.checks.extend(check_shard(table, self.schema, path.name))
        if self.suite is not None:
            from synthaug.validation.expectations import validate_shard

            self.results[path.stem] = validate_shard(table.to_pandas(), self.suite, run_name=f"{self.run_name}-{path.stem}")

    def summary(self) -> dict[str, Any]:
        shards = {
            name: {
                "success": r["success"],
                "failed": [f"{x['expectation']}({x.get('column') or ''})" for x in r["results"] if not x["success"]],
            }
            for name, r in self.results.items()
        }
        return {"success": all(s["success"] for s in shards.values()), "shards": shards}


def sample_rows(paths: list[Path], n: int, seed: int) -> pd.DataFrame:
    """A seeded uniform sample of at most `n` rows across shards, read column-wise from Parquet."""
    import pyarrow.dataset as ds

    dataset = ds.dataset([str(p) for p in paths], format="parquet")
    total = dataset.count_rows()
    if total <= n:
        return dataset.to_table().to_pandas()
    index = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    return dataset.take(pa.array(index)).to_pandas()


def compute_metrics(
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    synthetic: pd.DataFrame,
    schema: Schema,
    gates: GatesConfig,
    *,
    target: str | None = None,
    seed: int = 0,
    fidelity_real: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Fidelity and privacy metrics the gates need; what cannot be computed goes under 'skipped'.

    `fidelity_real` replaces `train` as the reference of quality and detection (rebalanced runs
    compare with real rows resampled to the synthetic class shares); TSTR and privacy use train.
    """
    from synthaug.validation import fidelity, privacy

    synthetic = synthetic[schema.names]
    metrics: dict[str, Any] = {"fidelity": {}, "privacy": {}, "skipped": {}}
    if gates.needs_fidelity():
        reference = train if fidelity_real is None else fidelity_real
        metrics["fidelity"]["quality"] = fidelity.quality_report(reference, synthetic, schema, seed=seed)
        detection = fidelity.detection_details(reference, synthetic, schema, seed=seed)
        metrics["fidelity"]["detection_auc"] = detection["auc"]
        metrics["fidelity"]["detection"] = detection  # with the features that give synthetic rows away
        if target is None:
            metrics["skipped"]["fidelity.tstr_gap"] = "no target declared"
        elif holdout is None or len(holdout) == 0:
            metrics["skipped"]["fidelity.tstr_gap"] = "no holdout (split.holdout is 0)"
        else:
            tstr = fidelity.tstr(train, holdout, synthetic, schema, target, seed=seed)
            metrics["fidelity"]["tstr"] = tstr
            # The gated number: accuracy gap for a label, R^2 gap for a numeric target.
            metrics["fidelity"]["tstr_gap"] = tstr["gap"]["accuracy" if tstr["task"] == "classification" else "r2"]
    if gates.needs_privacy():
        if holdout is None or len(holdout) < 2:
            for key in ("dcr_share", "exact_match_excess", "mia_auc"):
                metrics["skipped"][f"privacy.{key}"] = "privacy metrics need a holdout (set split.holdout > 0)"
        else:
            p = privacy.privacy_metrics(train, holdout, synthetic, schema, seed=seed)
            p["exact_match_excess"] = max(0.0, p["exact_match_rate"] - p["holdout_exact_match_rate"])
            metrics["privacy"] = p
    if gates.novel_combination_excess_max is not None or gates.rule_violation_max is not None:
        from synthaug.validation.validity import validity_metrics

        # Pairs never seen in training (beyond the holdout's own rate) and rows breaking the schema's rules.
        metrics["validity"] = validity_metrics(train, holdout, synthetic, schema)
    return metrics


def build_report(
    validator: ShardValidator,
    shard_paths: list[Path],
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    gates: GatesConfig,
    *,
    target: str | None,
    seed: int,
    metrics_rows: int,
    header: dict[str, Any],
    fidelity_real: pd.DataFrame | None = None,
    skip_reasons: dict[str, str] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """After the last shard: metrics and gate verdicts. Returns the report and the synthetic
    rows the metrics used (for the report's plots); io.artifacts.write_report writes the files."""
    from synthaug.validation.gates import GateResult, evaluate

    schema = validator.schema
    synthetic = sample_rows(shard_paths, metrics_rows, seed)
    metrics = compute_metrics(train, holdout, synthetic, schema, gates, target=target, seed=seed, fidelity_real=fidelity_real)
    if validator.suite is not None:
        metrics["expectations"] = validator.summary()
    failed_checks = [c for c in validator.checks if not c.passed]
    detail = "; ".join(f"{c.name}: {c.detail}" for c in failed_checks[:3])
    results = [GateResult("shard_checks", float(len(failed_checks)), "<=", 0, not failed_checks, detail)]
    results += evaluate(gates, metrics, reasons=skip_reasons)  # skip_reasons: how the command words a missing holdout/target
    passed = all(g.passed for g in results)
    report = {
        **header,
        "status": "passed" if passed else "failed",
        "passed": passed,
        "gates": [g.to_dict() for g in results],
        "metrics": metrics,
        "checks": [c.to_dict() for c in validator.checks],
        "expectations_detail": {k: {x: v for x, v in r.items() if x != "gx"} for k, r in validator.results.items()},
    }
    return report, synthetic
