"""Video Input mode: extraction, per-frame init images and strengths (V-1), masks, audio, bad inputs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
from fakes import RecordingGenerator
from fixtures_video import make_test_video, pattern_frame

from deforge.api import render
from deforge.errors import InputMediaError
from deforge.generate.masks import load_image, prepare_mask
from deforge.output import run_folder
from deforge.render.animation import frame_name
from deforge.video import probe_video

NEUTRAL = {"color_coherence": "None", "noise_schedule": "0:(0)", "contrast_schedule": "0:(1)", "amount_schedule": "0:(0)"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        "sound": make_test_video(folder / "sound.mp4", 12, audio=True),
        "silent": make_test_video(folder / "silent.mp4", 12),
        "mask": make_test_video(folder / "mask.mp4", 6),
        "wide": make_test_video(folder / "wide.mp4", 4, size=(96, 48)),
    }


def settings(tmp_path, video, batch="t", **overrides):
    base = {"animation_mode": "Video Input", "W": 64, "H": 64, "seed": 5, "steps": 10,
            "video_init_path": str(video), "output_path": str(tmp_path / "out"), "batch_name": batch,
            "prompts": {"0": "a", "6": "b"}, "neg_prompts": "", "strength_schedule": "0:(0.4), 11:(0.84)"}
    base.update(overrides)
    return base


def mean_difference(image, reference) -> float:
    return float(np.abs(np.asarray(image, np.float32) - reference.astype(np.float32)).mean())


def test_every_input_frame_becomes_an_output_frame_with_its_strength(tmp_path, videos):
    gen = RecordingGenerator()
    result = render(settings(tmp_path, videos["sound"]), generator=gen)
    inputs = sorted(p.name for p in (result.folder / "inputframes").iterdir())
    assert inputs == [f"{k:05}.jpg" for k in range(1, 13)]
    outputs = sorted(p.name for p in result.folder.glob(f"{result.timestring}_0*.png"))
    assert outputs == [frame_name(result.timestring, k) for k in range(12)]
    assert [r.strength for r in gen.requests] == pytest.approx([0.4 + 0.04 * k for k in range(12)])  # V-1
    assert [r.seed for r in gen.requests] == [5 + k for k in range(12)]
    assert [r.conditioning.positive[0][0] for r in gen.requests] == ["a"] * 6 + ["b"] * 6
    assert all(r.mask is None and r.init_image.shape == (64, 64, 3) for r in gen.requests)
    info = probe_video(result.video)
    assert (info.frame_count, info.fps, info.has_audio) == (12, pytest.approx(12), True)


def test_each_init_image_is_its_input_frame(tmp_path, videos):
    gen = RecordingGenerator()
    render(settings(tmp_path, videos["silent"], extract_nth_frame=2, **NEUTRAL), generator=gen)
    assert len(gen.requests) == 6
    patterns = [pattern_frame(i) for i in range(12)]
    for k, request in enumerate(gen.requests):
        differences = [mean_difference(request.init_image, p) for p in patterns]
        assert int(np.argmin(differences)) == 2 * k  # every 2nd source frame
        assert differences[2 * k] < 4.0


def test_fps_follows_extract_nth_frame_and_audio_can_be_dropped(tmp_path, videos):
    result = render(settings(tmp_path, videos["sound"], extract_nth_frame=3, video_keep_audio=False),
                    generator=RecordingGenerator())
    info = probe_video(result.video)
    assert (info.frame_count, info.fps, info.has_audio) == (4, pytest.approx(4), False)
    fixed = render(settings(tmp_path, videos["sound"], batch="fixed", ffmpeg_fps=5), generator=RecordingGenerator())
    info = probe_video(fixed.video)
    assert (info.frame_count, info.fps, info.has_audio) == (12, pytest.approx(5), True)


def test_a_short_mask_video_holds_its_last_frame(tmp_path, videos, caplog):
    gen = RecordingGenerator()
    with caplog.at_level(logging.WARNING, logger="deforge.render.video_input"):
        result = render(settings(tmp_path, videos["silent"], use_mask_video=True, video_mask_path=str(videos["mask"]),
                                 invert_mask=True), generator=gen)
    assert len([r for r in caplog.records if "held" in r.getMessage()]) == 1
    mask_files = sorted((result.folder / "maskframes").iterdir())
    assert [p.name for p in mask_files] == [f"{k:05}.jpg" for k in range(1, 7)]
    masks = [r.mask for r in gen.requests]
    assert len(masks) == 12 and all(m.shape == (64, 64) for m in masks)
    expected = [prepare_mask(load_image(p), invert=True, size=(64, 64)) for p in mask_files]
    for k, mask in enumerate(masks):
        np.testing.assert_allclose(mask, expected[min(k, 5)], atol=1e-6)
    assert not np.allclose(masks[0], masks[5])


def test_frames_of_another_size_are_resized(tmp_path, videos):
    gen = RecordingGenerator()
    result = render(settings(tmp_path, videos["wide"]), generator=gen)
    assert load_image(result.folder / "inputframes" / "00001.jpg").size == (64, 64)
    assert [r.init_image.shape for r in gen.requests] == [(64, 64, 3)] * 4


def test_existing_frames_are_reused_without_overwrite(tmp_path, videos):
    from PIL import Image

    folder = run_folder(tmp_path / "out", "reuse") / "inputframes"
    folder.mkdir(parents=True)
    for k in range(1, 4):
        Image.fromarray(pattern_frame(10)).save(folder / f"{k:05}.jpg")
    gen = RecordingGenerator()
    render(settings(tmp_path, videos["silent"], batch="reuse", overwrite_extracted_frames=False, **NEUTRAL),
           generator=gen)
    assert len(gen.requests) == 3
    assert mean_difference(gen.requests[0].init_image, pattern_frame(10)) < 4.0


def bad_video(tmp_path, kind: str):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "soundonly":  # a valid file without a video stream
        import av

        with av.open(str(path), "w") as output:
            stream = output.add_stream("aac", rate=44100)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, 0
            output.mux(stream.encode(frame))
            output.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt", "soundonly"])
def test_bad_videos_are_one_line_errors(tmp_path, kind):
    gen = RecordingGenerator()
    with pytest.raises(InputMediaError) as caught:
        render(settings(tmp_path, bad_video(tmp_path, kind)), generator=gen)
    assert "\n" not in str(caught.value) and f"{kind}.mp4" in str(caught.value)
    assert gen.requests == []


def test_a_bad_mask_video_is_an_error(tmp_path, videos):
    with pytest.raises(InputMediaError, match="nothere.mp4"):
        render(settings(tmp_path, videos["silent"], use_mask_video=True, video_mask_path=str(tmp_path / "nothere.mp4")),
               generator=RecordingGenerator())


def run_cli(settings_file):
    return subprocess.run([sys.executable, "-m", "deforge.cli", "render", str(settings_file)],
                          check=False, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_cli_exit_code_2_for_a_bad_video(tmp_path, kind):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings(tmp_path, bad_video(tmp_path, kind), model="tiny-random")), encoding="utf-8")
    done = run_cli(path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:") and f"{kind}.mp4" in errors[0]


@pytest.mark.slow
def test_cli_renders_a_video_input_file_with_sound(tmp_path):
    video = make_test_video(tmp_path / "two_seconds.mp4", 24, fps=12, audio=True)
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings(tmp_path, video, steps=4, model="tiny-random", strength_schedule="0:(0.75)")),
                    encoding="utf-8")
    done = run_cli(path)
    assert done.returncode == 0, done.stderr
    videos = list((tmp_path / "out").rglob("*.mp4"))
    assert len(videos) == 1
    info = probe_video(videos[0])
    assert (info.frame_count, info.fps, info.has_audio) == (24, pytest.approx(12), True)
    assert len(list(videos[0].parent.glob("*_0*.png"))) == 24
