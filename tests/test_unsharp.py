"""Unsharp mask (anti-blur) against unsharp.json, threshold included (A-6)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import conformance_cases

from deforge.errors import SettingsError
from deforge.image_ops import unsharp_mask


def run(case: dict, rounded: bool, dtype=np.float64) -> np.ndarray:
    """unsharp_mask with the case's parameters on the case's image."""
    image = np.asarray(case["image"], dtype=dtype)
    return unsharp_mask(image, case["kernel"], case["sigma"], case["amount"], case["threshold"], rounded=rounded)


@pytest.mark.parametrize("case", conformance_cases("unsharp.json", "cases"))
def test_rounded(case: dict) -> None:
    out = run(case, rounded=True)
    assert out.dtype == np.float32
    assert np.array_equal(out, np.asarray(case["expected"], dtype=np.float32))


@pytest.mark.parametrize("case", conformance_cases("unsharp.json", "cases"))
def test_unrounded(case: dict) -> None:
    out = run(case, rounded=False)
    expected = np.asarray(case["expected_float"], dtype=np.float64)
    assert np.all(np.abs(out - expected) <= 1e-6 * np.maximum(1.0, np.abs(expected)))


# Without threshold only: near a threshold float32 may take the other branch (float64 is checked exactly).
NO_THRESHOLD = [c for c in conformance_cases("unsharp.json", "cases") if c.values[0]["threshold"] == 0]


@pytest.mark.parametrize("case", NO_THRESHOLD)
def test_float32_frames_within_one_level(case: dict) -> None:
    """Frames are float32; their result may differ from the float64 reference only at .5 ties."""
    out = run(case, rounded=True, dtype=np.float32)
    assert out.dtype == np.float32
    assert np.abs(out - np.asarray(case["expected"], dtype=np.float32)).max() <= 1


def test_amount_zero_is_rounded_clipped_input() -> None:
    image = np.array([[[-4.0, 12.5, 13.5], [254.5, 255.4, 400.0]]], np.float32)
    assert unsharp_mask(image, 5, 1.0, 0.0).tolist() == [[[0.0, 12.0, 14.0], [254.0, 255.0, 255.0]]]


def test_flat_image_unchanged() -> None:
    image = np.full((9, 9, 3), 77.0, np.float32)
    assert np.array_equal(unsharp_mask(image, 5, 1.0, 0.7, 0.0), image)


def test_threshold_keeps_low_contrast_detail() -> None:
    rng = np.random.default_rng(0)
    image = (100 + rng.random((16, 16, 3)) * 4).astype(np.float32)  # texture of amplitude < 4
    image[8, 8] = 250.0  # one strong spike
    out = unsharp_mask(image, 5, 1.0, 1.0, threshold=10)
    spike_free = np.ones(image.shape[:2], bool)
    spike_free[6:11, 6:11] = False
    assert np.array_equal(out[spike_free], np.rint(image[spike_free]))
    assert out[8, 8, 0] == 255  # the spike itself is sharpened (2*250 - blur > 255)


@pytest.mark.parametrize("kernel", [0, 4, -3])
def test_bad_kernel_is_a_settings_error(kernel: int) -> None:
    with pytest.raises(SettingsError, match="kernel"):
        unsharp_mask(np.zeros((8, 8, 3), np.float32), kernel, 1.0, 0.2)
