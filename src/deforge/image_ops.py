"""Per-frame image operations of the render loop on frame arrays (float32 (H, W, 3) RGB, 0..255):
colour coherence, contrast, unsharp mask, noise, and the conversions the original made on the way."""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import cv2
import numpy as np

from deforge.errors import SettingsError

COLOR_MODES: dict[str, tuple[int | None, int | None]] = {
    "RGB": (None, None),
    "HSV": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB),
    "LAB": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB),
}
CALCHIST_EXACT_PIXELS = 2**24  # OpenCV's calcHist counts in float32, exact below this many pixels


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to 0..255 and truncate toward zero, as the original's sample -> cv2 conversion."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(image, 0, 255).astype(np.uint8)


def channel_counts(image: np.ndarray) -> list[np.ndarray]:
    """Per-channel counts of each value 0..255 of a uint8 (H, W, C) image."""
    if image.shape[0] * image.shape[1] < CALCHIST_EXACT_PIXELS:
        hists = [cv2.calcHist([image], [c], None, [256], [0, 256]) for c in range(image.shape[2])]
        return [h.ravel().astype(np.int64) for h in hists]
    return [np.bincount(image[..., c].ravel(), minlength=256) for c in range(image.shape[2])]


def cumulative_quantiles(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values present and their quantiles (count up to and including the value / total)."""
    values = np.flatnonzero(counts)
    cumulative = np.cumsum(counts[values])
    return values, cumulative / cumulative[-1]


def match_table(source_counts: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """256-entry uint8 lookup table that matches a channel with these counts to a reference histogram."""
    src_values, src_quantiles = cumulative_quantiles(source_counts)
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
    counts = channel_counts(_to_color_space(reference, mode))
    return ColorReference(mode, tuple(cumulative_quantiles(c) for c in counts))


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
    tables = [match_table(c, h) for c, h in zip(channel_counts(source), reference.histograms)]
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


def gaussian_noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Standard normal float32 noise, a pure function of the seed.

    The Box-Muller transform of uniform numbers from np.random.default_rng(seed): the first half of
    the values are r*cos(theta), the second half r*sin(theta) of the same pairs. OpenCV's vectorised
    log and polar-to-cartesian make it 2-3x faster than numpy's standard_normal here.
    """
    size = int(np.prod(shape))
    half = (size + 1) // 2
    uniform = np.random.default_rng(seed).random(2 * half, dtype=np.float32)  # in [0, 1)
    radius = uniform[:half].reshape(-1, 1)
    np.subtract(np.float32(1.0), radius, out=radius)  # in (0, 1]: the log is finite
    radius = cv2.log(radius)
    radius *= np.float32(-2.0)
    radius = cv2.sqrt(radius)
    angle = uniform[half:].reshape(-1, 1)
    angle *= np.float32(2.0 * np.pi)
    out = np.empty(2 * half, dtype=np.float32)
    cv2.polarToCart(radius, angle, x=out[:half].reshape(-1, 1), y=out[half:].reshape(-1, 1))
    return out[:size].reshape(shape)


def add_noise(image: np.ndarray, amount: float, seed: int) -> np.ndarray:
    """Add Gaussian noise of std amount in the [-1, 1] sample space (amount*127.5 levels), seeded per frame."""
    image = np.asarray(image, dtype=np.float32)
    if amount == 0:
        return image.copy()
    noise = gaussian_noise(image.shape, seed)
    return cv2.scaleAdd(noise, amount * 127.5, image, dst=noise)


def retain_freed_memory(limit_bytes: int = 32 * 2**20) -> bool:
    """Make glibc keep freed buffers up to limit_bytes for reuse instead of giving them back to the OS.

    Every per-frame operation returns new arrays of a few MB. By default glibc unmaps or trims them
    when they are freed, and touching fresh pages again costs more than the arithmetic (about 4000
    page faults, 10-15 ms, per 512x512 frame on the 2-core development VM). Call once per process,
    before rendering. Returns False, changing nothing, where the C library has no mallopt.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    return bool(mallopt(m_mmap_threshold, int(limit_bytes))) and bool(mallopt(m_trim_threshold, 8 * int(limit_bytes)))


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """Luma (0.299 R + 0.587 G + 0.114 B) replicated to three channels, as a float32 frame."""
    gray = cv2.cvtColor(np.asarray(image, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    return cv2.merge([gray, gray, gray])
