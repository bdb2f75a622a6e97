"""Blocked k-nearest-neighbour helpers for PRDC, on top of the tabular privacy module's blocks.

Same scheme as `synthaug.validation.privacy._neighbours`: query rows go in blocks of at most
`_BLOCK` float64 distances (64 MB) against the whole reference, ranked by one matrix product of
the augmented rows. The full N x M matrix is never built.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from synthaug.validation import privacy as _tabular
from synthaug.validation.privacy import _augmented, _exact


def block_slices(n_query: int, n_ref: int, chunk: int = 2048) -> Iterator[slice]:
    """Query-row slices whose (rows x n_ref) distance block stays within the privacy `_BLOCK` cap."""
    step = max(1, min(chunk, _tabular._BLOCK // max(n_ref, 1)))  # read at call time: tests patch it
    for start in range(0, n_query, step):
        yield slice(start, min(start + step, n_query))


def kth_neighbour_distance(x: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Distance from each row of `x` to its k-th nearest other row (itself excluded, copies count)."""
    x = np.asarray(x, dtype=np.float64)
    if not 1 <= k < len(x):
        raise ValueError(f"k={k} needs at least {k + 1} rows; got {len(x)}")
    q_aug, r_aug = _augmented(x, x)
    out = np.empty(len(x))
    for s in block_slices(len(x), len(x), chunk):
        sq = q_aug[s] @ r_aug.T
        rows = np.arange(s.stop - s.start)
        sq[rows, rows + s.start] = np.inf
        for _ in range(k - 1):  # k small: argmin + mask in place, no block-sized index array (argpartition)
            sq[rows, sq.argmin(axis=1)] = np.inf
        out[s] = _exact(x[s], x[sq.argmin(axis=1)])  # exact recompute, as in _neighbours
    return out


def ball_counts(
    real: np.ndarray, fake: np.ndarray, real_radii: np.ndarray, fake_radii: np.ndarray, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One blocked pass over the fake x real distances, for precision / recall / density / coverage.

    Returns, per fake row, how many real balls B(r_i, real_radii[i]) contain it; per real row,
    whether some fake ball B(f_j, fake_radii[j]) contains it; and per real row, whether its
    nearest fake row lies inside its own ball. A small tolerance (relative to the squared norms)
    absorbs the rounding of the expanded form, so an identical copy always counts as inside.
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    f_aug, r_aug = _augmented(fake, real)
    scale = max(float(np.einsum("ij,ij->i", real, real).max()), float(np.einsum("ij,ij->i", fake, fake).max()), 1.0)
    tol = 1e-9 * scale
    real_r2, fake_r2 = real_radii**2 + tol, fake_radii**2 + tol
    inside_real = np.zeros(len(fake), dtype=np.int64)
    in_fake_ball = np.zeros(len(real), dtype=bool)
    nearest_fake = np.full(len(real), np.inf)
    for s in block_slices(len(fake), len(real), chunk):
        sq = f_aug[s] @ r_aug.T
        inside_real[s] = (sq <= real_r2[None, :]).sum(axis=1)
        in_fake_ball |= (sq <= fake_r2[s, None]).any(axis=0)
        np.minimum(nearest_fake, sq.min(axis=0), out=nearest_fake)
    return inside_real, in_fake_ball, nearest_fake <= real_r2
