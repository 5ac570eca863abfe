"""Median per-frame time of the render loop's image work (everything except the generator) at 512x512.

2D: warp_2d + LAB colour match + contrast + unsharp + noise.
3D: depth_to_z + warp_3d (bicubic) + the same chain.
Run: python bench/bench_frame_ops.py [--size 512] [--repeats 200] [--threads N] [--default-malloc]
Columns: median and fastest wall time, median process CPU time over all threads (ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from deforge.image_ops import (
    add_noise,
    apply_contrast,
    color_reference,
    match_colors,
    retain_freed_memory,
    unsharp_mask,
)
from deforge.motion.warp2d import warp_2d_frame
from deforge.motion.warp3d import depth_to_z, warp_3d_frame

MOTION_2D = {"angle": 0.5, "zoom": 1.04, "translation_x": 5.9, "translation_y": 0.0, "border": "replicate"}
MOTION_3D = {
    "translation_x": 5.9,
    "translation_y": 0.0,
    "translation_z": 10.0,
    "rotation_3d_x": 0.5,
    "rotation_3d_y": 0.3,
    "rotation_3d_z": 0.2,
    "fov": 40.0,
    "padding_mode": "border",
    "sampling_mode": "bicubic",
}
POST = {"contrast": 1.0, "kernel": 5, "sigma": 1.0, "amount": 0.2, "threshold": 0.0, "noise": 0.02}


def test_frame(size: int, seed: int) -> np.ndarray:
    """A smooth colourful float32 frame with some texture (not a flat image, so matching does real work)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((size // 32, size // 32, 3), dtype=np.float32) * 255
    frame = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    frame += rng.standard_normal(frame.shape, dtype=np.float32) * 8
    return np.clip(frame, 0, 255)


def inverse_depth(size: int) -> np.ndarray:
    """A MiDaS-like relative inverse depth map: a ramp plus a near blob."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return 10 + 20 * y + 15 * np.exp(-((x - 0.5) ** 2 + (y - 0.6) ** 2) / 0.02)


def post_chain(warped: np.ndarray, reference, frame_idx: int) -> np.ndarray:
    """Colour match, contrast, unsharp and noise, as the render loop applies them to a warped frame."""
    matched = match_colors(warped, reference, "LAB")
    contrasted = apply_contrast(matched, POST["contrast"])
    sharpened = unsharp_mask(contrasted, POST["kernel"], POST["sigma"], POST["amount"], POST["threshold"])
    return add_noise(sharpened, POST["noise"], seed=1000 + frame_idx)


def frame_2d(prev: np.ndarray, reference, frame_idx: int) -> np.ndarray:
    """One 2D frame's image work."""
    return post_chain(warp_2d_frame(prev, MOTION_2D), reference, frame_idx)


def frame_3d(prev: np.ndarray, reference, inv_depth: np.ndarray, frame_idx: int) -> np.ndarray:
    """One 3D frame's image work with a given depth-model output."""
    z = depth_to_z(inv_depth)
    return post_chain(warp_3d_frame(prev, MOTION_3D, z), reference, frame_idx)


def timings_ms(fn: Callable[[int], object], repeats: int, warmup: int = 5) -> tuple[float, float, float]:
    """Median wall time, fastest wall time and median process CPU time (all threads) of fn(i), in ms."""
    for i in range(warmup):
        fn(i)
    wall, cpu = [], []
    for i in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(i)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * statistics.median(wall), 1000 * min(wall), 1000 * statistics.median(cpu)


def main() -> None:
    """Print per-stage and whole-chain medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="OpenCV threads (default: OpenCV's choice)")
    parser.add_argument("--default-malloc", action="store_true", help="skip retain_freed_memory()")
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    retained = retain_freed_memory() if not args.default_malloc else False
    n, size = args.repeats, args.size

    prev = test_frame(size, 1)
    ref_image = test_frame(size, 2)
    ref = color_reference(ref_image, "LAB")
    inv = inverse_depth(size)
    z = depth_to_z(inv)
    warped = warp_2d_frame(prev, MOTION_2D)
    matched = match_colors(warped, ref, "LAB")

    stages = {
        "warp_2d (bilinear, replicate)": lambda i: warp_2d_frame(prev, MOTION_2D),
        "depth_to_z": lambda i: depth_to_z(inv),
        "warp_3d (bicubic, border)": lambda i: warp_3d_frame(prev, MOTION_3D, z),
        "match_colors LAB (prepared reference)": lambda i: match_colors(warped, ref, "LAB"),
        "match_colors LAB (raw reference)": lambda i: match_colors(warped, ref_image, "LAB"),
        "apply_contrast 1.0": lambda i: apply_contrast(matched, 1.0),
        "unsharp_mask 5/1.0/0.2": lambda i: unsharp_mask(matched, 5, 1.0, 0.2, 0.0),
        "add_noise 0.02": lambda i: add_noise(matched, 0.02, i),
    }
    print(
        f"{size}x{size}, {n} repeats; cv2 threads {cv2.getNumThreads()}, retain_freed_memory {retained}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'stage (ms)':40s} {'median':>7s} {'min':>7s} {'cpu':>7s}")
    rows = list(stages.items())
    rows.append(("2D frame (total)", lambda i: frame_2d(prev, ref, i)))
    rows.append(("3D frame (total)", lambda i: frame_3d(prev, ref, inv, i)))
    for name, fn in rows:
        median, fastest, cpu = timings_ms(fn, n)
        print(f"  {name:40s} {median:7.2f} {fastest:7.2f} {cpu:7.2f}")

if __name__ == "__main__":
    main()
