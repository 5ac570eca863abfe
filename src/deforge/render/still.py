"""Still images (animation_mode None): prompts x n_batch x init images, one generation each."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from rich.console import Console

from ..generate.base import GenerationRequest, Generator
from ..output import FrameWriter, frame_suffix, write_image
from ..plan import Plan


def sanitize_prompt(prompt: str, limit: int = 160) -> str:
    """A prompt as a file-name part: ASCII letters and spaces only, spaces as underscores."""
    return re.sub(r"[^A-Za-z ]", "", prompt).replace(" ", "_")[:limit]


def still_name(plan: Plan, timestring: str, index: int) -> str:
    if plan.settings.filename_format == "{timestring}_{index}_{seed}.png":
        return f"{timestring}_{index:05}_{int(plan.seeds[index])}.png"
    return f"{timestring}_{index:05}_{sanitize_prompt(plan.positive.at(index))}.png"


def grid_image(images: list[np.ndarray], rows: int, padding: int = 2) -> np.ndarray:
    """Images in a grid of `rows` rows (as the setting's name says), padded with black."""
    rows = max(1, min(rows, len(images)))
    columns = -(-len(images) // rows)
    h, w = images[0].shape[:2]
    grid = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, 3), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


class InitSource:
    """Init images, masks and overlay masks of a run, each loaded once."""

    def __init__(self, plan: Plan):
        self.settings = plan.settings
        self._cache: dict[str, tuple] = {}

    def get(self, init: str) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        if not init:
            return None, None, None
        if init not in self._cache:
            self._cache[init] = self._load(init)
        return self._cache[init]

    def _load(self, init: str) -> tuple:
        from .inputs import init_and_mask

        return init_and_mask(self.settings, init)


def render_stills(plan: Plan, generator: Generator, folder: Path, timestring: str,
                  console: Console | None = None):
    """Generate every image of the plan. With resume_from_timestring, images already on disk are kept
    (and read back for the grid); Ctrl-C or SIGTERM leaves complete images and raises Interrupted."""
    from ..api import FrameProgress, Interrupted, RenderResult, sigterm_as_interrupt
    from .animation import read_frame

    settings = plan.settings
    bit_depth = settings.bit_depth_output
    result = RenderResult(folder, timestring)
    inits = InitSource(plan)
    per_prompt: dict[int, list[np.ndarray]] = {}
    try:
        with sigterm_as_interrupt(), FrameWriter(bit_depth) as writer, \
                FrameProgress(plan.frame_count, 0, console, False, plan, "images") as bar:
            for index in range(plan.frame_count):
                path = (folder / still_name(plan, timestring, index)).with_suffix(frame_suffix(bit_depth))
                if settings.resume_from_timestring and path.exists():
                    image = read_frame(path, bit_depth)
                else:
                    image = generator.generate(_request(plan, index, inits)).image
                    if settings.save_samples:
                        writer.put(path, image)
                if settings.save_samples:
                    result.frames.append(path)
                per_prompt.setdefault(int(plan.positive.index[index]), []).append(image)
                bar.frame_done(index, {})
    except KeyboardInterrupt:
        result.interrupted = True
        raise Interrupted(result) from None
    if settings.make_grid:
        last_seed = int(plan.seeds[-1])
        for prompt_index, images in per_prompt.items():
            grid_path = folder / f"{timestring}_{prompt_index:05}_grid_{last_seed}.png"
            result.frames.append(write_image(grid_path, grid_image(images, settings.grid_rows), bit_depth))
    return result


def _request(plan: Plan, index: int, inits: InitSource) -> GenerationRequest:
    settings = plan.settings
    init, mask, overlay = inits.get(plan.init_images[index])
    return GenerationRequest(
        conditioning=plan.conditioning(index), seed=int(plan.seeds[index]), width=settings.W, height=settings.H,
        steps=settings.steps, scale=settings.scale, sampler=plan.sampler[index], ddim_eta=settings.ddim_eta,
        init_image=init, strength=float(plan.strength[index]) if init is not None else 0.0, mask=mask,
        overlay_mask=overlay)
