"""The diffusers implementation of the Generator interface (SD 1.x, 2.x, XL and distilled models).

Each call goes straight to diffusers' own StableDiffusion(XL)(Img2Img)Pipeline with pre-computed
prompt embeddings; Deforge adds only what the pipelines lack: Deforum's strength semantics, the
mask hold during sampling, the overlay paste-back and prompt caching.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deforge.errors import ModelError
from deforge.generate.base import Conditioning, GenerationRequest, GenerationResult
from deforge.generate.conditioning import EncodedConditioning, PromptEncoder
from deforge.generate.loading import (
    MemoryPlan,
    img2img_pipeline,
    load_model,
    place_pipeline,
    plan_memory,
    resolve_device,
    resolve_dtype,
    sibling_pipeline,
)
from deforge.generate.masks import hold_thresholds, latent_mask, paste_overlay
from deforge.generate.samplers import SchedulerCache, check_sampler, step_eta
from deforge.seeds import steps_for_strength


def steps_to_run(strength: float, steps: int) -> int:
    """Denoising steps actually run for an init image (G-1): floor((1 - strength) * steps + 1e-6)."""
    return max(0, min(steps, steps_for_strength(strength, steps)))


def denoise_strength(steps_run: int, steps: int) -> float:
    """The diffusers img2img `strength` that makes it run exactly `steps_run` of `steps` steps.

    diffusers runs int(steps * strength) steps; (n + 0.5) / steps is safely inside [n, n + 1).
    """
    return 1.0 if steps_run >= steps else (steps_run + 0.5) / steps


def load_generator(
    model: str,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    model_sha256: str | None = None,
    model_family: str | None = None,
    prediction_type: str | None = None,
    model_config: str | Path | None = None,
    cpu_offload: bool | None = None,
    attention_slicing: bool | None = None,
    vae_tiling: bool | None = None,
) -> "DiffusersGenerator":
    """Load `model` and wrap it as a Generator.

    model: a Hugging Face hub id, a local diffusers folder, one .safetensors/.ckpt file, or
    "tiny-random" / "tiny-random-xl" (random weights, for tests and demos only).
    model_family: for single files, overrides the family detected from the checkpoint keys
    (sd1, sd2, sd2-v, sdxl, sd-turbo, sdxl-turbo). prediction_type: "epsilon" or "v_prediction",
    overrides the model's. model_config: a local diffusers folder describing a single file.
    Memory options: True/False, or None to decide from free CUDA memory (all off on CPU/MPS).
    """
    target = resolve_device(device)
    weights_dtype = resolve_dtype(dtype, target)
    loaded = load_model(
        model,
        dtype=weights_dtype,
        model_sha256=model_sha256,
        model_family=model_family,
        prediction_type=prediction_type,
        model_config=model_config,
    )
    generator = DiffusersGenerator(loaded.pipeline, family=loaded.family)
    plan = plan_memory(generator.img2img, target, cpu_offload, attention_slicing, vae_tiling)
    try:  # both pipelines share these modules: placing one places the other
        place_pipeline(generator.img2img, target, plan)
    except torch.OutOfMemoryError:
        raise ModelError(_oom_message(f"loading {model}")) from None
    generator.memory = plan
    return generator


class _EmptyFp32ListFilter(logging.Filter):
    """Drops diffusers' "modules that should be kept in float32: []" warning, which the SDXL
    img2img pipeline triggers on every call by upcasting its VAE, even with nothing to keep."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("There are modules in") and "float32: []." in message)


_diffusers_log = logging.getLogger("diffusers.models.modeling_utils")
if not any(isinstance(f, _EmptyFp32ListFilter) for f in _diffusers_log.filters):
    _diffusers_log.addFilter(_EmptyFp32ListFilter())


def _oom_message(what: str) -> str:
    return (
        f"out of GPU memory while {what}; set cpu_offload: true, attention_slicing: true and vae_tiling: true, "
        "or use a smaller width/height"
    )


