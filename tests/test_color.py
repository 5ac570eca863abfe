"""Colour coherence matching against color.json, plus the small frame conversions of image_ops."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import conformance_cases

from deforge import image_ops
from deforge.image_ops import (
    add_noise,
    apply_contrast,
    color_reference,
    match_colors,
    to_grayscale,
    to_uint8,
)


def as_uint8(data: list) -> np.ndarray:
    """A conformance image as uint8 (H, W, 3)."""
    return np.asarray(data, dtype=np.uint8)


@pytest.mark.parametrize("case", conformance_cases("color.json", "cases"))
def test_match_colors(case: dict) -> None:
    source, reference = as_uint8(case["source"]), as_uint8(case["reference"])
    out = match_colors(source.astype(np.float32), reference.astype(np.float32), case["mode"])
    assert out.dtype == np.float32 and out.shape == source.shape
    assert np.array_equal(out, as_uint8(case["expected"]).astype(np.float32))


@pytest.mark.parametrize("case", conformance_cases("color.json", "cases"))
def test_prepared_reference_and_uint8_inputs(case: dict) -> None:
    source, reference = as_uint8(case["source"]), as_uint8(case["reference"])
    prepared = color_reference(reference, case["mode"])
    assert np.array_equal(match_colors(source, prepared, case["mode"]), as_uint8(case["expected"]))


@pytest.mark.parametrize("case", conformance_cases("color.json", "cases"))
def test_float_input_is_clipped_and_truncated(case: dict) -> None:
    """A float frame becomes uint8 as the original's sample conversion did: clip, then truncate."""
    source, reference = as_uint8(case["source"]), as_uint8(case["reference"])
    rng = np.random.default_rng(0)
    fuzzed = source + rng.uniform(0.0, 0.999, source.shape).astype(np.float32)
    fuzzed[source == 0] -= 40  # below 0 clips to 0
    fuzzed[source == 255] += 40  # above 255 clips to 255
    assert np.array_equal(match_colors(fuzzed, reference, case["mode"]), as_uint8(case["expected"]))


def test_rgb_self_match_is_exact() -> None:
    rng = np.random.default_rng(5)
    image = np.floor(rng.random((33, 47, 3)) * 256).astype(np.float32)
    assert np.array_equal(match_colors(image, image, "RGB"), image)


def test_matches_reference_histogram_when_distinct() -> None:
    """With all-distinct values, RGB matching gives each channel exactly the reference's values."""
    source = np.arange(3 * 256, dtype=np.float32).reshape(16, 16, 3) // 3
    reference = 255 - source[::-1]
    out = match_colors(source, reference, "RGB")
    for c in range(3):
        assert sorted(out[..., c].ravel()) == sorted(reference[..., c].ravel())


def test_unknown_mode_and_mismatched_reference_rejected() -> None:
    image = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(ValueError):
        match_colors(image, image, "XYZ")
    with pytest.raises(ValueError):
        match_colors(image, color_reference(image, "HSV"), "LAB")


def test_to_uint8_clips_and_truncates() -> None:
    values = np.array([-3.0, 0.0, 0.99, 1.5, 254.999, 255.0, 300.0], np.float32)
    assert to_uint8(values).tolist() == [0, 0, 0, 1, 254, 255, 255]


def test_apply_contrast() -> None:
    image = np.array([[[10.0, 100.0, 250.0]]], np.float32)
    out = apply_contrast(image, 1.2)
    assert out.dtype == np.float32 and np.allclose(out, [[[12.0, 120.0, 300.0]]])  # not clipped
    assert np.array_equal(apply_contrast(image, 1.0), image)


def test_add_noise_is_a_pure_function_of_the_seed() -> None:
    image = np.full((64, 64, 3), 128, np.float32)
    a, b, c = add_noise(image, 0.02, 7), add_noise(image, 0.02, 7), add_noise(image, 0.02, 8)
    assert a.dtype == np.float32 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(image, np.full((64, 64, 3), 128, np.float32))  # input untouched
    assert np.std(a - image) == pytest.approx(0.02 * 127.5, rel=0.05)
    assert abs(np.mean(a - image)) < 0.1
    assert np.array_equal(add_noise(image, 0.0, 7), image)


def test_to_grayscale() -> None:
    image = np.array([[[255.0, 0.0, 0.0], [0.0, 255.0, 0.0], [0.0, 0.0, 255.0]]], np.float32)
    out = to_grayscale(image)
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.allclose(out[..., 0], [[0.299 * 255, 0.587 * 255, 0.114 * 255]], atol=0.01)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])


def literal_match_channel(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The README's per-channel rule written out with np.unique (slow, obviously right)."""
    src_values, src_inverse, src_counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    ref_values, ref_counts = np.unique(reference.ravel(), return_counts=True)
    src_q = np.cumsum(src_counts) / source.size
    ref_q = np.cumsum(ref_counts) / reference.size
    matched = np.interp(src_q, ref_q, ref_values)[src_inverse].reshape(source.shape)
    out = np.empty(source.shape, np.uint8)
    out[...] = matched.astype(np.uint8)  # truncation
    return out


@pytest.mark.parametrize("seed", range(4))
def test_rgb_matches_literal_rule_on_larger_images(seed: int) -> None:
    rng = np.random.default_rng(seed)
    source = np.clip(rng.normal(90, 30, (40, 70, 3)), 0, 255).astype(np.uint8)
    reference = np.clip(rng.normal(170, 50, (50, 30, 3)), 0, 255).astype(np.uint8)  # another size
    expected = np.stack([literal_match_channel(source[..., c], reference[..., c]) for c in range(3)], axis=-1)
    assert np.array_equal(match_colors(source, reference, "RGB"), expected)


@pytest.mark.parametrize("case", conformance_cases("color.json", "cases"))
def test_large_image_counting_path(case: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Images too large for exact float32 calcHist counts are counted with bincount: same result."""
    monkeypatch.setattr(image_ops, "CALCHIST_EXACT_PIXELS", 0)
    out = match_colors(as_uint8(case["source"]), as_uint8(case["reference"]), case["mode"])
    assert np.array_equal(out, as_uint8(case["expected"]))


@pytest.mark.parametrize("shape", [(256, 256, 3), (7, 5, 3), (1,)])
def test_gaussian_noise(shape: tuple[int, ...]) -> None:
    """Standard normal float32 values, the same for the same seed."""
    noise = image_ops.gaussian_noise(shape, 11)
    assert noise.shape == shape and noise.dtype == np.float32 and np.all(np.isfinite(noise))
    assert np.array_equal(noise, image_ops.gaussian_noise(shape, 11))
    if noise.size > 100_000:
        assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1) < 0.01
        assert abs(np.mean(np.abs(noise) < 1) - 0.6827) < 0.005
        assert abs(np.mean(np.abs(noise) < 2) - 0.9545) < 0.003
        halves = noise.ravel()[: noise.size // 2], noise.ravel()[noise.size // 2 :]
        assert abs(np.corrcoef(*halves)[0, 1]) < 0.01  # cos and sin parts of the same pairs
