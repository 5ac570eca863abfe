"""Prompt series (P-1) and weighted sub-prompts (P-2), against the conformance vectors."""

from __future__ import annotations

import pytest

from conftest import conformance_cases, float_close
from deforge.plan import compute_plan
from deforge.prompts import prompt_series, weighted_prompt_at


@pytest.mark.parametrize("case", conformance_cases("prompts.json", "series"))
def test_prompt_series(case):
    assert prompt_series(case["prompts"], case["max_frames"]) == case["expected_cond"]
    assert prompt_series(case.get("neg_prompts", ""), case["max_frames"]) == case["expected_uncond"]


@pytest.mark.parametrize("case", conformance_cases("prompts.json", "series"))
def test_plan_prompt_columns_follow_the_series(case):
    plan = compute_plan({"animation_mode": "2D", "max_frames": case["max_frames"], "prompts": case["prompts"],
                         "neg_prompts": case.get("neg_prompts", "")}, seed=1)
    rows = list(plan.rows())
    assert [r["prompt"] for r in rows] == case["expected_cond"]
    assert [r["negative_prompt"] for r in rows] == case["expected_uncond"]


def _pairs_close(actual, expected):
    return len(actual) == len(expected) and all(
        a[0] == e[0] and float_close(a[1], e[1]) for a, e in zip(actual, expected))


@pytest.mark.parametrize("case", conformance_cases("prompts.json", "weighted"))
def test_weighted_sub_prompts(case):
    positive, negative = weighted_prompt_at(case["text"], case["frame"], normalize=case["normalize"])
    assert _pairs_close(positive, case["expected_positive"]), positive
    assert _pairs_close(negative, case["expected_negative"]), negative


def test_negative_weights_and_neg_prompts_are_both_applied():
    plan = compute_plan({"animation_mode": "2D", "max_frames": 3, "prompt_weighting": True,
                         "prompts": {"0": "a cat:2 a dog:-1"}, "neg_prompts": "blurry"}, seed=3)
    cond = plan.conditioning(1)
    assert cond.positive == (("a cat", 2.0),)
    assert cond.negative == (("blurry", 1.0), ("a dog", 1.0))


def test_backtick_weights_vary_per_frame():
    plan = compute_plan({"animation_mode": "2D", "max_frames": 6, "prompt_weighting": True,
                         "prompts": {"0": "eggs:`cos(6.28*t/10)`, bacon:`-cos(6.28*t/10)`"}, "neg_prompts": ""}, seed=0)
    assert plan.conditioning(0).positive[0][0] == "eggs"
    assert plan.conditioning(5).positive[0][0] == ", bacon"
    assert plan.conditioning(5).negative[0][0] == "eggs"


def test_weighting_off_keeps_colons_literal():
    plan = compute_plan({"animation_mode": "2D", "max_frames": 2, "prompts": {"0": "time 12:30"}, "neg_prompts": ""}, seed=0)
    assert plan.conditioning(0).positive == (("time 12:30", 1.0),)
    assert plan.conditioning(0).negative == ()
