"""Loading a Stable Diffusion model: hub id, diffusers folder, single checkpoint file, tiny model.

Single files (.safetensors, weights-only .ckpt) load offline: diffusers' `from_single_file`
gets a local config folder, either one shipped with Deforge under `deforge/configs/<family>`
(chosen from the checkpoint's keys) or the user's `model_config` folder. Every failure becomes
one ModelError line saying what failed, for which path or id, and what to do.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import torch

from deforge.errors import ModelError
from deforge.generate.tiny import TINY_MODELS, build_tiny_pipeline

log = logging.getLogger(__name__)
CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
CLIP_VOCAB_DIR = CONFIGS_DIR / "clip"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class Family:
    """A model family: the shipped config folder it uses and scheduler adjustments."""

    name: str
    config: str
    xl: bool
    scheduler_overrides: dict[str, Any] = field(default_factory=dict)


FAMILIES: dict[str, Family] = {
    "sd1": Family("sd1", "sd1", False),
    "sd2": Family("sd2", "sd2", False),
    "sd2-v": Family("sd2-v", "sd2-v", False),
    "sdxl": Family("sdxl", "sdxl", True),
    "sd-turbo": Family("sd-turbo", "sd2", False, {"timestep_spacing": "trailing"}),
    "sdxl-turbo": Family("sdxl-turbo", "sdxl", True, {"timestep_spacing": "trailing"}),
}
PREDICTION_TYPES = ("epsilon", "v_prediction")


def check_family(name: str | None) -> Family | None:
    """The Family for a `model_family` setting (None stays None); ModelError for unknown names."""
    if name is None:
        return None
    family = FAMILIES.get(str(name).strip().lower())
    if family is None:
        raise ModelError(f"unknown model_family {name!r}; use one of: {', '.join(FAMILIES)}")
    return family


# -- devices and dtypes ------------------------------------------------------------------------


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to run on: the one asked for, else CUDA, else Apple MPS, else CPU."""
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError):
            raise ModelError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}  # fmt: skip


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The weights dtype: the one asked for, else float16 on CUDA and MPS, float32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None:
        resolved = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
        if resolved is None:
            raise ModelError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
        return resolved
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


# -- tokenizers shipped with Deforge ---------------------------------------------------------------


@lru_cache(maxsize=4)
def clip_tokenizer(pad_token: str = "<|endoftext|>"):
    """The CLIP BPE tokenizer (49,408 tokens, converted from open_clip's vocabulary) shared by
    every family; SD 2.x and SDXL's second tokenizer pad with "!" instead of <|endoftext|>."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(CLIP_VOCAB_DIR), pad_token=pad_token, model_max_length=77)


def _tokenizer_overrides(config_dir: Path, xl: bool) -> dict[str, Any]:
    """Tokenizer objects for a config folder whose tokenizer subfolders hold no vocabulary."""
    overrides = {}
    for name in ("tokenizer", "tokenizer_2") if xl else ("tokenizer",):
        folder = config_dir / name
        if (folder / "vocab.json").exists() or (folder / "tokenizer.json").exists():
            continue  # the folder is complete: diffusers loads it
        settings_file = folder / "tokenizer_config.json"
        settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.exists() else {}
        pad = settings.get("pad_token", "<|endoftext|>")
        overrides[name] = clip_tokenizer(pad if isinstance(pad, str) else pad.get("content", "<|endoftext|>"))
    return overrides


# -- checkpoint files --------------------------------------------------------------------------------


def verify_sha256(path: Path, expected: str) -> None:
    """Stream the file and compare its SHA-256 with `expected` (hex, case-insensitive)."""
    want = expected.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", want):
        raise ModelError(f"model_sha256 must be 64 hexadecimal digits, got {expected!r}")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    got = digest.hexdigest()
    if got != want:
        raise ModelError(
            f"model_sha256 mismatch for {path}: expected {want[:12]}..., file has {got[:12]}...; "
            "the file is corrupt or a different model: download it again or correct model_sha256"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def checkpoint_key_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of a checkpoint, without keeping its weights.

    A .ckpt is read with weights-only unpickling: a pickle holding anything but tensors and
    plain containers is refused (it could run code when loaded).
    """
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise ModelError(
                f"cannot read {path}: not a valid .safetensors file ({_first_line(exc)}); "
                "it may be corrupt or incompletely downloaded: download it again"
            ) from None
    state = _load_ckpt(path)
    return {key: tuple(value.shape) for key, value in state.items() if hasattr(value, "shape")}


