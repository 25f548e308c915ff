"""Clean slab → PyG graph with periodic neighbours, relative depth and top-layer mask.

No adsorption site goes in: the graph is built from the clean slab alone, and which atoms the
adsorbate binds to is left for the model's cross-attention to find.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list
from torch_geometric.data import Data

from alloop.surrogate.errors import FeaturisationError

__all__ = ["build_slab_graph", "relative_depth", "slab_content_hash"]

_TIE_TOL_ANG = 1e-4


def _heights_along_normal_ang(atoms: Atoms) -> np.ndarray:
    """Heights of the atoms along the surface normal (`n`, Å), slab unwrapped if periodic.

    The normal is ``a × b`` of the cell. When the cell is periodic along ``c`` the slab may be
    wrapped across the ``c`` face; the fractional ``c`` coordinates are then cut at the largest
    gap (the vacuum) so that a rigid translation of the slab does not change any height.
    """
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    normal = np.cross(cell[0], cell[1])
    norm = np.linalg.norm(normal)
    if norm < 1e-8:
        raise FeaturisationError(f"slab cell has degenerate a x b (|a x b| = {norm:.3g} Å^2)")
    normal /= norm
    if not atoms.pbc[2] or abs(np.linalg.det(cell)) < 1e-8:
        return atoms.get_positions() @ normal
    frac_c = np.linalg.solve(cell.T, atoms.get_positions().T)[2] % 1.0
    order = np.sort(frac_c)
    gaps = np.diff(np.concatenate([order, order[:1] + 1.0]))
    cut = order[(int(np.argmax(gaps)) + 1) % len(order)]  # lowest atom above the vacuum
    unwrapped = (frac_c - cut) % 1.0
    return unwrapped * float(cell[2] @ normal)


def relative_depth(atoms: Atoms) -> np.ndarray:
    """Each atom's relative height along the surface normal: 0 bottom … 1 top (`n`).

    A single-layer slab (all heights equal) gets depth 1 everywhere.
    """
    return _depth_from_heights(_heights_along_normal_ang(atoms))


def _depth_from_heights(h: np.ndarray) -> np.ndarray:
    span = float(h.max() - h.min())
    return np.ones(len(h)) if span < 1e-6 else (h - h.min()) / span


def _nearest_neighbours(
    atoms: Atoms, cutoff_ang: float, max_neighbors: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i, j, d = neighbor_list("ijd", atoms, cutoff_ang, self_interaction=False)
    order = np.lexsort((j, d, i))  # by centre, then distance: deterministic
    i, j, d = i[order], j[order], d[order]
    keep = np.ones(len(i), dtype=bool)
    starts = np.searchsorted(i, np.arange(len(atoms)))
    ends = np.searchsorted(i, np.arange(len(atoms)), side="right")
    for s, e in zip(starts, ends, strict=True):
        if e - s > max_neighbors:
            # Keep every neighbour tied with the k-th: truncating inside a distance shell
            # would make the graph depend on atom order (breaks permutation invariance).
            d_k = d[s + max_neighbors - 1]
            keep[s:e] = d[s:e] <= d_k + _TIE_TOL_ANG
    return i[keep], j[keep], d[keep]


def build_slab_graph(
    atoms: Atoms,
    cutoff_ang: float = 6.0,
    max_neighbors: int = 50,
    top_layer_tol_ang: float = 1.0,
) -> Data:
    """PyG graph of a clean slab.

    Args:
        atoms: clean slab, `n` atoms, positions in Å; periodic along the cell vectors where
            ``atoms.pbc`` says so (surface normal = ``a × b``).
        cutoff_ang: neighbour cutoff in Å.
        max_neighbors: keep the nearest ``max_neighbors`` per atom (plus any tied with the last).
        top_layer_tol_ang: atoms within this height (Å) of the highest atom are "top layer".

    Returns:
        ``Data`` with ``z`` (`n`, long), ``edge_index`` (`2 x E`, row 0 = neighbour j, row 1 =
        centre i, periodic images give repeated pairs), ``edge_dist_ang`` (`E`),
        ``depth`` (`n`, 0 bottom … 1 top), ``top_mask`` (`n`, bool) and ``num_nodes``.

    Raises:
        FeaturisationError: empty slab, bad cutoff, or an atom without neighbours.
    """
    if len(atoms) == 0:
        raise FeaturisationError("cannot build a graph of an empty slab (0 atoms)")
    if not cutoff_ang > 0 or max_neighbors < 1:
        raise FeaturisationError(
            f"need cutoff_ang > 0 and max_neighbors >= 1, got {cutoff_ang}, {max_neighbors}"
        )
    h = _heights_along_normal_ang(atoms)  # first: it validates the cell
    i, j, d = _nearest_neighbours(atoms, cutoff_ang, max_neighbors)
    lonely = np.setdiff1d(np.arange(len(atoms)), i)
    if len(lonely):
        raise FeaturisationError(
            f"atoms {lonely[:5].tolist()} of {atoms.get_chemical_formula()} have no neighbour "
            f"within cutoff_ang={cutoff_ang}"
        )
    return Data(
        z=torch.as_tensor(atoms.numbers, dtype=torch.long),
        edge_index=torch.as_tensor(np.stack([j, i]), dtype=torch.long),
        edge_dist_ang=torch.as_tensor(d, dtype=torch.float64),
        depth=torch.as_tensor(_depth_from_heights(h), dtype=torch.float64),
        top_mask=torch.as_tensor(h >= h.max() - top_layer_tol_ang),
        num_nodes=len(atoms),
    )


def slab_content_hash(atoms: Atoms) -> str:
    """Hash of a slab's numbers, positions (to 1e-5 Å), cell and pbc: the cache key."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update((np.round(atoms.get_positions(), 5) + 0.0).astype(np.float64).tobytes())
    h.update((np.round(np.asarray(atoms.cell.array), 5) + 0.0).astype(np.float64).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=np.bool_).tobytes())
    return h.hexdigest()[:20]
