"""2D warp: matrices (A-1), corrected perspective flip (A-2), pixel warps, against warp2d.json."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import conformance_cases, load_conformance

from deforge.motion.warp2d import (
    frame_matrix_2d,
    matrix_2d,
    matrix_2d_flipped,
    perspective_flip_matrix,
    warp_2d,
    warp_2d_frame,
)


def assert_matrix_close(actual: np.ndarray, expected: list[list[float]]) -> None:
    """The conformance rule for 3x3 matrices: normalise by [2][2], then 1e-4 relative (absolute below 1)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    a, e = a / a[2, 2], e / e[2, 2]
    assert np.all(np.abs(a - e) <= 1e-4 * np.maximum(1.0, np.abs(e))), f"\n{a}\n!=\n{e}"


def conformance_image() -> np.ndarray:
    """The 8x6 conformance image, checked against its definition R = 30x, G = 40y, B = 100."""
    spec = load_conformance("warp2d.json")["image"]
    pixels = np.asarray(spec["pixels"], dtype=np.float32)
    y, x = np.mgrid[0 : spec["height"], 0 : spec["width"]]
    assert np.array_equal(pixels, np.stack([30 * x, 40 * y, np.full_like(x, 100)], axis=-1))
    return pixels


@pytest.mark.parametrize("case", conformance_cases("warp2d.json", "matrices"))
def test_matrix(case: dict) -> None:
    m = matrix_2d(case["W"], case["H"], case["angle"], case["zoom"], case["tx"], case["ty"])
    assert_matrix_close(m, case["expected"])


@pytest.mark.parametrize("case", conformance_cases("warp2d.json", "perspective_flip"))
def test_perspective_flip(case: dict) -> None:
    args = (case["W"], case["H"], case["angle"], case["zoom"], case["tx"], case["ty"])
    flip = (case["theta"], case["phi"], case["gamma"], case["fv"])
    assert_matrix_close(matrix_2d_flipped(*args, *flip), case["expected"])
    values = dict(
        angle=case["angle"],
        zoom=case["zoom"],
        translation_x=case["tx"],
        translation_y=case["ty"],
        flip_2d_perspective=True,
        perspective_flip_theta=case["theta"],
        perspective_flip_phi=case["phi"],
        perspective_flip_gamma=case["gamma"],
        perspective_flip_fv=case["fv"],
    )
    assert_matrix_close(frame_matrix_2d(case["W"], case["H"], values), case["expected"])


@pytest.mark.parametrize("case", conformance_cases("warp2d.json", "pixels"))
def test_pixels(case: dict) -> None:
    image = conformance_image()
    height, width = image.shape[:2]
    assert_matrix_close(matrix_2d(width, height, case["angle"], case["zoom"], case["tx"], case["ty"]), case["matrix"])
    out = warp_2d(image, np.asarray(case["matrix"]), case["border"])
    assert out.dtype == np.float32 and out.shape == image.shape
    diff = np.abs(np.rint(out) - np.asarray(case["expected"], dtype=np.float64))
    assert diff.max() <= case["tolerance"]


@pytest.mark.parametrize("case", conformance_cases("warp2d.json", "pixels"))
def test_frame_values_match_matrix(case: dict) -> None:
    image = conformance_image()
    values = {"angle": case["angle"], "zoom": case["zoom"], "translation_x": case["tx"], "translation_y": case["ty"]}
    values["border"] = case["border"]
    assert np.array_equal(warp_2d_frame(image, values), warp_2d(image, np.asarray(case["matrix"]), case["border"]))


@pytest.mark.parametrize("border", ["replicate", "wrap"])
def test_identity_returns_image(border: str) -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((37, 53, 3)) * 300 - 20).astype(np.float32)
    assert np.array_equal(warp_2d(image, np.eye(3), border), image)
    assert np.array_equal(warp_2d_frame(image, {"border": border}), image)


@pytest.mark.parametrize("size", [(512, 512), (8, 6), (1024, 576)])
@pytest.mark.parametrize("fv", [53, 40, 90])
def test_flip_with_zero_angles_is_identity(size: tuple[int, int], fv: float) -> None:
    assert np.allclose(perspective_flip_matrix(*size, 0, 0, 0, fv), np.eye(3), atol=1e-9)


def test_translation_kept_with_flip() -> None:
    """A-2: translation_x still moves the image when the flip is on (the original dropped it)."""
    plain = matrix_2d_flipped(64, 64, 0, 1, 0, 0, 0, 5, 0, 53)
    moved = matrix_2d_flipped(64, 64, 0, 1, 2, 0, 0, 5, 0, 53)
    assert not np.allclose(plain, moved)


def test_directions() -> None:
    """tx > 0 moves content right, ty > 0 down; zoom > 1 magnifies about the centre."""
    image = np.zeros((9, 9, 3), np.float32)
    image[4, 4] = 200
    right = warp_2d(image, matrix_2d(9, 9, 0, 1, 2, 0))
    down = warp_2d(image, matrix_2d(9, 9, 0, 1, 0, 3))
    assert right[4, 6, 0] == 200 and down[7, 4, 0] == 200
    zoomed = warp_2d(image, matrix_2d(9, 9, 0, 2, 0, 0))
    assert zoomed[4, 4, 0] == 200 and zoomed[4, 3, 0] == zoomed[3, 4, 0] == 100  # the spot grows


def test_unknown_border_rejected() -> None:
    with pytest.raises(ValueError):
        warp_2d(np.zeros((4, 4, 3), np.float32), np.eye(3), "mirror")
