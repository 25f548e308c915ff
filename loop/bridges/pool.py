"""Build a campaign's pool (surfaces x adsorbates) from the `pool` section of its config.

Structures come from the packages that own them: FG reference slabs and molecules through
`alloop.surrogate.fg` (SMILES by RDKit bond perception), slabs from bulk + Miller index and
adsorbates by name/SMILES/file through `alloop.oracles`. Each failure is a `ConfigError`
naming the config field at fault.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from alloop.loop.config import FG_METALS, AdsorbateSpec, FGPoolSpec, PoolSection, SurfaceSpec
from alloop.loop.errors import ConfigError
from alloop.oracles.fg_data import FG_ROOT_ENV, fg_data_root
from alloop.store.records import NewAdsorbate, NewSurface

if TYPE_CHECKING:
    from ase import Atoms

    from alloop.surrogate.fg import FGMolecule

T = TypeVar("T")


@dataclass(frozen=True)
class Pool:
    surfaces: tuple[NewSurface, ...]
    adsorbates: tuple[NewAdsorbate, ...]


def build_pool(section: PoolSection, seed: int = 0) -> Pool:
    """The campaign's pool; ``seed`` (the campaign's) picks `pool.fg.max_molecules`."""
    if section.fg is not None:
        return _fg_pool(section.fg, seed)
    surfaces = tuple(_surface(i, s) for i, s in enumerate(section.surfaces))
    adsorbates = tuple(_adsorbate(i, a) for i, a in enumerate(section.adsorbates))
    return Pool(surfaces, adsorbates)


def stratified_choice(
    items: Sequence[T], group_of: Callable[[T], str], n: int, seed: int
) -> list[T]:
    """`n` of `items`, every group represented in proportion to its size, chosen by `seed`.

    Groups are visited in a seeded order and shuffled within by the same generator: one item
    of each group first (while `n` lasts, so `n` below the number of groups picks a seeded set
    of groups), then each further slot to the group with the largest size per item taken
    (D'Hondt), ties in the seeded order. The same seed gives the same choice; it is returned
    in the order of `items`.
    """
    rng = random.Random(seed)
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(group_of(item), []).append(i)
    order = sorted(groups)
    rng.shuffle(order)
    for name in order:
        rng.shuffle(groups[name])
    taken = dict.fromkeys(order, 0)
    for name in order[: min(n, len(order))]:
        taken[name] = 1
    for _ in range(min(n, len(items)) - sum(taken.values())):
        open_ = [g for g in order if taken[g] < len(groups[g])]
        best = max(open_, key=lambda g: len(groups[g]) / (taken[g] + 1))  # first of a tie
        taken[best] += 1
    chosen = sorted(i for g in order for i in groups[g][: taken[g]])
    return [items[i] for i in chosen]


@dataclass(frozen=True)
class FGCatalogue:
    """What an FG pool can be built from: the data's folder, the metals a config may name
    (`FG_METALS`) and each family with its molecule keys (``family/code``), sorted."""

    root: Path
    metals: tuple[str, ...]
    families: dict[str, tuple[str, ...]]


def fg_catalogue(root: Path | None = None) -> FGCatalogue:
    """The FG metals and families at ``root`` (default: `fg_data_root`), as `pool.fg` reads
    them; a missing or unreadable table raises ConfigError naming the folder."""
    root, slabs, molecules = _read_fg(root)
    families: dict[str, list[str]] = {}
    for m in molecules:
        families.setdefault(m.family, []).append(m.key)
    metals = tuple(m for m in FG_METALS if m in slabs)
    return FGCatalogue(root, metals, {f: tuple(sorted(k)) for f, k in sorted(families.items())})


def _read_fg(root: Path | None) -> tuple[Path, dict[str, Atoms], list[FGMolecule]]:
    from alloop.surrogate.errors import SurrogateError
    from alloop.surrogate.fg import read_fg_molecules, read_fg_slabs

    root = root or fg_data_root()
    if not (root / "fg_gmae_derived.csv").is_file():
        raise ConfigError(
            f"pool.fg.root: no FG reference table at {root} (expected fg_gmae_derived.csv); "
            f"set pool.fg.root or ${FG_ROOT_ENV}"
        )
    try:
        return root, read_fg_slabs(root), read_fg_molecules(root)
    except SurrogateError as exc:
        raise ConfigError(f"pool.fg.root: cannot read the FG table at {root}: {exc}") from exc


def _fg_pool(spec: FGPoolSpec, seed: int) -> Pool:
    root, slabs, molecules = _read_fg(spec.root)
    metals = spec.metals or FG_METALS
    if spec.families is not None:
        known = sorted({m.family for m in molecules})
        bad = [f for f in spec.families if f not in known]
        if bad:
            raise ConfigError(f"pool.fg.families: unknown {bad}; valid: {', '.join(known)}")
        molecules = [m for m in molecules if m.family in spec.families]
    if spec.max_molecules is not None:
        molecules = stratified_choice(molecules, lambda m: m.family, spec.max_molecules, seed)
    surfaces = tuple(
        NewSurface(key=metal, atoms=slabs[metal], source=f"fg:{root}/metal_surfaces", miller=None)
        for metal in metals
    )
    adsorbates = tuple(
        NewAdsorbate(key=m.key, name=m.formula, smiles=m.smiles, atoms=m.gas, binding_atoms=())
        for m in molecules
    )
    return Pool(surfaces, adsorbates)


def _surface(index: int, spec: SurfaceSpec) -> NewSurface:
    from ase.build import bulk as ase_bulk

    from alloop.oracles.errors import OracleError
    from alloop.oracles.slabs import slab_from_bulk, slab_from_file

    where = f"pool.surfaces.{index}"
    try:
        if spec.bulk is not None:
            try:
                crystal = ase_bulk(spec.bulk)
            except (ValueError, KeyError, RuntimeError) as exc:
                raise ConfigError(
                    f"{where}.bulk: ASE knows no reference crystal for {spec.bulk!r} ({exc}); "
                    "give the slab as a structure file instead"
                ) from None
            atoms = slab_from_bulk(
                crystal, spec.miller, min_ab_ang=spec.min_ab_ang, shift_index=spec.shift_index
            )
            source = f"bulk:{spec.bulk}:{crystal.cell.get_bravais_lattice().name}"
        else:
            assert spec.file is not None
            atoms = slab_from_file(spec.file)
            source = f"file:{spec.file}"
    except OracleError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    miller = ",".join(str(i) for i in spec.miller) if spec.bulk is not None else None
    return NewSurface(key=spec.resolved_key, atoms=atoms, source=source, miller=miller)


def _adsorbate(index: int, spec: AdsorbateSpec) -> NewAdsorbate:
    from alloop.oracles import adsorbates as ads
    from alloop.oracles.errors import OracleError

    where = f"pool.adsorbates.{index}"
    binding = tuple(spec.binding_atoms or ())
    try:
        if spec.name is not None:
            made = ads.adsorbate_from_database(spec.name)
        elif spec.smiles is not None:
            made = ads.adsorbate_from_smiles(spec.smiles, binding_atoms=binding)
        else:
            assert spec.file is not None
            made = ads.adsorbate_from_file(spec.file, binding_atoms=binding)
    except OracleError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    # the surrogate reads adsorbates as SMILES: structures without one get it by perception
    smiles = made.smiles
    if smiles is None:
        from alloop.surrogate.errors import SurrogateError
        from alloop.surrogate.smiles import adsorbate_smiles

        assert made.atoms is not None  # AdsorbateSpec has atoms whenever it lacks a SMILES
        try:
            smiles = adsorbate_smiles(made.atoms)
        except SurrogateError as exc:
            raise ConfigError(
                f"{where}: no SMILES can be derived from the structure: {exc}"
            ) from exc
    return NewAdsorbate(
        key=spec.resolved_key,
        name=made.name,
        smiles=smiles,
        atoms=made.atoms,
        binding_atoms=tuple(made.binding_atoms),
    )
