"""Keyframe schedules such as ``0:(1.0), 20:(1.1)`` (DECISIONS S-1 ... S-10).

A schedule is one or more ``KEY : ( VALUE )`` pairs separated by commas. ``KEY`` is a run of digits
or a quoted expression of ``max_frames``, ``max_f`` and ``s``. A ``VALUE`` that is a numeric literal
is an interpolation anchor; any other value is an expression (see :mod:`deforge.expr`) that holds
from its key up to the next key. The grammar and evaluation rules are those of
``shared/conformance/README.md`` (sections schedules.json and string_schedules.json).
"""

from __future__ import annotations

import math
import operator
import re
import warnings
from dataclasses import dataclass

import numpy as np

from deforge.errors import ScheduleError
from deforge.expr import KEY_NAMES, SCHEDULE_NAMES, Expression, compile_expression

__all__ = [
    "Keyframe",
    "ParsedSchedule",
    "ScheduleWarning",
    "evaluate_schedule",
    "evaluate_string_schedule",
    "parse_schedule",
    "schedule_keyframes",
]

#: Largest frame number a key may name; far beyond any real run, small enough for exact floats.
MAX_KEY_FRAME = 10**15

# A numeric literal (S-2): optional sign, digits with an optional point or a point and digits,
# optional exponent. Such a value is interpolated; everything else is an expression.
# Each alternative matches a digit run in one way only, so a long non-number fails in linear time.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_QUOTES = "\"'"


class ScheduleWarning(UserWarning):
    """A schedule was accepted but something in it is probably a mistake (duplicate keys)."""


@dataclass(frozen=True)
class _Pair:
    """One ``KEY:(VALUE)`` pair as written, with 0-based positions in the schedule text."""

    key: str
    key_quoted: bool
    key_pos: int
    value: str
    value_pos: int


@dataclass(frozen=True)
class Keyframe:
    """A resolved key: its frame and its value (a number, an expression, or text).

    ``column`` is the 1-based column of the value in the schedule text.
    """

    frame: int
    text: str
    column: int
    number: float | None = None
    expression: Expression | None = None


@dataclass(frozen=True)
class ParsedSchedule:
    """A schedule's keyframes, sorted by frame, one per frame."""

    text: str
    setting: str | None
    max_frames: int
    seed: int
    keyframes: tuple[Keyframe, ...]

    @property
    def frames(self) -> list[int]:
        """The frame numbers of all keys, ascending."""
        return [k.frame for k in self.keyframes]

    def evaluate(self) -> np.ndarray:
        """One float64 value per frame 0 .. max_frames - 1."""
        return _interpolate(self.keyframes, self.max_frames, self.seed)


