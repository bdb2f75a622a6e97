"""Shared fixtures: the bundled penguins table and tiny pipelines that train in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PENGUINS = ROOT / "data" / "penguins.csv"


@pytest.fixture
def penguins_table():
    from synthaug.io.sources import read_table

    return read_table(PENGUINS)


@pytest.fixture
def write_pipeline(tmp_path):
    """Write a tiny pipeline YAML; keyword sections replace or extend the defaults."""

    def write(source: Path | str | dict = PENGUINS, name: str = "tiny", **sections) -> Path:
        raw = {
            "name": name,
            "seed": 0,
            "source": source if isinstance(source, dict) else {"path": str(source)},
            "generator": "vae_small",
            "trainer": "tiny",
            "gates": "none",
            "sample": {"n_rows": 300, "rows_per_shard": 128, "batch_size": 100},
            "output": {"dir": str(tmp_path / "out" / name)},
            "cache": {"enabled": False},  # each test trains afresh; tests/test_cache.py turns it on
        }
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


def tree(path: Path) -> dict[str, bytes]:
    """Every file under `path` with its bytes, to prove a folder did not change."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run faster on one thread, and much faster when other processes share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
