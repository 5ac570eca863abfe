"""Init images and masks: loading, the mask adjustments of the original, and the latent mask.

Masks are float32 (H, W) arrays in 0..1: 1 (white) keeps the init image, 0 (black) is
repainted. No torch here: the settings layer and render loops use these helpers directly.
"""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps, UnidentifiedImageError

from deforge.errors import InputMediaError

_URL_TIMEOUT_S = 30


def load_image(path_or_url: str | Path) -> Image.Image:
    """Read an image file or http(s) URL into a fully loaded PIL image (EXIF rotation applied).

    Raises InputMediaError with one line when it cannot be read.
    """
    source = str(path_or_url)
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=_URL_TIMEOUT_S) as response:  # noqa: S310 (user URL)
                data = response.read()
            image = Image.open(io.BytesIO(data))
        else:
            image = Image.open(Path(source).expanduser())
        image.load()
    except FileNotFoundError:
        raise InputMediaError(f"image not found: {source}") from None
    except IsADirectoryError:
        raise InputMediaError(f"expected an image file, got a folder: {source}") from None
    except UnidentifiedImageError:
        raise InputMediaError(f"not a readable image (unknown format or corrupt): {source}") from None
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputMediaError(f"cannot read image {source}: {reason}") from None
    return ImageOps.exif_transpose(image)


def image_to_frame(image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """A PIL image as a frame array (float32 (H, W, 3) RGB 0..255), resized to size=(W, H) with
    LANCZOS as the original did."""
    rgb = image.convert("RGB")
    if size is not None and rgb.size != tuple(size):
        rgb = rgb.resize(tuple(size), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.float32)


def alpha_mask(image: Image.Image) -> np.ndarray:
    """The alpha channel of an image as a 0..1 mask (use_alpha_as_mask); all ones without alpha."""
    if "A" not in image.getbands():
        return np.ones((image.height, image.width), np.float32)
    return np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0


def _to_grey_image(mask_image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(mask_image, Image.Image):
        return mask_image.convert("L")
    raw = np.asarray(mask_image)
    array = raw.astype(np.float32)
    if array.ndim == 3:
        # RGB(A) arrays: luminance of the colour channels, as PIL's "L" conversion does
        rgb = array[..., :3]
        array = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if np.issubdtype(raw.dtype, np.floating) and array.max(initial=0.0) <= 1.0:
        array = array * 255.0
    return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), "L")


def prepare_mask(
    mask_image: Image.Image | np.ndarray,
    invert: bool = False,
    brightness: float = 1.0,
    contrast: float = 1.0,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """A mask as float32 (H, W) in 0..1 (1 keeps the init image).

    Accepts a PIL image or an array (grey or RGB(A); 0..1 floats or 0..255). Resized to
    size=(W, H) with LANCZOS when given. Brightness then contrast are applied with PIL's
    ImageEnhance (A-9: each setting does what its name says), then the mask is inverted if asked.
    """
    grey = _to_grey_image(mask_image)
    if size is not None and grey.size != tuple(size):
        grey = grey.resize(tuple(size), Image.Resampling.LANCZOS)
    if brightness != 1.0:
        grey = ImageEnhance.Brightness(grey).enhance(brightness)
    if contrast != 1.0:
        grey = ImageEnhance.Contrast(grey).enhance(contrast)
    mask = np.asarray(grey, dtype=np.float32) / 255.0
    if invert:
        mask = 1.0 - mask
    return np.clip(mask, 0.0, 1.0)


def overlay_mask(mask: np.ndarray, blur_sigma: float) -> np.ndarray:
    """The paste-back mask of the original (5.3.4): every value below the maximum becomes 0, then a
    Gaussian blur (reflect mode) with sigma blur_sigma."""
    from scipy.ndimage import gaussian_filter

    mask = np.asarray(mask, dtype=np.float32)
    peak = mask.max(initial=0.0)
    kept = np.where(mask < peak, 0.0, mask).astype(np.float32)
    if blur_sigma <= 0:
        return kept
    return gaussian_filter(kept, sigma=float(blur_sigma), mode="reflect").astype(np.float32)


def latent_mask(mask: np.ndarray, latent_size: tuple[int, int]) -> np.ndarray:
    """A full-resolution mask resized to the latent grid size=(w, h) with LANCZOS, clipped to 0..1."""
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape[::-1] == tuple(latent_size):
        return np.clip(mask, 0.0, 1.0)
    resized = Image.fromarray(mask, "F").resize(tuple(latent_size), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def hold_thresholds(noise_levels: np.ndarray) -> np.ndarray:
    """Per-step thresholds for grey masks, as in the original: the noise levels of the run
    (ending in 0) divided by their maximum, sorted ascending. After step i a latent pixel with
    mask value m is held at the init when m > 0 and m >= thresholds[i]: white is held at every
    step, black never, grey early on and released later."""
    levels = np.asarray(noise_levels, dtype=np.float64)
    peak = levels.max(initial=0.0)
    scaled = levels / peak if peak > 0 else np.zeros_like(levels)
    return np.sort(scaled)


def paste_overlay(generated: np.ndarray, init: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """out = init * m + generated * (1 - m), for frame arrays and a (H, W) mask."""
    m = np.asarray(mask, dtype=np.float32)[..., None]
    return (init.astype(np.float32) * m + generated.astype(np.float32) * (1.0 - m)).astype(np.float32)