class _Scanner:
    """A hand-written scanner for the schedule grammar; errors point at the offending column."""

    def __init__(self, text: str, setting: str | None):
        self.text = text
        self.setting = setting
        self.pos = 0

    def error(self, reason: str, pos: int) -> ScheduleError:
        """An error at 0-based position ``pos``."""
        return ScheduleError(reason, self.text, pos + 1, self.setting)

    def at_end(self) -> bool:
        """True when only the end of the text is left."""
        return self.pos >= len(self.text)

    def skip_whitespace(self) -> None:
        """Move past spaces, tabs and newlines."""
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        self.pos = pos

    def expect(self, char: str, what: str) -> None:
        """Consume ``char`` or fail, saying what was expected."""
        if self.at_end():
            raise self.error(f"the schedule ends where {what} was expected", self.pos)
        if self.text[self.pos] != char:
            raise self.error(f"expected {what}, found {self.text[self.pos]!r}", self.pos)
        self.pos += 1

    def scan(self) -> list[_Pair]:
        """All pairs of the schedule, in the order written."""
        self.skip_whitespace()
        if self.at_end():
            raise self.error("the schedule is empty; write pairs such as 0:(1.0)", 0)
        pairs: list[_Pair] = []
        while True:
            pairs.append(self.pair())
            self.skip_whitespace()
            if self.at_end():
                return pairs
            if self.text[self.pos] != ",":
                found = self.text[self.pos]
                reason = f"expected ',' between pairs or the end of the schedule, found {found!r}"
                raise self.error(reason, self.pos)
            self.pos += 1
            self.skip_whitespace()
            if self.at_end():  # one trailing comma is allowed
                return pairs

    def pair(self) -> _Pair:
        """One ``KEY : ( VALUE )`` pair."""
        key, quoted, key_pos = self.key()
        self.skip_whitespace()
        self.expect(":", "':' after the frame number")
        self.skip_whitespace()
        if not self.at_end() and self.text[self.pos] != "(":
            raise self.error("expected '(': values must be in parentheses, as in 0:(1.0)", self.pos)
        self.expect("(", "'('")
        value, value_pos = self.value(self.pos - 1)
        return _Pair(key, quoted, key_pos, value, value_pos)

    def key(self) -> tuple[str, bool, int]:
        """The frame key: (digits or expression text, quoted?, position of that text)."""
        text, start = self.text, self.pos
        char = text[start]
        if "0" <= char <= "9":
            end = start
            while end < len(text) and "0" <= text[end] <= "9":
                end += 1
            self.pos = end
            return text[start:end], False, start
        if char in _QUOTES:
            close = text.find(char, start + 1)
            if close < 0:
                raise self.error("unclosed quote in the frame key", start)
            self.pos = close + 1
            return text[start + 1 : close], True, start + 1
        if char in "-+" and start + 1 < len(text) and "0" <= text[start + 1] <= "9":
            raise self.error("a frame number cannot be negative", start)
        raise self.error(f"expected a frame number (digits or a quoted expression), found {char!r}", start)

    def value(self, open_pos: int) -> tuple[str, int]:
        """The text up to the parenthesis balancing the one at ``open_pos``, stripped."""
        text, pos, depth = self.text, open_pos + 1, 1
        while True:
            close = text.find(")", pos)
            if close < 0:
                raise self.error("unclosed parenthesis", open_pos)
            depth += text.count("(", pos, close) - 1
            pos = close + 1
            if depth == 0:
                break
        self.pos = pos
        raw = text[open_pos + 1 : close]
        value = raw.strip()
        if not value:
            raise self.error("empty value '()'", open_pos)
        return value, open_pos + 1 + (len(raw) - len(raw.lstrip()))


