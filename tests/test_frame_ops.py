"""Frame operations: TorchFrameOps (run here on the CPU device) against NumpyFrameOps, and
NumpyFrameOps against the functions it wraps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deforge.errors import SettingsError
from deforge.frame_ops import NumpyFrameOps, TorchFrameOps, frame_ops_for
from deforge.image_ops import add_noise, apply_contrast, color_reference, match_colors, to_grayscale, unsharp_mask
from deforge.motion.warp2d import matrix_2d, matrix_2d_flipped, warp_2d
from deforge.motion.warp3d import depth_to_z, warp_3d
from deforge.output import from_pixels, to_pixels

WIDTH, HEIGHT = 64, 48
NP = NumpyFrameOps()
TO = TorchFrameOps("cpu")


def smooth_image(seed: int = 0) -> np.ndarray:
    """A smooth float32 frame: sums of low-frequency waves, 0..255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.2), rng.uniform(0, 6)
        channels.append(127.5 + 120 * np.sin(fx * x + phase) * np.cos(fy * y))
    return np.stack(channels, axis=-1).astype(np.float32)


def random_image(seed: int = 1) -> np.ndarray:
    """A float32 frame of independent uniform values 0..255."""
    return (np.random.default_rng(seed).random((HEIGHT, WIDTH, 3)) * 255).astype(np.float32)


IMAGES = {"smooth": smooth_image(), "random": random_image()}


def torch_run(method: str, image: np.ndarray, *args: object) -> np.ndarray:
    """Run a TorchFrameOps method on an uploaded frame and download the result."""
    return TO.download(getattr(TO, method)(TO.upload(image), *args))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


# -- transfer and selection ---------------------------------------------------------------------


def test_upload_download_round_trip() -> None:
    image = IMAGES["random"]
    tensor = TO.upload(image)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32 and tensor.shape == image.shape
    back = TO.download(tensor)
    assert back.dtype == np.float32 and np.array_equal(back, image)
    copied = NP.upload(image.astype(np.float64))
    assert copied.dtype == np.float32 and np.array_equal(copied, image) and copied is not image


def test_frame_ops_for() -> None:
    assert isinstance(frame_ops_for(None), NumpyFrameOps)
    assert isinstance(frame_ops_for("cpu"), NumpyFrameOps)
    assert isinstance(frame_ops_for(torch.device("cpu")), NumpyFrameOps)
    cuda = frame_ops_for("cuda")  # building the object touches no device
    assert isinstance(cuda, TorchFrameOps) and cuda.device.type == "cuda"


# -- NumpyFrameOps is exactly the existing functions --------------------------------------------


def test_numpy_ops_are_the_existing_functions() -> None:
    image = IMAGES["smooth"]
    matrix = matrix_2d(WIDTH, HEIGHT, 10.0, 1.1, 3.0, -2.0)
    assert np.array_equal(NP.warp_2d(image, matrix, "wrap"), warp_2d(image, matrix, "wrap"))
    z = depth_to_z(IMAGES["random"][..., 0])
    assert np.array_equal(NP.depth_to_z(IMAGES["random"][..., 0]), z)
    args = (image, [2.0, -1.0, 5.0], [1.0, 2.0, 3.0], 40.0, z, "reflection", "bilinear")
    assert np.array_equal(NP.warp_3d(*args), warp_3d(*args))
    reference = NP.color_reference(IMAGES["random"], "LAB")
    expected = match_colors(image, color_reference(IMAGES["random"], "LAB"), "LAB")
    assert np.array_equal(NP.match_colors(image, reference, "LAB"), expected)
    assert np.array_equal(NP.contrast(image, 0.9), apply_contrast(image, 0.9))
    assert np.array_equal(NP.unsharp(image, 5, 1.0, 0.5, 2.0), unsharp_mask(image, 5, 1.0, 0.5, 2.0))
    assert np.array_equal(NP.add_noise(image, 0.02, 7), add_noise(image, 0.02, 7))
    assert np.array_equal(NP.grayscale(image), to_grayscale(image))
    for bits in (8, 16, 32):
        assert np.array_equal(NP.quantise(image, bits), from_pixels(to_pixels(image, bits)))
    assert np.array_equal(NP.blend(image, IMAGES["random"], 0.25), 0.75 * image + 0.25 * IMAGES["random"])


