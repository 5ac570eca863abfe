"""Tiny models for the generator tests: pipelines built in code, diffusers folders, and single
checkpoint files in the original LDM (CompVis / Stability) key layout.

The LDM writer maps diffusers module names back to the names real .ckpt/.safetensors files use
(`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.text_model.*`,
`conditioner.embedders.{0,1}.*` for SDXL), so that diffusers' own single-file loader reads them
exactly as it reads a downloaded checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deforge.generate.tiny import build_tiny_sd, build_tiny_sdxl, tiny_tokenizer

__all__ = [
    "build_tiny_sd",
    "build_tiny_sdxl",
    "tiny_tokenizer",
    "ldm_state_dict",
    "save_folder",
    "write_single_file",
]


def save_folder(pipe, folder: Path) -> Path:
    """pipe.save_pretrained(folder) with safetensors weights; returns the folder."""
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


# -- UNet ---------------------------------------------------------------------------------------


def _resnet_unet(name: str) -> str:
    for new, old in (
        ("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
        ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"),
    ):  # fmt: skip
        if name.startswith(new + "."):
            return old + name[len(new) :]
    raise KeyError(name)


def _unet_key(key: str, layers: int, has_attention_up: list[bool]) -> str:
    """The LDM name of one diffusers UNet parameter."""
    parts = key.split(".")
    fixed = {
        "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
        "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
        "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
    }  # fmt: skip
    for prefix, target in fixed.items():
        if key.startswith(prefix + "."):
            return target + key[len(prefix) :]
    if parts[0] == "down_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.i.downsamplers.0.conv.*
            return f"input_blocks.{(level + 1) * (layers + 1)}.0.op." + ".".join(parts[5:])
        index, rest = int(parts[3]), ".".join(parts[4:])
        block = 1 + level * (layers + 1) + index
        return f"input_blocks.{block}.0.{_resnet_unet(rest)}" if kind == "resnets" else f"input_blocks.{block}.1.{rest}"
    if parts[0] == "up_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":  # the upsampler follows the resnet (and attention) of the last layer
            slot = 2 if has_attention_up[level] else 1
            return f"output_blocks.{level * (layers + 1) + layers}.{slot}.conv." + ".".join(parts[5:])
        index, rest = int(parts[3]), ".".join(parts[4:])
        block = level * (layers + 1) + index
        return (
            f"output_blocks.{block}.0.{_resnet_unet(rest)}" if kind == "resnets" else f"output_blocks.{block}.1.{rest}"
        )
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "attentions":
            return f"middle_block.1.{rest}"
        return f"middle_block.{2 * index}.{_resnet_unet(rest)}"
    raise KeyError(key)


def _unet_ldm(unet) -> dict[str, torch.Tensor]:
    layers = unet.config.layers_per_block
    attention_up = ["CrossAttn" in kind for kind in unet.config.up_block_types]
    return {"model.diffusion_model." + _unet_key(k, layers, attention_up): v for k, v in unet.state_dict().items()}


# -- VAE ----------------------------------------------------------------------------------------


def _vae_key(key: str, levels: int) -> str:
    parts = key.split(".")
    side = parts[0]
    if side in ("quant_conv", "post_quant_conv"):
        return key
    rest = ".".join(parts[1:])
    if rest.startswith("conv_norm_out."):
        return f"{side}.norm_out." + rest[len("conv_norm_out.") :]
    if rest.startswith(("conv_in.", "conv_out.")):
        return key
    inner = parts[1]
    if inner in ("down_blocks", "up_blocks"):
        level = int(parts[2])
        ldm_level = level if inner == "down_blocks" else levels - 1 - level
        group = "down" if inner == "down_blocks" else "up"
        if parts[3] == "resnets":
            tail = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.{group}.{ldm_level}.block.{parts[4]}.{tail}"
        sampler = "downsample" if inner == "down_blocks" else "upsample"  # {down,up}samplers.0.conv.*
        return f"{side}.{group}.{ldm_level}.{sampler}.conv." + ".".join(parts[6:])
    if inner == "mid_block":
        if parts[2] == "resnets":
            tail = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.mid.block_{int(parts[3]) + 1}.{tail}"
        names = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
        module, tail = parts[4], parts[-1]
        return f"{side}.mid.attn_1.{names[module]}.{tail}"
    raise KeyError(key)


def _vae_ldm(vae) -> dict[str, torch.Tensor]:
    levels = len(vae.config.block_out_channels)
    out = {}
    for key, value in vae.state_dict().items():
        ldm = _vae_key(key, levels)
        if ".mid.attn_1." in ldm and ldm.endswith(".weight") and value.ndim == 2:
            value = value[:, :, None, None]  # the LDM attention uses 1x1 convolutions
        out["first_stage_model." + ldm] = value
    return out


# -- text encoders --------------------------------------------------------------------------------


def _clip_ldm(text_encoder, prefix: str) -> dict[str, torch.Tensor]:
    """CLIP-L layout: transformers names under `prefix` + "text_model." (transformers 5 dropped that
    level from CLIPTextModel's own names; real checkpoints have it)."""
    out = {}
    for key, value in text_encoder.state_dict().items():
        name = key if key.startswith("text_model.") else "text_model." + key
        out[prefix + name] = value
    return out


def _open_clip_ldm(text_encoder, prefix: str) -> dict[str, torch.Tensor]:
    """OpenCLIP layout (SD 2.x / SDXL's second encoder): fused q/k/v, resblocks, ln_final."""
    sd = {k.removeprefix("text_model."): v for k, v in text_encoder.state_dict().items()}
    out = {
        prefix + "token_embedding.weight": sd["embeddings.token_embedding.weight"],
        prefix + "positional_embedding": sd["embeddings.position_embedding.weight"],
        prefix + "ln_final.weight": sd["final_layer_norm.weight"],
        prefix + "ln_final.bias": sd["final_layer_norm.bias"],
    }
    if "text_projection.weight" in sd:
        out[prefix + "text_projection"] = sd["text_projection.weight"].T.contiguous()
    layers = text_encoder.config.num_hidden_layers
    for i in range(layers):
        src, dst = f"encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.in_proj_{kind}"] = torch.cat([sd[src + f"self_attn.{p}_proj.{kind}"] for p in "qkv"])
            out[dst + f"attn.out_proj.{kind}"] = sd[src + f"self_attn.out_proj.{kind}"]
            out[dst + f"ln_1.{kind}"] = sd[src + f"layer_norm1.{kind}"]
            out[dst + f"ln_2.{kind}"] = sd[src + f"layer_norm2.{kind}"]
            out[dst + f"mlp.c_fc.{kind}"] = sd[src + f"mlp.fc1.{kind}"]
            out[dst + f"mlp.c_proj.{kind}"] = sd[src + f"mlp.fc2.{kind}"]
    return out


