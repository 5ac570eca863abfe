"""Safety of the schedule expression evaluator (DECISIONS S-5, S-9): arbitrary and hostile text."""

from __future__ import annotations

import ast
import builtins
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deforge.errors import ScheduleError
from deforge.expr import SCHEDULE_NAMES, compile_expression
from deforge.schedule import evaluate_schedule, evaluate_string_schedule

# Pieces of schedules and expressions, valid and not, that random strings rarely hit.
SCHEDULE_TOKENS = [
    "0", "5", "10", "007", "99999", "-", "+", ":", "(", ")", ",", " ", "\n", "\t", '"', "'",
    '"max_f/2"', "'max_frames'", '"s%3"', '"t"', "t", "s", "max_f", "max_frames", "pi", "e", "i",
    "sin(", "where(", "clip(", "min(", "arctan2(", "foo(", "__import__(", "eval(", ".", "__class__",
    "1", "2.5", ".5", "5.", "1e-3", "1e400", "+2", "*", "/", "**", "%", "//", "<", "==", "&", "|",
    "~", "and", "not", "lambda", "[", "]", "#", "\\", "{", "}", "0:(", "):", "),", "9**9**9**9",
]

EXPRESSION_TOKENS = [
    "t", "s", "max_f", "max_frames", "pi", "e", "1", "2", "0.5", "3e2", "0", "-", "+", "*", "/",
    "**", "%", "<", ">=", "==", "!=", "&", "|", "~", "(", ")", ",", "sin(", "cos(", "log(", "sqrt(",
    "exp(", "floor(", "round(", "fmod(", "min(", "max(", "where(", "clip(", "arctan2(", " ",
]


def schedule_like_text() -> st.SearchStrategy[str]:
    """Strings glued together from schedule tokens."""
    return st.lists(st.sampled_from(SCHEDULE_TOKENS), max_size=30).map("".join)


def expression_text() -> st.SearchStrategy[str]:
    """Strings glued together from expression tokens (often valid, often not)."""
    return st.lists(st.sampled_from(EXPRESSION_TOKENS), min_size=1, max_size=25).map("".join)


def structured_schedule() -> st.SearchStrategy[str]:
    """Well-formed ``key:(value)`` pairs whose values are random expressions or numbers."""
    key = st.one_of(st.integers(0, 60).map(str), st.sampled_from(['"max_f/2"', "'max_frames'", '"s%7"']))
    value = st.one_of(expression_text(), st.floats(-1e6, 1e6).map(repr))
    pair = st.tuples(key, value).map(lambda kv: f"{kv[0]}:({kv[1]})")
    return st.lists(pair, min_size=1, max_size=6).map(", ".join)


def _evaluate_or_schedule_error(text: str, max_frames: int, seed: int = 0) -> None:
    """Evaluation gives finite float64 values for every frame, or raises ScheduleError only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = evaluate_schedule(text, max_frames, setting="fuzz", seed=seed)
        except ScheduleError as exc:
            assert "fuzz" in str(exc)
            return
    assert result.dtype == np.float64 and result.shape == (max_frames,)
    assert np.isfinite(result).all()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(), max_frames=st.integers(0, 40))
def test_arbitrary_text_raises_only_schedule_error(text: str, max_frames: int) -> None:
    _evaluate_or_schedule_error(text, max_frames)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=schedule_like_text(), max_frames=st.integers(0, 40))
def test_schedule_like_text_raises_only_schedule_error(text: str, max_frames: int) -> None:
    _evaluate_or_schedule_error(text, max_frames)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=structured_schedule(), max_frames=st.integers(0, 80), seed=st.integers(0, 2**32 - 1))
def test_structured_schedules_raise_only_schedule_error(text: str, max_frames: int, seed: int) -> None:
    _evaluate_or_schedule_error(text, max_frames, seed)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(), schedule_like_text()), max_frames=st.integers(0, 20))
def test_string_schedules_raise_only_schedule_error(text: str, max_frames: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = evaluate_string_schedule(text, max_frames, setting="fuzz")
        except ScheduleError:
            return
    assert len(result) == max_frames and all(isinstance(v, str) for v in result)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=60), expression_text()))
def test_compile_expression_raises_only_schedule_error(text: str) -> None:
    try:
        expression = compile_expression(text, names=SCHEDULE_NAMES)
        expression.evaluate(t=np.arange(5.0), max_frames=5, max_f=4, s=1)
    except ScheduleError:
        pass


def _hostile(tmp: Path) -> list[str]:
    """Expressions that would hang, exhaust memory or touch the system if they were evaluated."""
    marker = tmp / "pwned"
    return [
        "9**9**9**9",
        "'a'*10**9",
        "__import__('os').system('x')",
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        "t.__class__",
        "t.__class__.__bases__[0].__subclasses__()",
        "().__class__",
        "[x for x in range(10**9)]",
        "lambda: 1",
        "1e400",
        "10**400",
        "exp(1000)",
        "1" + "+1" * 50_000,  # a 100 kB expression
        "(" * 100_000,
        "-" * 5000 + "1",
        "~" * 5000 + "t",
        "(" * 300 + "t" + ")" * 300,
        "1+" * 4000 + "1",
        "not " * 2400 + "t",
        "9" * 5000 + "*t",
        "sin(" * 1000 + "t" + ")" * 1000,
        "eval('1')",
        "exec('x=1')",
        "globals()",
        "t if t else t",
        "\x00",
    ]


def test_hostile_expressions_are_rejected_fast(tmp_path: Path) -> None:
    evaluate_schedule("0:(sin(t))", 3)  # warm-up: imports and first-call costs
    for text in _hostile(tmp_path):
        for schedule in (f"0:({text})", f"0:(0), 5:({text})"):
            start = time.perf_counter()
            with pytest.raises(ScheduleError):
                evaluate_schedule(schedule, 10, setting="zoom")
            elapsed = time.perf_counter() - start
            assert elapsed < 0.1, f"{schedule[:40]!r} took {elapsed:.3f} s"
        start = time.perf_counter()
        with pytest.raises(ScheduleError):
            expression = compile_expression(text, names=SCHEDULE_NAMES)
            expression.evaluate(t=np.arange(4.0), max_frames=4, max_f=3, s=0)
        assert time.perf_counter() - start < 0.1, text[:40]
    assert not (tmp_path / "pwned").exists()


def test_hostile_frame_keys_are_rejected_fast(tmp_path: Path) -> None:
    for text in _hostile(tmp_path):
        if '"' in text:
            continue
        start = time.perf_counter()
        with pytest.raises(ScheduleError):
            evaluate_schedule(f'0:(1), "{text}":(2)', 10, setting="zoom")
        assert time.perf_counter() - start < 0.1, text[:40]
    assert not (tmp_path / "pwned").exists()


def test_user_text_is_never_executed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """eval/exec are never called, and compile only ever builds syntax trees (ast.parse)."""
    real_compile = builtins.compile

    def forbidden(*args, **kwargs):
        raise AssertionError("user text reached eval/exec")

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & ast.PyCF_ONLY_AST, "user text was compiled to code"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only_compile)
    values = evaluate_schedule("0:(1 + 0.1*sin(2*pi*t/24)), 5:(where(t > 6, t % 3, 2))", 10)
    assert values.shape == (10,)
    for text in _hostile(tmp_path):
        with pytest.raises(ScheduleError):
            evaluate_schedule(f"0:({text})", 4)
