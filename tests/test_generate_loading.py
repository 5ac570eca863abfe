"""Model families, the shipped config folders and tokenizer, devices and memory options."""

from __future__ import annotations

import pytest
import torch

from deforge.errors import ModelError
from deforge.generate.loading import (
    CONFIGS_DIR,
    FAMILIES,
    MemoryPlan,
    check_family,
    clip_tokenizer,
    detect_family,
    plan_memory,
    resolve_device,
    resolve_dtype,
)

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
SD1 = {
    UNET_IN: (320, 4, 3, 3),
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (77, 768),
}
SD2 = {UNET_IN: (320, 4, 3, 3), "cond_stage_model.model.token_embedding.weight": (49408, 1024)}
SDXL = {
    UNET_IN: (320, 4, 3, 3),
    "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": (77, 768),
    "conditioner.embedders.1.model.positional_embedding": (77, 1280),
}


@pytest.mark.parametrize(
    ("keys", "filename", "family"),
    [
        (SD1, "v1-5-pruned-emaonly.safetensors", "sd1"),
        (SD2, "v2-1_512-ema-pruned.safetensors", "sd2"),
        (SD2, "v2-1_768-ema-pruned.safetensors", "sd2-v"),
        (SD2, "768-v-ema.ckpt", "sd2-v"),
        (SD2, "512-base-ema.ckpt", "sd2"),
        (SD2, "sd_turbo.safetensors", "sd-turbo"),
        (SDXL, "sd_xl_base_1.0.safetensors", "sdxl"),
        (SDXL, "sd_xl_turbo_1.0_fp16.safetensors", "sdxl-turbo"),
    ],
)
def test_family_is_detected_from_keys_and_name(keys, filename, family):
    assert detect_family(keys, filename).name == family


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({**SD1, UNET_IN: (320, 9, 3, 3)}, "input channels"),
        ({UNET_IN: (384, 4, 3, 3), "conditioner.embedders.0.model.text_projection": (1280, 1280)}, "refiner"),
        ({UNET_IN: (320, 4, 3, 3)}, "no text encoder"),
        ({"encoder.layers.0.weight": (4, 4)}, "not a Stable Diffusion"),
    ],
)
def test_unsupported_checkpoints_are_one_line_errors(keys, words):
    with pytest.raises(ModelError) as info:
        detect_family(keys, "model.safetensors")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_family_names():
    assert check_family(None) is None and check_family(" SDXL ").name == "sdxl"
    assert check_family("sd-turbo").scheduler_overrides == {"timestep_spacing": "trailing"}
    with pytest.raises(ModelError, match="model_family"):
        check_family("sd3")


# Parameter counts of the real models: the shipped configs describe exactly these architectures.
REAL_SIZES = {
    "sd1": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd2": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sd2-v": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840},
}


@pytest.mark.parametrize("family", sorted(REAL_SIZES))
def test_shipped_configs_describe_the_real_architectures(family):
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = CONFIGS_DIR / family
    builders = {
        "unet": lambda: UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet")),
        "vae": lambda: AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")),
        "text_encoder": lambda: CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder")),
        "text_encoder_2": lambda: CLIPTextModelWithProjection(
            CLIPTextConfig.from_pretrained(folder / "text_encoder_2")
        ),
    }
    for name, expected in REAL_SIZES[family].items():
        with init_empty_weights():  # meta tensors: no memory, no time
            module = builders[name]()
        assert sum(p.numel() for p in module.parameters()) == expected, (family, name)


def test_every_family_has_a_complete_config_folder():
    for family in FAMILIES.values():
        folder = CONFIGS_DIR / family.config
        names = ["model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "vae/config.json",
                 "text_encoder/config.json", "tokenizer/tokenizer_config.json"]  # fmt: skip
        if family.xl:
            names += ["text_encoder_2/config.json", "tokenizer_2/tokenizer_config.json"]
        for name in names:
            assert (folder / name).is_file(), (family.name, name)


def test_shipped_tokenizer_matches_clip():
    tokenizer = clip_tokenizer()
    assert len(tokenizer) == 49408
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer.pad_token_id == 49407 and clip_tokenizer("!").pad_token_id == 0


def test_device_and_dtype_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32
    assert resolve_dtype(None, torch.device("cuda")) == torch.float16
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ModelError, match="dtype"):
        resolve_dtype("int3", torch.device("cpu"))
    with pytest.raises(ModelError, match="device"):
        resolve_device("warp-drive")


def test_memory_options_are_off_on_cpu_unless_asked():
    assert plan_memory(None, torch.device("cpu"), None, None, None) == MemoryPlan(False, False, False)
    assert plan_memory(None, torch.device("cpu"), None, True, True) == MemoryPlan(False, True, True)
