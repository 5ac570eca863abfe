"""The diffusers generator with tiny random-weight models (64x64, CPU)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from fixtures_models import build_tiny_sd, build_tiny_sdxl, save_folder, write_single_file

from deforge.errors import ModelError
from deforge.generate.base import Conditioning, GenerationRequest, GenerationResult, Generator
from deforge.generate.diffusers_backend import DiffusersGenerator, denoise_strength, load_generator, steps_to_run
from deforge.generate.masks import overlay_mask
from deforge.generate.samplers import SAMPLERS

CAT = Conditioning.plain("a cat", "ugly")


TORCH_THREADS = 2  # see conftest: bit-exact comparisons need a fixed thread count


@pytest.fixture(scope="module")
def sd() -> DiffusersGenerator:
    return DiffusersGenerator(build_tiny_sd())


@pytest.fixture(scope="module")
def xl() -> DiffusersGenerator:
    return DiffusersGenerator(build_tiny_sdxl())


@pytest.fixture(scope="module")
def init() -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:64]
    return np.stack([xx * 4.0, yy * 4.0, (xx + yy) * 2.0], axis=-1).astype(np.float32)


def req(**kwargs) -> GenerationRequest:
    values = {"conditioning": CAT, "seed": 7, "width": 64, "height": 64, "steps": 4, "sampler": "euler"}
    return GenerationRequest(**{**values, **kwargs})


class UnetCalls:
    """Counts UNet evaluations and records their batch sizes."""

    def __init__(self, unet):
        self.batches: list[int] = []
        self._handle = unet.register_forward_hook(lambda module, args, out: self.batches.append(args[0].shape[0]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def _one_line_model_error(call) -> str:
    with pytest.raises(ModelError) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


# -- the interface and every sampler -----------------------------------------------------------------


def test_is_a_generator(sd):
    assert isinstance(sd, Generator)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_text_to_image_and_image_to_image(sd, init, sampler):
    txt = sd.generate(req(sampler=sampler))
    img = sd.generate(req(sampler=sampler, init_image=init, strength=0.5))
    for result, steps in ((txt, 4), (img, 2)):
        assert isinstance(result, GenerationResult) and result.steps_run == steps
        assert result.image.shape == (64, 64, 3) and result.image.dtype == np.float32
        assert np.isfinite(result.image).all() and 0.0 <= result.image.min() and result.image.max() <= 255.0


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m", "heun"])
def test_sdxl_runs_text_to_image_image_to_image_and_masks(xl, init, sampler):
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0
    for kwargs in ({}, {"init_image": init, "strength": 0.5}, {"init_image": init, "strength": 0.5, "mask": mask}):
        result = xl.generate(req(sampler=sampler, **kwargs))
        assert result.image.shape == (64, 64, 3) and np.isfinite(result.image).all()


def test_same_request_twice_gives_the_same_image(sd, xl, init):
    for gen in (sd, xl):
        for kwargs in ({}, {"init_image": init, "strength": 0.4}):
            a = gen.generate(req(sampler="euler_ancestral", **kwargs)).image
            b = gen.generate(req(sampler="euler_ancestral", **kwargs)).image
            assert np.array_equal(a, b)
            c = gen.generate(req(sampler="euler_ancestral", seed=8, **kwargs)).image
            assert not np.array_equal(a, c)


@pytest.mark.parametrize("sampler", ["dpm2_ancestral", "dpmpp_2s_a", "dpmpp_2m_sde", "lcm", "tcd"])
def test_stochastic_samplers_draw_only_from_the_seed(sd, sampler):
    first = sd.generate(req(sampler=sampler)).image
    torch.manual_seed(12345)  # the global generator must not matter
    assert np.array_equal(first, sd.generate(req(sampler=sampler)).image)


def test_a_call_is_the_bare_pipeline_call(sd, init):
    """No hidden work: the same prompt, seed and sampler through diffusers directly gives the same bits."""
    ours = sd.generate(req(sampler="dpmpp_2m", scale=7.0)).image
    bare = sd.txt2img(
        prompt="a cat", negative_prompt="ugly", num_inference_steps=4, guidance_scale=7.0, height=64, width=64,
        generator=torch.Generator().manual_seed(7), output_type="np",
    ).images[0]  # fmt: skip
    assert np.allclose(ours, bare * 255.0, atol=1e-3)
    ours = sd.generate(req(sampler="dpmpp_2m", init_image=init, strength=0.25, steps=8)).image
    bare = sd.img2img(
        prompt="a cat", negative_prompt="ugly", image=torch.from_numpy(init.transpose(2, 0, 1) / 255.0).float()[None],
        strength=denoise_strength(6, 8), num_inference_steps=8, guidance_scale=7.0,
        generator=torch.Generator().manual_seed(7), output_type="np",
    ).images[0]  # fmt: skip
    assert np.allclose(ours, bare * 255.0, atol=1e-3)


# -- strength, steps and guidance --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strength", "steps", "expected"),
    [(0.8, 50, 10), (0.9, 50, 5), (0.65, 50, 17), (0.0, 50, 50), (1.0, 50, 0), (0.5, 25, 12), (0.3, 10, 7),
     (0.1, 10, 9), (0.65, 80, 28), (0.35, 20, 13), (0.7, 50, 15)],
)  # fmt: skip
def test_steps_to_run_is_g1(strength, steps, expected):
    assert steps_to_run(strength, steps) == expected


def test_denoise_strength_makes_diffusers_run_exactly_that_many_steps():
    for steps in range(1, 201):
        for n in range(steps + 1):
            d = denoise_strength(n, steps)
            assert 0.0 < d <= 1.0 or n == 0
            assert min(int(steps * d), steps) == n  # diffusers' get_timesteps


@pytest.mark.parametrize(("strength", "steps", "runs"), [(0.8, 50, 10), (0.65, 20, 7), (0.3, 10, 7)])
def test_image_to_image_runs_floor_one_minus_strength_times_steps(sd, init, strength, steps, runs):
    with UnetCalls(sd.img2img.unet) as calls:
        result = sd.generate(req(init_image=init, strength=strength, steps=steps))
    assert result.steps_run == runs and len(calls.batches) == runs


def test_strength_one_returns_the_init_and_strength_zero_ignores_it(sd, init):
    with UnetCalls(sd.img2img.unet) as calls:
        kept = sd.generate(req(init_image=init, strength=1.0))
    assert kept.steps_run == 0 and not calls.batches and np.array_equal(kept.image, init)
    plain = sd.generate(req())
    assert np.array_equal(sd.generate(req(init_image=init, strength=0.0)).image, plain.image)


def test_scale_one_skips_the_unconditional_pass(sd):
    with UnetCalls(sd.img2img.unet) as calls:
        sd.generate(req(scale=1.0, steps=2))
        sd.generate(req(scale=7.0, steps=2))
    assert calls.batches == [1, 1, 2, 2]


def test_init_image_of_another_size_is_resized(sd, init):
    small = init[::2, ::2]
    assert sd.generate(req(init_image=small, strength=0.5)).image.shape == (64, 64, 3)


# -- masks ------------------------------------------------------------------------------------------


def _half_mask() -> np.ndarray:
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0  # left half white: keep
    return mask


@pytest.mark.parametrize("which", ["sd", "xl"])
@pytest.mark.parametrize("sampler", ["euler_ancestral", "ddim", "heun", "dpmpp_2m"])
def test_mask_holds_the_white_area_at_the_init_latents(request, init, which, sampler):
    """Bound 0: after the last step the kept latents are written from the init latents."""
    gen: DiffusersGenerator = request.getfixturevalue(which)
    mask = _half_mask()
    mask[:, 40:48] = 0.5  # grey: held early, released before the end
    job = req(sampler=sampler, init_image=init, strength=0.3, steps=8, mask=mask)
    latents = gen.final_latents(job)
    pixels = torch.from_numpy(init.transpose(2, 0, 1) / 255.0).float()[None]
    init_latents = gen._encode_init(pixels, torch.Generator().manual_seed(job.seed))
    assert torch.equal(latents[..., :3], init_latents[..., :3])  # latent columns 0-2: white
    assert not torch.allclose(latents[..., 5], init_latents[..., 5], atol=1e-3)  # grey
    assert not torch.allclose(latents[..., 7:], init_latents[..., 7:], atol=1e-3)  # black


def test_mask_with_overlay_keeps_white_pixels_and_repaints_black(sd, init):
    """With a random-weight VAE the decoder mixes the whole latent grid (mid-block attention and
    GroupNorm statistics), so held latents alone cannot pin decoded pixels; the original pairs the
    latent mask with the overlay paste-back (on by default), which is exact. Bound for white
    pixels: 1e-4, float32 rounding of init * 1 + generated * 0. Black pixels must change."""
    mask = _half_mask()
    out = sd.generate(req(init_image=init, strength=0.3, steps=8, mask=mask, overlay_mask=overlay_mask(mask, 0)))
    assert np.abs(out.image[:, :32] - init[:, :32]).max() <= 1e-4
    assert np.abs(out.image[:, 32:] - init[:, 32:]).mean() > 5.0


def test_an_all_black_mask_equals_no_mask(sd, init):
    """The masked path encodes the init exactly as the pipeline does (same draws from the seed)."""
    plain = sd.generate(req(init_image=init, strength=0.3, steps=8, sampler="euler_ancestral")).image
    black = np.zeros((64, 64), np.float32)
    masked = sd.generate(req(init_image=init, strength=0.3, steps=8, sampler="euler_ancestral", mask=black)).image
    assert np.array_equal(plain, masked)


# -- conditioning -----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["sd", "xl"])
def test_short_prompts_encode_as_the_pipeline_does(request, which):
    gen: DiffusersGenerator = request.getfixturevalue(which)
    ours = gen.encode(CAT)
    theirs = gen.txt2img.encode_prompt(
        prompt="a cat", device=torch.device("cpu"), num_images_per_prompt=1, do_classifier_free_guidance=True,
        negative_prompt="ugly",
    )  # fmt: skip
    assert torch.equal(ours.prompt_embeds, theirs[0]) and torch.equal(ours.negative_prompt_embeds, theirs[1])
    if which == "xl":
        assert torch.equal(ours.pooled_prompt_embeds, theirs[2])
        assert torch.equal(ours.negative_pooled_prompt_embeds, theirs[3])


@pytest.mark.parametrize("which", ["sd", "xl"])
def test_weighted_prompt_is_the_weighted_sum_of_its_parts(request, which):
    gen: DiffusersGenerator = request.getfixturevalue(which)
    mixed = gen.encode(Conditioning((("a cat", 0.7), ("a dog", 0.3)), (("blurry", 2.0), ("dark", -0.5))))
    part = lambda text: gen.encode(Conditioning(((text, 1.0),), ((text, 1.0),)))  # noqa: E731
    cat, dog, blurry, dark = (part(t) for t in ("a cat", "a dog", "blurry", "dark"))
    assert torch.allclose(mixed.prompt_embeds, 0.7 * cat.prompt_embeds + 0.3 * dog.prompt_embeds, atol=1e-6)
    expected_negative = 2.0 * blurry.negative_prompt_embeds - 0.5 * dark.negative_prompt_embeds
    assert torch.allclose(mixed.negative_prompt_embeds, expected_negative, atol=1e-6)
    if which == "xl":
        expected = 0.7 * cat.pooled_prompt_embeds + 0.3 * dog.pooled_prompt_embeds
        assert torch.allclose(mixed.pooled_prompt_embeds, expected, atol=1e-6)


def test_an_unchanged_prompt_calls_no_text_encoder(sd):
    conditioning = Conditioning.plain("a lighthouse at dusk", "low quality")
    calls = []
    handle = sd.img2img.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        sd.generate(req(conditioning=conditioning, steps=1))
        first, misses = len(calls), sd.prompts.misses
        sd.generate(req(conditioning=conditioning, steps=1, seed=99))
        reweighted = Conditioning((("a lighthouse at dusk", 0.5),), (("low quality", 1.0),))
        sd.generate(req(conditioning=reweighted, steps=1))  # same texts, new weights: text cache hit
    finally:
        handle.remove()
    assert first == 2 and len(calls) == first and sd.prompts.misses == misses and sd.prompts.hits > 0


def test_long_prompts_are_chunked_not_cut(sd, xl):
    long_text = " ".join(["ab"] * 40)  # the tiny tokenizer makes one token per character: 119 tokens
    for gen in (sd, xl):
        encoded = gen.encode(Conditioning.plain(long_text, "ugly"))
        assert encoded.prompt_embeds.shape[1] == 154 and encoded.negative_prompt_embeds.shape[1] == 154
        empty = gen.prompts.text("").hidden
        if gen is sd:  # the shorter negative side is padded with the empty prompt
            assert torch.equal(encoded.negative_prompt_embeds[:, 77:], empty)
        assert not torch.equal(encoded.prompt_embeds[:, 77:], empty)
        cut = gen.encode(Conditioning.plain(" ".join(["ab"] * 25), "ugly"))  # exactly the first chunk's text
        assert not torch.equal(encoded.prompt_embeds[:, :77], cut.prompt_embeds)  # EOS placement differs
        assert gen.generate(req(conditioning=Conditioning.plain(long_text, "ugly"), steps=2)).image.shape == (
            64,
            64,
            3,
        )


def test_sdxl_empty_negative_is_zeros_as_in_diffusers(xl):
    encoded = xl.encode(Conditioning.plain("a cat"))
    assert not encoded.negative_prompt_embeds.any() and not encoded.negative_pooled_prompt_embeds.any()
    assert xl.encode(CAT).negative_prompt_embeds.any()


def test_conditioning_override_and_lerp(sd):
    cat = sd.encode(CAT)
    assert np.array_equal(sd.generate(req(conditioning_override=cat)).image, sd.generate(req()).image)
    long = sd.encode(Conditioning.plain(" ".join(["cd"] * 40)))
    half = cat.lerp(long, 0.5)
    assert half.prompt_embeds.shape[1] == 154
    assert torch.allclose(half.prompt_embeds[:, :77], 0.5 * (cat.prompt_embeds + long.prompt_embeds[:, :77]), atol=1e-6)
    assert torch.equal(cat.lerp(long, 0.0).prompt_embeds[:, :77], cat.prompt_embeds)
    assert sd.generate(req(conditioning_override=half, steps=2)).image.shape == (64, 64, 3)


# -- loading ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    pipe = build_tiny_sd()
    return {
        "pipe": pipe,
        "folder": save_folder(pipe, root / "tiny-sd"),
        "safetensors": write_single_file(pipe, root / "tiny.safetensors"),
        "ckpt": write_single_file(pipe, root / "tiny.ckpt"),
        "sd2": write_single_file(pipe, root / "tiny-sd2.safetensors", open_clip=True),
    }


def test_single_files_load_offline_and_match_the_folder(tiny_files, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    folder = tiny_files["folder"]
    reference = load_generator(str(folder)).generate(req(sampler="euler_ancestral")).image
    assert np.array_equal(
        reference, DiffusersGenerator(tiny_files["pipe"]).generate(req(sampler="euler_ancestral")).image
    )
    for key, family in (("safetensors", "sd1"), ("ckpt", "sd1"), ("sd2", "sd2")):
        gen = load_generator(str(tiny_files[key]), model_config=folder)
        assert gen.family == family
        assert np.array_equal(gen.generate(req(sampler="euler_ancestral")).image, reference), key


def test_sdxl_single_file_matches_the_pipeline(tmp_path):
    pipe = build_tiny_sdxl()
    folder = save_folder(pipe, tmp_path / "xl")
    path = write_single_file(pipe, tmp_path / "tiny-xl.safetensors")
    gen = load_generator(str(path), model_config=folder)
    assert gen.xl and gen.family == "sdxl"
    assert np.array_equal(gen.generate(req()).image, DiffusersGenerator(pipe).generate(req()).image)


def test_model_sha256_is_checked(tiny_files):
    path = tiny_files["safetensors"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    load_generator(str(path), model_config=tiny_files["folder"], model_sha256=digest.upper())
    message = _one_line_model_error(
        lambda: load_generator(str(path), model_config=tiny_files["folder"], model_sha256="0" * 64)
    )
    assert "model_sha256" in message and str(path) in message


def test_family_hint_and_prediction_type_override(tiny_files):
    gen = load_generator(
        str(tiny_files["safetensors"]), model_config=tiny_files["folder"], model_family="sd-turbo",
        prediction_type="v_prediction",
    )  # fmt: skip
    scheduler = gen.schedulers.get("euler")
    assert scheduler.config.timestep_spacing == "trailing" and scheduler.config.prediction_type == "v_prediction"


def test_tiny_random_is_deterministic():
    a = load_generator("tiny-random").generate(req()).image
    b = load_generator("tiny-random").generate(req()).image
    assert np.array_equal(a, b)
    assert load_generator("tiny-random-xl").xl


class NotAWeight:
    """Any Python object in a .ckpt: loading it would run arbitrary unpickling code."""


def test_dtype_is_kept_and_both_pipelines_share_the_modules():
    gen = load_generator("tiny-random", dtype="bfloat16")
    assert gen.img2img.unet.dtype == gen.img2img.text_encoder.dtype == torch.bfloat16
    assert gen.txt2img.unet is gen.img2img.unet and gen.txt2img.vae is gen.img2img.vae
    assert np.isfinite(gen.generate(req(steps=2)).image).all()


def _corrupt(path, kind):
    if kind == "garbage":
        path.write_bytes(b"\x00\x01garbage" * 100)
    return path


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "case",
    ["missing_file", "missing_folder", "hub_offline", "garbage_safetensors", "truncated_safetensors",
     "garbage_ckpt", "pickle_ckpt", "wrong_suffix", "folder_without_index", "unknown_family",
     "unknown_prediction", "sha_on_tiny", "cpu_offload_on_cpu"],
)  # fmt: skip
def test_model_errors_are_one_clear_line(case, tmp_path, tiny_files, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    good = tiny_files["safetensors"]
    expect = {"missing_file": "not found", "missing_folder": "not found", "hub_offline": "hub",
              "garbage_safetensors": "safetensors", "truncated_safetensors": "safetensors", "garbage_ckpt": ".ckpt",
              "pickle_ckpt": "refusing", "wrong_suffix": "unsupported", "folder_without_index": "model_index.json",
              "unknown_family": "model_family", "unknown_prediction": "prediction_type", "sha_on_tiny": "model_sha256",
              "cpu_offload_on_cpu": "cpu_offload"}  # fmt: skip
    args: dict = {}
    if case == "missing_file":
        model = str(tmp_path / "nope.safetensors")
    elif case == "missing_folder":
        model = str(tmp_path / "no" / "such" / "folder")
    elif case == "hub_offline":
        model = "deforge-tests/no-such-model"
    elif case == "garbage_safetensors":
        model = str(_corrupt(tmp_path / "bad.safetensors", "garbage"))
    elif case == "truncated_safetensors":
        data = good.read_bytes()
        (tmp_path / "half.safetensors").write_bytes(data[: len(data) // 2])
        model = str(tmp_path / "half.safetensors")
    elif case == "garbage_ckpt":
        model = str(_corrupt(tmp_path / "bad.ckpt", "garbage"))
    elif case == "pickle_ckpt":
        torch.save({"state_dict": {"x": torch.zeros(1)}, "callback": NotAWeight()}, tmp_path / "evil.ckpt")
        model = str(tmp_path / "evil.ckpt")
    elif case == "wrong_suffix":
        (tmp_path / "model.bin").write_bytes(b"x")
        model = str(tmp_path / "model.bin")
    elif case == "folder_without_index":
        (tmp_path / "empty").mkdir()
        model = str(tmp_path / "empty")
    elif case == "unknown_family":
        model, args = str(good), {"model_family": "sd9"}
    elif case == "unknown_prediction":
        model, args = str(good), {"prediction_type": "x0"}
    elif case == "sha_on_tiny":
        model, args = "tiny-random", {"model_sha256": "0" * 64}
    else:
        model, args = "tiny-random", {"cpu_offload": True, "device": "cpu"}
    message = _one_line_model_error(lambda: load_generator(model, **args))
    assert expect[case] in message, message
    if case.startswith(("missing", "garbage", "truncated", "pickle", "wrong")):
        assert model in message


def test_unknown_sampler_in_a_request_is_a_model_error(sd):
    assert "dpmpp_2m" in _one_line_model_error(lambda: sd.generate(req(sampler="warp_speed")))


def test_out_of_memory_becomes_a_model_error_naming_the_memory_settings(monkeypatch):
    gen = DiffusersGenerator(build_tiny_sd())

    def out_of_memory(**kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(gen, "txt2img", out_of_memory)
    message = _one_line_model_error(lambda: gen.generate(req()))
    assert all(name in message for name in ("cpu_offload", "attention_slicing", "vae_tiling"))
