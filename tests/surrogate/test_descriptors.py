from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alloop.surrogate.descriptors import (
    ADSMT_DESCRIPTOR_NAMES,
    STEREO_FEATURE_NAMES,
    adsorbate_descriptors,
    descriptor_names,
    descriptor_spec_hash,
)
from alloop.surrogate.errors import FeaturisationError


def test_name_list_shape() -> None:
    assert len(ADSMT_DESCRIPTOR_NAMES) == 208
    assert len(set(ADSMT_DESCRIPTOR_NAMES)) == 208
    assert ADSMT_DESCRIPTOR_NAMES[40] == "Ipc"  # the data README: index 40 is Ipc(avg=True)
    assert ADSMT_DESCRIPTOR_NAMES[:4] == (
        "MaxEStateIndex",
        "MinEStateIndex",
        "MaxAbsEStateIndex",
        "MinAbsEStateIndex",
    )
    assert ADSMT_DESCRIPTOR_NAMES[-1] == "fr_urea"
    assert descriptor_names(True)[-2:] == STEREO_FEATURE_NAMES


def test_matches_published_ads_des(ocd_examples_path: Path) -> None:
    items = json.loads(ocd_examples_path.read_text())["items"]
    published = np.array([item["ads_des"][0] for item in items])
    ours = np.array([adsorbate_descriptors(item["ads_smi"]) for item in items])
    assert published.shape == ours.shape == (25, 208)
    # The file stores float32: agreement is to its rounding, on every one of the 5,200 values.
    np.testing.assert_allclose(ours, published, rtol=1e-6, atol=1e-5)


def test_stereo_counts_separate_ez_isomers() -> None:
    trans = adsorbate_descriptors("C/C=C/C", stereo=True)
    cis = adsorbate_descriptors(r"C/C=C\C", stereo=True)
    np.testing.assert_array_equal(trans[:208], cis[:208])  # 2D descriptors cannot tell
    assert trans[-2:].tolist() == [1.0, 0.0]
    assert cis[-2:].tolist() == [0.0, 1.0]
    assert adsorbate_descriptors("CC=CC", stereo=True)[-2:].tolist() == [0.0, 0.0]


def test_radicals_accepted() -> None:
    vec = adsorbate_descriptors("[CH]")
    assert vec.shape == (208,)
    assert np.isfinite(vec).all()
    assert vec[ADSMT_DESCRIPTOR_NAMES.index("NumRadicalElectrons")] == 3.0


def test_spec_hash_depends_on_stereo() -> None:
    assert descriptor_spec_hash(False) != descriptor_spec_hash(True)
    assert descriptor_spec_hash(True) == descriptor_spec_hash(True)


def test_bad_smiles_is_refused() -> None:
    with pytest.raises(FeaturisationError, match="cannot parse adsorbate SMILES 'C1CC'"):
        adsorbate_descriptors("C1CC")
