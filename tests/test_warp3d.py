"""3D warp: sampling coordinates of the original's camera model (A-3) against warp3d.json, depth (A-4)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import conformance_cases

from deforge.motion.warp3d import depth_to_z, sampling_grid, warp_3d, warp_3d_frame

PADDING = ["border", "reflection", "zeros"]
SAMPLING = ["bicubic", "bilinear", "nearest"]


def case_z(case: dict) -> np.ndarray | None:
    """The case's z map as float32 (H, W), or None for z = 1."""
    return None if case["depth"] is None else np.asarray(case["depth"], dtype=np.float32)


@pytest.mark.parametrize("case", conformance_cases("warp3d.json", "cases"))
def test_sampling_coordinates(case: dict) -> None:
    width, height = case["width"], case["height"]
    map_x, map_y = sampling_grid(width, height, case["translation"], case["rotation_deg"], case["fov"], case_z(case))
    assert map_x.shape == map_y.shape == (height, width)
    pixels = np.asarray(case["pixels"])
    actual = np.stack([map_x[pixels[:, 1], pixels[:, 0]], map_y[pixels[:, 1], pixels[:, 0]]], axis=1)
    assert np.all(np.abs(actual - np.asarray(case["expected"])) <= 1e-3)


@pytest.mark.parametrize("case", conformance_cases("warp3d.json", "cases"))
def test_near_far_have_no_effect(case: dict) -> None:
    """A-3: near/far planes are accepted and change nothing."""
    rng = np.random.default_rng(0)
    image = (rng.random((case["height"], case["width"], 3)) * 255).astype(np.float32)
    args = (image, case["translation"], case["rotation_deg"], case["fov"], case_z(case))
    plain = warp_3d(*args)
    planes = warp_3d(*args, near_plane=case["near_plane"], far_plane=case["far_plane"])
    assert np.array_equal(plain, planes)


@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("sampling_mode", SAMPLING)
def test_zero_motion_is_identity(padding_mode: str, sampling_mode: str) -> None:
    rng = np.random.default_rng(1)
    image = np.floor(rng.random((24, 40, 3)) * 256).astype(np.float32)
    z = depth_to_z(rng.random((24, 40)).astype(np.float32))
    out = warp_3d(image, [0, 0, 0], [0, 0, 0], 40, z, padding_mode, sampling_mode)
    assert out.dtype == np.float32 and out.shape == image.shape
    # the original's +1/512-0.0001 before sampling keeps integer values from truncating down
    assert np.all(np.abs(out - image) < 0.01)
    assert np.array_equal(out.astype(np.uint8), image.astype(np.uint8))


def test_output_clamped() -> None:
    image = np.zeros((16, 16, 3), np.float32)
    image[::2] = 255  # bicubic overshoots on stripes
    out = warp_3d(image, [3, 7, 4], [1, 2, 3], 40, None, "border", "bicubic")
    assert out.min() >= 0 and out.max() <= 255


def test_padding_modes_differ_outside() -> None:
    """Zoom out: zeros pads black, border replicates the edge, reflection mirrors."""
    image = np.tile(np.linspace(10, 250, 32, dtype=np.float32)[None, :, None], (32, 1, 3))
    out = {p: warp_3d(image, [0, 0, -60], [0, 0, 0], 40, None, p, "bilinear") for p in PADDING}
    assert out["zeros"][16, 0, 0] == 0
    assert out["border"][16, 0, 0] == pytest.approx(10 + 1 / 512 - 0.0001, abs=1e-4)
    assert out["reflection"][16, 0, 0] > out["border"][16, 0, 0]


def test_camera_directions() -> None:
    """tx > 0: content moves left; ty > 0: content moves down; tz > 0: zoom in (A-3)."""
    mx, _ = sampling_grid(9, 9, [10, 0, 0], [0, 0, 0], 40)
    assert np.all(mx > np.arange(9))
    _, my = sampling_grid(9, 9, [0, 10, 0], [0, 0, 0], 40)
    assert np.all(my < np.arange(9)[:, None])
    mx, my = sampling_grid(9, 9, [0, 0, 10], [0, 0, 0], 40)
    assert mx[4, 8] < 8 and mx[4, 0] > 0 and mx[4, 4] == pytest.approx(4)


