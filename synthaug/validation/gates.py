"""Thresholds (conf/gates/*.yaml) -> one pass/fail line per check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GatesConfig(BaseModel):
    """Every threshold is optional: None means the check is not run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expectations: bool = True
    quality_min: float | None = Field(None, ge=0, le=1)
    column_shapes_min: float | None = Field(None, ge=0, le=1)
    pair_trends_min: float | None = Field(None, ge=0, le=1)
    detection_auc_max: float | None = Field(None, ge=0, le=1)
    tstr_gap_max: float | None = None
    dcr_share_max: float | None = Field(None, ge=0, le=1)
    exact_match_excess_max: float | None = Field(None, ge=0, le=1)
    mia_auc_max: float | None = Field(None, ge=0, le=1)

    def needs_fidelity(self) -> bool:
        return any(v is not None for v in (self.quality_min, self.column_shapes_min, self.pair_trends_min, self.detection_auc_max, self.tstr_gap_max))

    def needs_privacy(self) -> bool:
        return any(v is not None for v in (self.dcr_share_max, self.exact_match_excess_max, self.mia_auc_max))


@dataclass(frozen=True)
class GateResult:
    name: str
    value: float | None
    op: str  # ">=" or "<="
    threshold: float
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.4f}"
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {shown} (must be {self.op} {self.threshold}){' ' + self.detail if self.detail else ''}"


def _value(metrics: dict[str, Any], path: str) -> float | None:
    node: Any = metrics
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return None if node is None else float(node)


# gate key -> (metric path in the metrics dict, comparison)
_GATES = {
    "quality_min": ("fidelity.quality.overall", ">="),
    "column_shapes_min": ("fidelity.quality.column_shapes", ">="),
    "pair_trends_min": ("fidelity.quality.column_pair_trends", ">="),
    "detection_auc_max": ("fidelity.detection_auc", "<="),
    "tstr_gap_max": ("fidelity.tstr_gap", "<="),
    "dcr_share_max": ("privacy.dcr_share", "<="),
    "exact_match_excess_max": ("privacy.exact_match_excess", "<="),
    "mia_auc_max": ("privacy.mia_auc", "<="),
}


def evaluate(gates: GatesConfig, metrics: dict[str, Any]) -> list[GateResult]:
    """Compare each configured threshold with its metric.

    A metric that cannot exist for this run (TSTR without a target, privacy without a holdout)
    is listed under metrics["skipped"][path] and its gate passes with that reason shown.
    A metric that is simply missing fails its gate: a gate never passes silently.
    """
    results = []
    if gates.expectations and "expectations" in metrics:
        failed = [name for name, r in metrics["expectations"]["shards"].items() if not r["success"]]
        detail = f"failing shards: {', '.join(failed[:5])}" if failed else ""
        results.append(GateResult("expectations", float(len(failed)), "<=", 0, not failed, detail))
    for key, (path, op) in _GATES.items():
        threshold = getattr(gates, key)
        if threshold is None:
            continue
        value = _value(metrics, path)
        skipped = metrics.get("skipped", {}).get(path)
        if value is None:
            results.append(GateResult(key, None, op, threshold, skipped is not None, f"skipped: {skipped}" if skipped else "metric missing"))
            continue
        passed = value >= threshold if op == ">=" else value <= threshold
        results.append(GateResult(key, value, op, threshold, passed))
    return results


def gate_paths() -> dict[str, str]:
    return {key: path for key, (path, _) in _GATES.items()}