def _load_ckpt(path: Path) -> Mapping[str, Any]:
    import pickle

    try:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            state = torch.load(str(path), map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise ModelError(
                f"refusing to load {path}: the .ckpt contains pickled Python objects besides weights, "
                "which could run code; use a .safetensors version of the model instead"
            ) from None
        raise ModelError(
            f"cannot read {path}: not a valid .ckpt file ({_first_line(exc)}); download it again"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelError(
            f"cannot read {path}: not a valid .ckpt file ({_first_line(exc)}); download it again"
        ) from None
    while isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ModelError(f"cannot read {path}: the .ckpt holds no state dict")
    return state


_UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


def detect_family(keys: Mapping[str, tuple[int, ...]], filename: str = "") -> Family:
    """The family of an original (LDM layout) checkpoint, from its tensor names.

    SD 2.x v-prediction (768) cannot be told from eps (512) by keys: the file name decides
    ("768" or "-v" means v-prediction), and `model_family` / `prediction_type` override it.
    """
    name = filename.lower()
    if _UNET_IN in keys and len(keys[_UNET_IN]) == 4 and keys[_UNET_IN][1] != 4:
        raise ModelError(
            f"{filename}: UNet with {keys[_UNET_IN][1]} input channels (an inpainting or other special model) "
            "is not supported; use a standard text-to-image checkpoint"
        )
    has = lambda prefix: any(key.startswith(prefix) for key in keys)  # noqa: E731
    if has("conditioner.embedders.1.model."):
        return FAMILIES["sdxl-turbo" if "turbo" in name else "sdxl"]
    if has("conditioner.embedders.0.model."):
        raise ModelError(f"{filename}: SDXL refiner checkpoints are not supported; use an SDXL base model")
    if has("cond_stage_model.model."):
        if "turbo" in name:
            return FAMILIES["sd-turbo"]
        return FAMILIES["sd2-v" if re.search(r"768|(^|[-_])v([-_.]|$)", name) else "sd2"]
    if has("cond_stage_model.transformer."):
        return FAMILIES["sd1"]
    if has("model.diffusion_model."):
        raise ModelError(f"{filename}: the checkpoint has a UNet but no text encoder; it cannot be used alone")
    raise ModelError(f"{filename}: not a Stable Diffusion 1.x, 2.x or XL checkpoint (unrecognised tensor names)")


# -- the pipeline ------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """An image-to-image pipeline plus what the generator needs to know about it."""

    pipeline: Any
    family: str
    xl: bool
    source: str


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith(("/", ".", "~", "\\"))
        or model.lower().endswith(SINGLE_FILE_SUFFIXES)
        or model.count("/") > 1
        or bool(re.match(r"^[A-Za-z]:[\\/]", model))
    )


def _is_hub_id(model: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", model))


def load_model(
    model: str,
    *,
    dtype: torch.dtype,
    model_sha256: str | None = None,
    model_family: str | None = None,
    prediction_type: str | None = None,
    model_config: str | Path | None = None,
) -> LoadedModel:
    """Load `model` (tiny name, single file, diffusers folder or hub id) as an img2img pipeline
    on the CPU in `dtype`."""
    if prediction_type is not None and prediction_type not in PREDICTION_TYPES:
        raise ModelError(f"unknown prediction_type {prediction_type!r}; use one of: {', '.join(PREDICTION_TYPES)}")
    family = check_family(model_family)
    model = str(model).strip()
    if model in TINY_MODELS:
        if model_sha256:
            raise ModelError(f"model_sha256 cannot be checked for the built-in {model!r} model; remove it")
        loaded = _load_tiny(model, dtype)
    else:
        path = Path(model).expanduser()
        if path.is_file():
            if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
                raise ModelError(
                    f"unsupported model file {path}: use a .safetensors or .ckpt file, or a diffusers folder"
                )
            if model_sha256:
                verify_sha256(path, model_sha256)
            loaded = _load_single_file(path, dtype, family, model_config, prediction_type is not None)
        elif path.is_dir():
            if model_sha256:
                raise ModelError(
                    f"model_sha256 applies to single-file models only, not to the folder {path}; remove it"
                )
            if not (path / "model_index.json").exists():
                raise ModelError(f"not a diffusers model folder (no model_index.json): {path}")
            loaded = _load_pretrained(str(path), dtype, local=True)
        elif _is_hub_id(model) and not _looks_like_path(model):
            if model_sha256:
                raise ModelError(
                    f"model_sha256 applies to single-file models only, not to the hub id {model}; remove it"
                )
            loaded = _load_pretrained(model, dtype, local=False)
        else:
            raise ModelError(
                f"model not found: {model} (expected a .safetensors/.ckpt file, a diffusers folder, "
                "a Hugging Face hub id like org/name, or tiny-random)"
            )
    _adjust_scheduler(loaded.pipeline, family, prediction_type)
    return loaded


def _load_tiny(name: str, dtype: torch.dtype) -> LoadedModel:
    pipe = img2img_pipeline(build_tiny_pipeline(name))
    if dtype != torch.float32:
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.to(dtype=dtype)
    xl = name.endswith("-xl")
    return LoadedModel(pipe, "tiny-xl" if xl else "tiny", xl, name)


def _adjust_scheduler(pipe, family: Family | None, prediction_type: str | None) -> None:
    overrides = dict(family.scheduler_overrides) if family else {}
    if prediction_type:
        overrides["prediction_type"] = prediction_type
    if overrides:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **overrides)


def sibling_pipeline(pipe, cls):
    """A `cls` pipeline sharing `pipe`'s modules as they are (diffusers' from_pipe would cast them
    to float32), with no safety checker and no watermark (it would build up over animation frames)."""
    params = inspect.signature(cls.__init__).parameters
    kwargs = {name: module for name, module in pipe.components.items() if name in params}
    extras = {
        "requires_safety_checker": False,
        "add_watermarker": False,
        "force_zeros_for_empty_prompt": bool(pipe.config.get("force_zeros_for_empty_prompt", True)),
    }
    kwargs.update({name: value for name, value in extras.items() if name in params})
    sibling = cls(**kwargs)
    sibling.set_progress_bar_config(disable=True)
    return sibling


def img2img_pipeline(pipe):
    """The image-to-image pipeline sharing `pipe`'s modules."""
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

    if isinstance(pipe, (StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline)):
        return pipe
    xl = getattr(pipe, "text_encoder_2", None) is not None
    return sibling_pipeline(pipe, StableDiffusionXLImg2ImgPipeline if xl else StableDiffusionImg2ImgPipeline)


def _load_single_file(
    path: Path, dtype: torch.dtype, family: Family | None, model_config, prediction_given: bool
) -> LoadedModel:
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

    keys = checkpoint_key_shapes(path)
    detected = detect_family(keys, path.name)
    if family is None:
        family = detected
        if family.name in ("sd2", "sd2-v") and not prediction_given and model_config is None:
            kind = "v-prediction (768)" if family.name == "sd2-v" else "epsilon (512 base)"
            log.warning(
                "%s is an SD 2.x checkpoint; its file name suggests %s. If images come out as noise, "
                "set model_family to %s or prediction_type to %s",
                path.name,
                kind,
                "sd2" if family.name == "sd2-v" else "sd2-v",
                "epsilon" if family.name == "sd2-v" else "v_prediction",
            )
    elif family.xl != detected.xl:
        raise ModelError(
            f"model_family {family.name!r} does not match {path.name}, which is a {detected.name} checkpoint"
        )
    config_dir = Path(model_config).expanduser() if model_config else CONFIGS_DIR / family.config
    if not (config_dir / "model_index.json").exists():
        raise ModelError(f"model_config is not a diffusers config folder (no model_index.json): {config_dir}")
    cls = StableDiffusionXLImg2ImgPipeline if family.xl else StableDiffusionImg2ImgPipeline
    kwargs: dict[str, Any] = {"config": str(config_dir), "torch_dtype": dtype, "local_files_only": True}
    if family.xl:
        kwargs["add_watermarker"] = False
    kwargs.update(_tokenizer_overrides(config_dir, family.xl))
    try:
        pipe = cls.from_single_file(str(path), **kwargs)
    except ModelError:
        raise
    except Exception as exc:  # diffusers raises many types; the user needs one line
        raise ModelError(
            f"cannot load {path} as a {family.name} model ({_first_line(exc)}); if it is another family, "
            "set model_family, or point model_config at a matching diffusers config folder"
        ) from None
    return LoadedModel(pipe, family.name, family.xl, str(path))


def _load_pretrained(model: str, dtype: torch.dtype, *, local: bool) -> LoadedModel:
    """A diffusers folder (local=True) or hub id. A hub id already in the local cache loads
    without touching the network; otherwise it is downloaded."""
    from diffusers import DiffusionPipeline

    index, cached = None, local
    if not local:
        try:
            index, cached = DiffusionPipeline.load_config(model, local_files_only=True), True
        except Exception:  # not cached yet: fetch it below
            pass
    if index is None:
        try:
            index = DiffusionPipeline.load_config(model, local_files_only=local)
        except Exception as exc:
            if local:
                raise ModelError(f"cannot read model_index.json in {model} ({_first_line(exc)})") from None
            raise ModelError(
                f"could not fetch {model!r} from the Hugging Face hub ({_first_line(exc)}); check the id and "
                "your network (offline machines need a local file or folder), or log in for gated models"
            ) from None
    class_name = str(index.get("_class_name", ""))
    xl = "XL" in class_name
    if xl and index.get("text_encoder", [None])[0] is None:
        raise ModelError(f"{model}: SDXL refiner models are not supported; use an SDXL base model")
    if not class_name.startswith(("StableDiffusion", "LatentConsistencyModel")):
        raise ModelError(
            f"{model}: a {class_name or 'unknown'} pipeline is not supported (Stable Diffusion 1.x/2.x/XL only)"
        )
    try:
        pipe = _from_pretrained(model, dtype, xl, local_only=cached)
    except Exception as exc:
        if local or not cached:
            raise ModelError(
                f"cannot load the model {'folder' if local else 'hub id'} {model} ({_first_line(exc)})"
            ) from None
        try:  # cached only in part: complete the download
            pipe = _from_pretrained(model, dtype, xl, local_only=False)
        except Exception as exc2:
            raise ModelError(f"cannot load the model hub id {model} ({_first_line(exc2)})") from None
    family = "sdxl" if xl else ("sd2" if pipe.text_encoder.config.hidden_size == 1024 else "sd1")
    return LoadedModel(pipe, family, xl, model)


def _from_pretrained(model: str, dtype: torch.dtype, xl: bool, *, local_only: bool):
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

    if xl:
        return StableDiffusionXLImg2ImgPipeline.from_pretrained(
            model, torch_dtype=dtype, local_files_only=local_only, add_watermarker=False
        )
    return StableDiffusionImg2ImgPipeline.from_pretrained(
        model, torch_dtype=dtype, local_files_only=local_only, safety_checker=None, requires_safety_checker=False
    )


# -- memory options ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryPlan:
    cpu_offload: bool
    attention_slicing: bool
    vae_tiling: bool


_GIB = 1 << 30


def plan_memory(
    pipe, device: torch.device, cpu_offload: bool | None, attention_slicing: bool | None, vae_tiling: bool | None
) -> MemoryPlan:
    """Settle each memory option: explicit values win; None decides from free CUDA memory
    (everything off on other devices)."""
    if device.type != "cuda":
        auto = MemoryPlan(False, False, False)
    else:
        free, _total = torch.cuda.mem_get_info(device)
        weights = sum(
            p.numel() * p.element_size()
            for module in pipe.components.values()
            if isinstance(module, torch.nn.Module)
            for p in module.parameters()
        )
        offload = free < weights + 3 * _GIB  # weights plus room for activations at ~1024 px
        left = free if offload else free - weights
        auto = MemoryPlan(offload, left < 2 * _GIB, left < 4 * _GIB)
    return MemoryPlan(
        auto.cpu_offload if cpu_offload is None else bool(cpu_offload),
        auto.attention_slicing if attention_slicing is None else bool(attention_slicing),
        auto.vae_tiling if vae_tiling is None else bool(vae_tiling),
    )


def place_pipeline(pipe, device: torch.device, plan: MemoryPlan) -> None:
    """Move the pipeline to `device`, or set up model CPU offload, and apply the plan."""
    if plan.cpu_offload:
        if device.type != "cuda":
            raise ModelError(f"cpu_offload needs a CUDA device, not {device.type}; set cpu_offload: false")
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if plan.attention_slicing:
        pipe.enable_attention_slicing()
    if plan.vae_tiling:
        pipe.vae.enable_tiling()