def ldm_state_dict(pipe, *, open_clip: bool = False) -> dict[str, torch.Tensor]:
    """The whole pipeline as one state dict in the original LDM layout.

    SD 1.x: CLIP text encoder under cond_stage_model.transformer; open_clip=True writes it in the
    SD 2.x OpenCLIP layout (cond_stage_model.model). SDXL pipelines: conditioner.embedders.0/1.
    """
    state = {**_unet_ldm(pipe.unet), **_vae_ldm(pipe.vae)}
    if getattr(pipe, "text_encoder_2", None) is not None:
        state.update(_clip_ldm(pipe.text_encoder, "conditioner.embedders.0.transformer."))
        state.update(_open_clip_ldm(pipe.text_encoder_2, "conditioner.embedders.1.model."))
    elif open_clip:
        state.update(_open_clip_ldm(pipe.text_encoder, "cond_stage_model.model."))
    else:
        state.update(_clip_ldm(pipe.text_encoder, "cond_stage_model.transformer."))
    return {k: v.detach().contiguous().clone() for k, v in state.items()}


def write_single_file(pipe, path: Path, **kwargs) -> Path:
    """Write the pipeline as one .safetensors or .ckpt ({"state_dict": ...}) file."""
    state = ldm_state_dict(pipe, **kwargs)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "global_step": 0}, str(path))
    return path