def test_frame_values() -> None:
    rng = np.random.default_rng(2)
    image = (rng.random((20, 30, 3)) * 255).astype(np.float32)
    values = {"translation_x": 2, "translation_y": -3, "translation_z": 5, "rotation_3d_x": 1}
    values |= {"rotation_3d_y": -2, "rotation_3d_z": 3, "fov": 50, "padding_mode": "zeros", "sampling_mode": "nearest"}
    expected = warp_3d(image, [2, -3, 5], [1, -2, 3], 50, None, "zeros", "nearest")
    assert np.array_equal(warp_3d_frame(image, values), expected)


def test_depth_to_z() -> None:
    """A-4: min-max normalised inverse depth d (near = 1), z = 2 - d."""
    inv = np.array([[0.0, 5.0], [10.0, 2.5]], np.float32)
    assert np.allclose(depth_to_z(inv), [[2.0, 1.5], [1.0, 1.75]])
    assert np.allclose(depth_to_z(inv * 3 + 7), depth_to_z(inv))
    assert depth_to_z(None) is None


def test_depth_to_z_constant_is_one() -> None:
    assert np.array_equal(depth_to_z(np.full((4, 5), 3.0, np.float32)), np.ones((4, 5), np.float32))


def test_depth_to_z_ignores_non_finite() -> None:
    z = depth_to_z(np.array([[np.nan, 1.0], [3.0, np.inf]], np.float32))
    assert np.all(np.isfinite(z)) and z[0, 1] == 2.0 and z[1, 0] == 1.0


def test_points_behind_camera_do_not_crash() -> None:
    z = np.full((8, 8), 1.0, np.float32)
    image = np.full((8, 8, 3), 100, np.float32)
    out = warp_3d(image, [0, 0, -200], [0, 0, 0], 40, z)  # C.z = 0 for every pixel
    assert np.all(np.isfinite(out))


def test_unknown_modes_rejected() -> None:
    image = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(ValueError):
        warp_3d(image, [0, 0, 0], [0, 0, 0], 40, None, "mirror", "bicubic")
    with pytest.raises(ValueError):
        warp_3d(image, [0, 0, 0], [0, 0, 0], 40, None, "border", "area")


@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("sampling_mode", SAMPLING)
def test_matches_torch_grid_sample(padding_mode: str, sampling_mode: str) -> None:
    """The remap samples like the original's grid_sample(align_corners=False) on the same grid."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    height, width = 24, 32
    image = (rng.random((height, width, 3)) * 255).astype(np.float32)
    z = depth_to_z(rng.random((height, width)).astype(np.float32))
    map_x, map_y = sampling_grid(width, height, [30, -20, -40], [5, -5, 10], 40, z)
    grid = np.stack([(2 * map_x + 1) / width - 1, (2 * map_y + 1) / height - 1], axis=-1)
    source = torch.from_numpy(image + np.float32(1 / 512 - 0.0001)).permute(2, 0, 1)[None]
    expected = torch.nn.functional.grid_sample(
        source, torch.from_numpy(grid)[None], mode=sampling_mode, padding_mode=padding_mode, align_corners=False
    )
    expected = expected.clamp(0, 255)[0].permute(1, 2, 0).numpy()
    out = warp_3d(image, [30, -20, -40], [5, -5, 10], 40, z, padding_mode, sampling_mode)
    if sampling_mode == "nearest":
        # ties at exact half pixels may round differently; they are rare with this motion
        assert np.mean(np.abs(out - expected) < 1e-3) > 0.99
    else:
        assert np.abs(out - expected).max() < 1e-3


@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("sampling_mode", SAMPLING)
def test_degenerate_depth_gives_finite_image(padding_mode: str, sampling_mode: str) -> None:
    """z values that put points on or right next to the camera plane still give a finite 0..255 image."""
    z = np.full((8, 8), 1.0, np.float32)
    z[2, 3], z[5, 5] = 0.0, 1e-30
    image = np.full((8, 8, 3), 100, np.float32)
    out = warp_3d(image, [0, 0, -200], [0, 0, 0], 40, z, padding_mode, sampling_mode)
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 255


def test_wrong_z_shape_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        sampling_grid(8, 6, [0, 0, 0], [0, 0, 0], 40, np.ones((8, 6), np.float32))
