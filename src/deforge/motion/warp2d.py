"""2D camera motion: the original's rotation/zoom/translation matrices (A-1), the corrected
perspective flip (A-2), and the OpenCV warp that applies them to a frame array."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

BORDER_MODES: dict[str, int] = {"replicate": cv2.BORDER_REPLICATE, "wrap": cv2.BORDER_WRAP}


def translation_matrix(tx: float, ty: float) -> np.ndarray:
    """3x3 matrix that moves content by (tx, ty) pixels."""
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def rotation_zoom_matrix(width: int, height: int, angle: float, zoom: float) -> np.ndarray:
    """3x3 form of OpenCV's getRotationMatrix2D about (width // 2, height // 2), angle in degrees."""
    cx, cy = width // 2, height // 2
    a = math.radians(angle)
    alpha, beta = zoom * math.cos(a), zoom * math.sin(a)
    return np.array(
        [
            [alpha, beta, (1.0 - alpha) * cx - beta * cy],
            [-beta, alpha, beta * cx + (1.0 - alpha) * cy],
            [0.0, 0.0, 1.0],
        ]
    )


def matrix_2d(width: int, height: int, angle: float, zoom: float, tx: float, ty: float) -> np.ndarray:
    """Forward (source -> destination) 3x3 matrix of one 2D frame: translate, then rotate/zoom (A-1)."""
    return rotation_zoom_matrix(width, height, angle, zoom) @ translation_matrix(tx, ty)


def rotation_xyz(x_deg: float, y_deg: float, z_deg: float) -> np.ndarray:
    """Rx . Ry . Rz (3x3, right-handed) from degrees."""
    x, y, z = math.radians(x_deg), math.radians(y_deg), math.radians(z_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return rx @ ry @ rz


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 matrix mapping four source points onto four destination points (double precision)."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    return np.append(np.linalg.solve(a, b), 1.0).reshape(3, 3)


def perspective_flip_matrix(width: int, height: int, theta: float, phi: float, gamma: float, fv: float) -> np.ndarray:
    """The corrected perspective-flip matrix B (A-2); the identity when all three angles are zero."""
    half = math.radians(fv / 2.0)
    d = math.hypot(width, height)
    side = d / math.cos(half)
    h = d / (2.0 * math.sin(half))
    near, far = h - d / 2.0, h + d / 2.0

    tz = np.eye(4)
    tz[2, 3] = -h
    proj = np.zeros((4, 4))
    proj[0, 0] = proj[1, 1] = 1.0 / math.tan(half)
    proj[2, 2] = -(far + near) / (far - near)
    proj[2, 3] = -2.0 * far * near / (far - near)
    proj[3, 2] = -1.0  # proj[3, 3] stays 0: the original's stray 1 made zero angles zoom

    rot = np.eye(4)
    rot[:3, :3] = rotation_xyz(phi, gamma, theta)  # phi about x, gamma about y, theta about z
    full = proj @ tz @ rot
    w2, h2 = width / 2.0, height / 2.0
    corners = np.array([[-w2, h2, 0, 1], [w2, h2, 0, 1], [w2, -h2, 0, 1], [-w2, -h2, 0, 1]], dtype=np.float64)
    projected = corners @ full.T
    projected = projected[:, :2] / projected[:, 3:4]
    src = corners[:, :2] + (w2, h2)
    dst = (projected + 1.0) * (side / 2.0)
    shift = translation_matrix((width - side) / 2.0, (height - side) / 2.0)
    return homography(src, dst) @ shift


def matrix_2d_flipped(
    width: int,
    height: int,
    angle: float,
    zoom: float,
    tx: float,
    ty: float,
    theta: float,
    phi: float,
    gamma: float,
    fv: float,
) -> np.ndarray:
    """Forward matrix with the perspective flip: B . R . T (A-2 keeps the translation)."""
    return perspective_flip_matrix(width, height, theta, phi, gamma, fv) @ matrix_2d(width, height, angle, zoom, tx, ty)


def warp_2d(image: np.ndarray, matrix: np.ndarray, border: str = "replicate") -> np.ndarray:
    """Warp a frame with a forward 3x3 matrix: bilinear, edge replicate or wrap-around."""
    if border not in BORDER_MODES:
        raise ValueError(f"border must be one of {sorted(BORDER_MODES)}, got {border!r}")
    height, width = image.shape[:2]
    return cv2.warpPerspective(
        np.ascontiguousarray(image, dtype=np.float32),
        np.asarray(matrix, dtype=np.float64),
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=BORDER_MODES[border],
    )


def plan_value(values: Mapping[str, Any] | Any, key: str, default: Any) -> Any:
    """One motion value from a mapping or an object with attributes."""
    if isinstance(values, Mapping):
        return values.get(key, default)
    return getattr(values, key, default)


def frame_matrix_2d(width: int, height: int, values: Mapping[str, Any] | Any) -> np.ndarray:
    """The forward matrix for one frame's schedule values (angle, zoom, translation_x/y, flip settings)."""
    angle = float(plan_value(values, "angle", 0.0))
    zoom = float(plan_value(values, "zoom", 1.0))
    tx = float(plan_value(values, "translation_x", 0.0))
    ty = float(plan_value(values, "translation_y", 0.0))
    if not plan_value(values, "flip_2d_perspective", False):
        return matrix_2d(width, height, angle, zoom, tx, ty)
    return matrix_2d_flipped(
        width,
        height,
        angle,
        zoom,
        tx,
        ty,
        float(plan_value(values, "perspective_flip_theta", 0.0)),
        float(plan_value(values, "perspective_flip_phi", 0.0)),
        float(plan_value(values, "perspective_flip_gamma", 0.0)),
        float(plan_value(values, "perspective_flip_fv", 53.0)),
    )


def warp_2d_frame(image: np.ndarray, values: Mapping[str, Any] | Any) -> np.ndarray:
    """Apply one frame's 2D motion (a plan row: mapping or object) to a frame array."""
    height, width = image.shape[:2]
    return warp_2d(image, frame_matrix_2d(width, height, values), str(plan_value(values, "border", "replicate")))
