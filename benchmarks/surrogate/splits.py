"""Random-pair and held-out-molecule 80/10/10 splits of the FG-GMAE stand-in."""

from __future__ import annotations

import numpy as np

# The two best configurations that are not the intact molecule (data README).
ANOMALIES = {("Ru", "oximes/49Y3"), ("Fe", "aromatics/44S1")}


def curve_split(n_pairs: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The learning curve's random split: the first `n` pairs of a seeded permutation are
    labelled, every other pair is scored."""
    perm = np.random.default_rng(seed).permutation(n_pairs)
    return perm[:n], perm[n:]


def random_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(round(0.8 * n)), int(round(0.9 * n))
    return perm[:a], perm[a:b], perm[b:]


def molecule_split(
    molecule_keys: list[str], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """80/10/10 of the distinct molecules; every pair of a test molecule is in test."""
    uniq = sorted(set(molecule_keys))
    perm = np.random.default_rng(seed).permutation(len(uniq))
    a, b = int(round(0.8 * len(uniq))), int(round(0.9 * len(uniq)))
    group = {uniq[i]: 0 for i in perm[:a]} | {uniq[i]: 1 for i in perm[a:b]}
    group |= {uniq[i]: 2 for i in perm[b:]}
    which = np.array([group[k] for k in molecule_keys])
    return tuple(np.flatnonzero(which == g) for g in range(3))  # type: ignore[return-value]


def molecule_halves(molecule_keys: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair indices of two disjoint halves of the distinct molecules (the first gets
    ``len // 2``): every pair of a molecule is in the same half, every metal in both."""
    uniq = sorted(set(molecule_keys))
    perm = np.random.default_rng(seed).permutation(len(uniq))
    first = {uniq[i] for i in perm[: len(uniq) // 2]}
    which = np.array([k in first for k in molecule_keys])
    return np.flatnonzero(which), np.flatnonzero(~which)
