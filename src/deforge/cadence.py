"""Diffusion cadence (A-7): which frames are diffused, what each diffusion starts from, and how
every written frame blends the warped diffusions. Pure bookkeeping; the render loop does the work."""

from __future__ import annotations

from typing import NamedTuple


class BlendTerm(NamedTuple):
    """One term of a written frame: the output of diffusion `diffusion`, warped `warps` times, times `weight`."""

    diffusion: int
    weight: float
    warps: int


class DiffusionInput(NamedTuple):
    """The init image of a diffusion: the output of diffusion `source` warped `warps` times (None for frame 0)."""

    source: int | None
    warps: int


def _check_cadence(cadence: int) -> int:
    """The cadence as an int >= 1."""
    if int(cadence) != cadence or cadence < 1:
        raise ValueError(f"diffusion cadence must be a whole number >= 1, got {cadence!r}")
    return int(cadence)


def diffused_frames(max_frames: int, cadence: int) -> list[int]:
    """Frames that are diffused: 0, c, 2c, ... below max_frames."""
    return list(range(0, max(0, max_frames), _check_cadence(cadence)))


def diffusion_input(frame: int, cadence: int) -> DiffusionInput:
    """What diffusion `frame` starts from: the previous diffusion warped with frames P+1 .. F (c warps)."""
    c = _check_cadence(cadence)
    if frame % c:
        raise ValueError(f"frame {frame} is not diffused with cadence {c}")
    if frame == 0:
        return DiffusionInput(None, 0)
    return DiffusionInput(frame - c, c)


def frame_blend(frame: int, cadence: int) -> list[BlendTerm]:
    """The blend written at `frame`: older diffusion first; the weights sum to 1."""
    c = _check_cadence(cadence)
    latest = c * (frame // c)
    if latest == 0:
        return [BlendTerm(0, 1.0, frame)]
    weight = (frame - latest + 1) / c
    newer = BlendTerm(latest, weight, frame - latest)
    if weight >= 1.0:
        return [newer]
    return [BlendTerm(latest - c, 1.0 - weight, frame - latest + c), newer]


def frame_blends(max_frames: int, cadence: int) -> list[list[BlendTerm]]:
    """The blend of every frame 0 .. max_frames - 1 (the last group included, A-7)."""
    return [frame_blend(k, cadence) for k in range(max(0, max_frames))]
