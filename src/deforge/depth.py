"""Monocular depth estimation for the 3D warp and for saved depth maps (A-4, spec 4.4).

A transformers depth model (Depth Anything V2 by default, or DPT/MiDaS) turns a frame array
(float32 (H, W, 3) RGB in 0..255) into relative inverse depth at the frame's size: larger values
are nearer. `normalize_depth` maps that to d in [0, 1] with near = 1 for saved depth maps; the
3D warp takes the raw prediction and computes z = 2 - d itself (`deforge.motion.warp3d.depth_to_z`).

Preprocessing is done in torch on the model's device instead of through the transformers image
processor (which works on PIL images on the CPU, once per call), but it follows the model's
`preprocessor_config.json`: target size, aspect-ratio policy, size multiple, rescale factor and
mean/std normalisation.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deforge.errors import ModelError, OutputError
from deforge.output import temporary_path

DEFAULT_DEPTH_ALGORITHM = "depth-anything-v2-small"

DEPTH_ALGORITHMS: dict[str, str] = {
    "depth-anything-v2-small": "depth-anything/Depth-Anything-V2-Small-hf",
    "dpt-hybrid-midas": "Intel/dpt-hybrid-midas",
    "dpt-large": "Intel/dpt-large",
}
"""Short `depth_algorithm` names and the Hugging Face hub ids they stand for."""

_TURN_OFF = "or set use_depth_warping and save_depth_maps to false"
_FIX_LOCAL = f"fix: pass a folder holding a transformers depth model as depth_algorithm, {_TURN_OFF}"
_FIX_HUB = (
    "fix: run once with internet access to cache it, pass a local model folder as depth_algorithm, "
    + _TURN_OFF
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")

# PIL resampling codes as stored in preprocessor configs. Lanczos (1) and box (4) have no
# torch equivalent; antialiased bicubic is the closest.
_RESAMPLE_MODES = {0: "nearest", 1: "bicubic", 2: "bilinear", 3: "bicubic", 4: "bicubic", 5: "bicubic"}

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# Architectures whose head predicts metric depth (larger = farther); their output is inverted.
_METRIC_MODEL_TYPES = {"zoedepth", "glpn", "depth_pro"}


@dataclass(frozen=True)
class DepthPreprocessing:
    """How a frame becomes the model's `pixel_values` (the subset of a DPT-style
    preprocessor config that matters for depth models)."""

    size: tuple[int, int] = (384, 384)
    """Target (height, width) before the aspect-ratio and multiple-of constraints."""
    keep_aspect_ratio: bool = False
    """Scale both sides by the one factor (of height or width) that is closer to 1."""
    ensure_multiple_of: int = 1
    resample: str = "bicubic"
    rescale_factor: float | None = 1 / 255
    mean: tuple[float, float, float] | None = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] | None = (0.5, 0.5, 0.5)

    @classmethod
    def defaults_for(cls, model_type: str) -> "DepthPreprocessing":
        """What the hub checkpoints of this architecture ship with, for models saved without a
        preprocessor config."""
        if model_type == "depth_anything":
            return cls(
                size=(518, 518),
                keep_aspect_ratio=True,
                ensure_multiple_of=14,
                mean=_IMAGENET_MEAN,
                std=_IMAGENET_STD,
            )
        return cls()

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Any | None, model_type: str) -> "DepthPreprocessing":
        """Read a `preprocessor_config.json` dict or an image processor object; missing keys
        take the architecture's defaults."""
        base = cls.defaults_for(model_type)
        if config is None:
            return base
        if not isinstance(config, Mapping):
            config = config.to_dict() if hasattr(config, "to_dict") else vars(config)

        size = config.get("size", base.size)
        if isinstance(size, (int, float)):
            size = (int(size), int(size))
        elif isinstance(size, Mapping):
            if "height" in size and "width" in size:
                size = (int(size["height"]), int(size["width"]))
            elif "shortest_edge" in size:
                size = (int(size["shortest_edge"]),) * 2
            else:
                size = base.size
        else:
            size = (int(size[0]), int(size[1]))

        def flag(key: str, default: bool) -> bool:
            value = config.get(key)
            return default if value is None else bool(value)

        do_resize = flag("do_resize", True)
        keep = flag("keep_aspect_ratio", base.keep_aspect_ratio)
        multiple = int(config.get("ensure_multiple_of") or base.ensure_multiple_of)
        resample_code = config.get("resample")
        resample = _RESAMPLE_MODES.get(3 if resample_code is None else int(resample_code), "bicubic")
        rescale = float(config.get("rescale_factor") or 1 / 255) if flag("do_rescale", True) else None
        mean = std = None
        if flag("do_normalize", True):
            mean = _triple(config.get("image_mean"), base.mean or (0.5, 0.5, 0.5))
            std = _triple(config.get("image_std"), base.std or (0.5, 0.5, 0.5))
        if not do_resize:
            # The model still needs patch-aligned input; keep the frame's own scale.
            size, keep = (0, 0), True
        return cls(size, keep, max(1, multiple), resample, rescale, mean, std)


