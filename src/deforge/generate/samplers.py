"""Sampler names and how each maps onto a diffusers scheduler.

This module imports no heavy libraries at load time, so the settings layer can validate a
sampler name with `SAMPLERS` alone. `docs/samplers.md` explains every mapping and names each
approximation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deforge.errors import ModelError


@dataclass(frozen=True)
class SamplerSpec:
    """A diffusers scheduler class plus the config overrides that turn it into one sampler."""

    scheduler: str
    overrides: dict[str, Any] = field(default_factory=dict)
    k_diffusion: bool = False
    """Sigma-based (k-diffusion style) samplers: Deforum used an evenly spaced timestep grid for these."""
    eta: float = 0.0
    """The `eta` passed to the scheduler's step (ddim takes the request's ddim_eta instead)."""


_K = True
# lower_order_final: the last steps drop to first order, which diffusers needs with a final sigma of 0
_SINGLESTEP_3 = {"solver_order": 3, "algorithm_type": "dpmsolver++", "lower_order_final": True}
_SINGLESTEP_SDE_2 = {"solver_order": 2, "algorithm_type": "sde-dpmsolver++", "lower_order_final": True}

SAMPLER_SPECS: dict[str, SamplerSpec] = {
    # The original notebook's 12 names.
    "klms": SamplerSpec("LMSDiscreteScheduler", k_diffusion=_K),
    "dpm2": SamplerSpec("KDPM2DiscreteScheduler", k_diffusion=_K),
    "dpm2_ancestral": SamplerSpec("KDPM2AncestralDiscreteScheduler", k_diffusion=_K),
    "heun": SamplerSpec("HeunDiscreteScheduler", k_diffusion=_K),
    "euler": SamplerSpec("EulerDiscreteScheduler", k_diffusion=_K),
    "euler_ancestral": SamplerSpec("EulerAncestralDiscreteScheduler", k_diffusion=_K),
    "plms": SamplerSpec("PNDMScheduler", {"skip_prk_steps": True}),
    "ddim": SamplerSpec("DDIMScheduler"),
    "dpm_fast": SamplerSpec("DPMSolverSinglestepScheduler", _SINGLESTEP_3, k_diffusion=_K),
    "dpm_adaptive": SamplerSpec("DPMSolverSinglestepScheduler", _SINGLESTEP_3, k_diffusion=_K),
    "dpmpp_2s_a": SamplerSpec("DPMSolverSinglestepScheduler", _SINGLESTEP_SDE_2, k_diffusion=_K),
    "dpmpp_2m": SamplerSpec(
        "DPMSolverMultistepScheduler", {"solver_order": 2, "algorithm_type": "dpmsolver++"}, k_diffusion=_K
    ),
    # Later names (web-UI / diffusers era).
    "klms_karras": SamplerSpec("LMSDiscreteScheduler", {"use_karras_sigmas": True}, k_diffusion=_K),
    "dpm2_karras": SamplerSpec("KDPM2DiscreteScheduler", {"use_karras_sigmas": True}, k_diffusion=_K),
    "dpm2_ancestral_karras": SamplerSpec(
        "KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": True}, k_diffusion=_K
    ),
    "heun_karras": SamplerSpec("HeunDiscreteScheduler", {"use_karras_sigmas": True}, k_diffusion=_K),
    "euler_karras": SamplerSpec("EulerDiscreteScheduler", {"use_karras_sigmas": True}, k_diffusion=_K),
    "dpmpp_2m_karras": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"solver_order": 2, "algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
        k_diffusion=_K,
    ),
    "dpmpp_2m_sde": SamplerSpec(
        "DPMSolverMultistepScheduler", {"solver_order": 2, "algorithm_type": "sde-dpmsolver++"}, k_diffusion=_K
    ),
    "dpmpp_2m_sde_karras": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"solver_order": 2, "algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
        k_diffusion=_K,
    ),
    "dpmpp_3m_sde": SamplerSpec(
        "DPMSolverMultistepScheduler", {"solver_order": 3, "algorithm_type": "sde-dpmsolver++"}, k_diffusion=_K
    ),
    "dpmpp_3m_sde_karras": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"solver_order": 3, "algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
        k_diffusion=_K,
    ),
    "dpmpp_sde": SamplerSpec("DPMSolverSinglestepScheduler", _SINGLESTEP_SDE_2, k_diffusion=_K),
    "dpmpp_sde_karras": SamplerSpec(
        "DPMSolverSinglestepScheduler", {**_SINGLESTEP_SDE_2, "use_karras_sigmas": True}, k_diffusion=_K
    ),
    "unipc": SamplerSpec("UniPCMultistepScheduler"),
    "deis": SamplerSpec("DEISMultistepScheduler"),
    "lcm": SamplerSpec("LCMScheduler"),
    "tcd": SamplerSpec("TCDScheduler", eta=0.3),
}

ORIGINAL_SAMPLERS: tuple[str, ...] = (
    "klms", "dpm2", "dpm2_ancestral", "heun", "euler", "euler_ancestral",
    "plms", "ddim", "dpm_fast", "dpm_adaptive", "dpmpp_2s_a", "dpmpp_2m",
)  # fmt: skip
"""The names the original Deforum notebook accepted."""

SAMPLERS: tuple[str, ...] = tuple(SAMPLER_SPECS)
"""Every accepted sampler name (the original 12 first)."""


def check_sampler(name: str) -> str:
    """The canonical sampler name, or ModelError listing the allowed names."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in SAMPLER_SPECS:
        raise ModelError(f"unknown sampler {name!r}; use one of: {', '.join(SAMPLERS)}")
    return key


