"""Deforge: keyframed Stable Diffusion animation (the successor of Deforum Stable Diffusion).

Notebook use::

    import deforge
    plan = deforge.compute_plan({"animation_mode": "2D", "max_frames": 24, "zoom": "0:(1.02)"})
    result = deforge.render({"animation_mode": "2D", "max_frames": 24, "model": "tiny-random"})

Importing deforge and computing a plan does not import torch.
"""

from __future__ import annotations

from typing import Any

from .errors import DeforgeError, InputMediaError, ModelError, OutputError, ScheduleError, SettingsError
from .plan import Plan, compute_plan
from .settings import Settings, load_settings, save_settings

__version__ = "0.1.0"

__all__ = [
    "DeforgeError", "InputMediaError", "ModelError", "OutputError", "ScheduleError", "SettingsError",
    "Plan", "Settings", "compute_plan", "load_settings", "save_settings", "render", "preview", "__version__",
]


def render(settings: Any, **kwargs: Any):
    """Render settings (a dict, a path or Settings); returns a RenderResult (folder, frames, video)."""
    from .api import render as _render

    return _render(settings, **kwargs)


def preview(settings: Any, **kwargs: Any):
    """Render the camera motion only, with no diffusion model."""
    from .api import preview as _preview

    return _preview(settings, **kwargs)