def _triple(value: Any, default: tuple[float, float, float]) -> tuple[float, float, float]:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _snap(value: float, multiple: int) -> int:
    """Nearest multiple (the transformers DPT processor rounds the same way), at least one."""
    return max(multiple, round(value / multiple) * multiple)


class DepthEstimator:
    """A depth model with its preprocessing, on one device and dtype.

    `predict` maps a frame array to relative inverse depth (larger = nearer) at the frame size.
    """

    def __init__(
        self,
        model: Any,
        preprocessing: DepthPreprocessing,
        *,
        name: str = "in-memory model",
    ) -> None:
        import torch

        self.model = model.eval()
        self.preprocessing = preprocessing
        self.name = name
        first = next(model.parameters())
        self.device: torch.device = first.device
        self.dtype: torch.dtype = first.dtype
        config = model.config
        self.model_type: str = getattr(config, "model_type", "")
        self._patch = _patch_size(config)
        # Plain and hybrid DPT rebuild the token grid as a square, so they need square input.
        self._needs_square = self.model_type == "dpt" and (
            getattr(config, "backbone_config", None) is None or bool(getattr(config, "is_hybrid", False))
        )
        self._metric = self.model_type in _METRIC_MODEL_TYPES or (
            getattr(config, "depth_estimation_type", "relative") == "metric"
        )

    @classmethod
    def from_model(
        cls,
        model: Any,
        processor_config: Mapping[str, Any] | Any | None = None,
        *,
        device: Any = None,
        dtype: Any = None,
        name: str = "in-memory model",
    ) -> "DepthEstimator":
        """Wrap an already built depth model (e.g. a tiny random one in tests).

        `processor_config` is a preprocessor-config dict or an image processor; None uses the
        architecture's hub defaults. The model moves to `device`/`dtype` only when given.
        """
        if device is not None or dtype is not None:
            model = model.to(device=device, dtype=dtype)
        model_type = getattr(model.config, "model_type", "")
        return cls(model, DepthPreprocessing.from_config(processor_config, model_type), name=name)

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the model sees for a frame of this size."""
        pre = self.preprocessing
        multiple = math.lcm(pre.ensure_multiple_of, self._patch)
        target_h, target_w = pre.size
        if target_h <= 0 or target_w <= 0:
            scale_h = scale_w = 1.0
        else:
            scale_h, scale_w = target_h / height, target_w / width
            if pre.keep_aspect_ratio:
                # Scale as little as possible (the transformers DPT processor rule).
                if abs(1 - scale_w) < abs(1 - scale_h):
                    scale_h = scale_w
                else:
                    scale_w = scale_h
        new_h, new_w = _snap(scale_h * height, multiple), _snap(scale_w * width, multiple)
        if self._needs_square and new_h != new_w:
            side = _snap(max(target_h, target_w) if target_h > 0 else max(height, width), multiple)
            new_h = new_w = side
        return new_h, new_w

    def pixel_values(self, image: np.ndarray) -> Any:
        """The normalised model input (1, 3, h, w) for one frame array."""
        import torch
        import torch.nn.functional as F

        frame = _check_frame(image)
        pre = self.preprocessing
        x = torch.from_numpy(frame).to(self.device).permute(2, 0, 1).unsqueeze(0)
        top = 255.0
        if pre.rescale_factor is not None:
            x = x * pre.rescale_factor
            top = 255.0 * pre.rescale_factor
        size = self.input_size(frame.shape[0], frame.shape[1])
        if size != tuple(frame.shape[:2]):
            if pre.resample == "nearest":
                x = F.interpolate(x, size=size, mode="nearest")
            else:
                # Antialiased bicubic/bilinear follows PIL's filters, which the hub processors use.
                x = F.interpolate(x, size=size, mode=pre.resample, align_corners=False, antialias=True)
            # PIL resamples 8-bit images, so overshoot is clipped there too.
            x = x.clamp(0.0, top)
        if pre.mean is not None and pre.std is not None:
            mean = torch.tensor(pre.mean, device=self.device).view(1, 3, 1, 1)
            std = torch.tensor(pre.std, device=self.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x.to(self.dtype).contiguous()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Relative inverse depth, float32 (H, W), larger = nearer, for a float32 (H, W, 3)
        RGB 0..255 frame array."""
        import torch
        import torch.nn.functional as F

        height, width = image.shape[:2]
        with torch.inference_mode():
            x = self.pixel_values(image)
            out = self.model(pixel_values=x).predicted_depth
            depth = out.reshape(1, 1, out.shape[-2], out.shape[-1]).float()
            if self._metric:
                depth = 1.0 / depth.clamp_min(1e-6)
            if depth.shape[-2:] != (height, width):
                depth = F.interpolate(depth, size=(height, width), mode="bicubic", align_corners=False)
            return depth[0, 0].cpu().numpy().astype(np.float32, copy=False)

    __call__ = predict

    def __repr__(self) -> str:
        return f"DepthEstimator({self.name!r}, {self.model_type}, device={self.device}, dtype={self.dtype})"


