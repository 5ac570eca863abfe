"""Sampler names and their diffusers schedulers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deforge.errors import ModelError
from deforge.generate.samplers import (
    ORIGINAL_SAMPLERS,
    SAMPLERS,
    SchedulerCache,
    build_scheduler,
    check_sampler,
    scheduler_overrides,
    step_eta,
)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "src" / "deforge" / "configs"


def _scheduler_config(family: str) -> dict:
    return json.loads((CONFIGS / family / "scheduler" / "scheduler_config.json").read_text())


def test_the_original_names_come_first_and_names_are_unique():
    assert SAMPLERS[: len(ORIGINAL_SAMPLERS)] == ORIGINAL_SAMPLERS
    assert len(ORIGINAL_SAMPLERS) == 12 and len(set(SAMPLERS)) == len(SAMPLERS)
    assert {"dpmpp_2m_karras", "dpmpp_sde", "dpmpp_sde_karras", "euler_karras", "unipc", "lcm"} <= set(SAMPLERS)


def test_the_name_list_imports_without_diffusers():
    code = "import sys, deforge.generate.samplers as s; print(len(s.SAMPLERS), 'diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(len(SAMPLERS)), "False"]


def test_unknown_sampler_is_a_one_line_model_error_listing_the_names():
    with pytest.raises(ModelError) as info:
        check_sampler("k_euler_typo")
    message = str(info.value)
    assert "\n" not in message and "k_euler_typo" in message and "dpmpp_2m" in message
    assert check_sampler(" Euler_Ancestral ") == "euler_ancestral"


def test_k_diffusion_samplers_get_the_even_grid_but_trailing_configs_are_kept():
    leading = _scheduler_config("sd1")
    assert scheduler_overrides("euler", leading)[1]["timestep_spacing"] == "linspace"
    assert "timestep_spacing" not in scheduler_overrides("ddim", leading)[1]
    assert "timestep_spacing" not in scheduler_overrides("euler", {**leading, "timestep_spacing": "trailing"})[1]


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_builds_and_keeps_the_model_schedule(name):
    base = _scheduler_config("sd2-v")  # a v-prediction model
    scheduler = build_scheduler(name, base)
    class_name, overrides = scheduler_overrides(name, base)
    assert type(scheduler).__name__ == class_name
    assert scheduler.config.beta_schedule == "scaled_linear" and scheduler.config.beta_end == 0.012
    if "prediction_type" in scheduler.config:
        assert scheduler.config.prediction_type == "v_prediction"
    for key, value in overrides.items():
        # DPMSolverSinglestep has a fixed timestep grid and no timestep_spacing setting
        assert scheduler.config.get(key, value) == value
    assert "timestep_spacing" in scheduler.config or class_name == "DPMSolverSinglestepScheduler"
    scheduler.set_timesteps(10)


def test_scheduler_cache_returns_one_instance_per_name():
    cache = SchedulerCache(_scheduler_config("sd1"))
    assert cache.get("euler") is cache.get("EULER")
    assert cache.get("euler") is not cache.get("ddim")


def test_eta_only_for_ddim_and_tcd():
    assert step_eta("ddim", 0.7) == 0.7
    assert step_eta("euler_ancestral", 0.7) == 0.0
    assert step_eta("tcd", 0.7) == 0.3


def test_every_sampler_is_documented():
    text = (REPO / "docs" / "samplers.md").read_text()
    for name in SAMPLERS:
        assert f"`{name}`" in text, name
