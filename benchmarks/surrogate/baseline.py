"""Plain baseline: gradient-boosted trees on metal one-hot + adsorbate descriptors + metal facts."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

METALS = ("Ag", "Au", "Cd", "Co", "Cu", "Fe", "Ir", "Ni", "Os", "Pd", "Pt", "Rh", "Ru", "Zn")
# Simple tabulated facts: atomic number, period, group (= d-electron count + s for these
# transition metals), Pauling electronegativity, covalent radius (Å, ASE), lattice of the bulk.
_PROPS = {
    "Ag": (47, 5, 11, 1.93, 1.45, "fcc"),
    "Au": (79, 6, 11, 2.54, 1.36, "fcc"),
    "Cd": (48, 5, 12, 1.69, 1.44, "hcp"),
    "Co": (27, 4, 9, 1.88, 1.26, "hcp"),
    "Cu": (29, 4, 11, 1.90, 1.32, "fcc"),
    "Fe": (26, 4, 8, 1.83, 1.32, "bcc"),
    "Ir": (77, 6, 9, 2.20, 1.41, "fcc"),
    "Ni": (28, 4, 10, 1.91, 1.24, "fcc"),
    "Os": (76, 6, 8, 2.20, 1.44, "hcp"),
    "Pd": (46, 5, 10, 2.20, 1.39, "fcc"),
    "Pt": (78, 6, 10, 2.28, 1.36, "fcc"),
    "Rh": (45, 5, 9, 2.28, 1.42, "fcc"),
    "Ru": (44, 5, 8, 2.20, 1.46, "hcp"),
    "Zn": (30, 4, 12, 1.65, 1.22, "hcp"),
}


def metal_features(metal: str) -> np.ndarray:
    """One-hot (14) + Z, period, group, electronegativity, radius + lattice one-hot (3)."""
    z, period, group, en, radius, lattice = _PROPS[metal]
    onehot = [float(metal == m) for m in METALS]
    lat = [float(lattice == x) for x in ("fcc", "hcp", "bcc")]
    return np.array(onehot + [z, period, group, en, radius] + lat, dtype=np.float64)


def tree_features(metals: list[str], descriptors: np.ndarray) -> np.ndarray:
    """`P x (22 + D)` design matrix from per-pair metals and `P x D` raw descriptors."""
    return np.hstack([np.stack([metal_features(m) for m in metals]), descriptors])


def fit_predict_trees(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    seed: int,
    max_iter: int = 3000,
) -> tuple[np.ndarray, int]:
    """Fit boosted trees, choose the iteration count on val (MAE), predict test (eV)."""
    model = HistGradientBoostingRegressor(
        loss="squared_error",
        learning_rate=0.05,
        max_iter=max_iter,
        max_leaf_nodes=31,
        min_samples_leaf=5,
        l2_regularization=1e-3,
        early_stopping=False,
        random_state=seed,
    )
    model.fit(x_train, y_train)
    val_mae = [np.mean(np.abs(p - y_val)) for p in model.staged_predict(x_val)]
    best = int(np.argmin(val_mae))
    for i, pred in enumerate(model.staged_predict(x_test)):
        if i == best:
            return pred, best + 1
    raise RuntimeError("unreachable: staged_predict shorter than on val")
