"""Seed sequences (G-2), steps for an init image (G-1) and size flooring (G-3)."""

from __future__ import annotations

import itertools
import warnings

import pytest

from conftest import conformance_cases
from deforge.errors import SettingsError
from deforge.plan import compute_plan
from deforge.seeds import floor_to_64, seed_sequence, steps_for_strength
from deforge.settings import load_settings


@pytest.mark.parametrize("case", conformance_cases("seeds.json", "sequences"))
def test_seed_sequences(case):
    sequence = seed_sequence(case["seed"], case["behavior"], case.get("seed_iter_N", 1))
    assert list(itertools.islice(sequence, len(case["expected"]))) == case["expected"]


@pytest.mark.parametrize("case", conformance_cases("seeds.json", "sequences"))
def test_plan_seeds_advance_once_per_diffusion(case):
    n = len(case["expected"])
    plan = compute_plan({"animation_mode": "2D", "max_frames": n * 2, "diffusion_cadence": 2,
                         "seed": case["seed"], "seed_behavior": case["behavior"],
                         "seed_iter_N": case.get("seed_iter_N", 1)})
    assert [int(s) for s in plan.seeds[::2]] == case["expected"]
    assert [int(s) for s in plan.seeds[1::2]] == case["expected"]


@pytest.mark.parametrize("case", conformance_cases("seeds.json", "t_enc"))
def test_steps_for_strength(case):
    assert steps_for_strength(case["strength"], case["steps"]) == case["expected"]


@pytest.mark.parametrize("case", conformance_cases("seeds.json", "dimensions"))
def test_dimensions_floor_to_64(case):
    assert floor_to_64(case["input"]) == (case["expected"], case["warning"])
    if case["expected"] < 64:  # a frame needs at least one 64-pixel block: the settings refuse it
        with pytest.raises(SettingsError):
            load_settings({"W": case["input"], "H": 512})
        return
    for given in (case["input"], float(case["input"]), str(case["input"])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            settings = load_settings({"W": given, "H": 512})
        assert settings.W == case["expected"]
        assert any("W:" in str(w.message) for w in caught) == case["warning"]


def test_plan_steps_use_strength_schedule_after_frame_zero():
    plan = compute_plan({"animation_mode": "2D", "max_frames": 4, "steps": 50, "use_init": True, "strength": 0.9,
                         "init_image": "x.png", "strength_schedule": "0:(0.5), 3:(0.8)"}, seed=5)
    assert list(plan.strength) == pytest.approx([0.9, 0.6, 0.7, 0.8])
    assert list(plan.steps) == [5, 20, 15, 10]


def test_frame_zero_without_init_runs_every_step():
    plan = compute_plan({"animation_mode": "3D", "max_frames": 3, "steps": 30,
                         "strength_schedule": "0:(0.65)"}, seed=5)
    assert list(plan.steps) == [30, 10, 10]


def test_seed_schedule():
    plan = compute_plan({"animation_mode": "2D", "max_frames": 5, "seed": 7, "seed_behavior": "schedule",
                         "seed_schedule": "0:(s), 2:(s+10), 3:(-1)"})
    assert list(plan.seeds[:3]) == [7, 7, 17]
    assert 0 <= plan.seeds[3] < 2**32 and plan.seeds[3] != plan.seeds[4]  # -1: random per frame
    again = compute_plan(plan.settings, seed=7)
    assert list(again.seeds) == list(plan.seeds)
