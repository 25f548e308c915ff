"""ASE calculators the oracles can run, chosen by name, with an identity for provenance.

Names (``CALCULATOR_NAMES``):

``emt``            ASE's effective-medium theory: Al Cu Ag Au Ni Pd Pt + H C N O. Fast tests only.
``sevennet-mf-0``  SevenNet-MF-0, PBE head (weights ship in the ``sevenn`` wheel). Offline default:
                   at the DFT minima of 42 FG pairs it had the lowest MAE (0.40 eV, Spearman 0.80).
``sevennet-0``     SevenNet-0 (11Jul2024), in the ``sevenn`` wheel. Known false strong binding on
                   Ru/Os/Pt/Ir.
``chgnet``         CHGNet 0.3.0 (weights in the ``chgnet`` wheel). 0.46 eV on the same 42 pairs.
``fairchem``       fairchem-core (UMA / eSEN) from a *local* checkpoint file; downloads are
                   disabled (``HF_HUB_OFFLINE=1``), ``inference_settings="batch"`` on CPU.

Every label records :func:`calculator_identity`: the name, the weights file's sha256, and the
package version, so labels from different models are never mixed silently.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ase.calculators.calculator import Calculator

from alloop.oracles.environ import scoped_environ
from alloop.oracles.errors import CalculatorSetupError, OracleConfigError

logger = logging.getLogger(__name__)

CALCULATOR_NAMES: tuple[str, ...] = ("emt", "sevennet-mf-0", "sevennet-0", "chgnet", "fairchem")
#: the offline default, chosen by measurement (see module docstring)
DEFAULT_OFFLINE_CALCULATOR = "sevennet-mf-0"

@dataclass(frozen=True)
class CalculatorSpec:
    """Which calculator to build and how.

    ``checkpoint_path``: required for ``fairchem`` (a local ``.pt`` file); optional override
    of the bundled weights for the SevenNet names. ``torch_threads``: torch and BLAS threads
    while the model labels a pair (:func:`thread_limit`; 1 keeps jobs from fighting over
    shared cores).
    ``fairchem_task``: the UMA task head (``"oc20"`` for adsorption).
    ``checkpoint_sha256``: a pin: the checkpoint is loaded only if its sha256 is this. Loading
    a fairchem checkpoint unpickles it (``torch.load(weights_only=False)`` inside fairchem), so
    a checkpoint from an untrusted source can run code: pin the digest of the file you trust.
    """

    name: str
    checkpoint_path: str | None = None
    device: str = "cpu"
    sevennet_modal: str = "PBE"
    fairchem_task: str = "oc20"
    torch_threads: int = 1
    checkpoint_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.checkpoint_sha256 is not None and (
            len(self.checkpoint_sha256) != 64
            or set(self.checkpoint_sha256) - set("0123456789abcdef")
            or not self.checkpoint_path
        ):
            raise OracleConfigError(
                f"checkpoint_sha256 {self.checkpoint_sha256!r} must be 64 lowercase hex digits "
                "(`sha256sum FILE`) and needs checkpoint_path"
            )
        if self.name not in CALCULATOR_NAMES:
            raise OracleConfigError(
                f"calculator {self.name!r} is unknown; valid names: {', '.join(CALCULATOR_NAMES)}"
            )
        if self.device not in ("cpu", "cuda"):
            raise OracleConfigError(f"device {self.device!r} must be 'cpu' or 'cuda'")
        if self.torch_threads < 1:
            raise OracleConfigError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if self.name == "fairchem" and not self.checkpoint_path:
            raise OracleConfigError(
                "calculator 'fairchem' needs checkpoint_path: a local UMA/eSEN checkpoint file "
                "(downloads are disabled)"
            )


def build_calculator(spec: CalculatorSpec) -> Calculator:
    """Construct the ASE calculator of ``spec``; :class:`CalculatorSetupError` if it cannot.

    Sets no process-wide thread count: run the calculator inside :func:`thread_limit`
    (``spec.torch_threads``), as the MLIP oracle does for each pair. A pinned checkpoint
    (``checkpoint_sha256``) is verified before anything reads it as a model."""
    if spec.checkpoint_sha256 is not None:
        verify_pinned_checkpoint(Path(spec.checkpoint_path or ""), spec.checkpoint_sha256)
    if spec.name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if spec.name in ("sevennet-mf-0", "sevennet-0"):
        return _build_sevennet(spec)
    if spec.name == "chgnet":
        return _build_chgnet(spec)
    return _build_fairchem(spec)


def calculator_identity(spec: CalculatorSpec) -> dict[str, Any]:
    """Provenance of a calculator: name, weights path and sha256, package version, head/task."""
    path = weights_path(spec)
    if path is not None and not path.is_file():
        raise missing_weights_error(spec, path)
    ident: dict[str, Any] = {
        "calculator": spec.name,
        "weights_path": str(path) if path else None,
        "weights_hash": file_sha256(str(path)) if path else None,
        "package_version": _package_version(spec.name),
    }
    if spec.name == "sevennet-mf-0":
        ident["modal"] = spec.sevennet_modal
    if spec.name == "fairchem":
        ident["task"] = spec.fairchem_task
    return ident


def weights_path(spec: CalculatorSpec) -> Path | None:
    """The weights file a spec loads, or ``None`` for parameter-free EMT."""
    if spec.checkpoint_path:
        return Path(spec.checkpoint_path)
    if spec.name == "emt":
        return None
    if spec.name == "chgnet":
        import chgnet

        return (
            Path(chgnet.__file__).parent
            / "pretrained"
            / "0.3.0"
            / "chgnet_0.3.0_e29f68s314m37.pth.tar"
        )
    from sevenn import _const

    return Path(
        _const.SEVENNET_MF_0 if spec.name == "sevennet-mf-0" else _const.SEVENNET_0_11Jul2024
    )


@lru_cache(maxsize=32)
def verify_pinned_checkpoint(path: Path, pinned: str) -> None:
    """Refuse (CalculatorSetupError) a checkpoint whose sha256 is not `pinned`."""
    if not path.is_file():
        raise CalculatorSetupError(f"pinned checkpoint not found: {str(path)!r}")
    actual = file_sha256(str(path))
    if actual != pinned:
        raise CalculatorSetupError(
            f"checkpoint {path} has sha256 {actual}, not the pinned {pinned}; refused unread "
            "(loading a checkpoint can run code in it): check where the file came from"
        )


def file_sha256(path: str) -> str:
    """sha256 hex digest of a file (cached per path; weights files do not change in a run)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise CalculatorSetupError(f"cannot read weights file {path}: {exc}") from exc
    return digest.hexdigest()


