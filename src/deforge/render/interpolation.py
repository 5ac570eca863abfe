"""Interpolation mode (V-2): images of every prompt key, with in-betweens that blend the conditionings.

Each key's conditioning (its prompt and its own negative prompt, P-3) is encoded once with
`generator.encode`; every frame is text-to-image with the plan's fixed seed and the blend passed as
`conditioning_override`:

* `interpolate_key_frames` off: between consecutive keys a and b, `interpolate_x_frames` (X)
  in-betweens with weights j/(X+1), linear: (1 - w)·a + w·b (`EncodedConditioning.lerp`).
  Frames: (P - 1)(X + 1) + 1 for P prompts.
* `interpolate_key_frames` on: keys k_a < k_b are k_b - k_a frames apart, the in-betweens have
  weights j/(k_b - k_a), spherical (`slerp` below). Frames: (last key - first key) + 1.

Every pair is rendered, negative side included; one prompt gives one frame. Frames are saved as
`{timestring}_{frame:05}.png` (frame 0 is the first key) and assembled into the mp4 at the end.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from rich.console import Console

from ..generate.base import Conditioning, GenerationRequest, Generator
from ..plan import Plan

T = TypeVar("T")

PARALLEL = 0.9995
"""|cos| of the angle above which slerp falls back to lerp (the arc is numerically a line)."""


def _dot(x: Any, y: Any) -> float:
    """Sum of elementwise products, in float64, for torch tensors and numpy arrays alike."""
    if hasattr(x, "double"):  # torch.Tensor
        return float((x.double() * y.double()).sum())
    return float(np.sum(np.asarray(x, np.float64) * np.asarray(y, np.float64)))


def slerp(a: T, b: T, t: float) -> T:
    """Spherical interpolation of two tensors (torch or numpy) taken as flat vectors.

    The result is sin((1-t)ω)/sin ω · a + sin(tω)/sin ω · b with ω the angle between the flattened
    tensors; lengths are interpolated along with the direction. Nearly parallel or opposite
    tensors (|cos ω| > PARALLEL) and zero tensors fall back to (1 - t)·a + t·b.
    """
    norms = math.sqrt(_dot(a, a)) * math.sqrt(_dot(b, b))
    cos = _dot(a, b) / norms if norms > 0 else 1.0
    cos = min(1.0, max(-1.0, cos))
    if abs(cos) > PARALLEL:
        return (1.0 - t) * a + t * b  # type: ignore[operator]
    omega = math.acos(cos)
    sin = math.sin(omega)
    return (math.sin((1.0 - t) * omega) / sin) * a + (math.sin(t * omega) / sin) * b  # type: ignore[operator]


def _blend_encoded(a: Any, b: Any, t: float) -> Any:
    """slerp of two EncodedConditionings, each tensor (positive, negative, pooled) on its own."""
    return a.combine(b, lambda x, y: slerp(x, y, t))


def blend(a: Any, b: Any, t: float, spherical: bool) -> Any:
    """The conditioning a fraction t of the way from a to b, for what `generator.encode` returns:
    an EncodedConditioning, a tensor/array, or a tuple of those (blended element by element)."""
    if isinstance(a, tuple):
        return tuple(blend(x, y, t, spherical) for x, y in zip(a, b))
    if a is None:
        return None
    if hasattr(a, "prompt_embeds"):
        return _blend_encoded(a, b, t) if spherical else a.lerp(b, t)
    if hasattr(a, "shape"):
        return slerp(a, b, t) if spherical else (1.0 - t) * a + t * b
    raise TypeError(f"Interpolation needs conditioning tensors; generator.encode returned {type(a).__name__}")


class KeyConditionings:
    """The encoded conditioning of each prompt key, each unique Conditioning encoded once."""

    def __init__(self, plan: Plan, generator: Generator):
        assert plan.interpolation is not None
        frame_of_key: dict[int, int] = {}
        for frame, (a, _, weight) in enumerate(plan.interpolation):
            if weight == 0.0:
                frame_of_key.setdefault(a, frame)
        self.conditioning = {key: plan.conditioning(frame) for key, frame in frame_of_key.items()}
        encoded: dict[Conditioning, Any] = {}
        for cond in self.conditioning.values():
            if cond not in encoded:
                encoded[cond] = generator.encode(cond)
        self.encoded = {key: encoded[cond] for key, cond in self.conditioning.items()}

    def at(self, a: int, b: int, weight: float, spherical: bool) -> Any:
        if weight == 0.0:
            return self.encoded[a]
        return blend(self.encoded[a], self.encoded[b], weight, spherical)


def render_interpolation(plan: Plan, generator: Generator, folder: Path, timestring: str,
                         console: Console | None = None):
    """Render every frame of an Interpolation plan, then the mp4. Ctrl-C stops cleanly (Interrupted)."""
    from ..api import frame_session
    from .animation import existing_frames, frame_name

    settings = plan.settings
    assert plan.interpolation is not None
    start = existing_frames(folder, timestring, plan.frame_count, settings.bit_depth_output) \
        if settings.resume_from_timestring else 0
    keys = KeyConditionings(plan, generator)
    with frame_session(plan, folder, timestring, start=start, console=console, verbose=False,
                       label="interpolate") as session:
        for frame in range(start, plan.frame_count):
            a, b, weight = plan.interpolation[frame]
            request = GenerationRequest(
                conditioning=plan.conditioning(frame), seed=int(plan.seeds[frame]), width=settings.W,
                height=settings.H, steps=settings.steps, scale=settings.scale, sampler=plan.sampler[frame],
                ddim_eta=settings.ddim_eta,
                conditioning_override=keys.at(a, b, weight, settings.interpolate_key_frames))
            image = generator.generate(request).image
            session.writer.put(folder / frame_name(timestring, frame, settings.bit_depth_output), image)
            session.progress.frame_done(frame, {"diffused": True})
    return session.result
