"""Seeds per image (G-2) and steps per image (G-1). Pure functions; no torch."""

from __future__ import annotations

import math
import random
from typing import Iterator

import numpy as np

SEED_MODULUS = 2**32


def random_successor(seed: int) -> int:
    """The original's `random` behaviour in effect: re-seed Python's RNG with the seed, draw one."""
    return random.Random(seed).randint(0, SEED_MODULUS - 1)


def seed_sequence(seed: int, behavior: str, seed_iter_N: int = 1) -> Iterator[int]:
    """Seeds of successive diffusions: the start seed, then one more per diffusion (G-2).

    Seeds wrap modulo 2**32 (the original replaced an out-of-range seed with a random one).
    """
    state = 0
    while True:
        yield seed % SEED_MODULUS
        if behavior == "iter":
            if state % seed_iter_N == 0:
                seed += 1
            state += 1
        elif behavior == "ladder":
            seed += 2 if state == 0 else -1
            state = 1 - state
        elif behavior == "alternate":
            seed += 1 if state == 0 else -1
            state = 1 - state
        elif behavior == "random":
            seed = random_successor(seed % SEED_MODULUS)
        elif behavior == "fixed":
            pass
        else:
            raise ValueError(f"seed_behavior {behavior!r} has no sequence")


def seed_array(seed: int, behavior: str, seed_iter_N: int, count: int) -> "np.ndarray":
    """The first `count` values of seed_sequence, vectorised where a closed form exists."""
    i = np.arange(count, dtype=np.int64)
    if behavior == "iter":
        values = seed + (i + seed_iter_N - 1) // seed_iter_N
    elif behavior == "fixed":
        values = np.full(count, seed, dtype=np.int64)
    elif behavior == "ladder":
        values = seed + i // 2 + 2 * (i % 2)
    elif behavior == "alternate":
        values = seed + i % 2
    else:
        sequence = seed_sequence(seed, behavior, seed_iter_N)
        return np.fromiter((next(sequence) for _ in range(count)), dtype=np.int64, count=count)
    return values % SEED_MODULUS


def scheduled_seed(value: float, run_seed: int, frame: int) -> int:
    """A seed_schedule value as a seed: -1 means a random seed, drawn from (run seed, frame)."""
    if value == -1:
        return random.Random(f"{run_seed}:{frame}").randint(0, SEED_MODULUS - 1)
    return int(value) % SEED_MODULUS


def steps_for_strength(strength: float, steps: int) -> int:
    """Steps actually run for an init image kept at `strength` (G-1)."""
    return int(math.floor((1.0 - strength) * steps + 1e-6))


def steps_per_frame(strength: np.ndarray, steps: int) -> np.ndarray:
    """steps_for_strength for every frame; a frame without an init image (strength 0) runs every step."""
    run = np.floor((1.0 - strength) * steps + 1e-6).astype(np.int64)
    return np.where(strength > 0, run, steps)


def resolve_seed(seed: int) -> int:
    """-1 picks a random seed once, at run start; any other seed is used as is."""
    return random.SystemRandom().randint(0, SEED_MODULUS - 1) if seed == -1 else seed


def floor_to_64(value: int) -> tuple[int, bool]:
    """Width/height floored to a multiple of 64, and whether it changed (G-3)."""
    floored = value - value % 64
    return floored, floored != value