@contextmanager
def thread_limit(n_threads: int, torch_too: bool = True) -> Iterator[None]:
    """Torch intra-op threads (``torch_too``) and BLAS/OpenMP threads limited to ``n_threads``
    inside the block and restored after it, so an oracle's setting never outlives its work (a
    surrogate trained later in the same process keeps its own)."""
    from threadpoolctl import threadpool_limits

    torch: Any = None
    if torch_too:
        import torch
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n_threads):
        if torch is not None:
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            if torch is not None and before is not None:
                torch.set_num_threads(before)


def _build_sevennet(spec: CalculatorSpec) -> Calculator:
    import warnings

    from sevenn.calculator import SevenNetCalculator

    path = weights_path(spec)
    if path is None or not path.is_file():
        raise missing_weights_error(spec, Path(str(path)))
    modal = spec.sevennet_modal if spec.name == "sevennet-mf-0" else None
    try:
        with warnings.catch_warnings():
            # "no tensor product accelerator" is expected on CPU
            warnings.simplefilter("ignore", UserWarning)
            return SevenNetCalculator(str(path), device=spec.device, modal=modal)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise CalculatorSetupError(f"cannot build {spec.name} from {path}: {exc}") from exc


def _build_chgnet(spec: CalculatorSpec) -> Calculator:
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    path = weights_path(spec)
    if path is None or not path.is_file():
        raise missing_weights_error(spec, Path(str(path)))
    try:
        model = CHGNet.from_file(str(path), verbose=False)
    except (ValueError, RuntimeError, KeyError, OSError) as exc:
        raise CalculatorSetupError(f"cannot load CHGNet weights {path}: {exc}") from exc
    return CHGNetCalculator(model=model, use_device=spec.device, on_isolated_atoms="ignore")


def missing_weights_error(spec: CalculatorSpec, path: Path) -> CalculatorSetupError:
    """The error for a weights file that is not there, saying what to do about it."""
    if spec.name == "fairchem":
        return CalculatorSetupError(
            f"fairchem checkpoint not found: {str(path)!r}. Set checkpoint_path to a local "
            "UMA/eSEN checkpoint file (e.g. uma-s-1p1.pt); model downloads are disabled "
            "(HF_HUB_OFFLINE=1). Offline alternatives: sevennet-mf-0, chgnet, sevennet-0."
        )
    return CalculatorSetupError(
        f"{spec.name} weights not found at {str(path)!r}; reinstall the package that ships "
        "them or point checkpoint_path at a local copy"
    )


def _build_fairchem(spec: CalculatorSpec) -> Calculator:
    path = Path(spec.checkpoint_path or "")
    if not path.is_file():
        raise missing_weights_error(spec, path)
    # never reach the network while loading: only a local checkpoint file is allowed (the
    # imports sit inside too: huggingface_hub reads the variable when first imported)
    with scoped_environ(HF_HUB_OFFLINE="1"):
        from fairchem.core.calculate.ase_calculator import FAIRChemCalculator
        from fairchem.core.units.mlip_unit import load_predict_unit

        try:
            unit = load_predict_unit(str(path), inference_settings="batch", device=spec.device)
            return FAIRChemCalculator(unit, task_name=spec.fairchem_task)
        except (
            RuntimeError,
            ValueError,
            KeyError,
            OSError,
            AttributeError,
            TypeError,
            EOFError,
            ImportError,
            pickle.UnpicklingError,
        ) as exc:
            raise CalculatorSetupError(f"cannot load fairchem checkpoint {path}: {exc}") from exc


def _package_version(name: str) -> str | None:
    package = {"emt": "ase", "chgnet": "chgnet", "fairchem": "fairchem-core"}.get(name, "sevenn")
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
