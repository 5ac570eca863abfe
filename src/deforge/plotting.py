"""Schedule plots: every non-constant schedule against frame number, with its keyframes marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import OutputError
from .plan import Plan
from .schedule import schedule_keyframes


def plot_schedules(plan: Plan, path: Path) -> Path:
    """Write a PNG with one small chart per changing schedule (a note when every one is constant)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .output import atomic_write_with

    names = plan.changing_schedules()
    frames = np.arange(plan.frame_count)
    rows = max(1, len(names))
    fig, axes = plt.subplots(rows, 1, figsize=(9, 1.9 * rows + 0.6), sharex=True, squeeze=False)
    if not names:
        axes[0][0].text(0.5, 0.5, "every schedule is constant", ha="center", va="center")
        axes[0][0].set_axis_off()
    for ax, name in zip(axes[:, 0], names):
        series = plan.schedules[name]
        ax.plot(frames, series, linewidth=1.2, color="tab:blue")
        keys = [k for k in schedule_keyframes(getattr(plan.settings, name), plan.frame_count,
                                              setting=name, seed=plan.seed) if 0 <= k < plan.frame_count]
        if keys:
            ax.plot(keys, series[keys], "o", markersize=3.5, color="tab:red", label="keyframes")
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1][0].set_xlabel("frame")
    fig.suptitle(f"{plan.mode}: {plan.frame_count} frames", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OutputError(f"{path}: the plot is written as PNG; use a .png file name")
    atomic_write_with(path, lambda temp: fig.savefig(temp, dpi=110, format="png"))
    plt.close(fig)
    return path
