"""Per-frame overhead of the 2D/3D render loop on a GPU at 512x512, against the bare pipeline calls it makes.

    python bench/bench_gpu_loop.py              # the tiny random model (launch-bound: a worst case)
    python bench/bench_gpu_loop.py --full-size  # an SD 1.x-sized UNet/VAE/CLIP with random weights, fp16

Overhead per frame = (render wall time - time inside generator.generate) / frames: warping, colour
matching, contrast, unsharp, noise, the depth model (3D) and handing frames to the writer thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "bench")]

from bench_render import bare_call  # noqa: E402
from deforge.api import render  # noqa: E402


class TimedGenerator:
    """Times each generate call (synchronised) and keeps the requests for the bare replay."""

    def __init__(self, inner, frames_on_gpu: bool):
        self.inner, self.seconds, self.requests = inner, 0.0, []
        self.device = inner.device if frames_on_gpu else None  # None: the loop keeps frames in numpy

    def generate(self, request):
        self.requests.append(request)
        torch.cuda.synchronize()
        start = time.perf_counter()
        result = self.inner.generate(request)
        torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        return result

    def encode(self, conditioning):
        return self.inner.encode(conditioning)


def measure(gen, mode: str, depth, frames: int, frames_on_gpu: bool) -> dict:
    timed = TimedGenerator(gen, frames_on_gpu)
    with tempfile.TemporaryDirectory() as out:
        settings = {"animation_mode": mode, "max_frames": frames, "W": 512, "H": 512, "seed": 3, "steps": 20,
                    "sampler": "euler_ancestral", "output_path": out, "skip_video_for_run_all": True,
                    "prompts": {"0": "a fox"}, "neg_prompts": "blur", "strength_schedule": "0:(0.5)",
                    "zoom": "0:(1.02)", "translation_z": "0:(3)", "rotation_3d_y": "0:(1)"}
        start = time.perf_counter()
        render(settings, generator=timed, depth=depth)
        total = time.perf_counter() - start
    torch.cuda.synchronize()
    start = time.perf_counter()
    for request in timed.requests:
        bare_call(gen, _on_host(request))
    torch.cuda.synchronize()
    bare = time.perf_counter() - start
    return {"mode": mode, "frames": frames, "frames_on_gpu": frames_on_gpu, "per_frame_overhead_ms": round(1000 * (total - timed.seconds) / frames, 2),
            "per_frame_generator_ms": round(1000 * timed.seconds / frames, 2),
            "total_vs_bare_calls_pct": round(100 * (total / bare - 1), 1)}


def _on_host(request):
    """The request as a bare diffusers user would make it: the init image as a numpy array."""
    from dataclasses import replace

    init = request.init_image
    if isinstance(init, torch.Tensor):
        request = replace(request, init_image=init.float().cpu().numpy(), on_device=False)
    return request


def full_size_generator():
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from deforge.generate.diffusers_backend import DiffusersGenerator
    from deforge.generate.loading import clip_tokenizer

    folder = ROOT / "src" / "deforge" / "configs" / "sd1"
    with torch.device("cuda"):
        torch.manual_seed(0)
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=clip_tokenizer(), unet=unet,
                                   scheduler=PNDMScheduler.from_config(config), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False).to("cuda", torch.float16)
    for module in (unet, vae, text):
        module.eval()
    return DiffusersGenerator(pipe, family="sd1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true")
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    from deforge.depth import DepthEstimator
    from deforge.generate.diffusers_backend import load_generator
    from fixtures_depth import tiny_model

    print(torch.cuda.get_device_name(), torch.__version__)
    gen = full_size_generator() if args.full_size else load_generator("tiny-random", device="cuda")
    model, processor = tiny_model("depth-anything")
    depth = DepthEstimator.from_model(model, processor, device="cuda", dtype=torch.float16)
    for on_gpu in (False, True):
        for mode in ("2D", "3D"):
            measure(gen, mode, depth if mode == "3D" else None, 3, on_gpu)  # warm-up
            print(json.dumps(measure(gen, mode, depth if mode == "3D" else None, args.frames, on_gpu)), flush=True)


if __name__ == "__main__":
    main()
