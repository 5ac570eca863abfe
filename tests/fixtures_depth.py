"""Tiny random-weight depth models built in code (no hub access), for tests of depth and 3D.

    from fixtures_depth import tiny_depth_estimator, save_tiny_depth_model

Each builder is deterministic for a given seed and leaves the global torch RNG untouched.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from deforge.depth import DepthEstimator

DEPTH_ANYTHING_PROCESSOR: dict = {
    "image_processor_type": "DPTImageProcessor",
    "do_resize": True,
    "size": {"height": 56, "width": 56},
    "keep_aspect_ratio": True,
    "ensure_multiple_of": 14,
    "resample": 3,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "do_pad": False,
}
"""Depth Anything V2's hub preprocessor config, with a 56 px target instead of 518."""

DPT_PROCESSOR: dict = {
    "image_processor_type": "DPTImageProcessor",
    "do_resize": True,
    "size": {"height": 64, "width": 64},
    "keep_aspect_ratio": False,
    "ensure_multiple_of": 1,
    "resample": 3,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}
"""Intel DPT's hub preprocessor config (square, 0.5/0.5), with a 64 px target instead of 384."""

KINDS = ("depth-anything", "dpt")


def tiny_depth_anything(seed: int = 0, *, metric: bool = False) -> torch.nn.Module:
    """A Depth Anything V2-architecture model (DINOv2 backbone, patch 14), about 0.13 M params."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=14,
        image_size=56,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    extra = {"depth_estimation_type": "metric", "max_depth": 20} if metric else {}
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[16, 16, 16, 16],
        fusion_hidden_size=16,
        head_hidden_size=8,
        **extra,
    )
    return _build(DepthAnythingForDepthEstimation, config, seed)


def tiny_dpt(seed: int = 0) -> torch.nn.Module:
    """A DPT (MiDaS v3-style, plain ViT, patch 8) model, about 0.11 M params."""
    from transformers import DPTConfig, DPTForDepthEstimation

    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=8,
        image_size=64,
        is_hybrid=False,
        neck_hidden_sizes=[16, 16, 16, 16],
        fusion_hidden_size=16,
        backbone_out_indices=[0, 1, 2, 3],
    )
    return _build(DPTForDepthEstimation, config, seed)


def _build(model_class, config, seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config).eval()
        # The default init (std 0.02) shrinks the signal layer by layer and the head's final
        # ReLU then gives a flat (or all-zero) map. Fan-in scaled weights and a positive last
        # bias give positive maps that depend visibly on the image.
        with torch.no_grad():
            for name, param in model.named_parameters():
                if param.ndim > 1 and "embeddings" not in name:
                    param.normal_(0.0, 1.0 / math.sqrt(param[0].numel()))
            head_biases = [p for n, p in model.named_parameters() if n.startswith("head") and n.endswith("bias")]
            head_biases[-1].fill_(1.0)
    return model


def tiny_model(kind: str = "depth-anything", seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """A tiny model of the given kind ("depth-anything" or "dpt") and its preprocessor config."""
    if kind == "depth-anything":
        return tiny_depth_anything(seed), dict(DEPTH_ANYTHING_PROCESSOR)
    if kind == "dpt":
        return tiny_dpt(seed), dict(DPT_PROCESSOR)
    raise ValueError(f"unknown tiny depth model kind {kind!r}; use one of {KINDS}")


def tiny_depth_estimator(kind: str = "depth-anything", seed: int = 0) -> DepthEstimator:
    """A CPU float32 DepthEstimator around a tiny random model; builds in well under a second."""
    model, processor = tiny_model(kind, seed)
    return DepthEstimator.from_model(model, processor, name=f"tiny-{kind}")


def save_tiny_depth_model(folder: str | Path, kind: str = "depth-anything", seed: int = 0) -> Path:
    """Save a tiny model as a hub-style folder (config.json, model.safetensors,
    preprocessor_config.json) that `load_depth_estimator(str(folder))` can load offline."""
    folder = Path(folder)
    model, processor = tiny_model(kind, seed)
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2), encoding="utf-8")
    return folder
