"""Thresholds (conf/gates/*.yaml) -> one pass/fail line per check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
    novel_combination_excess_max: float | None = Field(None, ge=0, le=1)
    rule_violation_max: float | None = Field(None, ge=0, le=1)
    optional: list[str] = Field(
        default_factory=list,
        description="gates that may be skipped when their metric cannot be measured (e.g. tstr_gap_max without a target); "
        "any other gate that cannot be measured fails",
    )

    @field_validator("optional")
    @classmethod
    def _known_gates(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in _GATES]
        if unknown:
            raise ValueError(f"'{unknown[0]}' is not a gate; gates are: {', '.join(_GATES)}")
        return names

    def needs_fidelity(self) -> bool:
        return any(
            v is not None
            for v in (self.quality_min, self.column_shapes_min, self.pair_trends_min, self.detection_auc_max, self.tstr_gap_max)
        )

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
        detail = f" {self.detail}" if self.detail else ""
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {shown} (must be {self.op} {self.threshold}){detail}"


def metric_value(metrics: dict[str, Any], path: str) -> float | None:
    """The number at a dotted path of the metrics dict (None if absent)."""
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
    "novel_combination_excess_max": ("validity.novel_combination_excess", "<="),
    "rule_violation_max": ("validity.rule_violation", "<="),
}


def evaluate(gates: GatesConfig, metrics: dict[str, Any], *, reasons: dict[str, str] | None = None) -> list[GateResult]:
    """Compare each configured threshold with its metric.

    A gate that was asked for but cannot be measured here (TSTR without a target or a holdout,
    privacy without a holdout: the metric is listed under metrics["skipped"][path]) FAILS, with the
    detail "skipped: <reason>", unless `gates.optional` lists it: then it passes and is reported as
    skipped. A metric that is simply missing fails too. A gate never passes silently.

    `reasons` words the reason for the command at hand, by what is missing: {"holdout": "no
    --holdout", "target": "no --target"} for `synthaug validate`; without it the metric's own
    reason (which names the pipeline key) is shown.
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
        value = metric_value(metrics, path)
        if value is None:
            reason = metrics.get("skipped", {}).get(path)
            if reason is None:
                results.append(GateResult(key, None, op, threshold, False, "metric missing"))
                continue
            missing = "target" if "target" in reason else "holdout" if "holdout" in reason else None
            reason = (reasons or {}).get(missing, reason) if missing else reason
            if key in gates.optional:
                results.append(GateResult(key, None, op, threshold, True, f"skipped: {reason}"))
            else:
                required = "; the gates preset requires it (list it under optional: to allow skipping)"
                results.append(GateResult(key, None, op, threshold, False, f"skipped: {reason}{required}"))
            continue
        passed = value >= threshold if op == ">=" else value <= threshold
        results.append(GateResult(key, value, op, threshold, passed))
    return results


def gate_paths() -> dict[str, str]:
    return {key: path for key, (path, _) in _GATES.items()}
