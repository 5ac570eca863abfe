"""Settings: defaults, loading real and hostile files, errors that name the key and the value."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from conftest import CORPUS_DIR
from deforge.errors import SettingsError
from deforge.plan import compute_plan
from deforge.settings import Settings, load_settings, save_settings, settings_to_dict

NOTEBOOK_FILES = sorted((CORPUS_DIR / "notebook").glob("*.json")) if (CORPUS_DIR / "notebook").exists() else []


def _load_quietly(source):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings(source)
    return settings, [str(w.message) for w in caught]


def test_defaults_are_the_notebook_v071_defaults():
    s = Settings()
    assert (s.W, s.H, s.steps, s.scale, s.sampler, s.seed_behavior) == (512, 512, 50, 7.0, "euler_ancestral", "iter")
    assert s.zoom == "0:(1.04)" and s.translation_x == "0:(10*sin(2*3.14*t/10))"
    assert s.strength == 0.65 and s.diffusion_cadence == 1 and s.color_coherence == "Match Frame 0 LAB"
    assert s.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"


def test_a_file_sets_only_what_differs(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"animation_mode": "2D", "max_frames": 12}))
    s = load_settings(path)
    assert s.animation_mode == "2D" and s.max_frames == 12 and s.steps == 50


def test_save_and_load_round_trip(tmp_path):
    s = load_settings({"animation_mode": "3D", "max_frames": 7, "prompts": {"0": "a", "5": "b"}, "seed": 3})
    save_settings(s, tmp_path / "x.txt")
    assert load_settings(tmp_path / "x.txt") == s


def test_notebook_dump_with_internal_keys_loads(tmp_path):
    dump = settings_to_dict(Settings(animation_mode="2D", max_frames=5, seed=11))
    dump.update({"outdir": "/content/drive/x", "timestring": "20221219130028", "cond_prompts": {"0": "a lake"},
                 "uncond_prompts": {"0": "fog"}, "init_latent": None, "init_sample": None, "init_c": None,
                 "seed_internal": 0, "prompt": "", "mask_sample": None, "init_sample_raw": None})
    del dump["prompts"], dump["neg_prompts"]
    (tmp_path / "d.txt").write_text(json.dumps(dump))
    s, messages = _load_quietly(tmp_path / "d.txt")
    assert s.prompts == {0: "a lake"} and s.neg_prompts == {0: "fog"}
    assert not any("unknown" in m for m in messages)


def test_unknown_keys_give_one_warning_listing_them():
    _, messages = _load_quietly({"foo": 1, "bar": 2, "steps": 10})
    unknown = [m for m in messages if "unknown" in m]
    assert len(unknown) == 1 and "bar" in unknown[0] and "foo" in unknown[0]


def test_non_zero_guidance_scales_warn_that_they_have_no_effect():
    _, messages = _load_quietly({"clip_scale": 1, "colormatch_scale": 2000})
    assert any("not supported" in m and "clip_scale" in m and "colormatch_scale" in m for m in messages)


@pytest.mark.parametrize("raw,fragments", [
    ({"seed_behavior": "sometimes"}, ["seed_behavior", "sometimes"]),
    ({"sampler": "magic"}, ["sampler", "magic", "euler"]),
    ({"steps": "many"}, ["steps", "many"]),
    ({"W": -5}, ["W", "-5"]),
    ({"zoom": "0:(1.0) 5:(2)"}, ["zoom", "column", "0:(1.0) 5:(2)"]),
    ({"animation_mode": "4D"}, ["animation_mode", "4D"]),
])
def test_errors_name_the_key_and_the_value(raw, fragments):
    with pytest.raises(SettingsError) as info:
        compute_plan({"animation_mode": "2D", "max_frames": 3, **raw}, seed=0)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_several_problems_are_reported_together():
    with pytest.raises(SettingsError) as info:
        compute_plan({"animation_mode": "2D", "max_frames": 3, "zoom": "abc", "angle": "0:(", "steps": "x"}, seed=0)
    assert len(info.value.problems) >= 1
    with pytest.raises(SettingsError) as info:
        compute_plan({"animation_mode": "2D", "max_frames": 3, "zoom": "abc", "angle": "0:("}, seed=0)
    assert len(info.value.problems) == 2


def test_bad_json_is_one_line_with_position(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"steps": 10,,}')
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert "line 1" in str(info.value) and "\n" not in str(info.value)


def test_border_warp_loads_as_replicate_with_a_warning():
    s, messages = _load_quietly({"border": "warp"})
    assert s.border == "replicate" and any("border" in m for m in messages)


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=[p.name for p in NOTEBOOK_FILES])
def test_every_notebook_corpus_file_loads_and_plans(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = compute_plan(path, seed=1)
    assert plan.frame_count >= 1
    rows = list(plan.rows()) if plan.frame_count <= 3000 else [plan.row(0), plan.row(plan.frame_count - 1)]
    assert rows[0]["frame"] == 0


def test_seed_behaviour_typo_does_not_override_seed_behavior():
    path = CORPUS_DIR / "notebook" / "music2vid-2d-848f-seed-behaviour-typo.json"
    if not path.exists():
        pytest.skip("corpus absent")
    s, messages = _load_quietly(path)
    assert s.seed_behavior == "iter" and any("seed_behaviour" in m for m in messages)


def test_duplicate_key_file_keeps_the_last_value():
    path = CORPUS_DIR / "notebook" / "helixlocal-mask-2022-09-duplicate-key.json"
    if not path.exists():
        pytest.skip("corpus absent")
    raw_last = [line for line in path.read_text().splitlines() if '"steps"' in line][-1]
    s, messages = _load_quietly(path)
    assert str(s.steps) in raw_last and any("more than once" in m for m in messages)


def test_settings_reference_is_generated_from_the_models():
    from deforge.docs import settings_reference

    doc = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
    assert doc.read_text(encoding="utf-8") == settings_reference(), "run `python -m deforge.docs` to regenerate docs/settings.md"
