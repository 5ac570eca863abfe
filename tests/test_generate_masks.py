"""Mask and init-image helpers (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from deforge.errors import InputMediaError
from deforge.generate.masks import (
    alpha_mask,
    hold_thresholds,
    image_to_frame,
    latent_mask,
    load_image,
    overlay_mask,
    paste_overlay,
    prepare_mask,
)


def _grey(value: int, size=(8, 8)) -> Image.Image:
    return Image.new("L", size, value)


def test_prepare_mask_scales_to_unit_range_and_inverts():
    mask = prepare_mask(_grey(255))
    assert mask.dtype == np.float32 and mask.shape == (8, 8) and np.all(mask == 1.0)
    assert np.all(prepare_mask(_grey(255), invert=True) == 0.0)
    assert np.allclose(prepare_mask(_grey(51)), 0.2)


def test_prepare_mask_brightness_and_contrast_do_what_their_names_say():
    """A-9: brightness scales values, contrast spreads them around the mean (the original swapped them)."""
    image = Image.fromarray(np.array([[50, 100], [150, 200]], np.uint8), "L")
    darker = prepare_mask(image, brightness=0.5)
    assert np.allclose(darker * 255, np.array([[25, 50], [75, 100]]), atol=1)
    expected = np.asarray(ImageEnhance.Contrast(image).enhance(2.0), np.float32) / 255
    contrasted = prepare_mask(image, contrast=2.0)
    assert np.allclose(contrasted, expected)
    assert contrasted.std() > prepare_mask(image).std()
    # brightness first, then contrast
    both = np.asarray(ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(0.5)).enhance(2.0), np.float32)
    assert np.allclose(prepare_mask(image, brightness=0.5, contrast=2.0), both / 255)


def test_prepare_mask_accepts_arrays_and_resizes():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = 255
    mask = prepare_mask(rgb, size=(12, 8))
    assert mask.shape == (8, 12)
    assert mask[:, :4].min() > 0.95 and mask[:, -4:].max() < 0.05
    floats = np.full((4, 4), 0.5, np.float32)
    assert np.allclose(prepare_mask(floats), 128 / 255)


def test_overlay_mask_keeps_only_the_maximum_and_blurs():
    mask = np.zeros((32, 32), np.float32)
    mask[:, :16] = 1.0
    mask[:, 16:20] = 0.6  # below the maximum: dropped
    sharp = overlay_mask(mask, 0)
    assert set(np.unique(sharp)) == {0.0, 1.0} and sharp[:, 16:].max() == 0.0
    soft = overlay_mask(mask, 2.0)
    assert soft[:, 2].min() > 0.99 and soft[:, 30].max() < 0.01
    assert 0.2 < soft[5, 15] < 0.8  # blurred across the edge


def test_paste_overlay_is_exact_where_the_mask_is_one():
    init = np.full((4, 4, 3), 200.0, np.float32)
    generated = np.full((4, 4, 3), 10.0, np.float32)
    mask = np.array([[1, 1, 0, 0.5]] * 4, np.float32)
    out = paste_overlay(generated, init, mask)
    assert np.all(out[:, :2] == 200.0) and np.all(out[:, 2] == 10.0) and np.allclose(out[:, 3], 105.0)


def test_latent_mask_and_thresholds():
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0
    small = latent_mask(mask, (8, 8))
    assert small.shape == (8, 8) and small[:, :3].min() > 0.99 and small[:, 5:].max() < 0.01
    thresholds = hold_thresholds(np.array([14.6, 7.0, 2.0, 0.0]))
    assert thresholds[0] == 0.0 and thresholds[-1] == 1.0 and np.all(np.diff(thresholds) >= 0)


def test_load_image_reads_files_and_alpha(tmp_path):
    path = tmp_path / "rgba.png"
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :3, 3] = 255
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(path)
    assert image.size == (7, 5)
    frame = image_to_frame(image, size=(14, 10))
    assert frame.shape == (10, 14, 3) and frame.dtype == np.float32
    alpha = alpha_mask(image)
    assert alpha[:, :3].min() == 1.0 and alpha[:, 3:].max() == 0.0


@pytest.mark.parametrize("kind", ["missing", "corrupt", "folder"])
def test_load_image_errors_are_one_line(tmp_path, kind):
    target = tmp_path / "x.png"
    if kind == "corrupt":
        target.write_bytes(b"not an image at all")
    elif kind == "folder":
        target.mkdir()
    with pytest.raises(InputMediaError) as info:
        load_image(target)
    message = str(info.value)
    assert "\n" not in message and str(target) in message