class DiffusersGenerator:
    """Text-to-image and image-to-image with a diffusers Stable Diffusion (XL) pipeline.

    Build it with `load_generator(...)`, or wrap an existing pipeline: `DiffusersGenerator(pipe)`.
    """

    def __init__(self, pipeline, *, family: str | None = None, memory: MemoryPlan | None = None):
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        self.img2img = img2img_pipeline(pipeline)
        self.xl = getattr(self.img2img, "text_encoder_2", None) is not None
        text2img_class = StableDiffusionXLPipeline if self.xl else StableDiffusionPipeline
        self.txt2img = (
            pipeline if isinstance(pipeline, text2img_class) else sibling_pipeline(self.img2img, text2img_class)
        )
        for pipe in (self.img2img, self.txt2img):
            pipe.set_progress_bar_config(disable=True)
            if getattr(pipe, "watermark", None) is not None:
                pipe.watermark = None  # it would build up over the frames of an animation
        self.family = family or ("sdxl" if self.xl else "sd")
        self.memory = memory or MemoryPlan(False, False, False)
        tokenizers = [self.img2img.tokenizer] + ([self.img2img.tokenizer_2] if self.xl else [])
        encoders = [self.img2img.text_encoder] + ([self.img2img.text_encoder_2] if self.xl else [])
        self.prompts = PromptEncoder(
            tokenizers,
            encoders,
            xl=self.xl,
            zero_empty_negative=bool(getattr(self.img2img.config, "force_zeros_for_empty_prompt", False)),
            device=lambda: self.img2img._execution_device,
        )
        self.schedulers = SchedulerCache(dict(self.img2img.scheduler.config))
        self._sampler: str | None = None

    # -- Generator protocol ----------------------------------------------------------------------

    def encode(self, conditioning: Conditioning) -> EncodedConditioning:
        """The conditioning tensors for a prompt pair (cached per unique text)."""
        return self.prompts.encode(conditioning)

    @property
    def device(self) -> torch.device:
        return self.img2img._execution_device

    def generate(self, request: GenerationRequest) -> GenerationResult:
        output, steps_run, info = self._run(request, "pt")
        if request.on_device:
            if output is None:
                return GenerationResult(request.init_image.clone(), 0, info)
            return GenerationResult(output.images[0].permute(1, 2, 0).float().mul(255.0), steps_run, info)
        if output is None:  # no step to run: the init image is the result
            return GenerationResult(_fit_frame(request.init_image, request.width, request.height).copy(), 0, info)
        frame = output.images[0].permute(1, 2, 0).float().mul(255.0).cpu().numpy()
        if request.overlay_mask is not None and request.init_image is not None:
            init = _fit_frame(request.init_image, request.width, request.height)
            frame = paste_overlay(frame, init, _fit_mask(request.overlay_mask, request.width, request.height))
        return GenerationResult(np.ascontiguousarray(frame, dtype=np.float32), steps_run, info)

    def final_latents(self, request: GenerationRequest) -> torch.Tensor | None:
        """The latents after the last sampling step, before VAE decoding (None when no step runs)."""
        output, _, _ = self._run(request, "latent")
        return None if output is None else output.images

    def _run(self, request: GenerationRequest, output_type: str):
        """Call the right pipeline; returns (pipeline output or None, steps run, info)."""
        sampler = check_sampler(request.sampler)
        self._use_sampler(sampler)
        conditioning = request.conditioning_override
        if conditioning is None:
            conditioning = self.encode(request.conditioning)
        elif not isinstance(conditioning, EncodedConditioning):
            raise TypeError("conditioning_override must come from DiffusersGenerator.encode (or its lerp)")
        generator = torch.Generator("cpu").manual_seed(int(request.seed) & 0xFFFF_FFFF_FFFF_FFFF)
        common: dict[str, Any] = {
            "num_inference_steps": request.steps,
            "guidance_scale": request.scale,
            "eta": step_eta(sampler, request.ddim_eta),
            "generator": generator,
            "output_type": output_type,
            **conditioning.pipeline_kwargs(),
        }
        info: dict[str, Any] = {"sampler": sampler, "seed": request.seed, "family": self.family}
        use_init = request.init_image is not None and (request.strength > 0 or request.mask is not None)
        try:
            if not use_init:
                return self.txt2img(height=request.height, width=request.width, **common), request.steps, info
            steps_run = steps_to_run(request.strength, request.steps)
            if steps_run == 0:
                return None, 0, {**info, "denoise_strength": 0.0}
            strength = denoise_strength(steps_run, request.steps)
            info["denoise_strength"] = strength
            image = _init_tensor(request.init_image, request.width, request.height)
            if request.mask is not None:
                return self._masked_img2img(image, request.mask, strength, common), steps_run, info
            return self.img2img(image=image, strength=strength, **common), steps_run, info
        except torch.OutOfMemoryError:
            raise ModelError(_oom_message(f"generating a {request.width}x{request.height} image")) from None

    # -- internals ----------------------------------------------------------------------------------

    def _use_sampler(self, sampler: str) -> None:
        if sampler == self._sampler:
            return
        scheduler = self.schedulers.get(sampler)
        self.img2img.scheduler = scheduler
        self.txt2img.scheduler = scheduler
        self._sampler = sampler

    @torch.no_grad()
    def _encode_init(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """VAE latents of the init image, drawn exactly as the img2img pipeline draws them."""
        pipe = self.img2img
        vae = pipe.vae
        dtype = pipe.unet.dtype if pipe.unet is not None else vae.dtype
        pixels = pipe.image_processor.preprocess(image).to(device=pipe._execution_device, dtype=dtype)
        upcast = self.xl and bool(getattr(vae.config, "force_upcast", False))
        if upcast:
            pixels = pixels.float()
            vae.to(dtype=torch.float32)
        latents = vae.encode(pixels).latent_dist.sample(generator)
        if upcast:
            vae.to(dtype)
        latents = latents.to(dtype)
        mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
        if self.xl and mean is not None and std is not None:
            mean = torch.tensor(mean, device=latents.device, dtype=dtype).view(1, -1, 1, 1)
            std = torch.tensor(std, device=latents.device, dtype=dtype).view(1, -1, 1, 1)
            return (latents - mean) * vae.config.scaling_factor / std
        return vae.config.scaling_factor * latents

    def _masked_img2img(self, image: torch.Tensor, mask: np.ndarray, strength: float, common: dict):
        generator: torch.Generator = common["generator"]
        init_latents = self._encode_init(image, generator)
        _, _, h, w = init_latents.shape
        small = latent_mask(_fit_mask(mask, image.shape[-1], image.shape[-2]), (w, h))
        seed = generator.initial_seed()
        hold = _MaskHold(
            init_latents,
            torch.from_numpy(small)[None, None].to(init_latents.device, init_latents.dtype),
            noise=torch.randn(init_latents.shape, generator=torch.Generator("cpu").manual_seed(seed)).to(
                init_latents.device, init_latents.dtype
            ),
        )
        return self.img2img(
            image=init_latents,
            strength=strength,
            callback_on_step_end=hold,
            callback_on_step_end_tensor_inputs=["latents"],
            **common,
        )


class _MaskHold:
    """callback_on_step_end that holds the kept (white) latent area at the init image.

    After each full step, latents where the mask holds are replaced by the init latents noised to
    the next timestep (one fixed noise tensor per call); after the last step, by the init latents.
    Grey values are held early and released later, as in the original (masks.hold_thresholds).
    """

    def __init__(self, init_latents: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor):
        self.init_latents = init_latents
        self.mask = mask
        self.noise = noise
        self.completed = 0
        self.thresholds: np.ndarray | None = None

    def _levels(self, scheduler, loop_timesteps: torch.Tensor) -> np.ndarray:
        """Noise level (sigma) at the start of each full step, then 0."""
        steps = loop_timesteps
        if hasattr(scheduler, "state_in_first_order"):  # 2nd-order: two calls per step
            steps = steps[:: scheduler.order]
        steps = torch.unique_consecutive(steps.float().cpu())
        alphas = getattr(scheduler, "alphas_cumprod", None)
        if alphas is None:
            levels = np.linspace(1.0, 0.0, len(steps), endpoint=False)
        else:
            index = steps.round().long().clamp(0, len(alphas) - 1)
            a = alphas.cpu().double()[index]
            levels = torch.sqrt((1 - a) / a).numpy()
        return np.append(levels, 0.0)

    def __call__(self, pipe, i: int, t, kwargs: dict) -> dict:
        scheduler = pipe.scheduler
        total = pipe.num_timesteps
        loop_timesteps = scheduler.timesteps[len(scheduler.timesteps) - total :]
        if self.thresholds is None:
            self.thresholds = hold_thresholds(self._levels(scheduler, loop_timesteps))
        last = i == total - 1
        if not last and not getattr(scheduler, "state_in_first_order", True):
            return {}  # halfway through a second-order step
        threshold = float(self.thresholds[min(self.completed, len(self.thresholds) - 1)])
        self.completed += 1
        latents = kwargs["latents"]
        hold = ((self.mask >= threshold) & (self.mask > 0)).to(latents.dtype)
        if last:
            target = self.init_latents
        else:
            next_t = loop_timesteps[i + 1].reshape(1)
            target = scheduler.add_noise(self.init_latents, self.noise, next_t)
        return {"latents": latents * (1 - hold) + target.to(latents.dtype) * hold}


def _init_tensor(frame: "np.ndarray | torch.Tensor", width: int, height: int) -> torch.Tensor:
    """The init image as the pipelines take it: (1, 3, H, W) in 0..1. A tensor stays on its device."""
    if isinstance(frame, torch.Tensor):
        return frame.clamp(0, 255).permute(2, 0, 1)[None].float().div(255.0)
    init = _fit_frame(frame, width, height)
    return torch.from_numpy(np.ascontiguousarray(init.transpose(2, 0, 1) / 255.0)).float()[None]


def _fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A frame array at (height, width, 3) float32, resized with LANCZOS when needed."""
    array = np.asarray(frame, dtype=np.float32)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    array = array[..., :3]
    if array.shape[:2] == (height, width):
        # noise and contrast can push a frame outside 0..255; diffusers would then misread its range
        return np.clip(array, 0.0, 255.0)
    from PIL import Image

    image = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)


def _fit_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    array = np.asarray(mask, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., 0]
    if array.shape == (height, width):
        return array
    return latent_mask(array, (width, height))
