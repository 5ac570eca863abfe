"""Depth estimation (A-4, spec 4.4) with tiny random-weight models built in code, offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_depth import (
    DEPTH_ANYTHING_PROCESSOR,
    DPT_PROCESSOR,
    KINDS,
    save_tiny_depth_model,
    tiny_depth_anything,
    tiny_depth_estimator,
    tiny_model,
)
from PIL import Image

from deforge.depth import (
    DEFAULT_DEPTH_ALGORITHM,
    DEPTH_ALGORITHMS,
    DepthEstimator,
    DepthPreprocessing,
    depth_map_name,
    load_depth_estimator,
    normalize_depth,
    resolve_depth_algorithm,
    save_depth_map,
)
from deforge.errors import ModelError, OutputError


def frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A float32 (H, W, 3) RGB 0..255 frame with whole-number values and some structure."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255.0 / max(1, width - 1), ys * 255.0 / max(1, height - 1), np.full(xs.shape, 128.0)], -1)
    noise = rng.integers(-40, 41, size=(height, width, 3))
    return np.clip(np.round(base) + noise, 0, 255).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine the thread
    pool's spin-waiting made this module several times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def estimators(one_torch_thread) -> dict[str, DepthEstimator]:
    return {kind: tiny_depth_estimator(kind) for kind in KINDS}


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("depth_models")
    return {kind: save_tiny_depth_model(root / kind, kind) for kind in KINDS}


# --- prediction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [(48, 64), (64, 48), (37, 53), (9, 200)])
def test_predict_returns_float32_map_at_input_size(estimators, kind, size):
    depth = estimators[kind].predict(frame(*size))
    assert depth.shape == size
    assert depth.dtype == np.float32
    assert np.isfinite(depth).all()
    assert depth.std() > 0


def test_depth_anything_input_is_a_multiple_of_14():
    estimator = DepthEstimator.from_model(tiny_depth_anything(), None)  # hub defaults: 518, x14
    assert estimator.preprocessing.size == (518, 518)
    for height, width in [(48, 64), (512, 512), (576, 1024), (720, 1280), (1000, 333)]:
        h, w = estimator.input_size(height, width)
        assert h % 14 == 0 and w % 14 == 0
    assert estimator.input_size(512, 512) == (518, 518)
    assert estimator.input_size(576, 1024) == (518, 924)  # height fits: its scale is closer to 1


def test_patch_multiple_enforced_even_when_the_processor_config_omits_it():
    config = dict(DEPTH_ANYTHING_PROCESSOR, ensure_multiple_of=1, keep_aspect_ratio=False, size=60)
    estimator = DepthEstimator.from_model(tiny_depth_anything(), config)
    assert estimator.input_size(48, 64) == (56, 56)
    assert estimator.predict(frame(48, 64)).shape == (48, 64)


def test_plain_dpt_always_gets_a_square_input(estimators):
    dpt = estimators["dpt"]
    assert dpt.input_size(48, 64) == (64, 64)
    assert dpt.input_size(1080, 1920) == (64, 64)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [(48, 64), (100, 75), (30, 31)])
def test_pixel_values_match_the_transformers_image_processor(estimators, kind, size):
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    config = DEPTH_ANYTHING_PROCESSOR if kind == "depth-anything" else DPT_PROCESSOR
    kwargs = {k: v for k, v in config.items() if k != "image_processor_type"}
    processor = DPTImageProcessorPil(**kwargs)
    image = frame(*size)
    expected = processor(images=Image.fromarray(image.astype(np.uint8)), return_tensors="pt")["pixel_values"]
    actual = estimators[kind].pixel_values(image)
    assert tuple(actual.shape) == tuple(expected.shape)
    # PIL resamples in 8 bits and treats borders slightly differently; the bulk must agree.
    diff = (actual - expected).abs()
    assert diff.mean().item() < 0.03
    assert torch.quantile(diff.flatten(), 0.9).item() < 0.06


def test_predict_is_deterministic_and_leaves_the_input_alone(estimators):
    image = frame(48, 64)
    before = image.copy()
    first = estimators["depth-anything"].predict(image)
    second = estimators["depth-anything"].predict(image)
    rebuilt = tiny_depth_estimator("depth-anything").predict(image)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, rebuilt)
    np.testing.assert_array_equal(image, before)


def test_predict_accepts_uint8_and_depends_on_the_image(estimators):
    image = frame(48, 64)
    dpt = estimators["dpt"]
    np.testing.assert_array_equal(dpt.predict(image.astype(np.uint8)), dpt.predict(image))
    assert not np.allclose(dpt.predict(image), dpt.predict(frame(48, 64, seed=1)))


def test_predict_rejects_a_non_rgb_array(estimators):
    with pytest.raises(ValueError, match="RGB"):
        estimators["dpt"].predict(np.zeros((48, 64), np.float32))


def test_predict_runs_in_another_dtype_and_still_returns_float32():
    model, processor = tiny_model("depth-anything")
    reference = DepthEstimator.from_model(model, processor).predict(frame(48, 64))
    half = DepthEstimator.from_model(tiny_model("depth-anything")[0], processor, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    depth = half.predict(frame(48, 64))
    assert depth.dtype == np.float32
    assert np.corrcoef(depth.ravel(), reference.ravel())[0, 1] > 0.9


def test_metric_depth_models_are_inverted_so_larger_is_nearer():
    model = tiny_depth_anything(metric=True)
    estimator = DepthEstimator.from_model(model, DEPTH_ANYTHING_PROCESSOR)
    image = frame(56, 56)  # already the model size: no resizing on either side
    with torch.inference_mode():
        metric = model(pixel_values=estimator.pixel_values(image)).predicted_depth[0].numpy()
    np.testing.assert_allclose(estimator.predict(image), 1.0 / metric, rtol=1e-5)


def test_preprocessing_reads_legacy_and_object_configs():
    legacy = DepthPreprocessing.from_config({"size": 384, "image_mean": 0.5, "image_std": 0.5}, "dpt")
    assert legacy.size == (384, 384) and legacy.mean == (0.5, 0.5, 0.5) and legacy.resample == "bicubic"
    plain = DepthPreprocessing.from_config({"do_normalize": False, "resample": 2}, "depth_anything")
    assert plain.mean is None and plain.resample == "bilinear" and plain.ensure_multiple_of == 14

    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    processor = DPTImageProcessorPil(size={"height": 70, "width": 70}, ensure_multiple_of=14, keep_aspect_ratio=True)
    from_object = DepthPreprocessing.from_config(processor, "depth_anything")
    assert from_object.size == (70, 70) and from_object.keep_aspect_ratio and from_object.ensure_multiple_of == 14


# --- loading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_load_from_a_local_folder_offline(saved_models, estimators, kind):
    loaded = load_depth_estimator(str(saved_models[kind]), device="cpu", local_files_only=True)
    assert loaded.device.type == "cpu" and loaded.dtype == torch.float32
    assert loaded.preprocessing == estimators[kind].preprocessing
    image = frame(37, 53)
    np.testing.assert_array_equal(loaded.predict(image), estimators[kind].predict(image))


def test_resolve_names_hub_ids_and_folders(tmp_path):
    assert DEFAULT_DEPTH_ALGORITHM == "depth-anything-v2-small"
    assert resolve_depth_algorithm("depth-anything-v2-small") == ("depth-anything/Depth-Anything-V2-Small-hf", False)
    assert resolve_depth_algorithm("DPT-Large") == (DEPTH_ALGORITHMS["dpt-large"], False)
    assert resolve_depth_algorithm("dpt-hybrid-midas") == ("Intel/dpt-hybrid-midas", False)
    assert resolve_depth_algorithm("someone/some-depth-model") == ("someone/some-depth-model", False)
    assert resolve_depth_algorithm(str(tmp_path)) == (str(tmp_path), True)
    source, is_local = resolve_depth_algorithm("./no/such/folder")
    assert is_local and Path(source).is_absolute()


def _load_error(algorithm: str) -> str:
    with pytest.raises(ModelError) as info:
        load_depth_estimator(algorithm, device="cpu", local_files_only=True)
    message = str(info.value)
    assert "\n" not in message
    assert "use_depth_warping" in message
    return message


def test_missing_folder_is_a_one_line_model_error(tmp_path):
    message = _load_error(str(tmp_path / "nowhere"))
    assert "nowhere" in message and "no such folder" in message


@pytest.mark.parametrize("algorithm", ["depth-anything-v2-small", "someone/not-cached-depth"])
def test_hub_id_not_cached_offline_is_a_one_line_model_error(algorithm):
    message = _load_error(algorithm)
    assert algorithm in message and "cache" in message


def test_corrupt_weights_are_a_one_line_model_error(tmp_path):
    folder = save_tiny_depth_model(tmp_path / "corrupt", "dpt")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    message = _load_error(str(folder))
    assert "corrupt" in message and "weights" in message


def test_folder_without_a_depth_model_is_a_one_line_model_error(tmp_path):
    assert "config.json" in _load_error(str(tmp_path))
    folder = save_tiny_depth_model(tmp_path / "text", "dpt")
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    assert "not a supported depth-estimation model" in _load_error(str(folder))
    assert "empty" in _load_error("  ")


# --- normalisation and saving -------------------------------------------------------------------


def test_normalize_depth_range_and_orientation():
    inverse = np.array([[0.5, 2.0], [8.0, 4.0]], np.float32)
    d = normalize_depth(inverse)
    assert d.dtype == np.float32 and d.shape == inverse.shape
    assert d.min() == 0.0 and d.max() == 1.0
    assert d[1, 0] == 1.0  # largest inverse depth = nearest = 1
    assert d[0, 0] == 0.0
    order = np.argsort(inverse.ravel())
    assert np.all(np.diff(d.ravel()[order]) >= 0)
    np.testing.assert_allclose(d, (inverse - 0.5) / 7.5, rtol=1e-6)


def test_normalize_depth_of_a_predicted_map_is_in_the_unit_range(estimators):
    d = normalize_depth(estimators["depth-anything"].predict(frame(48, 64)))
    assert d.min() == 0.0 and d.max() == 1.0


def test_normalize_depth_constant_and_non_finite_values():
    np.testing.assert_array_equal(normalize_depth(np.full((3, 4), 7.0)), np.full((3, 4), 0.5, np.float32))
    np.testing.assert_array_equal(normalize_depth(np.full((2, 2), np.nan)), np.full((2, 2), 0.5, np.float32))
    d = normalize_depth(np.array([[0.0, np.nan], [2.0, np.inf], [1.0, -np.inf]]))
    np.testing.assert_array_equal(d, np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]], np.float32))


def test_depth_map_name():
    assert depth_map_name("20230101120000", 7) == "20230101120000_depth_00007.png"
    assert depth_map_name("t", 123456) == "t_depth_123456.png"


def test_save_depth_map_writes_an_8bit_png_white_near_and_no_temporary(tmp_path):
    d = np.linspace(0.0, 1.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    target = tmp_path / depth_map_name("ts", 3)
    assert save_depth_map(target, d) == target
    with Image.open(target) as image:
        assert image.format == "PNG" and image.mode == "L" and image.size == (64, 48)
        pixels = np.asarray(image)
    assert pixels[0, 0] == 0 and pixels[-1, -1] == 255
    np.testing.assert_array_equal(pixels, (d * 255).astype(np.uint8))
    save_depth_map(str(target), 1.0 - d)  # overwrite in place
    with Image.open(target) as image:
        assert np.asarray(image)[0, 0] == 255
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_save_depth_map_into_a_missing_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="depth map"):
        save_depth_map(tmp_path / "missing" / "x_depth_00000.png", np.zeros((4, 4), np.float32))
    assert list(tmp_path.iterdir()) == []
