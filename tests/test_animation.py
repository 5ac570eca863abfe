"""The 2D/3D render loop with a recording fake generator: frames, names, cadence blends, resume, video."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from deforge.api import render
from deforge.cadence import frame_blend
from deforge.render.animation import frame_name, read_frame
from deforge.video import probe_video
from fakes import RecordingGenerator


def settings(tmp_path, **overrides):
    base = {"animation_mode": "2D", "max_frames": 7, "W": 64, "H": 64, "seed": 11, "steps": 10,
            "output_path": str(tmp_path / "out"), "batch_name": "t", "prompts": {"0": "a", "4": "b"},
            "neg_prompts": "", "ffmpeg_fps": 8}
    base.update(overrides)
    return base


def frames_of(result):
    return sorted(p.name for p in result.folder.glob(f"{result.timestring}_0*.png"))


@pytest.mark.parametrize("mode", ["2D", "3D"])
@pytest.mark.parametrize("cadence", [1, 3])
def test_every_frame_is_written_and_the_video_decodes(tmp_path, mode, cadence):
    gen = RecordingGenerator()
    result = render(settings(tmp_path, animation_mode=mode, diffusion_cadence=cadence, use_depth_warping=False),
                    generator=gen)
    assert frames_of(result) == [frame_name(result.timestring, k) for k in range(7)]
    assert [r.seed for r in gen.requests] == [11 + i for i in range(len(range(0, 7, cadence)))]
    info = probe_video(result.video)
    assert (info.frame_count, info.width, info.height) == (7, 64, 64)
    assert info.fps == pytest.approx(8)
    assert (result.folder / f"{result.timestring}_settings.txt").exists()
    assert not list(result.folder.glob(".deforge-tmp-*"))


def test_strength_seed_and_prompt_follow_the_plan(tmp_path):
    gen = RecordingGenerator()
    render(settings(tmp_path, strength_schedule="0:(0.5), 6:(0.8)"), generator=gen)
    assert gen.requests[0].init_image is None and gen.requests[0].strength == 0
    assert [round(r.strength, 6) for r in gen.requests[1:]] == [0.55, 0.6, 0.65, 0.7, 0.75, 0.8]
    assert [r.conditioning.positive[0][0] for r in gen.requests] == ["a"] * 4 + ["b"] * 3


def test_cadence_frames_are_the_documented_crossfades(tmp_path):
    gen = RecordingGenerator()
    still = dict(zoom="0:(1)", angle="0:(0)", translation_x="0:(0)", translation_y="0:(0)", color_coherence="None",
                 amount_schedule="0:(0)", noise_schedule="0:(0)")
    result = render(settings(tmp_path, diffusion_cadence=3, max_frames=8, **still), generator=gen)
    outputs = {}
    diffused = [0, 3, 6]
    replay = RecordingGenerator()  # each diffusion's output, recomputed from its recorded request
    for request in gen.requests:
        outputs[diffused[len(outputs)]] = replay.generate(request).image
    for k in range(8):
        written = read_frame(result.folder / frame_name(result.timestring, k), 8)
        group = 3 * (k // 3)
        # the older image enters as written at the end of its group (whole levels); frames are truncated
        expected = sum(term.weight * (outputs[term.diffusion] if term.diffusion == group
                                      else np.floor(outputs[term.diffusion])) for term in frame_blend(k, 3))
        assert np.all((written <= expected + 1e-3) & (written > expected - 1)), k


def test_resume_writes_exactly_the_frames_of_an_uninterrupted_run(tmp_path):
    options = dict(animation_mode="2D", diffusion_cadence=2, max_frames=9, zoom="0:(1.05)", angle="0:(3)")
    full = render(settings(tmp_path, batch_name="full", **options), generator=RecordingGenerator())
    resumed_folder = full.folder.parent / "resumed"
    shutil.copytree(full.folder, resumed_folder)
    for k in (5, 6, 7, 8):
        (resumed_folder / frame_name(full.timestring, k)).unlink()
    (resumed_folder / f"{full.timestring}.mp4").unlink()
    resumed = render(settings(tmp_path, batch_name="resumed", resume_from_timestring=True,
                              resume_timestring=full.timestring, seed=-1, **options), generator=RecordingGenerator())
    assert resumed.timestring == full.timestring
    for k in range(9):
        name = frame_name(full.timestring, k)
        assert (resumed_folder / name).read_bytes() == (full.folder / name).read_bytes(), name
    assert probe_video(resumed.video).frame_count == 9


class ConstantGenerator:
    """Frame 0 comes out bright, every later diffusion dark; each image has a small gradient."""

    def __init__(self):
        self.requests = []

    def generate(self, request):
        from deforge.generate.base import GenerationResult

        self.requests.append(request)
        level = 200.0 if len(self.requests) == 1 else 50.0
        ramp = np.linspace(-20, 20, request.width, dtype=np.float32)[None, :, None]
        return GenerationResult(np.broadcast_to(level + ramp, (request.height, request.width, 3)).copy(), 1)

    def encode(self, conditioning):
        return conditioning


@pytest.mark.parametrize("coherence,expected_level", [("Match Frame 0 RGB", 200.0), ("None", 50.0)])
def test_colour_coherence_matches_every_later_input_to_frame_zero(tmp_path, coherence, expected_level):
    gen = ConstantGenerator()
    render(settings(tmp_path, color_coherence=coherence, noise_schedule="0:(0)", amount_schedule="0:(0)",
                    zoom="0:(1.01)", translation_x="0:(0)", max_frames=5), generator=gen)
    for request in gen.requests[2:]:  # from frame 2 the input is a dark output warped forward
        assert abs(float(request.init_image.mean()) - expected_level) < 3.0


def test_colour_reference_survives_a_resume(tmp_path):
    options = dict(color_coherence="Match Frame 0 RGB", noise_schedule="0:(0)", amount_schedule="0:(0)",
                   zoom="0:(1.01)", translation_x="0:(0)", max_frames=6)
    full = render(settings(tmp_path, **options), generator=ConstantGenerator())
    for k in (3, 4, 5):
        (full.folder / frame_name(full.timestring, k)).unlink()
    gen = ConstantGenerator()
    gen.requests.append(None)  # the resumed run's first diffusion is not frame 0: it comes out dark
    render(settings(tmp_path, resume_from_timestring=True, resume_timestring=full.timestring, **options), generator=gen)
    assert abs(float(gen.requests[1].init_image.mean()) - 200.0) < 3.0  # matched to frame 0 read from disk


def test_preview_needs_no_model(tmp_path):
    from deforge.api import preview

    result = preview(settings(tmp_path, animation_mode="3D", max_frames=5, use_depth_warping=False))
    assert len(frames_of(result)) == 5 and result.video is not None
