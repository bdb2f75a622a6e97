"""manifest.json: the one typed record of what a command wrote, for `run` and `sample` alike.

`producer: synthaug` marks a folder as a synthaug output (io.publish only overwrites those);
`format_version` lets later versions read older manifests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthaug.io.artifacts import versions, write_json

FORMAT_VERSION = 1


class ShardRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str  # relative to the run directory
    rows: int
    bytes: int
    sha256: str


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    producer: Literal["synthaug"] = "synthaug"
    kind: Literal["run", "sample"]
    name: str
    status: Literal["published", "quarantined"]
    generator: str
    seed: int
    rows: int
    shards: list[ShardRecord]
    config: dict[str, Any] | None = None  # the resolved pipeline config (run) or the sample settings
    config_hash: str | None = None
    source: dict[str, Any] | None = None  # {path, sha256, rows} of the data, or {model: path} for sample
    split: dict[str, int] | None = None
    balance: dict[str, Any] | None = None
    fit: dict[str, Any] | None = None  # best epoch, why training stopped, trainer settings
    epsilon: float | None = None  # differential privacy spent; None: the run is not DP
    privacy: dict[str, Any] | None = None  # DP-SGD: noise multiplier, sampling rate, steps, accountant, delta, ledger entry
    gates: list[dict[str, Any]] = Field(default_factory=list)
    versions: dict[str, str] = Field(default_factory=versions)
    timings: dict[str, float] = Field(default_factory=dict)


def write_manifest(run_dir: Path, manifest: RunManifest) -> None:
    write_json(run_dir / "manifest.json", manifest.model_dump(mode="json"))