# -- warps --------------------------------------------------------------------------------------


def test_warp_2d_identity_is_exact() -> None:
    for border in ("replicate", "wrap"):
        out = torch_run("warp_2d", IMAGES["random"], np.eye(3), border)
        assert max_diff(out, IMAGES["random"]) < 0.01


MATRICES = {
    "rotate_zoom_move": matrix_2d(WIDTH, HEIGHT, 12.0, 1.07, 4.5, -3.25),
    "zoom_out": matrix_2d(WIDTH, HEIGHT, -5.0, 0.8, 0.0, 0.0),
    "flip": matrix_2d_flipped(WIDTH, HEIGHT, 3.0, 1.02, 1.0, 0.5, 5.0, 8.0, -6.0, 53.0),
}


@pytest.mark.parametrize("name", sorted(MATRICES))
@pytest.mark.parametrize("border", ["replicate", "wrap"])
@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_warp_2d_matches_numpy(name: str, border: str, kind: str) -> None:
    image, matrix = IMAGES[kind], MATRICES[name]
    expected = NP.warp_2d(image, matrix, border)
    actual = torch_run("warp_2d", image, matrix, border)
    # measured max: < 0.002 levels everywhere, edges and wrap included
    assert max_diff(actual[2:-2, 2:-2], expected[2:-2, 2:-2]) <= 1.5
    assert max_diff(actual, expected) <= 0.01


MOTIONS = [
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 40.0),
    ([3.0, -2.0, 10.0], [0.0, 0.0, 0.0], 40.0),
    ([-1.5, 1.0, -8.0], [2.0, -3.0, 5.0], 55.0),
    ([0.0, 0.0, 2.0], [0.5, 0.5, 30.0], 90.0),
]
PADDING = ["border", "reflection", "zeros"]
SAMPLING = ["bicubic", "bilinear", "nearest"]


@pytest.mark.parametrize("padding", PADDING)
@pytest.mark.parametrize("sampling", SAMPLING)
def test_warp_3d_matches_numpy(padding: str, sampling: str) -> None:
    z_np = NP.depth_to_z(smooth_image(3)[..., 0])
    z_t = TO.depth_to_z(TO.upload(smooth_image(3)[..., 0]))
    worst = 0.0
    for image in IMAGES.values():
        for translation, rotation, fov in MOTIONS:
            for z_expected, z_actual in ((None, None), (z_np, z_t)):
                expected = NP.warp_3d(image, translation, rotation, fov, z_expected, padding, sampling)
                moved = TO.warp_3d(TO.upload(image), translation, rotation, fov, z_actual, padding, sampling)
                actual = TO.download(moved)
                worst = max(worst, max_diff(actual, expected))
    assert worst <= 0.01, worst  # measured max 0.003 levels (nearest: identical)


def test_warp_3d_many_is_warp_3d_per_image() -> None:
    images = [IMAGES["smooth"], IMAGES["random"]]
    args = ([1.0, 2.0, 6.0], [2.0, -1.0, 4.0], 50.0)
    z_np = NP.depth_to_z(smooth_image(5)[..., 2])
    for expected, actual in zip(NP.warp_3d_many(images, *args, z_np, "zeros", "bilinear"), images):
        assert np.array_equal(expected, NP.warp_3d(actual, *args, z_np, "zeros", "bilinear"))
    z_t = TO.depth_to_z(TO.upload(smooth_image(5)[..., 2]))
    many = TO.warp_3d_many([TO.upload(i) for i in images], *args, z_t, "zeros", "bilinear")
    for moved, image in zip(many, images):
        one = TO.warp_3d(TO.upload(image), *args, z_t, "zeros", "bilinear")
        assert torch.equal(moved, one)
    assert TO.on_device and not NP.on_device


def test_depth_to_z_matches_numpy() -> None:
    inv = smooth_image(4)[..., 1].copy()
    assert max_diff(TO.download(TO.depth_to_z(TO.upload(inv))), NP.depth_to_z(inv)) < 1e-5
    inv[3, 4], inv[5, 6] = np.nan, np.inf
    assert max_diff(TO.download(TO.depth_to_z(inv)), NP.depth_to_z(inv)) < 1e-5
    assert np.array_equal(TO.download(TO.depth_to_z(np.full((4, 5), 3.0, np.float32))), np.ones((4, 5), np.float32))
    assert TO.depth_to_z(None) is None


