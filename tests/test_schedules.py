"""Keyframe schedules against the conformance vectors (S-1 ... S-10) and error-message checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import conformance_cases, float_close

from deforge.errors import ScheduleError
from deforge.expr import SCHEDULE_NAMES, compile_expression, evaluate_scalar
from deforge.schedule import (
    ScheduleWarning,
    evaluate_schedule,
    evaluate_string_schedule,
    parse_schedule,
    schedule_keyframes,
)


def _run_recording_warnings(fn, *args, **kwargs):
    """(result or the ScheduleError raised, list of ScheduleWarnings emitted)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn(*args, **kwargs)
        except ScheduleError as exc:
            result = exc
    return result, [w for w in caught if issubclass(w.category, ScheduleWarning)]


def _check_case(case: dict, fn, compare) -> None:
    kwargs = {"seed": case["seed"]} if "seed" in case else {}
    result, caught = _run_recording_warnings(
        fn, case["input"], case["max_frames"], setting="test_setting", **kwargs
    )
    if case.get("error"):
        assert isinstance(result, ScheduleError), f"expected an error, got {result!r}"
        return
    assert not isinstance(result, ScheduleError), str(result)
    compare(result, case["expected"])
    if case.get("warning"):
        assert caught, "expected a ScheduleWarning"
    else:
        assert not caught, [str(w.message) for w in caught]


def _compare_floats(actual: np.ndarray, expected: list[float]) -> None:
    assert isinstance(actual, np.ndarray) and actual.dtype == np.float64
    assert len(actual) == len(expected)
    pairs = enumerate(zip(actual.tolist(), expected, strict=True))
    bad = [(i, a, e) for i, (a, e) in pairs if not float_close(a, e)]
    assert not bad, f"(frame, actual, expected): {bad[:5]}"


def _compare_strings(actual: list[str], expected: list[str]) -> None:
    assert actual == expected


@pytest.mark.parametrize("case", conformance_cases("schedules.json"))
def test_schedule_conformance(case: dict) -> None:
    _check_case(case, evaluate_schedule, _compare_floats)


@pytest.mark.parametrize("case", conformance_cases("string_schedules.json"))
def test_string_schedule_conformance(case: dict) -> None:
    _check_case(case, evaluate_string_schedule, _compare_strings)


# Malformed text, and the character the error must point at (its 1-based column is checked).
MALFORMED = [
    ("0:(1), 5:(2) x", "x", "expected ','"),
    ("0:(1)5:(2)", "5", "expected ','"),
    ("0:(1), -5:(2)", "-", "negative"),
    ("0:(1), 5:2", "2", "parentheses"),
    ("0:(1), 5(2)", "(2", "':'"),
    ("0:(1), 5:(sin(t)", "(sin", "unclosed"),
    ("0:(1), 5:(foo + 1)", "foo", "unknown name"),
    ("0:(1),\n  7:(t + bar)", "bar", "unknown name"),
    ("0:(0), 9:(t.real)", "t.real", "attribute"),
    ("0:(0), 9:(t // 2)", "// 2", "//"),
    ("0:(0), 9:(sin(t, 1))", "sin(t, 1)", "argument"),
    ("0:(0), 9:(__import__('os'))", "__import__", "function"),
    ("0:(0), 9:( )", "( )", "empty"),
    ("0:(1), 'max_f - 100':(3)", "max_f - 100", "negative"),
    ("0:(1), 't':(3)", "t'", "unknown name"),
    ("0:(0), 5:(1/(t-6))", "1/(t-6)", "frame 6"),
    ("abc", "abc", "frame number"),
]


