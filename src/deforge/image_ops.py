"""Per-frame image operations of the render loop on frame arrays (float32 (H, W, 3) RGB, 0..255):
colour coherence, contrast, unsharp mask, noise, and the conversions the original made on the way."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from deforge.errors import SettingsError

COLOR_MODES: dict[str, tuple[int | None, int | None]] = {
    "RGB": (None, None),
    "HSV": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB),
    "LAB": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB),
}


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to 0..255 and truncate toward zero, as the original's sample -> cv2 conversion."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(image, 0, 255).astype(np.uint8)


def channel_histogram(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a uint8 channel and their quantiles (count up to and including / total)."""
    counts = np.bincount(channel.ravel(), minlength=256)
    values = np.flatnonzero(counts)
    quantiles = np.cumsum(counts[values]) / channel.size
    return values, quantiles


def match_table(source: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """256-entry uint8 lookup table matching a uint8 channel's histogram to a reference histogram."""
    src_values, src_quantiles = channel_histogram(source)
    ref_values, ref_quantiles = reference
    table = np.zeros(256, dtype=np.uint8)
    # float -> uint8 truncates toward zero, as the original's uint8 output array did (skimage 0.19)
    table[src_values] = np.interp(src_quantiles, ref_quantiles, ref_values).astype(np.uint8)
    return table


@dataclass(frozen=True)
class ColorReference:
    """A colour-coherence reference prepared once: its mode and per-channel histograms."""

    mode: str
    histograms: tuple[tuple[np.ndarray, np.ndarray], ...]


def _check_mode(mode: str) -> None:
    """Reject an unknown colour matching mode."""
    if mode not in COLOR_MODES:
        raise ValueError(f"colour matching mode must be one of {sorted(COLOR_MODES)}, got {mode!r}")


def _to_color_space(image: np.ndarray, mode: str) -> np.ndarray:
    """A frame as uint8 (clip, truncate) in the mode's 8-bit OpenCV colour space."""
    converted = to_uint8(image)
    forward = COLOR_MODES[mode][0]
    return converted if forward is None else cv2.cvtColor(converted, forward)


def color_reference(reference: np.ndarray, mode: str = "LAB") -> ColorReference:
    """Prepare a reference frame for repeated matching (saves converting it for every frame)."""
    _check_mode(mode)
    channels = cv2.split(_to_color_space(reference, mode))
    return ColorReference(mode, tuple(channel_histogram(c) for c in channels))


def match_colors(image: np.ndarray, reference: np.ndarray | ColorReference, mode: str = "LAB") -> np.ndarray:
    """Match the frame's colour histograms to the reference's in RGB, HSV or LAB (8-bit OpenCV spaces).

    Both are first made uint8 as the original did (clip, truncate); the result is a float32 frame.
    """
    _check_mode(mode)
    if not isinstance(reference, ColorReference):
        reference = color_reference(reference, mode)
    elif reference.mode != mode:
        raise ValueError(f"the colour reference was prepared for {reference.mode}, not {mode}")
    source = _to_color_space(image, mode)
    tables = [match_table(c, h) for c, h in zip(cv2.split(source), reference.histograms)]
    matched = cv2.LUT(source, np.stack(tables, axis=-1)[None])
    backward = COLOR_MODES[mode][1]
    if backward is not None:
        matched = cv2.cvtColor(matched, backward)
    return matched.astype(np.float32)


def apply_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiply every value by the contrast factor (no clipping, as the original)."""
    image = np.asarray(image, dtype=np.float32)
    if factor == 1.0:
        return image.copy()
    return image * np.float32(factor)


def _check_kernel(kernel: int) -> int:
    """The unsharp kernel size as a positive odd int, or a settings error."""
    size = int(kernel)
    if size < 1 or size % 2 == 0:
        raise SettingsError(f"kernel_schedule: the unsharp-mask kernel must be a positive odd size, got {kernel!r}")
    return size


def unsharp_mask(
    image: np.ndarray,
    kernel: int,
    sigma: float,
    amount: float,
    threshold: float = 0.0,
    rounded: bool = True,
) -> np.ndarray:
    """Sharpen: (1+amount)*img - amount*blur, clipped to 0..255; |img - blur| < threshold keeps the input (A-6).

    rounded=True gives the values rounded half to even as a float32 frame (what the original wrote
    to uint8); rounded=False gives the unrounded values. A float64 input is computed in float64.
    """
    img = np.asarray(image)
    if img.dtype != np.float64:
        img = img.astype(np.float32, copy=False)
    if amount == 0:
        sharp = np.clip(img, 0, 255)
    else:
        size = _check_kernel(kernel)
        blurred = cv2.GaussianBlur(img, (size, size), sigmaX=sigma, sigmaY=sigma)
        if img.dtype == np.float64:
            sharp = float(amount + 1) * img - float(amount) * blurred  # the original's float64 formula
        else:
            sharp = cv2.addWeighted(img, 1.0 + amount, blurred, -amount, 0.0)
        np.clip(sharp, 0, 255, out=sharp)
        if threshold > 0:
            low_contrast = cv2.absdiff(img, blurred) < threshold
            np.copyto(sharp, np.clip(img, 0, 255), where=low_contrast)
    if rounded:
        return np.rint(sharp, out=sharp).astype(np.float32, copy=False)
    return sharp


NOISE_STREAMS = 2
_noise_pool: ThreadPoolExecutor | None = None


def gaussian_noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Standard normal float32 noise, a pure function of the seed.

    The values come from NOISE_STREAMS generators spawned from SeedSequence(seed), each filling one
    contiguous part, drawn in parallel threads (numpy releases the GIL while filling); the result
    does not depend on the number of cores.
    """
    global _noise_pool
    out = np.empty(shape, dtype=np.float32)
    parts = np.array_split(out.reshape(-1), NOISE_STREAMS)
    generators = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(NOISE_STREAMS)]
    if out.size < 65536:
        for generator, part in zip(generators, parts):
            generator.standard_normal(dtype=np.float32, out=part)
        return out
    if _noise_pool is None:
        _noise_pool = ThreadPoolExecutor(max_workers=NOISE_STREAMS, thread_name_prefix="deforge-noise")
    futures = [_noise_pool.submit(g.standard_normal, dtype=np.float32, out=p) for g, p in zip(generators, parts)]
    for future in futures:
        future.result()
    return out


def add_noise(image: np.ndarray, amount: float, seed: int) -> np.ndarray:
    """Add Gaussian noise of std amount in the [-1, 1] sample space (amount*127.5 levels), seeded per frame."""
    image = np.asarray(image, dtype=np.float32)
    if amount == 0:
        return image.copy()
    noise = gaussian_noise(image.shape, seed)
    return cv2.scaleAdd(noise, amount * 127.5, image)


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """Luma (0.299 R + 0.587 G + 0.114 B) replicated to three channels, as a float32 frame."""
    gray = cv2.cvtColor(np.asarray(image, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    return cv2.merge([gray, gray, gray])
