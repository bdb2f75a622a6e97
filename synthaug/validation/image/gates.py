"""Image gates (presets in config/presets/gates/images.yaml): thresholds -> PASS/FAIL lines.

The metrics come from `synthaug.validation.image.image_metrics`, in the feature space of a small
classifier trained on the real training split; `frechet_ratio` divides the synthetic images'
Fréchet distance by the real holdout's own distance to the training images (1.0 = as close as
fresh real images are).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from synthaug.validation.gates import GateResult, metric_value


class ImageGatesConfig(BaseModel):
    """Every threshold is optional: None means the check is not run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expectations: bool = True
    tstr_gap_max: float | None = Field(None, description="train-on-real minus train-on-synthetic accuracy on the holdout")
    frechet_ratio_max: float | None = Field(None, gt=0)
    precision_min: float | None = Field(None, ge=0, le=1)
    recall_min: float | None = Field(None, ge=0, le=1)
    coverage_min: float | None = Field(None, ge=0, le=1)
    dcr_share_max: float | None = Field(None, ge=0, le=1, description="pixel and feature space; the larger counts")
    exact_duplicate_excess_max: float | None = Field(None, ge=0, le=1)
    near_duplicate_excess_max: float | None = Field(None, ge=-1, le=1)
    optional: list[str] = Field(default_factory=list, description="gates that may be skipped when they cannot be measured")


# gate key -> (metric path, comparison)
IMAGE_GATES = {
    "tstr_gap_max": ("tstr.gap", "<="),
    "frechet_ratio_max": ("fidelity.frechet_ratio", "<="),
    "precision_min": ("fidelity.precision", ">="),
    "recall_min": ("fidelity.recall", ">="),
    "coverage_min": ("fidelity.coverage", ">="),
    "dcr_share_max": ("privacy.dcr_share", "<="),
    "exact_duplicate_excess_max": ("privacy.exact_duplicate_excess", "<="),
    "near_duplicate_excess_max": ("privacy.near_duplicate_excess", "<="),
}


def evaluate_images(gates: ImageGatesConfig, metrics: dict[str, Any], expectation_failures: list[str] | None) -> list[GateResult]:
    """One GateResult per configured gate. A gate asked for but not measurable fails, unless it is
    listed in `optional` (then it is reported as skipped)."""
    results = []
    if gates.expectations and expectation_failures is not None:
        detail = f"failing shards: {', '.join(expectation_failures[:5])}" if expectation_failures else ""
        results.append(GateResult("expectations", float(len(expectation_failures)), "<=", 0, not expectation_failures, detail))
    skipped = metrics.get("skipped", {})
    for key, (path, op) in IMAGE_GATES.items():
        threshold = getattr(gates, key)
        if threshold is None:
            continue
        value = metric_value(metrics, path)
        if value is None:
            reason = skipped.get(path.split(".")[-1]) or skipped.get(path.split(".")[0]) or "metric missing"
            results.append(GateResult(key, None, op, threshold, key in gates.optional, f"skipped: {reason}"))
            continue
        results.append(GateResult(key, value, op, threshold, value >= threshold if op == ">=" else value <= threshold))
    return results
