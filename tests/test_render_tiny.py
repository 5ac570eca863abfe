"""End to end with the tiny random-weight model at 64x64: stills, 2D and 3D, errors through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch  # noqa: F401  (loaded before the conftest fixture fixes its thread count)
from PIL import Image

from deforge.api import render
from deforge.render.animation import frame_name
from deforge.video import probe_video

pytestmark = pytest.mark.slow


TORCH_THREADS = 1  # see conftest: bit-exact comparisons need a fixed thread count


@pytest.fixture(scope="module")
def tiny():
    from deforge.generate.diffusers_backend import load_generator

    return load_generator("tiny-random")


@pytest.fixture(scope="module")
def depth():
    from fixtures_depth import tiny_depth_estimator

    return tiny_depth_estimator("depth-anything")


def base(tmp_path, **overrides):
    settings = {"W": 64, "H": 64, "seed": 77, "steps": 4, "model": "tiny-random", "sampler": "euler",
                "output_path": str(tmp_path / "out"), "batch_name": "run", "neg_prompts": "blurry"}
    settings.update(overrides)
    return settings


def test_stills_names_seeds_grid_and_re_render(tmp_path, tiny):
    settings = base(tmp_path, animation_mode="None", prompts=["A cat, on a mat!", "dog"], n_batch=2,
                    make_grid=True, grid_rows=1)
    result = render(settings, generator=tiny)
    names = sorted(p.name for p in result.folder.glob(f"{result.timestring}_0000*.png") if "_grid_" not in p.name)
    assert names == [f"{result.timestring}_00000_A_cat_on_a_mat.png", f"{result.timestring}_00001_A_cat_on_a_mat.png",
                     f"{result.timestring}_00002_dog.png", f"{result.timestring}_00003_dog.png"]
    grids = sorted(result.folder.glob("*_grid_*.png"))
    assert len(grids) == 2 and Image.open(grids[0]).size == (2 * 64 + 3 * 2, 64 + 2 * 2)
    saved = result.folder / f"{result.timestring}_settings.txt"
    again = render({**json.loads(saved.read_text()), "batch_name": "again"}, generator=tiny)
    assert len(again.frames) == len(result.frames) == 6
    for a, b in zip(result.frames, again.frames):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_stills_seed_filename_and_16_bit(tmp_path, tiny):
    settings = base(tmp_path, animation_mode="None", prompts="x", n_batch=3, seed_behavior="ladder",
                    filename_format="{timestring}_{index}_{seed}.png", bit_depth_output=16)
    result = render(settings, generator=tiny)
    names = sorted(p.name for p in result.frames)
    assert names == [f"{result.timestring}_{i:05}_{s}.png" for i, s in enumerate([77, 79, 78])]
    import cv2

    pixels = cv2.imread(str(result.frames[0]), cv2.IMREAD_UNCHANGED)
    assert pixels.dtype == np.uint16 and pixels.max() > 255  # the full 16-bit range


def test_stills_with_init_folder_and_mask(tmp_path, tiny):
    inits = tmp_path / "inits"
    inits.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        Image.new("RGB", (80, 80), colour).save(inits / f"{i}.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    settings = base(tmp_path, animation_mode="None", prompts="x", use_init=True, init_image=str(inits),
                    strength=0.5, use_mask=True, mask_file=str(tmp_path / "mask.png"), overlay_mask=True,
                    mask_overlay_blur=0)
    result = render(settings, generator=tiny)
    assert len(result.frames) == 2
    first = np.asarray(Image.open(result.frames[0])).astype(int)
    assert np.abs(first[:, :28] - np.array([200, 30, 30])).max() <= 2  # white keeps the init


@pytest.mark.parametrize("mode", ["2D", "3D"])
@pytest.mark.parametrize("cadence", [1, 3])
def test_animation_with_the_tiny_model(tmp_path, tiny, depth, mode, cadence):
    settings = base(tmp_path, animation_mode=mode, max_frames=7, diffusion_cadence=cadence, ffmpeg_fps=10,
                    prompts={"0": "a", "3": "b"}, translation_z="0:(5)", save_depth_maps=mode == "3D")
    result = render(settings, generator=tiny, depth=depth)
    names = sorted(p.name for p in result.folder.glob(f"{result.timestring}_0*.png"))
    assert names == [frame_name(result.timestring, k) for k in range(7)]
    info = probe_video(result.video)
    assert (info.frame_count, info.width, info.height, round(info.fps)) == (7, 64, 64, 10)
    if mode == "3D":
        assert len(list(result.folder.glob(f"{result.timestring}_depth_*.png"))) == 7


def _cli(tmp_path, settings: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(settings))
    return subprocess.run([sys.executable, "-m", "deforge.cli", "render", str(path)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("overrides,fragment", [
    ({"model": "/nonexistent/model.safetensors"}, "model"),
    ({"model": "someone/not-a-cached-model"}, "someone/not-a-cached-model"),
    ({"use_init": True, "init_image": "/nonexistent/init.png", "animation_mode": "2D", "max_frames": 2}, "init.png"),
    ({"sampler": "magic"}, "sampler"),
])
def test_render_errors_are_one_line_and_exit_2(tmp_path, overrides, fragment):
    result = _cli(tmp_path, base(tmp_path, **{"animation_mode": "None", "prompts": "x", **overrides}))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_model_file_and_sha_mismatch(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    for extra in ({"model": str(bad)}, {"model": str(bad), "model_sha256": "0" * 64}):
        result = _cli(tmp_path, base(tmp_path, animation_mode="None", prompts="x", **extra))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len([l for l in result.stderr.splitlines() if l.startswith("error:")]) == 1


def test_unwritable_output_folder(tmp_path):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        output = blocker / "sub"  # a file where a folder must be: fails even for root
    else:
        output = tmp_path / "ro"
        output.mkdir(mode=0o500)
    result = _cli(tmp_path, base(tmp_path, animation_mode="2D", max_frames=2, output_path=str(output)))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


def test_depth_model_that_cannot_be_loaded(tmp_path):
    result = _cli(tmp_path, base(tmp_path, animation_mode="3D", max_frames=2, depth_algorithm=str(tmp_path / "nope")))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nope" in result.stderr
    assert not list((tmp_path / "out").rglob("*_00000.png"))


def test_stills_resume_keeps_existing_images(tmp_path, tiny):
    settings = base(tmp_path, animation_mode="None", prompts=["a", "b"], n_batch=2)
    first = render(settings, generator=tiny)
    kept = first.frames[0].read_bytes()
    removed = {path: path.read_bytes() for path in first.frames[2:]}
    for path in removed:
        path.unlink()
    again = render({**settings, "resume_from_timestring": True, "resume_timestring": first.timestring}, generator=tiny)
    assert [p.name for p in again.frames] == [p.name for p in first.frames]
    assert first.frames[0].read_bytes() == kept
    for path, data in removed.items():
        assert path.read_bytes() == data  # the images rendered again are the same images
