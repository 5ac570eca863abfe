"""Interpolation mode (V-2): frame counts, the documented blends, negative prompts, the fixed seed."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from deforge.api import render
from deforge.generate.base import Conditioning, GenerationRequest, GenerationResult
from deforge.generate.conditioning import EncodedConditioning
from deforge.render.animation import frame_name
from deforge.render.interpolation import blend, slerp
from deforge.video import probe_video


def embedding(text: str) -> np.ndarray:
    """A fixed pseudo-embedding of a text: (1, 4, 3) floats."""
    return np.random.default_rng(zlib.crc32(text.encode())).normal(size=(1, 4, 3))


@dataclass
class ArrayGenerator:
    """Encodes a Conditioning as (positive, negative) numpy arrays and records every request."""

    requests: list[GenerationRequest] = field(default_factory=list)
    encoded: list[Conditioning] = field(default_factory=list)

    def encode(self, conditioning: Conditioning) -> tuple[np.ndarray, np.ndarray]:
        self.encoded.append(conditioning)
        negative = conditioning.negative[0][0] if conditioning.negative else ""
        return embedding(conditioning.positive[0][0]), embedding(negative)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        level = float(np.tanh(request.conditioning_override[0]).mean() * 100 + 128)
        return GenerationResult(np.full((request.height, request.width, 3), level, np.float32), request.steps)


def settings(tmp_path, **overrides):
    base = {"animation_mode": "Interpolation", "W": 64, "H": 64, "seed": 42, "steps": 10,
            "output_path": str(tmp_path / "out"), "batch_name": "i", "interpolate_x_frames": 2,
            "prompts": {"0": "red", "3": "green", "5": "blue"},
            "neg_prompts": {"0": "blurry", "4": "dark"}}
    base.update(overrides)
    return base


def reference_slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    omega = math.acos(float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b))))
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


def test_linear_spacing_frames_and_blends(tmp_path):
    gen = ArrayGenerator()
    result = render(settings(tmp_path), generator=gen)
    assert sorted(p.name for p in result.folder.glob(f"{result.timestring}_0*.png")) == \
        [frame_name(result.timestring, k) for k in range(7)]  # (3 - 1)(2 + 1) + 1
    assert probe_video(result.video).frame_count == 7
    keys = [("red", "blurry"), ("green", "blurry"), ("blue", "dark")]  # each key's own negative prompt
    expected = []
    for i in range(2):
        for j in range(3):
            w = j / 3
            expected.append(tuple((1 - w) * embedding(x) + w * embedding(y) for x, y in zip(keys[i], keys[i + 1])))
    expected.append(tuple(embedding(x) for x in keys[2]))
    for request, (positive, negative) in zip(gen.requests, expected, strict=True):
        np.testing.assert_allclose(request.conditioning_override[0], positive, atol=1e-12)
        np.testing.assert_allclose(request.conditioning_override[1], negative, atol=1e-12)
        assert request.seed == 42 and request.init_image is None and request.strength == 0
    assert [r.conditioning.negative[0][0] for r in gen.requests] == ["blurry"] * 6 + ["dark"]
    assert len(gen.encoded) == 3


def test_key_spacing_frames_follow_the_keys_with_slerp(tmp_path):
    gen = ArrayGenerator()
    result = render(settings(tmp_path, interpolate_key_frames=True), generator=gen)
    assert len(result.frames) == 6  # (5 - 0) + 1
    pairs = [("red", "green", 0 / 3), ("red", "green", 1 / 3), ("red", "green", 2 / 3),
             ("green", "blue", 0.0), ("green", "blue", 0.5), ("blue", "blue", 0.0)]
    for request, (a, b, t) in zip(gen.requests, pairs, strict=True):
        expected = embedding(a) if t == 0 else reference_slerp(embedding(a), embedding(b), t)
        np.testing.assert_allclose(request.conditioning_override[0], expected, atol=1e-9)
    negative = gen.requests[4].conditioning_override[1]  # green/blurry -> blue/dark, halfway
    np.testing.assert_allclose(negative, reference_slerp(embedding("blurry"), embedding("dark"), 0.5), atol=1e-9)
    assert {r.seed for r in gen.requests} == {42}


def test_one_prompt_gives_one_frame_and_equal_prompts_are_encoded_once(tmp_path):
    gen = ArrayGenerator()
    assert len(render(settings(tmp_path, prompts={"0": "red"}), generator=gen).frames) == 1
    gen = ArrayGenerator()
    result = render(settings(tmp_path, batch_name="same", prompts=["red", "red", "blue"], neg_prompts=""),
                    generator=gen)
    assert len(result.frames) == 7 and len(gen.encoded) == 2


def test_slerp_on_tensors():
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.0, 2.0, 0.0])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    half = slerp(a, b, 0.5)
    assert torch.allclose(half, torch.tensor([1.0, 2.0, 0.0]) * math.sqrt(0.5))
    parallel = slerp(a, 3 * a, 0.25)  # nearly parallel: plain lerp
    assert torch.allclose(parallel, 1.5 * a)
    assert torch.allclose(slerp(a, -a, 0.5), torch.zeros(3))  # opposite: lerp, no division by ~0
    assert slerp(a.half(), b.half(), 0.3).dtype == torch.float16


def test_blend_of_encoded_conditionings_pads_and_blends_each_side():
    rng = torch.Generator().manual_seed(0)

    def encoded(chunks: int) -> EncodedConditioning:
        def noise(length: int) -> torch.Tensor:
            return torch.randn(1, length, 8, generator=rng)

        return EncodedConditioning(noise(77 * chunks), noise(77 * chunks), pad_chunk=noise(77))

    a, b = encoded(1), encoded(2)
    mixed = blend(a, b, 0.25, spherical=True)
    assert mixed.prompt_embeds.shape == (1, 154, 8)
    padded_a = torch.cat([a.prompt_embeds, a.pad_chunk], dim=1)
    assert torch.allclose(mixed.prompt_embeds, slerp(padded_a, b.prompt_embeds, 0.25))
    padded_neg = torch.cat([a.negative_prompt_embeds, a.pad_chunk], dim=1)
    assert torch.allclose(mixed.negative_prompt_embeds, slerp(padded_neg, b.negative_prompt_embeds, 0.25))
    linear = blend(a, b, 0.25, spherical=False)
    assert torch.allclose(linear.prompt_embeds, 0.75 * padded_a + 0.25 * b.prompt_embeds, atol=1e-6)


def test_a_generator_without_tensors_is_a_clear_error(tmp_path):
    from fakes import RecordingGenerator

    with pytest.raises(TypeError, match="conditioning tensors"):
        render(settings(tmp_path), generator=RecordingGenerator())


def test_resume_renders_only_the_missing_frames(tmp_path):
    first = render(settings(tmp_path), generator=ArrayGenerator())
    for k in (5, 6):
        (first.folder / frame_name(first.timestring, k)).unlink()
    gen = ArrayGenerator()
    resumed = render(settings(tmp_path, resume_from_timestring=True, resume_timestring=first.timestring, seed=-1),
                     generator=gen)
    assert len(gen.requests) == 2 and {r.seed for r in gen.requests} == {42}
    assert len(resumed.frames) == 7 and probe_video(resumed.video).frame_count == 7