def _coerce_text(value: object, setting: str | None) -> str:
    """The schedule text of a setting's value; a plain number means ``0:(number)``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ScheduleError("the value is not a finite number", repr(value), None, setting)
        return f"0:({number!r})"
    shown = repr(value)
    raise ScheduleError(
        f"a schedule must be text such as '0:(1.0)', not {type(value).__name__}", shown, None, setting
    )


def _check_max_frames(max_frames: int) -> int:
    frames = operator.index(max_frames)
    if frames < 0:
        raise ValueError(f"max_frames must be >= 0, got {frames}")
    return frames


def _key_frame(pair: _Pair, text: str, setting: str | None, max_frames: int, seed: int) -> int:
    """The frame number of a key: its digits, or its quoted expression truncated toward zero."""
    if not pair.key_quoted:
        if len(pair.key.lstrip("0")) > len(str(MAX_KEY_FRAME)):
            raise ScheduleError("the frame number is too large", text, pair.key_pos + 1, setting)
        return int(pair.key)
    expression = compile_expression(
        pair.key, names=KEY_NAMES, offset=pair.key_pos, setting=setting, source=text
    )
    value = expression.evaluate_scalar(max_frames=max_frames, max_f=max_frames - 1, s=seed)
    if value < 0:
        reason = f"the frame key {pair.key.strip()!r} is negative ({value:g})"
        raise ScheduleError(reason, text, pair.key_pos + 1, setting)
    if value > MAX_KEY_FRAME:
        raise ScheduleError("the frame number is too large", text, pair.key_pos + 1, setting)
    return int(value)  # int() truncates toward zero


def _numeric_keyframe(frame: int, pair: _Pair, text: str, setting: str | None) -> Keyframe:
    """The keyframe of a value: a number when it is a numeric literal, else an expression."""
    column = pair.value_pos + 1
    if _NUMBER.fullmatch(pair.value):
        number = float(pair.value)
        if not math.isfinite(number):
            raise ScheduleError("the number is too large (not a finite float)", text, column, setting)
        return Keyframe(frame, pair.value, column, number=number)
    expression = compile_expression(
        pair.value, names=SCHEDULE_NAMES, offset=pair.value_pos, setting=setting, source=text
    )
    return Keyframe(frame, pair.value, column, expression=expression)


def _text_keyframe(frame: int, pair: _Pair) -> Keyframe:
    """The keyframe of a string schedule: the value without one pair of surrounding quotes."""
    value = pair.value
    if len(value) >= 2 and value[0] in _QUOTES and value[-1] == value[0]:
        value = value[1:-1]
    return Keyframe(frame, value, pair.value_pos + 1)


def _resolve(
    text: str, setting: str | None, max_frames: int, seed: int, *, numeric: bool
) -> tuple[Keyframe, ...]:
    """Scan ``text`` and return its keyframes sorted by frame; a repeated key keeps its last value."""
    by_frame: dict[int, Keyframe] = {}
    for pair in _Scanner(text, setting).scan():
        frame = _key_frame(pair, text, setting, max_frames, seed)
        if numeric:
            keyframe = _numeric_keyframe(frame, pair, text, setting)
        else:
            keyframe = _text_keyframe(frame, pair)
        if frame in by_frame:
            name = setting or "schedule"
            warnings.warn(
                ScheduleWarning(f"{name}: frame {frame} is given more than once; the last value wins"),
                stacklevel=4,
            )
        by_frame[frame] = keyframe
    return tuple(by_frame[f] for f in sorted(by_frame))


def _interpolate(keyframes: tuple[Keyframe, ...], max_frames: int, seed: int) -> np.ndarray:
    """Numbers anchor their own frame, expressions hold to the next key, gaps are linear."""
    if max_frames == 0:
        return np.zeros(0, dtype=np.float64)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for i, key in enumerate(keyframes):
        if key.expression is None:
            xs.append(np.array([key.frame], dtype=np.float64))
            ys.append(np.array([key.number], dtype=np.float64))
        else:
            stop = keyframes[i + 1].frame if i + 1 < len(keyframes) else max_frames
            frames = np.arange(key.frame, max(min(stop, max_frames), key.frame + 1), dtype=np.float64)
            xs.append(frames)
            ys.append(key.expression.evaluate(t=frames, max_frames=max_frames, max_f=max_frames - 1, s=seed))
        if key.frame >= max_frames:
            break  # only the first key at or beyond the end can shape the ramp (S-4)
    return np.interp(np.arange(max_frames, dtype=np.float64), np.concatenate(xs), np.concatenate(ys))


def parse_schedule(
    text: str | float, *, max_frames: int, setting: str | None = None, seed: int = 0
) -> ParsedSchedule:
    """Parse a numeric schedule, resolving frame keys for ``max_frames`` and ``seed``.

    Every value is checked (numbers and expressions alike); duplicate keys warn with
    :class:`ScheduleWarning`. Raises ScheduleError for malformed text.
    """
    frames = _check_max_frames(max_frames)
    source = _coerce_text(text, setting)
    keyframes = _resolve(source, setting, frames, seed, numeric=True)
    return ParsedSchedule(source, setting, frames, seed, keyframes)


def evaluate_schedule(
    text: str | float, max_frames: int, *, setting: str | None = None, seed: int = 0
) -> np.ndarray:
    """The schedule's value at every frame 0 .. max_frames - 1 (float64; empty for 0 frames)."""
    return parse_schedule(text, max_frames=max_frames, setting=setting, seed=seed).evaluate()


def evaluate_string_schedule(
    text: str | float, max_frames: int, *, setting: str | None = None, seed: int = 0
) -> list[str]:
    """The text value at every frame of a string schedule such as ``0:('euler'), 10:('heun')`` (S-10).

    Each frame takes the value of the largest key at or before it; frames before the first key take
    the first key's value. Values are never evaluated; one pair of surrounding quotes is removed.
    """
    frames = _check_max_frames(max_frames)
    source = _coerce_text(text, setting)
    keyframes = _resolve(source, setting, frames, seed, numeric=False)
    keys = np.array([k.frame for k in keyframes], dtype=np.float64)
    index = np.searchsorted(keys, np.arange(frames, dtype=np.float64), side="right") - 1
    return [keyframes[i].text for i in np.maximum(index, 0)]


def schedule_keyframes(
    text: str | float, max_frames: int, *, setting: str | None = None, seed: int = 0
) -> list[int]:
    """The frames of the schedule's keys that lie inside the run (0 <= frame < max_frames)."""
    parsed = parse_schedule(text, max_frames=max_frames, setting=setting, seed=seed)
    return [f for f in parsed.frames if f < parsed.max_frames]
