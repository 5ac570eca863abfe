"""Prompts: the per-frame prompt series (P-1) and weighted sub-prompts with backtick math (P-2, P-3).

Weighted prompts are parsed once into pieces whose weights are constants or compiled expressions;
the weights of every frame are then evaluated in one vectorised call per expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import SettingsError
from .expr import compile_expression

EXPRESSION_NAMES = frozenset({"t", "max_frames", "max_f", "s"})


def normalize_prompt_spec(spec: Any) -> dict[int, str]:
    """A prompt setting (str, list or dict frame -> text) as a dict frame -> text.

    A string is one prompt for the whole run; an empty list or dict means {0: ""}.
    """
    if spec is None:
        return {0: ""}
    if isinstance(spec, str):
        return {0: spec}
    if isinstance(spec, Mapping):
        result = {int(k): "" if v is None else str(v) for k, v in spec.items()}
        return result or {0: ""}
    if isinstance(spec, Sequence):
        return {i: "" if v is None else str(v) for i, v in enumerate(spec)} or {0: ""}
    raise SettingsError(f"prompts: expected a string, a list or a dict of frame -> text, got {type(spec).__name__}")


def prompt_indices(keys: Sequence[int], max_frames: int) -> np.ndarray:
    """For each frame, the index (into the sorted keys) of the prompt in force (P-1).

    The prompt of frame f has the largest key <= f; frames before the first key use the first key.
    """
    sorted_keys = np.asarray(sorted(keys), dtype=np.int64)
    frames = np.arange(max_frames, dtype=np.int64)
    return np.clip(np.searchsorted(sorted_keys, frames, side="right") - 1, 0, None)


def prompt_series(spec: Any, max_frames: int) -> list[str]:
    """The prompt text of every frame (P-1). Convenient for small runs and tests."""
    prompts = normalize_prompt_spec(spec)
    keys = sorted(prompts)
    return [prompts[keys[i]] for i in prompt_indices(keys, max_frames)]


# --- weighted sub-prompts (P-2) --------------------------------------------------------------

@dataclass(frozen=True)
class PromptPiece:
    """One sub-prompt with a constant weight or a weight expression evaluated per frame."""

    text: str
    weight: float | None
    expression: Any = None  # a compiled deforge.expr expression when the weight is backtick math

    def weights(self, frames: np.ndarray, **names: float) -> np.ndarray:
        if self.expression is None:
            return np.full(frames.shape, self.weight, dtype=np.float64)
        return np.broadcast_to(self.expression.evaluate(t=frames, **names), frames.shape).astype(np.float64)


def _scan_weight(text: str, pos: int) -> tuple[str | None, int]:
    """A decimal `-?digits(.digits)?` or a backtick expression at pos: (weight text, new pos)."""
    if pos < len(text) and text[pos] == "`":
        end = text.find("`", pos + 1)
        if end != -1:
            return text[pos:end + 1], end + 1
        return None, pos
    i = pos
    if i < len(text) and text[i] == "-":
        i += 1
    start_digits = i
    while i < len(text) and text[i].isdigit():
        i += 1
    if i == start_digits:
        return None, pos
    if i + 1 < len(text) and text[i] == "." and text[i + 1].isdigit():
        i += 1
        while i < len(text) and text[i].isdigit():
            i += 1
    return text[pos:i], i


def parse_weighted_prompt(text: str, *, setting: str = "prompts") -> list[PromptPiece]:
    """Split `a cat:2 a dog:-1` or ``eggs:`cos(t)` `` into pieces, in order of appearance."""
    pieces: list[PromptPiece] = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos] == ":":
            pos += 1  # a colon where a sub-prompt would start is skipped
            continue
        chars: list[str] = []
        while pos < n and text[pos] != ":":
            if text.startswith("\\:", pos):
                chars.append(":")
                pos += 2
            else:
                chars.append(text[pos])
                pos += 1
        piece_text = "".join(chars)
        weight_text = None
        if pos < n:  # at one or more colons
            while pos < n and text[pos] == ":":
                pos += 1
            weight_text, pos = _scan_weight(text, pos)
            while pos < n and text[pos].isspace():
                pos += 1
        pieces.append(_make_piece(piece_text, weight_text, text, pos, setting))
    return pieces


def _make_piece(piece_text: str, weight_text: str | None, source: str, end: int, setting: str) -> PromptPiece:
    if weight_text is None or weight_text == "``":
        return PromptPiece(piece_text, 1.0)
    if weight_text.startswith("`"):
        inner = weight_text[1:-1]
        start = source.rfind(weight_text, 0, end) + 1
        expression = compile_expression(inner, names=EXPRESSION_NAMES, offset=start, setting=setting, source=source)
        return PromptPiece(piece_text, None, expression)
    return PromptPiece(piece_text, float(weight_text))


def split_by_sign(pieces: Sequence[PromptPiece], weights: Sequence[float], normalize: bool
                  ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Positive and negative (text, weight) lists for one frame: negatives flip sign, zeros drop."""
    positive = [(p.text, float(w)) for p, w in zip(pieces, weights) if w > 0]
    negative = [(p.text, float(-w)) for p, w in zip(pieces, weights) if w < 0]
    if normalize:
        positive, negative = _normalized(positive), _normalized(negative)
    return positive, negative


def _normalized(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    total = sum(w for _, w in items)
    if not items or total == 0:
        return items
    return [(text, w / total) for text, w in items]


def weighted_prompt_at(text: str, frame: int, *, normalize: bool = False, max_frames: int = 1, seed: int = 0
                       ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Positive and negative sub-prompts of `text` at one frame (P-2)."""
    pieces = parse_weighted_prompt(text)
    frames = np.array([frame], dtype=np.float64)
    weights = [p.weights(frames, max_frames=max_frames, max_f=max_frames - 1, s=seed)[0] for p in pieces]
    return split_by_sign(pieces, weights, normalize)
