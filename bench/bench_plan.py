"""Benchmark: evaluate 11 expression schedules for a 10,000-frame animation.

The original notebook evaluates every frame of every schedule separately with numexpr, which takes
about 1.8 s for this workload; Deforge evaluates each expression once, vectorised over its frames.

Run: ``python bench/bench_plan.py`` (prints the best of 5 runs and the ratio to 1.8 s).
"""

from __future__ import annotations

import time

from deforge.schedule import evaluate_schedule

MAX_FRAMES = 10_000
ORIGINAL_SECONDS = 1.8
TARGET_SECONDS = 0.09
RUNS = 5

SCHEDULES: dict[str, str] = {
    "zoom": "0:(1 + 0.1*sin(2*pi*t/24))",
    "angle": "0:(0), 100:(t*0.5), 2000:(where(t % 100 < 50, 1, -1))",
    "translation_x": "0:(10*sin(2*3.14*t/10)), 500:(t%15)",
    "translation_y": "0:(5*cos(2*pi*t/48) + 2*sin(2*pi*t/12))",
    "translation_z": "0:(10), 3000:(10 + 5*abs(sin(t/30))), 6000:(clip(t/600, 0, 12))",
    "rotation_3d_x": "0:(0.5*sin(t/7)**2)",
    "rotation_3d_y": "0:(arctan2(sin(t/50), cos(t/50)))",
    "rotation_3d_z": "0:(max(min(t/1000, 1), 0.25) * fmod(t, 37)/37)",
    "noise_schedule": "0:(0.02 + 0.01*(t % 30 > 15))",
    "strength_schedule": "0:(0.65), 25:(0.55), 50:(0.65 - 0.1*exp(-t/max_frames))",
    "contrast_schedule": "0:(1.0 + 0.05*round(sin(t/max_f*pi*4)))",
}


def evaluate_all() -> None:
    """Evaluate every schedule once for MAX_FRAMES frames."""
    for setting, text in SCHEDULES.items():
        evaluate_schedule(text, MAX_FRAMES, setting=setting, seed=1234)


def best_of(runs: int) -> tuple[float, float]:
    """(first run, best of ``runs``) in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        evaluate_all()
        times.append(time.perf_counter() - start)
    return times[0], min(times)


def main() -> None:
    """Print the timings and whether the target is met."""
    first, best = best_of(RUNS)
    print(f"{len(SCHEDULES)} schedules x {MAX_FRAMES} frames")
    print(f"first run: {first:.4f} s")
    print(f"best of {RUNS}: {best:.4f} s")
    ratio = best / ORIGINAL_SECONDS
    print(f"ratio to the original's {ORIGINAL_SECONDS} s: {ratio:.4f} ({1 / ratio:.0f}x faster)")
    print(f"target < {TARGET_SECONDS} s: {'met' if best < TARGET_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
