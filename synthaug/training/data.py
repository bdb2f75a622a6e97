"""One data path for every family: a seeded split, and a step-budget sampler that stays correct
under distributed training.

An epoch is a fixed number of optimiser steps (one pass over the rows, clamped to
[min_steps_per_epoch, max_steps_per_epoch]) so small and large tables get comparable epochs.
The sampler draws its batches from (seed, epoch, rank): every rank of a distributed run draws
its own rows, and a single-process run is reproducible whatever the machine. Lightning's
automatic DistributedSampler is turned off (`use_distributed_sampler=False`); this sampler is
the only one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from synthaug.training.config import TrainerConfig

MIN_VAL_ROWS = 8


def split_indices(n: int, cfg: TrainerConfig, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Row indices for training and for picking the best epoch (`val_fraction`, at least 8 rows each)."""
    n_val = int(round(n * cfg.val_fraction))
    if n_val < MIN_VAL_ROWS or n - n_val < MIN_VAL_ROWS:
        return np.arange(n), None
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def steps_per_epoch(n_rows: int, batch: int, cfg: TrainerConfig) -> int:
    """One pass over the rows by all ranks together, clamped so an epoch does real work on a small
    table and stays comparable on a large one."""
    return int(np.clip(n_rows // (batch * cfg.world_size), cfg.min_steps_per_epoch, cfg.max_steps_per_epoch))


def _rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


Keys = Callable[[np.random.Generator, int, int], Iterator[Any]]


class ShuffledRows:
    """Batches of row indices from back-to-back permutations: every row once per pass.
    (A class, not a closure, so a spawned distributed run can pickle it.)"""

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows

    def __call__(self, rng: np.random.Generator, batch: int, steps: int) -> Iterator[np.ndarray]:
        need = batch * steps
        order = np.concatenate([rng.permutation(self.n_rows) for _ in range(-(-need // self.n_rows))])
        for i in range(steps):
            yield order[i * batch : (i + 1) * batch]


shuffled_rows = ShuffledRows  # the factory name some callers use


class StepSampler(Sampler):
    """Yields `steps` batch keys per epoch from `keys(rng, batch, steps)`, rng seeded by (seed, epoch, rank).

    A key is whatever the dataset's __getitem__ takes: row indices for most families, (rows,
    conditioned group) pairs for the GAN's training-by-sampling.
    """

    def __init__(self, keys: Keys, batch: int, steps: int, seed: int) -> None:
        self.keys, self.batch, self.steps, self.seed = keys, batch, steps, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this before every epoch
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Any]:
        rank, _ = _rank()
        rng = np.random.default_rng([self.seed, self.epoch, rank])
        yield from self.keys(rng, self.batch, self.steps)


class Rows(Dataset):
    """Encoded rows; `rows[key]` gathers a whole batch in one indexing operation."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(x))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key):
        return (self.x[torch.as_tensor(key)],)


def train_loader(dataset: Dataset, keys: Keys, batch: int, steps: int, seed: int) -> DataLoader:
    return DataLoader(dataset, batch_size=None, sampler=StepSampler(keys, batch, steps, seed))


def val_loader(x: np.ndarray | None, batch: int = 4096) -> DataLoader | None:
    """Every rank scores on all validation rows, so the score (and early stopping) agree across ranks."""
    if x is None:
        return None
    return DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(np.ascontiguousarray(x))), batch_size=batch)


def loaders(x: np.ndarray, cfg: TrainerConfig, seed: int) -> tuple[DataLoader, DataLoader | None]:
    """Uniformly sampled training batches and the validation rows."""
    train_idx, val_idx = split_indices(len(x), cfg, seed)
    train = x[train_idx]
    batch = min(cfg.batch_size, len(train))
    steps = steps_per_epoch(len(train), batch, cfg)
    return train_loader(Rows(train), ShuffledRows(len(train)), batch, steps, seed), val_loader(None if val_idx is None else x[val_idx])
