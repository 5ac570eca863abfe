"""Diffusion cadence bookkeeping against cadence.json (A-7)."""

from __future__ import annotations

import pytest
from conftest import conformance_cases

from deforge.cadence import diffused_frames, diffusion_input, frame_blend, frame_blends


@pytest.mark.parametrize("case", conformance_cases("cadence.json", "cases"))
def test_diffused(case: dict) -> None:
    assert diffused_frames(case["max_frames"], case["cadence"]) == case["diffused"]


@pytest.mark.parametrize("case", conformance_cases("cadence.json", "cases"))
def test_diffusion_inputs(case: dict) -> None:
    inputs = {f: diffusion_input(f, case["cadence"]) for f in diffused_frames(case["max_frames"], case["cadence"])}
    actual = [{"diffusion": f, "from": i.source, "warps": i.warps} for f, i in inputs.items()]
    assert actual == case["diffusion_inputs"]


@pytest.mark.parametrize("case", conformance_cases("cadence.json", "cases"))
def test_frames(case: dict) -> None:
    blends = frame_blends(case["max_frames"], case["cadence"])
    assert len(blends) == len(case["frames"]) == case["max_frames"]
    for k, (actual, expected) in enumerate(zip(blends, case["frames"])):
        assert expected["frame"] == k
        assert actual == frame_blend(k, case["cadence"])
        assert [(t.diffusion, t.warps) for t in actual] == [(e["diffusion"], e["warps"]) for e in expected["blend"]]
        for term, e in zip(actual, expected["blend"]):
            assert abs(term.weight - e["weight"]) <= 1e-9


@pytest.mark.parametrize("cadence", range(1, 9))
def test_blend_invariants(cadence: int) -> None:
    for k in range(60):
        blend = frame_blend(k, cadence)
        assert abs(sum(t.weight for t in blend) - 1) <= 1e-12
        assert all(0 < t.weight <= 1 for t in blend)
        assert all(t.diffusion % cadence == 0 and t.diffusion + t.warps == k for t in blend)
        if k % cadence == 0 and k > 0:  # a diffused frame enters at its own index with weight 1/c
            assert blend[-1].diffusion == k and abs(blend[-1].weight - 1 / cadence) <= 1e-12


def test_prefix_of_longer_run() -> None:
    """Every frame of a run equals the same frame of a longer run (A-7)."""
    assert frame_blends(7, 3) == frame_blends(20, 3)[:7]


@pytest.mark.parametrize("cadence", [0, -1, 1.5])
def test_bad_cadence(cadence) -> None:
    with pytest.raises(ValueError):
        diffused_frames(10, cadence)


def test_non_diffused_frame_has_no_input() -> None:
    with pytest.raises(ValueError):
        diffusion_input(3, 2)
