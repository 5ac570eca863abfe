"""Overhead of Deforge's render loops over the bare diffusers calls they make, in the same run.

    python bench/bench_render.py [--frames 24] [--repeats 3]

stills: `deforge.render` of a None-mode settings file (prompts x n_batch) against the same prompts,
steps and seeds given straight to the txt2img pipeline.
2D / 3D: `deforge.render` of an animation against the image-to-image calls it makes, replayed
straight into the pipelines (recorded requests: same init images, strengths, seeds, prompts).
The tiny random-weight model at 64x64, one torch thread; the best of `--repeats` runs of each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deforge.api import render
from deforge.generate.base import GenerationRequest
from deforge.generate.diffusers_backend import denoise_strength, load_generator, steps_to_run


class Recording:
    """Passes requests to the real generator and keeps them for the bare replay."""

    def __init__(self, inner):
        self.inner, self.requests = inner, []

    def generate(self, request: GenerationRequest):
        self.requests.append(request)
        return self.inner.generate(request)

    def encode(self, conditioning):
        return self.inner.encode(conditioning)


def bare_call(gen, request: GenerationRequest) -> None:
    """What a user would write with diffusers alone for this request."""
    prompt = request.conditioning.positive[0][0] if request.conditioning.positive else ""
    negative = request.conditioning.negative[0][0] if request.conditioning.negative else ""
    common = dict(prompt=prompt, negative_prompt=negative, num_inference_steps=request.steps,
                  guidance_scale=request.scale, generator=torch.Generator().manual_seed(request.seed),
                  output_type="np")
    if request.init_image is None or request.strength == 0:
        gen.txt2img(height=request.height, width=request.width, **common)
        return
    run = steps_to_run(request.strength, request.steps)
    if run == 0:
        return
    image = torch.from_numpy(np.clip(request.init_image, 0, 255).transpose(2, 0, 1) / 255.0).float()[None]
    gen.img2img(image=image, strength=denoise_strength(run, request.steps), **common)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(name: str, gen, settings: dict, repeats: int, depth=None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = {**settings, "output_path": folder, "skip_video_for_run_all": True}
        ours, bare = [], []
        for _ in range(repeats):
            recording = Recording(gen)
            ours.append(timed(lambda: render(settings, generator=recording, depth=depth)))
            bare.append(timed(lambda: [bare_call(gen, r) for r in recording.requests]))
        images = len(recording.requests)
    best_ours, best_bare = min(ours), min(bare)
    print(f"{name:7s} {images:3d} generations  deforge {best_ours:6.2f} s ({images / best_ours:5.1f}/s)  "
          f"bare diffusers {best_bare:6.2f} s ({images / best_bare:5.1f}/s)  overhead {100 * (best_ours / best_bare - 1):+5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = load_generator("tiny-random")
    common = {"W": 64, "H": 64, "seed": 5, "steps": 10, "sampler": "euler_ancestral", "model": "tiny-random",
              "neg_prompts": "blurry"}
    compare("stills", gen, {**common, "animation_mode": "None", "prompts": ["a red fox", "a blue bird", "a tree"],
                            "n_batch": max(1, args.frames // 3)}, args.repeats)
    animation = {**common, "max_frames": args.frames, "prompts": {"0": "a red fox", "12": "a blue bird"},
                 "strength_schedule": "0:(0.4)", "zoom": "0:(1.03)", "angle": "0:(1)", "translation_z": "0:(4)"}
    compare("2D", gen, {**animation, "animation_mode": "2D"}, args.repeats)
    from deforge.depth import DepthEstimator  # noqa: F401  (the 3D run uses a tiny random depth model)

    sys_path = Path(__file__).resolve().parents[1] / "tests"
    import sys

    sys.path.insert(0, str(sys_path))
    from fixtures_depth import tiny_depth_estimator

    compare("3D", gen, {**animation, "animation_mode": "3D"}, args.repeats, depth=tiny_depth_estimator("depth-anything"))


if __name__ == "__main__":
    main()
