"""`synthaug.evaluate`: the gates' metrics on in-memory tables, no files written."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa


def evaluate(
    real: pd.DataFrame | pa.Table,
    synthetic: pd.DataFrame | pa.Table,
    holdout: pd.DataFrame | pa.Table | None = None,
    *,
    gates: str | dict[str, Any] = "default",
    target: str | None = None,
    seed: int = 0,
    metrics_rows: int = 20_000,
) -> dict[str, Any]:
    """Score `synthetic` against the real training rows (and a real holdout for privacy and TSTR)
    with the same metrics and gates as a run; returns the report dict (`report["passed"]`,
    `report["gates"]`, `report["metrics"]`). `gates` is a preset name or a mapping of thresholds."""
    from synthaug.config.pipeline import conf_dirs, load_preset
    from synthaug.errors import BadInput
    from synthaug.schema import infer_schema
    from synthaug.validation.checks import compute_metrics
    from synthaug.validation.gates import GateResult, GatesConfig
    from synthaug.validation.gates import evaluate as evaluate_gates
    from synthaug.validation.shape import check_shard

    def table(x) -> pa.Table:
        return x if isinstance(x, pa.Table) else pa.Table.from_pandas(x, preserve_index=False)

    real_t, synth_t = table(real), table(synthetic)
    schema = infer_schema(real_t, source="real")
    missing = [c for c in schema.names if c not in synth_t.column_names]
    if missing:
        raise BadInput(f"synthetic data lacks column '{missing[0]}' of the real data; columns there: {', '.join(synth_t.column_names)}")
    if target is not None and target not in schema.names:
        raise BadInput(f"target '{target}' is not a column of the real data")
    synth_t = synth_t.select(schema.names)
    try:
        synth_t = synth_t.cast(schema.arrow_schema())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # the shape checks report the type difference
    config = GatesConfig(**(load_preset("gates", gates, conf_dirs(), "gates") if isinstance(gates, str) else gates))
    train_df = real_t.to_pandas()
    synth_df = synth_t.to_pandas()
    if len(synth_df) > metrics_rows:
        synth_df = synth_df.sample(metrics_rows, random_state=seed)
    holdout_df = None if holdout is None else table(holdout).select(schema.names).to_pandas()
    metrics = compute_metrics(train_df, holdout_df, synth_df, schema, config, target=target, seed=seed)
    checks = check_shard(synth_t, schema, "synthetic")
    failed = [c for c in checks if not c.passed]
    results = [GateResult("shard_checks", float(len(failed)), "<=", 0, not failed, "; ".join(c.detail for c in failed[:3]))]
    results += evaluate_gates(config, metrics)
    passed = all(g.passed for g in results)
    return {
        "passed": passed,
        "status": "passed" if passed else "failed",
        "gates": [g.to_dict() for g in results],
        "metrics": metrics,
        "checks": [c.to_dict() for c in checks],
    }