@pytest.mark.parametrize(("text", "at", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_error_names_setting_quotes_text_and_points_at_column(text: str, at: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as info:
        evaluate_schedule(text, 10, setting="translation_x")
    message = str(info.value)
    column = text.index(at) + 1
    assert message.startswith("translation_x: ")
    assert repr(text) in message
    assert f"column {column}" in message
    assert info.value.column == column
    assert reason in message


def test_error_column_counts_from_start_of_whole_text_across_lines() -> None:
    text = "0:(0),\n\t5:(10),\n  10:(t ** q)\n"
    with pytest.raises(ScheduleError) as info:
        evaluate_schedule(text, 12, setting="zoom")
    assert text[info.value.column - 1] == "q"


def test_string_schedule_errors_point_at_column() -> None:
    text = "0:('euler') 3:('heun')"
    with pytest.raises(ScheduleError) as info:
        evaluate_string_schedule(text, 6, setting="sampler_schedule")
    assert info.value.setting == "sampler_schedule"
    assert text[info.value.column - 1] == "3"


def test_duplicate_key_warning_names_setting_and_key() -> None:
    with pytest.warns(ScheduleWarning, match=r"strength_schedule.*frame 5"):
        evaluate_schedule("0:(0), 5:(1), 5:(3)", 8, setting="strength_schedule")


def test_quoted_key_resolving_to_an_existing_key_warns() -> None:
    with pytest.warns(ScheduleWarning, match="frame 9"):
        evaluate_schedule('9:(1), "max_f":(2)', 10, setting="zoom")


@pytest.mark.parametrize("value", [1.04, 2, np.float32(0.5), np.int64(3)])
def test_plain_number_is_a_constant_schedule(value: float) -> None:
    result = evaluate_schedule(value, 4, setting="zoom")
    assert result.tolist() == pytest.approx([float(value)] * 4)


@pytest.mark.parametrize("value", [None, True, [1.0], float("nan"), float("inf")])
def test_non_schedule_values_are_rejected(value: object) -> None:
    with pytest.raises(ScheduleError, match="zoom"):
        evaluate_schedule(value, 4, setting="zoom")


def test_max_frames_zero_gives_empty_results() -> None:
    assert evaluate_schedule("0:(1), 5:(t)", 0).shape == (0,)
    assert evaluate_string_schedule("0:('euler')", 0) == []


def test_negative_max_frames_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        evaluate_schedule("0:(1)", -1)


def test_schedule_keyframes_lists_keys_inside_the_run() -> None:
    assert schedule_keyframes('0:(1), 20:(2), "max_f/2":(t), 500:(3)', 30) == [0, 14, 20]


def test_parse_schedule_keeps_values_columns_and_kinds() -> None:
    parsed = parse_schedule("5:(t*2), 0:( 1.5 )", max_frames=10, setting="zoom")
    first, second = parsed.keyframes
    assert (first.frame, first.number, first.expression, first.column) == (0, 1.5, None, 14)
    assert second.frame == 5 and second.expression is not None and second.number is None
    assert parsed.frames == [0, 5]


def test_only_first_key_beyond_the_end_is_evaluated() -> None:
    # 200:(1/0) lies after the first key beyond max_frames, so it is never evaluated (S-4).
    result = evaluate_schedule("0:(0), 100:(10), 200:(1/0)", 10)
    assert result[-1] == pytest.approx(0.9)


def test_expression_beyond_the_end_is_evaluated_at_its_own_frame() -> None:
    result = evaluate_schedule("0:(0), 20:(t)", 10)
    assert result.tolist() == pytest.approx([float(i) for i in range(10)])


def test_long_generated_schedule_evaluates() -> None:
    text = ", ".join(f"{i}:({1 + 0.01 * (i % 7):.2f})" for i in range(5000))
    result = evaluate_schedule(text, 5000)
    assert result[7] == pytest.approx(1.0) and result[13] == pytest.approx(1.06)


def test_prompt_weight_helper_evaluates_scalars() -> None:
    values = {"t": 5, "max_frames": 10, "max_f": 9, "s": 3}
    assert evaluate_scalar("cos(6.28*t/10)", values) == pytest.approx(np.cos(3.14))
    assert evaluate_scalar(" s + max_f ", values) == 12.0


def test_compiled_expression_broadcasts_and_reports_columns() -> None:
    expression = compile_expression("2", names=SCHEDULE_NAMES)
    assert expression.evaluate(t=np.arange(3.0), max_frames=3, max_f=2, s=0).tolist() == [2.0] * 3
    with pytest.raises(ScheduleError) as info:
        compile_expression("t + nope", names=SCHEDULE_NAMES, offset=10, source="x" * 10 + "t + nope")
    assert info.value.column == 15
