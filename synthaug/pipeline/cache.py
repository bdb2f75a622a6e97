"""Stage cache: a rerun with nothing changed is nearly free.

Keys: sha256 over the stage's inputs and everything before it — the source data's sha256, the
resolved config of the stage and of the stages before it, the seed, and the code identity
(synthaug's version plus a fingerprint of its source files, so an edited default invalidates
the cache). Two levels:

- **fit**: the fitted model, stored under `<cache dir>/fit/<key>/` with the sha256 of every file;
  a later run with the same fit key loads it instead of training. Entries are re-verified by
  hash before use; a corrupted entry is reported, removed and rebuilt, never trusted.
- **run**: the whole published result. If `output.dir` holds a published run whose `run_key`
  (fit key + sampling, augmentation, validation and gates) matches and whose shards still hash
  as its manifest says, nothing runs at all.

The cache lives in `<output parent>/.synthaug-cache/` unless `cache.dir` says otherwise; DP runs
are never cached (reusing a DP model is a new release of the same spend, but the ledger could not
tell). `synthaug.lock` in the run directory records the keys and output hashes of the run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from synthaug.io.shards import sha256_file

ENTRY = "entry.json"


@functools.lru_cache(maxsize=1)
def code_identity() -> str:
    """synthaug's version and a sha256 over its own source files (sorted by path)."""
    from synthaug import __version__

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml"):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _file_sha(path: str | None) -> str | None:
    return sha256_file(Path(path)) if path and Path(path).is_file() else None


def fit_key(config, source_sha256: str) -> str:
    """What the fitted model depends on: data, schema inputs, split, generator, trainer, seed, code."""
    return _digest(
        {
            "source": source_sha256,
            "schema_file": _file_sha(config.source.schema_path),
            "sdv_metadata": _file_sha(config.source.sdv_metadata),
            "source_options": config.source.model_dump(mode="json", exclude={"path", "schema_path", "sdv_metadata"}),
            "target": config.target,
            "split": config.split.model_dump(mode="json"),
            "generator": config.generator.model_dump(mode="json"),
            "trainer": config.trainer.public(),
            "seed": config.seed,
            "code": code_identity(),
        }
    )


def run_key(config, fit: str) -> str:
    """What the published result depends on beyond the model: sampling, augmentation, checks."""
    return _digest(
        {
            "fit": fit,
            "sample": config.sample.model_dump(mode="json"),
            "augment": config.augment.model_dump(mode="json"),
            "validation": config.validation.model_dump(mode="json"),
            "validation_suite": _file_sha(config.validation.suite),
            "gates": config.gates.model_dump(mode="json"),
        }
    )


def cache_dir(config) -> Path:
    return Path(config.cache.dir) if config.cache.dir else Path(config.output.dir).absolute().parent / ".synthaug-cache"


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def load_model(config, key: str, log) -> Any | None:
    """The cached fitted generator for `key`, verified file by file; None if absent or corrupt."""
    from synthaug.errors import BadInput
    from synthaug.generators.base import load_generator

    entry = cache_dir(config) / "fit" / key
    meta = entry / ENTRY
    if not meta.is_file():
        return None
    try:
        want = json.loads(meta.read_text())["files"]
        got = _tree_hashes(entry / "model")
        if got != want:
            raise ValueError("file hashes differ")
        generator = load_generator(entry / "model")
    except (ValueError, KeyError, OSError, BadInput) as exc:
        log(f"fit: cache entry {key[:12]} is corrupt ({exc}); removing it and training again")
        shutil.rmtree(entry, ignore_errors=True)
        return None
    generator.fit_info = {**generator.fit_info, "cached": key}
    return generator


def store_model(config, key: str, model_dir: Path) -> None:
    """Copy a saved model into the cache (written beside, then renamed in: never half an entry)."""
    root = cache_dir(config) / "fit"
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{uuid.uuid4().hex[:8]}"
    shutil.copytree(model_dir, tmp / "model")
    (tmp / ENTRY).write_text(json.dumps({"key": key, "files": _tree_hashes(tmp / "model")}, indent=1))
    try:
        tmp.rename(root / key)
    except OSError:  # another run stored the same key first
        shutil.rmtree(tmp, ignore_errors=True)


def up_to_date(config, key: str) -> dict | None:
    """The published manifest at output.dir if it was made with `key` and its shards still verify."""
    out = Path(config.output.dir)
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        lock = json.loads((out / "synthaug.lock").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("status") != "published" or lock.get("run_key") != key:
        return None
    for shard in manifest.get("shards", []):
        path = out / shard["path"]
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            return None
    return manifest


def lock_record(fit: str, run: str, shards: list, fit_cached: bool) -> dict:
    return {"fit_key": fit, "run_key": run, "fit_cached": fit_cached, "code": code_identity(), "shards": {s.path: s.sha256 for s in shards}}
