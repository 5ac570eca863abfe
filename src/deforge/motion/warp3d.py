"""3D camera motion: the original's point-cloud reprojection (A-3) done as one OpenCV remap,
and the conversion of a depth model's relative inverse depth to z (A-4)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from deforge.motion.warp2d import plan_value, rotation_xyz

TRANSLATION_SCALE = 1.0 / 200.0

PADDING_MODES: dict[str, int] = {
    "border": cv2.BORDER_REPLICATE,
    # torch grid_sample 'reflection' with align_corners=False reflects about pixel edges (abc|cba)
    "reflection": cv2.BORDER_REFLECT,
    "zeros": cv2.BORDER_CONSTANT,
}
SAMPLING_MODES: dict[str, int] = {
    "bicubic": cv2.INTER_CUBIC,
    "bilinear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
}

# The original adds this to the image before grid_sample, so interpolated integer values do not
# fall just below the integer and truncate one level down when the frame becomes uint8.
SAMPLE_OFFSET = 1.0 / 512.0 - 0.0001
COORD_LIMIT = 1e6


def rotation_matrix(rotation_deg: Sequence[float]) -> np.ndarray:
    """R = Rx(rx) . Ry(ry) . Rz(rz) from degrees (PyTorch3D's 'XYZ' Euler convention)."""
    rx, ry, rz = (float(a) for a in rotation_deg)
    return rotation_xyz(rx, ry, rz)


def camera_translation(translation: Sequence[float]) -> np.ndarray:
    """Camera translation T = (-tx, ty, -tz) / 200 from the schedule values."""
    tx, ty, tz = (float(t) for t in translation)
    return np.array([-tx, ty, -tz]) * TRANSLATION_SCALE


def sampling_grid(
    width: int,
    height: int,
    translation: Sequence[float],
    rotation_deg: Sequence[float],
    fov: float,
    z: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates (map_x, map_y), float32 (H, W), sampled for each output pixel."""
    rot = rotation_matrix(rotation_deg)
    trans = camera_translation(translation)
    s = 1.0 / math.tan(math.radians(fov) / 2.0)
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    zs = None if z is None else np.asarray(z, dtype=np.float32)
    if zs is not None and zs.shape != (height, width):
        raise ValueError(f"z has shape {zs.shape}, expected {(height, width)}")

    def camera_axis(j: int) -> np.ndarray:
        """Component j of the camera point C = [X, Y, Z] . R + T (row vector times R), (H, W)."""
        if zs is None:
            return xs * np.float32(rot[0, j]) + (ys * np.float32(rot[1, j]) + np.float32(trans[j] + rot[2, j]))
        plane = xs * np.float32(rot[0, j]) + (ys * np.float32(rot[1, j]) + np.float32(trans[j]))
        return cv2.scaleAdd(zs, float(rot[2, j]), plane)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv_cz = np.reciprocal(camera_axis(2))
        inv_z = None if zs is None else np.reciprocal(zs)
        # grid = base - offset in NDC; in pixels the base is the pixel index and one NDC unit is size/2
        maps = []
        for j, (coords, size) in enumerate(((xs, width), (ys, height))):
            k = np.float32(s * size / 2.0)
            index = np.arange(size, dtype=np.float32).reshape(coords.shape)
            start = coords * k if inv_z is None else (coords * k) * inv_z
            start = np.broadcast_to(start + index, (height, width))
            projected = camera_axis(j)
            projected *= inv_cz
            maps.append(cv2.scaleAdd(projected, -float(k), np.ascontiguousarray(start)))
    return _bounded(maps[0]), _bounded(maps[1])


def _bounded(coords: np.ndarray) -> np.ndarray:
    """Coordinates limited to +-COORD_LIMIT; nan (a point on the camera plane) goes to -COORD_LIMIT.

    OpenCV's remap gives garbage for nan or huge coordinates; a limited one still lands outside
    the image, so the padding mode decides the value.
    """
    if -COORD_LIMIT <= coords.min() and coords.max() <= COORD_LIMIT:  # false for nan
        return coords
    coords = np.nan_to_num(coords, nan=-COORD_LIMIT, posinf=COORD_LIMIT, neginf=-COORD_LIMIT)
    return np.clip(coords, -COORD_LIMIT, COORD_LIMIT, out=coords)


def remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, padding_mode: str, sampling_mode: str) -> np.ndarray:
    """Sample a frame at the given source coordinates like the original's grid_sample, clamped to 0..255."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {sorted(PADDING_MODES)}, got {padding_mode!r}")
    if sampling_mode not in SAMPLING_MODES:
        raise ValueError(f"sampling_mode must be one of {sorted(SAMPLING_MODES)}, got {sampling_mode!r}")
    shifted = np.asarray(image, dtype=np.float32) + np.float32(SAMPLE_OFFSET)
    out = cv2.remap(
        shifted,
        map_x,
        map_y,
        interpolation=SAMPLING_MODES[sampling_mode],
        borderMode=PADDING_MODES[padding_mode],
        borderValue=(0.0, 0.0, 0.0, 0.0),
    )
    return np.clip(out, 0.0, 255.0, out=out)


def warp_3d(
    image: np.ndarray,
    translation: Sequence[float],
    rotation_deg: Sequence[float],
    fov: float,
    z: np.ndarray | None = None,
    padding_mode: str = "border",
    sampling_mode: str = "bicubic",
    near_plane: float | None = None,
    far_plane: float | None = None,
) -> np.ndarray:
    """Move the camera by (translation, rotation) over a depth map z; near/far are accepted and ignored (A-3)."""
    del near_plane, far_plane  # they only shaped NDC z in the original, never the image
    height, width = image.shape[:2]
    map_x, map_y = sampling_grid(width, height, translation, rotation_deg, fov, z)
    return remap(image, map_x, map_y, padding_mode, sampling_mode)


def depth_to_z(inverse_depth: np.ndarray | None) -> np.ndarray | None:
    """z = 2 - d for the min-max normalised inverse depth d (near = 1, A-4); a constant map gives z = 1.

    A constant map (range within 1e-6 of its magnitude, as deforge.depth.normalize_depth) carries no
    relative depth, so it is treated like having no depth model: z = 1. Non-finite values are ignored
    for the range and then count as far (d = 0, z = 2). None stays None.
    """
    if inverse_depth is None:
        return None
    inv = np.asarray(inverse_depth, dtype=np.float32)
    finite = np.isfinite(inv)
    if not finite.all():
        if not finite.any():
            return np.ones(inv.shape, dtype=np.float32)
        inv = np.where(finite, inv, np.min(inv[finite]))
    lo, hi = float(inv.min()), float(inv.max())
    if hi - lo <= 1e-6 * max(1.0, abs(lo), abs(hi)):
        return np.ones(inv.shape, dtype=np.float32)
    scale = np.float32(1.0 / (hi - lo))
    return np.float32(2.0) - (inv - np.float32(lo)) * scale


def warp_3d_frame(image: np.ndarray, values: Mapping[str, Any] | Any, z: np.ndarray | None = None) -> np.ndarray:
    """Apply one frame's 3D motion (a plan row: translation_x/y/z, rotation_3d_x/y/z, fov, modes)."""
    translation = [float(plan_value(values, f"translation_{a}", 0.0)) for a in "xyz"]
    rotation = [float(plan_value(values, f"rotation_3d_{a}", 0.0)) for a in "xyz"]
    return warp_3d(
        image,
        translation,
        rotation,
        float(plan_value(values, "fov", 40.0)),
        z,
        str(plan_value(values, "padding_mode", "border")),
        str(plan_value(values, "sampling_mode", "bicubic")),
    )