def step_eta(name: str, ddim_eta: float) -> float:
    """The eta for a sampler: ddim_eta for ddim (as in the original), the sampler's own otherwise."""
    key = check_sampler(name)
    return float(ddim_eta) if key == "ddim" else SAMPLER_SPECS[key].eta


def scheduler_overrides(name: str, base_config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The scheduler class name and the config overrides for `name` on a model whose scheduler
    config is `base_config` (betas, prediction type and timestep spacing come from the model)."""
    spec = SAMPLER_SPECS[check_sampler(name)]
    overrides = dict(spec.overrides)
    # Deforum's k-diffusion samplers spread the steps evenly from t=999 down to t=0. diffusers' SD
    # configs default to "leading" spacing (first step at t=981 for 50 steps); "linspace" matches
    # k-diffusion. "trailing" (turbo models) is left alone: those models need it.
    if spec.k_diffusion and base_config.get("timestep_spacing", "leading") == "leading":
        overrides["timestep_spacing"] = "linspace"
    return spec.scheduler, overrides


def build_scheduler(name: str, base_config: dict[str, Any]):
    """A new diffusers scheduler for sampler `name`, built from the model's own scheduler config."""
    import inspect

    import diffusers  # deferred: keeps this module importable without diffusers

    class_name, overrides = scheduler_overrides(name, base_config)
    scheduler_class = getattr(diffusers, class_name)
    # keep only the settings this scheduler knows (others only produce warnings)
    accepted = inspect.signature(scheduler_class.__init__).parameters
    config = {k: v for k, v in base_config.items() if k in accepted}
    return scheduler_class.from_config(config, **{k: v for k, v in overrides.items() if k in accepted})


class SchedulerCache:
    """One scheduler instance per sampler name for one model (schedulers reset on set_timesteps)."""

    def __init__(self, base_config: dict[str, Any]):
        self.base_config = dict(base_config)
        self._cache: dict[str, Any] = {}

    def get(self, name: str):
        key = check_sampler(name)
        scheduler = self._cache.get(key)
        if scheduler is None:
            try:
                scheduler = build_scheduler(key, self.base_config)
            except ImportError as exc:  # e.g. LMS needs scipy
                raise ModelError(f"sampler {key!r} needs a missing package: {exc}") from None
            self._cache[key] = scheduler
        return scheduler
