"""Clean slabs: built from a bulk and Miller indices, or read from a file, tagged and fixed.

One consistent convention for every slab the package handles (the OC20 / fairchem tags):
tag 1 = surface atom (within ``surface_depth_ang`` of the topmost atom), tag 0 = subsurface;
the bottom ``n_fixed_layers`` atomic layers (atoms grouped into layers by height) carry an
``ase.constraints.FixAtoms``. The vacuum is along +z and the slab is periodic in x and y.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.io import read
from ase.io.formats import UnknownFileTypeError

from alloop.oracles.errors import StructureError
from alloop.oracles.types import TAG_SUBSURFACE, TAG_SURFACE

logger = logging.getLogger(__name__)

#: atoms whose heights differ by less than this belong to one layer (Å)
LAYER_TOLERANCE_ANG = 0.5


def find_layers(atoms: Atoms, tolerance_ang: float = LAYER_TOLERANCE_ANG) -> np.ndarray:
    """Layer index of every atom, 0 = bottom, counting up; `n_atoms` ints.

    Atoms are sorted by height and a new layer starts wherever the gap to the previous atom
    exceeds ``tolerance_ang``.
    """
    z = atoms.positions[:, 2]
    order = np.argsort(z)
    layer = np.empty(len(atoms), dtype=int)
    current = 0
    for rank, idx in enumerate(order):
        if rank and z[idx] - z[order[rank - 1]] > tolerance_ang:
            current += 1
        layer[idx] = current
    return layer


def prepare_slab(
    slab: Atoms,
    n_fixed_layers: int | None = None,
    surface_depth_ang: float = 1.0,
) -> Atoms:
    """Return a tagged, constrained copy of ``slab``.

    ``n_fixed_layers``: bottom layers to fix; ``None`` keeps the slab's own ``FixAtoms`` if it has
    one (e.g. VASP selective dynamics) and otherwise fixes the bottom half of the layers.
    ``surface_depth_ang``: atoms this close to the top (Å) are tagged surface (1).
    Raises :class:`StructureError` for a slab that is not periodic in x/y, has no free layer,
    or would fix a surface atom.
    """
    if len(slab) == 0:
        raise StructureError("slab has no atoms")
    if not (slab.pbc[0] and slab.pbc[1]):
        raise StructureError(f"slab must be periodic in x and y, got pbc={list(slab.pbc)}")
    if np.linalg.norm(slab.cell[2]) < 1e-6:
        raise StructureError("slab cell has no z vector; add vacuum (ase.build ... vacuum=...)")
    out = slab.copy()
    out.calc = None
    layers = find_layers(out)
    n_layers = int(layers.max()) + 1
    existing = _fixed_indices(slab)
    if n_fixed_layers is None and existing:
        fixed = np.zeros(len(out), dtype=bool)
        fixed[list(existing)] = True
    else:
        n_fix = n_layers // 2 if n_fixed_layers is None else n_fixed_layers
        if not 0 <= n_fix < n_layers:
            raise StructureError(
                f"n_fixed_layers={n_fix} must be in 0..{n_layers - 1} for a slab with "
                f"{n_layers} layers (at least the top layer must relax)"
            )
        fixed = layers < n_fix
    z = out.positions[:, 2]
    tags = np.where(z > z.max() - surface_depth_ang, TAG_SURFACE, TAG_SUBSURFACE)
    if (fixed & (tags == TAG_SURFACE)).any():
        raise StructureError(
            f"{int((fixed & (tags == TAG_SURFACE)).sum())} surface atoms would be fixed; "
            "lower n_fixed_layers"
        )
    out.set_tags(tags)
    out.set_constraint(FixAtoms(mask=fixed))
    out.pbc = [True, True, True] if slab.pbc[2] else [True, True, False]
    return out


def slab_from_file(path: Path | str, n_fixed_layers: int | None = None) -> Atoms:
    """Read a slab from any ASE-readable file (CONTCAR, extxyz, cif, ...) and prepare it."""
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"slab file not found: {path}")
    atoms = read_single(path)
    return prepare_slab(atoms, n_fixed_layers=n_fixed_layers)


def read_single(path: Path | str, fmt: str | None = None) -> Atoms:
    """Read one structure from an ASE-readable file (``*.contcar``/POSCAR/CONTCAR as VASP)."""
    path = Path(path)
    if fmt is None and (
        path.suffix.lower() == ".contcar" or path.name.upper().startswith(("POSCAR", "CONTCAR"))
    ):
        fmt = "vasp"
    try:
        atoms = read(path, format=fmt)
    except UnknownFileTypeError as exc:
        raise StructureError(
            f"{path} is not a structure file ASE can read (unknown file type {str(exc)!r}); "
            "give a CIF, extxyz, POSCAR/CONTCAR, traj or another ASE-readable structure"
        ) from exc
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise StructureError(f"cannot read structure file {path}: {exc}") from exc
    if not isinstance(atoms, Atoms):
        raise StructureError(f"{path} holds several structures; give a file with one")
    return atoms


def slab_from_bulk(
    bulk: Atoms,
    miller: tuple[int, int, int],
    min_ab_ang: float = 8.0,
    n_fixed_layers: int | None = None,
    shift_index: int = 0,
) -> Atoms:
    """Cut a slab from a bulk structure with fairchem-data-oc (pymatgen ``SlabGenerator``).

    fairchem-data-oc enumerates the distinct terminations (shifts, and flipped bottoms) of the
    Miller plane with at least 7 Å of slab and 20 Å of vacuum and tiles it to ``min_ab_ang``;
    ``shift_index`` picks one of them (0 = first). The result is then re-tagged and constrained
    with :func:`prepare_slab` so that slabs from every source follow one convention.
    """
    # the lower-level functions, not Slab.from_bulk_get_specific_millers: that constructor
    # asserts min_ab >= 8 Å whatever min_ab it was given, which rules out small test slabs
    from fairchem.data.oc.core.slab import compute_slabs, tile_and_tag_atoms

    if len(miller) != 3 or not any(miller):
        raise StructureError(f"miller must be three integers, not all zero; got {miller}")
    millers = tuple(int(m) for m in miller)
    try:
        untiled = compute_slabs(
            bulk, max_miller=max(abs(m) for m in millers), specific_millers=[millers]
        )
    except (ValueError, AssertionError, IndexError) as exc:
        raise StructureError(f"cannot cut {bulk.get_chemical_formula()} {miller}: {exc}") from exc
    if not 0 <= shift_index < len(untiled):
        raise StructureError(
            f"shift_index={shift_index} out of range: {bulk.get_chemical_formula()} {miller} has "
            f"{len(untiled)} terminations (0..{len(untiled) - 1})"
        )
    tiled = tile_and_tag_atoms(untiled[shift_index][0], bulk, min_ab=min_ab_ang)
    # a plain Atoms: pymatgen's MSONAtoms subclass carries extra arrays we do not want to hash
    atoms = Atoms(numbers=tiled.numbers, positions=tiled.positions, cell=tiled.cell, pbc=True)
    return prepare_slab(atoms, n_fixed_layers=n_fixed_layers)


def fixed_mask(atoms: Atoms) -> np.ndarray:
    """Boolean `n_atoms` mask of atoms held by a ``FixAtoms`` constraint."""
    mask = np.zeros(len(atoms), dtype=bool)
    mask[list(_fixed_indices(atoms))] = True
    return mask


def _fixed_indices(atoms: Atoms) -> set[int]:
    fixed: set[int] = set()
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed.update(int(i) for i in constraint.get_indices())
    return fixed
