"""Staging, atomic publish and quarantine of a run directory.

A run writes into a hidden staging folder beside its destination; the destination changes only
through renames at the very end, so a failed or killed run leaves it exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from synthaug.errors import BadInput

QUARANTINE = "_quarantine"


def check_destination(dest: Path, overwrite: bool, key: str = "output.dir") -> None:
    """Fail early (before any work) if the run could not be published at `dest`."""
    if dest.exists() and not dest.is_dir():
        raise BadInput(f"{dest}: destination is a file, not a folder; choose another {key}")
    if dest.is_dir() and any(dest.iterdir()) and not overwrite:
        raise BadInput(f"{dest}: destination exists and is not empty; pass --overwrite or choose another {key}")
    parent = _existing_ancestor(dest.parent)
    if not parent.is_dir():
        raise BadInput(f"{dest}: {parent} is a file, so the folder cannot be made; choose another {key}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput(f"{dest}: cannot write in {parent} (permission denied); choose another {key}")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def make_staging(dest: Path, key: str = "output.dir") -> Path:
    staging = dest.parent / f".{dest.name}.staging-{uuid.uuid4().hex[:8]}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as exc:
        raise BadInput(f"{dest}: cannot write there ({exc.strerror or exc}); choose another {key}") from None
    return staging


def publish(staging: Path, dest: Path) -> None:
    """Rename staging into dest; an existing dest (only with --overwrite) is moved aside, then removed."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
        dest.rename(old)
    staging.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def quarantine(staging: Path, dest: Path) -> Path:
    """Move a run whose gates failed to <dest parent>/_quarantine/<name>-<UTC time>-<random>/."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = dest.parent / QUARANTINE / f"{dest.name}-{stamp}-{uuid.uuid4().hex[:6]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return target


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
