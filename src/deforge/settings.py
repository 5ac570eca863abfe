"""Typed settings: every setting of the original notebook (v0.7.1 names and defaults) plus Deforge's own.

A settings file sets only what differs from the defaults. `load_settings` accepts a path, a JSON
string or a dict (a notebook user's), tolerates what the original tolerated (with warnings), and
turns every problem into one readable line in a `SettingsError`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SettingsError
from .seeds import floor_to_64

PromptSpec = Union[str, list[str], dict[int, str]]

ANIMATION_MODES = ("None", "2D", "3D", "Video Input", "Interpolation")
SEED_BEHAVIORS = ("iter", "fixed", "random", "ladder", "alternate", "schedule")
COLOR_COHERENCE = ("None", "Match Frame 0 HSV", "Match Frame 0 LAB", "Match Frame 0 RGB", "Video Input")
DEFAULT_SAMPLER_SCHEDULE = (
    "0:('euler'),10:('dpm2'),20:('dpm2_ancestral'),30:('heun'),40:('euler'),50:('euler_ancestral'),"
    "60:('dpm_fast'),70:('dpm_adaptive'),80:('dpmpp_2s_a'),90:('dpmpp_2m')"
)

# Settings of the original's gradient guidance (CLIP, aesthetics, colour match, ...). Accepted so that
# files load, but Deforge does not implement them: a non-zero scale gets a warning.
UNSUPPORTED_GUIDANCE_SCALES = (
    "mean_scale", "var_scale", "exposure_scale", "colormatch_scale", "clip_scale",
    "aesthetics_scale", "init_mse_scale", "blue_scale",
)


class SettingsWarning(UserWarning):
    """A setting was loaded but adjusted, ignored or is unsupported."""


def _s(default: Any, group: str, doc: str, **kw: Any) -> Any:
    return Field(default, description=doc, json_schema_extra={"group": group}, **kw)


class Settings(BaseModel):
    """Every Deforge setting. Names and defaults follow the original notebook v0.7.1."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    # --- model and device -------------------------------------------------------------------
    model: str = _s("stable-diffusion-v1-5/stable-diffusion-v1-5", "model",
                    "A Hugging Face hub id, a local diffusers folder, a single .safetensors/.ckpt file, "
                    "or `tiny-random` (a random-weight model for tests and demos: its images are noise-like).")
    model_sha256: str | None = _s(None, "model", "If set, the model file's SHA-256 is checked before loading.")
    model_family: str | None = _s(None, "model", "Single-file checkpoints only: force the family "
                                  "(`sd1`, `sd2`, `sd2-v`, `sdxl`, `sd-turbo`, `sdxl-turbo`) instead of detecting it from the keys.")
    prediction_type: Literal["epsilon", "v_prediction"] | None = _s(
        None, "model", "Override the model's prediction type (SD 2.x 768 checkpoints are v_prediction).")
    model_config_path: str | None = _s(None, "model", "A local diffusers folder that describes a single-file checkpoint "
                                  "(instead of the configs shipped with Deforge).")
    device: str | None = _s(None, "model", "`cuda`, `mps`, `cpu` or a torch device string; default: the best available.")
    dtype: str | None = _s(None, "model", "`float16`, `bfloat16` or `float32`; default: float16 on CUDA, float32 elsewhere.")
    cpu_offload: bool | None = _s(None, "model", "Offload model parts to the CPU between uses (small GPUs). "
                                  "Default: decided from free GPU memory.")
    attention_slicing: bool | None = _s(None, "model", "Compute attention in slices to save GPU memory. "
                                        "Default: decided from free GPU memory.")
    vae_tiling: bool | None = _s(None, "model", "Decode large frames in tiles. Default: decided from frame size and memory.")

    # --- image and sampling (DeforumArgs) -----------------------------------------------------
    W: int = _s(512, "image", "Width in pixels (at least 64); floored to a multiple of 64 with a warning (G-3).", ge=64)
    H: int = _s(512, "image", "Height in pixels (at least 64); floored to a multiple of 64 with a warning (G-3).", ge=64)
    bit_depth_output: Literal[8, 16, 32] = _s(8, "image", "Bits per channel of saved frames: 8, 16 (PNG, the full 0..65535 range, A-10) or 32 "
        "(float TIFF, values 0..1; no mp4 is assembled from 32-bit frames).")
    seed: int = _s(-1, "sampling", "Seed of the first image; -1 picks one at random when the run starts "
                   "(the resolved seed is written to the settings file beside the frames).", ge=-1, le=2**32 - 1)
    sampler: str = _s("euler_ancestral", "sampling", "Sampler name; see docs/samplers.md.")
    steps: int = _s(50, "sampling", "Sampling steps for a full (text-to-image) generation.", ge=1)
    scale: float = _s(7.0, "sampling", "Classifier-free guidance scale; 1.0 skips the unconditional pass.")
    ddim_eta: float = _s(0.0, "sampling", "DDIM eta (only used by the ddim sampler).")
    dynamic_threshold: float | None = _s(None, "sampling", "Accepted for compatibility; not used.")
    static_threshold: float | None = _s(None, "sampling", "Accepted for compatibility; not used.")
    save_samples: bool = _s(True, "output", "Still images (None mode): save each image.")
    save_settings: bool = _s(True, "output", "Still images (None mode): write the settings file beside the images. Animations always write it.")
    display_samples: bool = _s(True, "output", "Accepted for compatibility (notebook display).")
    save_sample_per_step: bool = _s(False, "output", "Accepted for compatibility; not used.")
    show_sample_per_step: bool = _s(False, "output", "Accepted for compatibility; not used.")
    prompt_weighting: bool = _s(False, "prompts", "Parse `text:weight` and backtick-math weights in prompts (P-2). "
                                "Off by default because prompts may contain colons; `\\:` escapes a colon.")
    normalize_prompt_weights: bool = _s(False, "prompts", "Divide the weights of each side by their sum.")
    log_weighted_subprompts: bool = _s(False, "prompts", "Accepted for compatibility; the plan shows the sub-prompts.")
    n_batch: int = _s(1, "batch", "Still images: images per prompt (and per init image).", ge=1)
    n_samples: int = _s(1, "batch", "Accepted for compatibility; Deforge renders one image per call.", ge=1)
    batch_name: str = _s("StableFun", "output", "Sub-folder of output_path/<YYYY-MM>/ for this run.")
    filename_format: Literal["{timestring}_{index}_{prompt}.png", "{timestring}_{index}_{seed}.png"] = _s(
        "{timestring}_{index}_{prompt}.png", "output", "Still images: file name pattern.")
    seed_behavior: Literal["iter", "fixed", "random", "ladder", "alternate", "schedule"] = _s(
        "iter", "sampling", "How the seed changes after each image: iter, fixed, random, ladder, alternate, schedule.")
    seed_iter_N: int = _s(1, "sampling", "iter: the seed advances every N-th image.", ge=1)
    seed_schedule: str = _s("0:(s)", "sampling",
                            "seed_behavior schedule: the seed of each frame (a schedule of s = the run's seed; -1 = random).")
    make_grid: bool = _s(False, "output", "Still images: also save a grid of each prompt's images.")
    grid_rows: int = _s(2, "output", "Rows of the grid.", ge=1)
    output_path: str = _s("outputs", "output", "Root folder; a run writes to output_path/<YYYY-MM>/<batch_name>/.")
    use_init: bool = _s(False, "init", "Start from an init image.")
    strength: float = _s(0.65, "init", "How much of the init image is kept (0..1); clamped. Frames after the first use strength_schedule.")
    strength_0_no_init: bool = _s(True, "init", "Without an init image, use strength 0 (full generation).")
    init_image: str | None = _s("https://cdn.pixabay.com/photo/2022/07/30/13/10/green-longhorn-beetle-7353749_1280.jpg",
                                "init", "Init image: a file, a URL, or (still images) a folder of images.")
    add_init_noise: bool = _s(False, "init", "Add Gaussian noise to a loaded init image.")
    init_noise: float = _s(0.01, "init", "Standard deviation of that noise in [-1, 1] units.")
    use_mask: bool = _s(False, "mask", "Use a mask with the init image: white keeps, black is repainted.")
    use_alpha_as_mask: bool = _s(False, "mask", "Take the mask from the init image's alpha channel.")
    mask_file: str | None = _s("https://www.filterforge.com/wiki/images/archive/b/b7/20080927223728%21Polygonal_gradient_thumb.jpg",
                               "mask", "Mask image: a file or a URL.")
    invert_mask: bool = _s(False, "mask", "Invert the mask.")
    mask_brightness_adjust: float = _s(1.0, "mask", "Mask brightness factor (A-9: does what its name says).")
    mask_contrast_adjust: float = _s(1.0, "mask", "Mask contrast factor (A-9: does what its name says).")
    overlay_mask: bool = _s(True, "mask", "Paste the init image back over the kept area after decoding.")
    mask_overlay_blur: float = _s(5, "mask", "Gaussian sigma of that overlay's edge.", ge=0)

    # Gradient guidance of the original (accepted, not implemented: warning when non-zero).
    mean_scale: float = _s(0, "unsupported", "Not supported (gradient guidance); a non-zero value warns.")
    var_scale: float = _s(0, "unsupported", "Not supported; a non-zero value warns.")
    exposure_scale: float = _s(0, "unsupported", "Not supported; a non-zero value warns.")
    exposure_target: float = _s(0.5, "unsupported", "Not supported.")
    colormatch_scale: float = _s(0, "unsupported", "Not supported; a non-zero value warns.")
    colormatch_image: str | None = _s("https://www.saasdesign.io/wp-content/uploads/2021/02/palette-3-min-980x588.png", "unsupported", "Not supported.")
    colormatch_n_colors: int = _s(4, "unsupported", "Not supported.")
    ignore_sat_weight: float = _s(0, "unsupported", "Not supported.")
    clip_name: str = _s("ViT-L/14", "unsupported", "Not supported.")
    clip_scale: float = _s(0, "unsupported", "Not supported; a non-zero value warns.")
    aesthetics_scale: float = _s(0, "unsupported", "Not supported; a non-zero value warns.")
    cutn: int = _s(1, "unsupported", "Not supported.")
    cut_pow: float = _s(0.0001, "unsupported", "Not supported.")
    init_mse_scale: float = _s(0, "unsupported", "Not supported; a non-zero value warns.")
    init_mse_image: str | None = _s("https://cdn.pixabay.com/photo/2022/07/30/13/10/green-longhorn-beetle-7353749_1280.jpg", "unsupported", "Not supported.")
    blue_scale: float = _s(0, "unsupported", "Not supported; a non-zero value warns.")
    gradient_wrt: str = _s("x0_pred", "unsupported", "Not supported.")
    gradient_add_to: str = _s("both", "unsupported", "Not supported.")
    decode_method: str = _s("linear", "unsupported", "Not supported.")
    grad_threshold_type: str = _s("dynamic", "unsupported", "Not supported.")
    clamp_grad_threshold: float = _s(0.2, "unsupported", "Not supported.")
    clamp_start: float = _s(0.2, "unsupported", "Not supported.")
    clamp_stop: float = _s(0.01, "unsupported", "Not supported.")
    grad_inject_timing: list[float] | None = _s(list(range(1, 10)), "unsupported", "Not supported.")
    cond_uncond_sync: bool = _s(True, "unsupported", "Not supported.")
    precision: str = _s("autocast", "unsupported", "Accepted for compatibility; see dtype.")
    C: int = _s(4, "unsupported", "Latent channels (fixed by the model).")
    f: int = _s(8, "unsupported", "Latent downscale factor (fixed by the model).")

    # --- animation (DeforumAnimArgs) --------------------------------------------------------
    animation_mode: Literal["None", "2D", "3D", "Video Input", "Interpolation"] = _s(
        "None", "animation", "None (still images), 2D, 3D, Video Input or Interpolation.")
    max_frames: int = _s(1000, "animation", "Frames to render (forced to 1 for still images; Video Input: the number of extracted frames).",
                         ge=1, le=10_000_000)
    border: Literal["wrap", "replicate"] = _s("replicate", "2D motion", "2D warp border: replicate or wrap.")
    angle: str = _s("0:(0)", "2D motion", "Rotation in degrees per frame (counter-clockwise).")
    zoom: str = _s("0:(1.04)", "2D motion", "Scale per frame (>1 zooms in).")
    translation_x: str = _s("0:(10*sin(2*3.14*t/10))", "motion", "2D: pixels per frame (right); 3D: camera units (content moves left).")
    translation_y: str = _s("0:(0)", "motion", "2D: pixels per frame (down); 3D: camera units.")
    translation_z: str = _s("0:(10)", "3D motion", "3D: camera forward per frame.")
    rotation_3d_x: str = _s("0:(0)", "3D motion", "3D: pitch in degrees per frame.")
    rotation_3d_y: str = _s("0:(0)", "3D motion", "3D: pan in degrees per frame.")
    rotation_3d_z: str = _s("0:(0)", "3D motion", "3D: roll in degrees per frame.")
    flip_2d_perspective: bool = _s(False, "2D motion", "2D: enable the perspective flip (A-2).")
    perspective_flip_theta: str = _s("0:(0)", "2D motion", "Perspective flip: rotation about z, degrees.")
    perspective_flip_phi: str = _s("0:(t%15)", "2D motion", "Perspective flip: rotation about x, degrees.")
    perspective_flip_gamma: str = _s("0:(0)", "2D motion", "Perspective flip: rotation about y, degrees.")
    perspective_flip_fv: str = _s("0:(53)", "2D motion", "Perspective flip: vertical field of view, degrees.")
    noise_schedule: str = _s("0: (0.02)", "frame", "Noise added to each warped frame (std in [-1, 1] units).")
    strength_schedule: str = _s("0: (0.65)", "frame", "How much of the warped previous frame is kept, per frame.")
    contrast_schedule: str = _s("0: (1.0)", "frame", "Contrast factor applied to each warped frame.")
    hybrid_comp_alpha_schedule: str = _s("0:(1)", "hybrid", "Accepted for compatibility (hybrid video is not implemented).")
    hybrid_comp_mask_blend_alpha_schedule: str = _s("0:(0.5)", "hybrid", "Accepted for compatibility.")
    hybrid_comp_mask_contrast_schedule: str = _s("0:(1)", "hybrid", "Accepted for compatibility.")
    hybrid_comp_mask_auto_contrast_cutoff_high_schedule: str = _s("0:(100)", "hybrid", "Accepted for compatibility.")
    hybrid_comp_mask_auto_contrast_cutoff_low_schedule: str = _s("0:(0)", "hybrid", "Accepted for compatibility.")
    enable_schedule_samplers: bool = _s(False, "sampling", "Use sampler_schedule instead of sampler.")
    sampler_schedule: str = _s(DEFAULT_SAMPLER_SCHEDULE, "sampling", "Sampler per frame (a string schedule), when enable_schedule_samplers.")
    kernel_schedule: str = _s("0: (5)", "anti-blur", "Unsharp-mask kernel size (odd).")
    sigma_schedule: str = _s("0: (1.0)", "anti-blur", "Unsharp-mask Gaussian sigma.")
    amount_schedule: str = _s("0: (0.2)", "anti-blur", "Unsharp-mask amount (0 disables sharpening).")
    threshold_schedule: str = _s("0: (0.0)", "anti-blur", "Unsharp-mask threshold (A-6: works).")
    color_coherence: Literal["None", "Match Frame 0 HSV", "Match Frame 0 LAB", "Match Frame 0 RGB", "Video Input"] = _s(
        "Match Frame 0 LAB", "frame", "Match each frame's colours to frame 0 (A-5).")
    color_coherence_video_every_N_frames: int = _s(1, "frame", "Video Input colour coherence: refresh the reference every N frames.", ge=1)
    color_force_grayscale: bool = _s(False, "frame", "Force greyscale frames.")
    diffusion_cadence: int = _s(1, "animation", "Diffuse every N-th frame; the frames between are warped and blended (A-7).", ge=1)
    use_depth_warping: bool = _s(True, "3D motion", "3D: estimate depth; off gives flat depth (z = 1).")
    midas_weight: float = _s(0.3, "3D motion", "Accepted for compatibility (AdaBins blending is not implemented).")
    depth_algorithm: str = _s("depth-anything-v2-small", "3D motion",
                              "Depth model: depth-anything-v2-small, dpt-hybrid-midas, dpt-large, a hub id or a local folder.")
    near_plane: float = _s(200, "3D motion", "Accepted; as in the original it does not change the image.")
    far_plane: float = _s(10000, "3D motion", "Accepted; as in the original it does not change the image.")
    fov: str = _s("0:(40)", "3D motion", "Field of view in degrees (a number or a schedule).")
    padding_mode: Literal["border", "reflection", "zeros"] = _s("border", "3D motion", "3D warp padding.")
    sampling_mode: Literal["bicubic", "bilinear", "nearest"] = _s("bicubic", "3D motion", "3D warp sampling.")
    save_depth_maps: bool = _s(False, "3D motion", "Write {timestring}_depth_{frame:05}.png per frame.")
    video_init_path: str = _s("/content/video_in.mp4", "video input", "Video Input: the source video.")
    extract_nth_frame: int = _s(1, "video input", "Video Input: use every N-th source frame.", ge=1)
    overwrite_extracted_frames: bool = _s(True, "video input", "Video Input: re-extract frames even if present.")
    use_mask_video: bool = _s(False, "video input", "Video Input: use a mask video.")
    video_mask_path: str = _s("/content/video_in.mp4", "video input", "Video Input: the mask video.")
    hybrid_generate_inputframes: bool = _s(False, "hybrid", "Accepted for compatibility (hybrid video is not implemented).")
    hybrid_use_first_frame_as_init_image: bool = _s(True, "hybrid", "Accepted for compatibility.")
    hybrid_motion: str = _s("None", "hybrid", "Accepted for compatibility; anything but None warns.")
    hybrid_motion_use_prev_img: bool = _s(False, "hybrid", "Accepted for compatibility.")
    hybrid_flow_method: str = _s("DIS Medium", "hybrid", "Accepted for compatibility.")
    hybrid_composite: bool = _s(False, "hybrid", "Accepted for compatibility; true warns.")
    hybrid_comp_mask_type: str = _s("None", "hybrid", "Accepted for compatibility.")
    hybrid_comp_mask_inverse: bool = _s(False, "hybrid", "Accepted for compatibility.")
    hybrid_comp_mask_equalize: str = _s("None", "hybrid", "Accepted for compatibility.")
    hybrid_comp_mask_auto_contrast: bool = _s(False, "hybrid", "Accepted for compatibility.")
    hybrid_comp_save_extra_frames: bool = _s(False, "hybrid", "Accepted for compatibility.")
    hybrid_use_video_as_mse_image: bool = _s(False, "hybrid", "Accepted for compatibility.")
    interpolate_key_frames: bool = _s(False, "interpolation", "Interpolation: space in-betweens by the prompt keys' distance (spherical).")
    interpolate_x_frames: int = _s(20, "interpolation", "Interpolation: in-between frames per pair of prompts.", ge=0)
    resume_from_timestring: bool = _s(False, "resume", "Continue the run with resume_timestring in the output folder (A-8).")
    resume_timestring: str = _s("20220829210106", "resume", "The timestring of the run to continue "
                                "(the digits that start its file names).", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    # --- prompts ----------------------------------------------------------------------------
    prompts: PromptSpec = _s({0: "a beautiful lake by Asher Brown Durand, trending on Artstation",
                              10: "a beautiful portrait of a woman by Artgerm, trending on Artstation"},
                             "prompts", "Prompts: a dict frame -> text, a list (frames 0, 1, ...), or one string.")
    neg_prompts: PromptSpec = _s({0: "mountain"}, "prompts", "Negative prompts, in the same forms as prompts. "
                             "A file that sets prompts but no neg_prompts has no negative prompt.")

    # --- video out (the notebook's "Create Video From Frames" cell) -------------------------
    skip_video_for_run_all: bool = _s(False, "video out", "Do not assemble an mp4 at the end of a run.")
    create_gif: bool = _s(False, "video out", "Also write an animated GIF.")
    ffmpeg_mode: str = _s("auto", "video out", "Accepted for compatibility (Deforge assembles with PyAV).")
    ffmpeg_outdir: str = _s("", "video out", "Accepted for compatibility.")
    ffmpeg_timestring: str = _s("", "video out", "Accepted for compatibility.")
    ffmpeg_image_path: str = _s("", "video out", "Accepted for compatibility.")
    ffmpeg_mp4_path: str = _s("", "video out", "Accepted for compatibility.")
    ffmpeg_gif_path: str = _s("", "video out", "Accepted for compatibility.")
    ffmpeg_extension: str = _s("png", "video out", "Accepted for compatibility.")
    ffmpeg_maxframes: int = _s(200, "video out", "Accepted for compatibility (Deforge encodes every frame).")
    ffmpeg_fps: float | None = _s(None, "video out", "Frames per second of the mp4; default 12, or for Video Input "
                                  "the source fps divided by extract_nth_frame.", gt=0)
    video_crf: int = _s(17, "video out", "H.264 quality (lower is better, 17 is visually lossless).", ge=0, le=51)
    video_keep_audio: bool = _s(True, "video out", "Video Input: copy the source's audio track into the mp4.")

    # ----------------------------------------------------------------------------------------
    @field_validator("W", "H", mode="after")
    @classmethod
    def _floor_to_64(cls, value: int, info: Any) -> int:
        floored, changed = floor_to_64(value)
        if changed:
            _warn(f"{info.field_name}: {value} is not a multiple of 64; using {floored} (G-3)")
        return floored

    @field_validator("sampler", mode="before")
    @classmethod
    def _sampler_lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("prompts", "neg_prompts", mode="after")
    @classmethod
    def _prompt_keys(cls, value: Any, info: Any) -> Any:
        if isinstance(value, dict):
            bad = [k for k in value if not 0 <= k <= 10_000_000]
            if bad:
                raise ValueError(f"{info.field_name}: frame key {bad[0]} is not allowed; keys are frames 0..10000000")
        return value

    @field_validator("prompts", "neg_prompts", mode="before")
    @classmethod
    def _prompt_container(cls, value: Any) -> Any:
        if value is None:
            return ""
        return value

    @field_validator("fov", *[n for n in (
        "angle", "zoom", "translation_x", "translation_y", "translation_z", "rotation_3d_x", "rotation_3d_y",
        "rotation_3d_z", "perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma",
        "perspective_flip_fv", "noise_schedule", "strength_schedule", "contrast_schedule", "kernel_schedule",
        "sigma_schedule", "amount_schedule", "threshold_schedule", "seed_schedule",
        "hybrid_comp_alpha_schedule", "hybrid_comp_mask_blend_alpha_schedule",
        "hybrid_comp_mask_contrast_schedule", "hybrid_comp_mask_auto_contrast_cutoff_high_schedule",
        "hybrid_comp_mask_auto_contrast_cutoff_low_schedule")], mode="before")
    @classmethod
    def _number_as_schedule(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return f"0:({value})"
        return value

    @model_validator(mode="after")
    def _sampler_known(self) -> "Settings":
        from .generate.samplers import SAMPLERS

        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler: {self.sampler!r} is not a known sampler; allowed: {', '.join(SAMPLERS)}")
        return self


NUMERIC_SCHEDULES: tuple[str, ...] = (
    "angle", "zoom", "translation_x", "translation_y", "translation_z", "rotation_3d_x", "rotation_3d_y",
    "rotation_3d_z", "perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma",
    "perspective_flip_fv", "fov", "noise_schedule", "strength_schedule", "contrast_schedule", "kernel_schedule",
    "sigma_schedule", "amount_schedule", "threshold_schedule",
    "hybrid_comp_alpha_schedule", "hybrid_comp_mask_blend_alpha_schedule", "hybrid_comp_mask_contrast_schedule",
    "hybrid_comp_mask_auto_contrast_cutoff_high_schedule", "hybrid_comp_mask_auto_contrast_cutoff_low_schedule",
)
"""Every numeric keyframe schedule; the plan evaluates each once for all frames."""

# Keys that the original notebook writes into its settings dumps but that are run state, not settings.
INTERNAL_KEYS = frozenset({
    "outdir", "timestring", "cond_prompt", "cond_prompts", "uncond_prompt", "uncond_prompts", "init_latent",
    "init_sample", "init_sample_raw", "mask_sample", "init_c", "seed_internal", "prompt", "clip_prompt",
    "override_settings_with_file", "settings_file", "custom_settings_file", "models_path", "configs_path",
    "mount_google_drive", "models_path_gdrive", "output_path_gdrive", "map_location", "model_config",
    "model_checkpoint", "custom_config_path", "custom_checkpoint_path", "_changed_attributes",
})

# Older names (v0.6 and the local runners) that mean a current setting.
RENAMED_KEYS = {
    "width": "W", "height": "H",
    **{f"hybrid_video_{k}": f"hybrid_{k}" for k in (
        "comp_alpha_schedule", "comp_mask_blend_alpha_schedule", "comp_mask_contrast_schedule",
        "comp_mask_auto_contrast_cutoff_high_schedule", "comp_mask_auto_contrast_cutoff_low_schedule",
        "generate_inputframes", "use_first_frame_as_init_image", "motion", "flow_method",
        "comp_mask_type", "comp_mask_inverse", "comp_mask_equalize", "comp_mask_auto_contrast",
        "comp_save_extra_frames", "use_video_as_mse_image")},
    "hybrid_video_composite": "hybrid_composite",
    "hybrid_video_motion_use_prev_img": "hybrid_motion_use_prev_img",
}


def _warn(message: str) -> None:
    warnings.warn(message, SettingsWarning, stacklevel=3)


def _is_int_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lstrip("+-").isdigit()


def _prompts_from_file(data: dict[str, Any]) -> None:
    """Resolve the several prompt containers of real files into `prompts` / `neg_prompts` (F-1)."""
    mode = data.get("animation_mode", "None")
    animation_prompts = data.pop("animation_prompts", None)
    cond = data.pop("cond_prompts", None)
    uncond = data.pop("uncond_prompts", None)
    if mode not in ("None", None) and isinstance(animation_prompts, (dict, list, str)) and animation_prompts:
        data["prompts"] = animation_prompts
    elif "prompts" not in data and animation_prompts:
        data["prompts"] = animation_prompts
    if "prompts" not in data and isinstance(cond, (dict, list, str)) and cond:
        data["prompts"] = cond
    if "neg_prompts" not in data and isinstance(uncond, (dict, list, str)) and uncond:
        data["neg_prompts"] = uncond
    for key in ("prompts", "neg_prompts"):
        value = data.get(key)
        if isinstance(value, dict) and value and not all(_is_int_text(k) or isinstance(k, int) for k in value):
            # A None-mode dump maps prompt text -> "00000" index strings; invert it.
            if all(_is_int_text(v) for v in value.values()):
                data[key] = {int(v): k for k, v in value.items()}


def _coerce_tolerated(data: dict[str, Any], fields: dict[str, Any]) -> None:
    """Apply the odd-but-real values that the original tolerated, each with a warning."""
    border = data.get("border")
    if isinstance(border, str) and border not in ("wrap", "replicate"):
        _warn(f"border: {border!r} is not wrap or replicate; using replicate, as the original did")
        data["border"] = "replicate"
    for key in list(data):
        if key in fields and data[key] is None and fields[key].default is not None:
            _warn(f"{key}: null replaced by the default {fields[key].default!r}")
            del data[key]
    for key in ("diffusion_cadence", "bit_depth_output"):
        value = data.get(key)
        if isinstance(value, str) and value.strip().isdigit():
            data[key] = int(value)  # the notebook stored these as strings
    timing = data.get("grad_inject_timing")
    if isinstance(timing, (int, float)) and not isinstance(timing, bool):
        data["grad_inject_timing"] = [timing]


def _format_validation_error(error: ValidationError, data: dict[str, Any]) -> list[str]:
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"] if not isinstance(p, int) or len(item["loc"]) == 1)
        key = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
            lines.append(message if message.split(":")[0] in Settings.model_fields else f"{loc}: {message}")
            continue
        message = message[:1].lower() + message[1:]
        if key and key in data:
            lines.append(f"{loc}: {data[key]!r} is not allowed: {message}")
        else:
            lines.append(f"{loc}: {message}")
    return list(dict.fromkeys(lines))


def settings_from_dict(raw: dict[str, Any]) -> Settings:
    """Validate a dict of settings (a file's content or a notebook user's dict)."""
    fields = Settings.model_fields
    data: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in raw.items():
        key = str(key)
        target = RENAMED_KEYS.get(key, key)
        if target in fields or target in ("animation_prompts", "cond_prompts", "uncond_prompts"):
            if target != key and target in raw:
                continue  # the current name wins over the old one
            data[target] = value
        elif key not in INTERNAL_KEYS:
            unknown.append(key)
    if unknown:
        _warn(f"ignored unknown settings: {', '.join(sorted(unknown))}")
    _prompts_from_file(data)
    if "prompts" in data and "neg_prompts" not in data:
        data["neg_prompts"] = ""  # the default negative belongs to the default prompts, not to a file's own
    _coerce_tolerated(data, fields)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        raise SettingsError(_format_validation_error(error, data)) from None
    _warn_unsupported(settings)
    return settings


def _warn_unsupported(settings: Settings) -> None:
    active = [name for name in UNSUPPORTED_GUIDANCE_SCALES if getattr(settings, name)]
    if active:
        _warn(f"gradient guidance is not supported and has no effect: {', '.join(f'{n}={getattr(settings, n)}' for n in active)}")
    if settings.hybrid_composite or settings.hybrid_motion not in ("None", "", None):
        _warn("hybrid video (hybrid_motion, hybrid_composite) is not supported and has no effect")
    if settings.use_mask and settings.animation_mode in ("2D", "3D"):
        _warn("use_mask: masks apply to still images and Video Input; 2D/3D animations ignore them")
    if settings.color_coherence == "Video Input" and settings.animation_mode != "Video Input":
        _warn("color_coherence 'Video Input' needs hybrid video, which is not supported; matching to frame 0 in LAB")
    if settings.dynamic_threshold or settings.static_threshold:
        _warn("dynamic_threshold / static_threshold are not supported and have no effect")


def _duplicate_keys_last_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _warn(f"the key {key!r} appears more than once; the last value is used")
        result[key] = value
    return result


def parse_settings_text(text: str, source: str = "settings") -> dict[str, Any]:
    """Parse JSON settings text into a dict, with a one-line error naming line and column."""
    try:
        data = json.loads(text, object_pairs_hook=_duplicate_keys_last_wins)
    except json.JSONDecodeError as error:
        raise SettingsError(f"{source}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: expected a JSON object of settings, got {type(data).__name__}")
    return data


def with_overrides(settings: Settings, **values: Any) -> Settings:
    """Settings with some values replaced, validated like a file's (so `max_frames 0` is refused)."""
    data = {**settings.model_dump(), **{k: v for k, v in values.items() if v is not None}}
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise SettingsError(_format_validation_error(error, data)) from None


def load_settings(source: "str | Path | dict[str, Any] | Settings") -> Settings:
    """Settings from a file path, a dict, or a Settings (returned as is)."""
    if isinstance(source, Settings):
        return source
    if isinstance(source, dict):
        return settings_from_dict(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{path}: cannot read the settings file ({error})") from None
    return settings_from_dict(parse_settings_text(text, str(path)))


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """A JSON-ready dict of every setting (prompt dict keys become strings)."""
    return settings.model_dump(mode="json")


def save_settings(settings: Settings, path: Path) -> None:
    """Write settings as indented UTF-8 JSON, atomically."""
    from .output import atomic_write_text

    atomic_write_text(path, json.dumps(settings_to_dict(settings), indent=4, ensure_ascii=False) + "\n")
