"""Tiny random-weight Stable Diffusion pipelines built in code, offline, for tests and demos.

`model: "tiny-random"` (SD 1.x layout) and `model: "tiny-random-xl"` (SDXL layout) use these.
Their images are noise-like: the weights are random. They exist so that every code path can run
in seconds on a CPU without downloading anything. Building is deterministic (seeded), so the
same settings give the same images.
"""

from __future__ import annotations

import torch

TINY_MODELS = ("tiny-random", "tiny-random-xl")

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"

_SD_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "timestep_spacing": "leading",
}


def byte_level_alphabet() -> list[str]:
    """The 256 characters CLIP's byte-level BPE uses for bytes, in CLIP's vocabulary order
    (printable bytes first, then the others shifted above U+0100)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [256 + i for i, _ in enumerate(b for b in range(256) if b not in printable)]
    return [chr(c) for c in printable + shifted]


def tiny_tokenizer(pad_token: str = EOS_TOKEN):
    """A CLIP tokenizer with a 514-token vocabulary (every byte, with and without the end-of-word
    mark, plus the two specials) and no merges: each character becomes one token."""
    from transformers import CLIPTokenizer

    alphabet = byte_level_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], pad_token=pad_token, model_max_length=77)


def _text_config(**extra):
    from transformers import CLIPTextConfig

    values = {
        "vocab_size": 514,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "bos_token_id": 512,
        "eos_token_id": 513,
        "pad_token_id": 513,
        "hidden_act": "quick_gelu",
    }
    return CLIPTextConfig(**{**values, **extra})


def _tiny_vae(scaling_factor: float):
    from diffusers import AutoencoderKL

    # 4 levels so that the latent grid is 1/8 of the image, as in real SD.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling_factor,
    )


def build_tiny_sd(seed: int = 0):
    """A tiny SD 1.x-like StableDiffusionPipeline with random weights (deterministic per seed)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=32,
        )
        vae = _tiny_vae(0.18215)
        text_encoder = CLIPTextModel(_text_config(projection_dim=32))
    pipe = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tiny_tokenizer(),
        unet=unet.eval(),
        scheduler=PNDMScheduler.from_config(_SD_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe


def build_tiny_sdxl(seed: int = 0):
    """A tiny SDXL-like StableDiffusionXLPipeline (two text encoders, pooled and time embeddings)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32 + 48,  # both encoders' hidden states side by side
            transformer_layers_per_block=(1, 2),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=8 * 6 + 48,  # 6 time ids + pooled text
            norm_num_groups=32,
        )
        vae = _tiny_vae(0.13025)
        text_encoder = CLIPTextModel(_text_config(projection_dim=32))
        # A different width from the first encoder, as in real SDXL (768 vs 1280): diffusers'
        # single-file loader tells the two encoders apart by it.
        text_encoder_2 = CLIPTextModelWithProjection(
            _text_config(hidden_size=48, intermediate_size=96, projection_dim=48, hidden_act="gelu")
        )
    scheduler_config = {**_SD_SCHEDULER, "interpolation_type": "linear", "use_karras_sigmas": False}
    pipe = StableDiffusionXLPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=tiny_tokenizer(),
        tokenizer_2=tiny_tokenizer(pad_token="!"),
        unet=unet.eval(),
        scheduler=EulerDiscreteScheduler.from_config(scheduler_config),
        force_zeros_for_empty_prompt=True,
    )
    return pipe


def build_tiny_pipeline(name: str = "tiny-random", seed: int = 0):
    """The tiny pipeline called `name` ("tiny-random" or "tiny-random-xl")."""
    if name == "tiny-random-xl":
        return build_tiny_sdxl(seed)
    return build_tiny_sd(seed)