# -- colour -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "HSV", "LAB"])
@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_match_colors_matches_numpy(mode: str, kind: str) -> None:
    reference_image = smooth_image(7) * 0.8 + 30
    image = IMAGES[kind]
    expected = NP.match_colors(image, NP.color_reference(reference_image, mode), mode)
    reference = TO.color_reference(TO.upload(reference_image), mode)
    actual = torch_run("match_colors", image, reference, mode)
    diff = np.abs(actual - expected)
    # measured: RGB and LAB identical (LAB uses OpenCV's own tabulated conversion); HSV max 1 level
    # at ~0.02% of values (float rounding in OpenCV's vectorised HSV -> RGB)
    assert diff.max() <= 1.0
    assert diff.mean() <= (0.0 if mode != "HSV" else 0.01)


def test_match_colors_rgb_is_exact_and_checks_mode() -> None:
    reference_image, image = smooth_image(8), IMAGES["random"]
    expected = NP.match_colors(image, NP.color_reference(reference_image, "RGB"), "RGB")
    actual = torch_run("match_colors", image, TO.color_reference(reference_image, "RGB"), "RGB")
    assert np.array_equal(actual, expected)
    with pytest.raises(ValueError):
        TO.match_colors(TO.upload(image), TO.color_reference(reference_image, "LAB"), "HSV")
    with pytest.raises(ValueError):
        TO.color_reference(TO.upload(image), "XYZ")


# -- tone and noise -----------------------------------------------------------------------------


UNSHARP = [(5, 1.0, 0.5, 0.0), (3, 0.0, 1.2, 0.0), (7, 2.0, 0.8, 4.0), (1, 1.0, 0.5, 0.0), (9, 1.5, 0.0, 0.0)]


@pytest.mark.parametrize("params", UNSHARP)
@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_unsharp_matches_numpy(params: tuple[int, float, float, float], kind: str) -> None:
    image = IMAGES[kind] * 1.1 - 10  # some values outside 0..255
    assert max_diff(torch_run("unsharp", image, *params), NP.unsharp(image, *params)) <= 1.0


def test_unsharp_large_kernel_and_bad_kernel() -> None:
    small = IMAGES["smooth"][:4, :5]
    assert max_diff(torch_run("unsharp", small, 11, 3.0, 0.7), NP.unsharp(small, 11, 3.0, 0.7)) <= 1.0
    with pytest.raises(SettingsError):
        TO.unsharp(TO.upload(small), 4, 1.0, 0.5)


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_quantise_identical(bits: int) -> None:
    image = IMAGES["random"] * 1.2 - 20
    assert np.array_equal(torch_run("quantise", image, bits), NP.quantise(image, bits))


def test_contrast_grayscale_blend() -> None:
    a, b = IMAGES["smooth"], IMAGES["random"]
    assert np.array_equal(torch_run("contrast", a, 1.0), a)
    assert max_diff(torch_run("contrast", a, 0.85), NP.contrast(a, 0.85)) < 1e-4
    assert max_diff(torch_run("grayscale", a), NP.grayscale(a)) < 1e-3
    blended = TO.download(TO.blend(TO.upload(a), TO.upload(b), 0.3))
    assert max_diff(blended, NP.blend(a, b, 0.3)) < 1e-4


def test_add_noise() -> None:
    image = np.full((HEIGHT, WIDTH, 3), 128.0, np.float32)
    first = torch_run("add_noise", image, 0.05, 11)
    assert np.array_equal(first, torch_run("add_noise", image, 0.05, 11))
    assert not np.array_equal(first, torch_run("add_noise", image, 0.05, 12))
    noise = first - image
    assert abs(float(noise.std()) - 0.05 * 127.5) < 0.05 * 127.5 * 0.05
    assert abs(float(noise.mean())) < 0.5
    assert np.array_equal(torch_run("add_noise", image, 0.0, 11), image)
