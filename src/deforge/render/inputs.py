"""Init images and masks from the settings: loaded, resized to (W, H) and prepared once."""

from __future__ import annotations

import numpy as np

from ..errors import InputMediaError
from ..generate.masks import alpha_mask, image_to_frame, load_image, overlay_mask, prepare_mask
from ..settings import Settings


def load_init_image(settings: Settings, source: str | None = None) -> np.ndarray:
    """The init image as a frame array at (W, H), with optional Gaussian init noise."""
    source = source if source is not None else settings.init_image
    if not source:
        raise InputMediaError("init_image: use_init is true but no init image is given")
    frame = image_to_frame(load_image(source), (settings.W, settings.H))
    if settings.add_init_noise and settings.init_noise > 0:
        rng = np.random.default_rng(max(settings.seed, 0))
        frame = frame + rng.standard_normal(frame.shape).astype(np.float32) * np.float32(settings.init_noise * 127.5)
    return frame


def load_masks(settings: Settings, init_source: str | None = None,
               mask_source: str | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(mask, overlay mask) at (W, H) for use_mask; (None, None) without a mask."""
    if not settings.use_mask:
        return None, None
    size = (settings.W, settings.H)
    if settings.use_alpha_as_mask:
        raw = alpha_mask(load_image(init_source or settings.init_image or "").resize(size))
    else:
        source = mask_source or settings.mask_file
        if not source:
            raise InputMediaError("mask_file: use_mask is true but no mask file is given")
        raw = load_image(source)
    mask = prepare_mask(raw, settings.invert_mask, settings.mask_brightness_adjust,
                        settings.mask_contrast_adjust, size)
    overlay = overlay_mask(mask, settings.mask_overlay_blur) if settings.overlay_mask else None
    return mask, overlay


def init_and_mask(settings: Settings, init_source: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Init frame, mask and overlay mask for one init image of a still-image run."""
    init = load_init_image(settings, init_source)
    mask, overlay = load_masks(settings, init_source)
    return init, mask, overlay