def _patch_size(config: Any) -> int:
    backbone = getattr(config, "backbone_config", None)
    if backbone is not None and getattr(backbone, "patch_size", None):
        patch = backbone.patch_size
    else:
        patch = getattr(config, "patch_size", 1) or 1
    if isinstance(patch, (tuple, list)):
        patch = patch[0]
    return int(patch)


def _check_frame(image: np.ndarray) -> np.ndarray:
    frame = np.asarray(image)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"depth prediction needs an (H, W, 3) RGB frame array, got shape {frame.shape}")
    return np.ascontiguousarray(frame, dtype=np.float32)


def resolve_depth_algorithm(algorithm: str) -> tuple[str, bool]:
    """The hub id or folder a `depth_algorithm` value names, and whether it is a local folder.

    Known short names map to hub ids; an existing path is a local folder; a missing path shaped
    like a hub id ("owner/name") is a hub id; any other value is a (missing) local folder.
    """
    value = algorithm.strip()
    if value.lower() in DEPTH_ALGORITHMS:
        return DEPTH_ALGORITHMS[value.lower()], False
    path = Path(value).expanduser()
    if path.exists():
        return str(path), True
    if _HUB_ID.match(value) and ".." not in value:
        return value, False
    return os.path.abspath(path), True


def load_depth_estimator(
    algorithm: str = DEFAULT_DEPTH_ALGORITHM,
    *,
    device: Any = None,
    dtype: Any = None,
    local_files_only: bool = False,
) -> DepthEstimator:
    """Load the depth model a `depth_algorithm` value names (short name, hub id or folder).

    Default device: CUDA in float16 when available, else MPS or the CPU in float32. With
    `local_files_only` a hub id is looked up only in the local Hugging Face cache (without it,
    an offline machine spends some seconds on connection retries before failing).
    Raises ModelError (one line: which model, why, how to fix) when it cannot be loaded.
    """
    import torch

    if not algorithm or not algorithm.strip():
        raise ModelError(f"depth model could not be loaded: depth_algorithm is empty; {_FIX_LOCAL}")
    source, is_local = resolve_depth_algorithm(algorithm)
    label = repr(algorithm) if source == algorithm else f"{algorithm!r} ({source})"
    fix = _FIX_LOCAL if is_local else _FIX_HUB

    def fail(reason: str, exc: BaseException | None = None) -> ModelError:
        error = ModelError(f"depth model {label} could not be loaded: {reason}; {fix}")
        error.__cause__ = exc
        return error

    if is_local:
        path = Path(source)
        if not path.exists():
            known = ", ".join(DEPTH_ALGORITHMS)
            raise fail(f"no such folder, and it is not a hub id (owner/name) or a known name ({known})")
        if not path.is_dir():
            raise fail("it is a file, not a model folder")
        if not (path / "config.json").is_file():
            raise fail("the folder has no config.json (save the model with save_pretrained)")

    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    device = torch.device(device)
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32

    from transformers import AutoModelForDepthEstimation

    try:
        model = AutoModelForDepthEstimation.from_pretrained(
            source, dtype=dtype, local_files_only=local_files_only
        )
    except OSError as exc:
        if is_local:
            raise fail(f"the folder holds no readable model ({_brief(exc)})", exc) from exc
        raise fail(
            f"not in the local Hugging Face cache and it could not be downloaded ({_brief(exc)})", exc
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise fail(f"not a supported depth-estimation model ({_brief(exc)})", exc) from exc
    except Exception as exc:  # noqa: BLE001 - safetensors/torch raise assorted types for bad weights
        raise fail(f"its weights could not be read ({type(exc).__name__}: {_brief(exc)})", exc) from exc

    try:
        processor_config = _read_processor_config(source, is_local, local_files_only)
    except (OSError, ValueError) as exc:
        raise fail(f"its preprocessor_config.json could not be read ({_brief(exc)})", exc) from exc
    try:
        model = model.to(device)
    except Exception as exc:  # noqa: BLE001 - e.g. CUDA out of memory, no such device
        raise fail(f"it could not be moved to {device} ({_brief(exc)})", exc) from exc
    return DepthEstimator.from_model(model, processor_config, name=algorithm)


def _read_processor_config(source: str, is_local: bool, local_files_only: bool) -> dict | None:
    """The preprocessor config dict, or None when the model has none (defaults apply)."""
    if is_local:
        file = Path(source) / "preprocessor_config.json"
        if not file.is_file():
            return None
        return json.loads(file.read_text(encoding="utf-8"))
    from transformers.image_processing_utils import ImageProcessingMixin

    try:
        config, _ = ImageProcessingMixin.get_image_processor_dict(source, local_files_only=local_files_only)
    except OSError:
        return None
    return config


def _brief(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception message, shortened to keep the error on one line."""
    text = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_depth(inverse_depth: np.ndarray) -> np.ndarray:
    """Min-max normalise relative inverse depth to d in [0, 1], near = 1 (A-4).

    The range comes from the finite values; non-finite values then count as far (d = 0), as in
    `deforge.motion.warp3d.depth_to_z`. A constant map (range within 1e-6 of its magnitude)
    carries no depth and becomes all 0.5 (a mid-grey saved map).
    """
    values = np.asarray(inverse_depth, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.full(values.shape, 0.5, dtype=np.float32)
    lo = float(values[finite].min())
    hi = float(values[finite].max())
    if hi - lo <= 1e-6 * max(1.0, abs(lo), abs(hi)):
        return np.full(values.shape, 0.5, dtype=np.float32)
    d = np.where(finite, (np.where(finite, values, lo) - lo) / (hi - lo), 0.0)
    return np.clip(d, 0.0, 1.0).astype(np.float32)


def depth_map_name(timestring: str, frame: int) -> str:
    """The file name of a saved depth map: `{timestring}_depth_{frame:05}.png` (spec 4.4)."""
    return f"{timestring}_depth_{frame:05}.png"


def save_depth_map(path: str | os.PathLike[str], d: np.ndarray) -> Path:
    """Write a normalised depth map (d in [0, 1], near = 1) as an 8-bit greyscale PNG, white =
    near, atomically (a temporary file in the same folder, then os.replace). Values are scaled
    by 255 and truncated, as the original does. Returns the path written."""
    from PIL import Image

    target = Path(path)
    values = np.asarray(d, dtype=np.float32)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.ndim != 2:
        raise ValueError(f"a depth map must be (H, W), got shape {values.shape}")
    grey = (np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)

    # Not mkstemp: its 0600 mode would survive os.replace; "xb" gives the usual umask mode.
    temp = temporary_path(target)
    try:
        with open(temp, "xb") as handle:
            Image.fromarray(grey).save(handle, format="PNG")
        os.replace(temp, target)
    except OSError as exc:
        try:
            temp.unlink()
        except OSError:
            pass
        raise OutputError(f"cannot write depth map {target}: {exc.strerror or exc}") from exc
    return target
