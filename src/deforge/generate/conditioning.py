"""Prompt conditioning: weighted sub-prompts, long prompts, and a cache per unique text.

The embedding of a side (positive or negative) is the weighted sum of its sub-prompt embeddings
(P-2, P-3). A prompt longer than the encoder's window (77 tokens: BOS, 75 tokens, EOS) is split
into 75-token chunks; each chunk is encoded with its own BOS/EOS and padding, and the chunk
embeddings are concatenated along the sequence axis. Shorter sides are padded with chunks of the
empty prompt so that both sides have the same length. For prompts of at most 75 tokens the result
equals what the diffusers pipelines compute themselves.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch

from deforge.generate.base import Conditioning, WeightedPrompt


@dataclass(frozen=True)
class TextEmbedding:
    """The encoder output for one text: hidden states (1, 77 * chunks, D) and, for SDXL, the
    pooled embedding of the first chunk (1, P)."""

    hidden: torch.Tensor
    pooled: torch.Tensor | None

    @property
    def chunks(self) -> int:
        return self.hidden.shape[1] // _WINDOW


@dataclass(frozen=True)
class EncodedConditioning:
    """Conditioning tensors ready for a diffusers pipeline call.

    Tweens (interpolation) blend two of these with `lerp`; `pad_chunk` (the empty prompt's chunk)
    lengthens the shorter one first.
    """

    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor | None = None
    negative_pooled_prompt_embeds: torch.Tensor | None = None
    pad_chunk: torch.Tensor | None = None
    negative_is_zero: bool = False

    def pipeline_kwargs(self) -> dict[str, torch.Tensor]:
        """The keyword arguments for a StableDiffusion(XL) pipeline call."""
        kwargs = {"prompt_embeds": self.prompt_embeds, "negative_prompt_embeds": self.negative_prompt_embeds}
        if self.pooled_prompt_embeds is not None:
            kwargs["pooled_prompt_embeds"] = self.pooled_prompt_embeds
            kwargs["negative_pooled_prompt_embeds"] = self.negative_pooled_prompt_embeds
        return kwargs

    def combine(self, other: "EncodedConditioning", mix) -> "EncodedConditioning":
        """Each tensor blended with its counterpart by `mix(x, y)`, side by side (lengths matched first)."""
        a, b = _match_lengths(self, other)

        def side(x, y):
            return None if x is None else mix(x, y.to(x.dtype))

        return replace(
            a,
            prompt_embeds=side(a.prompt_embeds, b.prompt_embeds),
            negative_prompt_embeds=side(a.negative_prompt_embeds, b.negative_prompt_embeds),
            pooled_prompt_embeds=side(a.pooled_prompt_embeds, b.pooled_prompt_embeds),
            negative_pooled_prompt_embeds=side(a.negative_pooled_prompt_embeds, b.negative_pooled_prompt_embeds),
            negative_is_zero=a.negative_is_zero and b.negative_is_zero,
        )

    def lerp(self, other: "EncodedConditioning", t: float) -> "EncodedConditioning":
        """(1 - t) * self + t * other, side by side (the sequence lengths are matched first)."""
        return self.combine(other, lambda x, y: torch.lerp(x, y, float(t)))


_WINDOW = 77  # tokens per encoder call (BOS + 75 + EOS); every CLIP text encoder used by SD


def _pad_sequence(hidden: torch.Tensor, length: int, chunk: torch.Tensor | None) -> torch.Tensor:
    """Extend hidden (1, L, D) to `length` with copies of `chunk` (1, 77, D), or zeros."""
    missing = length - hidden.shape[1]
    if missing <= 0:
        return hidden
    if chunk is None:
        filler = hidden.new_zeros((hidden.shape[0], missing, hidden.shape[2]))
    else:
        filler = chunk.to(hidden.dtype).repeat(1, missing // chunk.shape[1], 1)
    return torch.cat([hidden, filler], dim=1)


def _match_lengths(a: EncodedConditioning, b: EncodedConditioning) -> tuple[EncodedConditioning, EncodedConditioning]:
    length = max(a.prompt_embeds.shape[1], b.prompt_embeds.shape[1])

    def grow(c: EncodedConditioning) -> EncodedConditioning:
        return replace(
            c,
            prompt_embeds=_pad_sequence(c.prompt_embeds, length, c.pad_chunk),
            negative_prompt_embeds=_pad_sequence(
                c.negative_prompt_embeds, length, None if c.negative_is_zero else c.pad_chunk
            ),
        )

    return grow(a), grow(b)


class PromptEncoder:
    """Encodes Conditioning objects with one (SD 1.x/2.x) or two (SDXL) CLIP text encoders.

    Each unique text is encoded once and kept in an LRU cache; `encoder_calls` counts real text
    encoder forward passes, `hits` and `misses` count cache lookups per text.
    """

    def __init__(
        self,
        tokenizers: Sequence,
        text_encoders: Sequence[torch.nn.Module],
        *,
        xl: bool,
        zero_empty_negative: bool = False,
        device: Callable[[], torch.device] | None = None,
        cache_size: int = 128,
    ):
        self.tokenizers = list(tokenizers)
        self.text_encoders = list(text_encoders)
        self.xl = xl
        self.zero_empty_negative = zero_empty_negative
        self._device = device or (lambda: next(self.text_encoders[0].parameters()).device)
        self.cache_size = cache_size
        self._texts: OrderedDict[str, TextEmbedding] = OrderedDict()
        self._conditionings: OrderedDict[Conditioning, EncodedConditioning] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.encoder_calls = 0

    # -- one text -------------------------------------------------------------------------------

    def text(self, text: str) -> TextEmbedding:
        """The (cached) embedding of one text."""
        cached = self._texts.get(text)
        if cached is not None:
            self.hits += 1
            self._texts.move_to_end(text)
            return cached
        self.misses += 1
        embedding = self._encode_text(text)
        self._texts[text] = embedding
        if len(self._texts) > self.cache_size:
            self._texts.popitem(last=False)
        return embedding

    def _chunk_ids(self, tokenizer, text: str) -> torch.Tensor:
        """Token ids (chunks, 77): each chunk is BOS + up to 75 tokens + EOS + padding."""
        ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        body = _WINDOW - 2
        pieces = [ids[i : i + body] for i in range(0, len(ids), body)] or [[]]
        rows = []
        for piece in pieces:
            row = [tokenizer.bos_token_id, *piece, tokenizer.eos_token_id]
            rows.append(row + [tokenizer.pad_token_id] * (_WINDOW - len(row)))
        return torch.tensor(rows, dtype=torch.long)

    @torch.no_grad()
    def _encode_text(self, text: str) -> TextEmbedding:
        device = self._device()
        hidden_parts: list[torch.Tensor] = []
        pooled: torch.Tensor | None = None
        chunk_ids = [self._chunk_ids(tok, text) for tok in self.tokenizers]
        chunks = max(ids.shape[0] for ids in chunk_ids)
        for tokenizer, encoder, ids in zip(self.tokenizers, self.text_encoders, chunk_ids, strict=True):
            if ids.shape[0] < chunks:  # tokenizers that split differently: pad with empty chunks
                empty = self._chunk_ids(tokenizer, "")
                ids = torch.cat([ids, empty.repeat(chunks - ids.shape[0], 1)])
            self.encoder_calls += 1
            if self.xl:
                out = encoder(ids.to(device), output_hidden_states=True)
                hidden = out.hidden_states[-2]
                if out[0].ndim == 2:  # the projected pooled output (text_encoder_2)
                    pooled = out[0][:1]
            else:
                mask = None
                if getattr(encoder.config, "use_attention_mask", False):  # attend up to the first EOS
                    first_eos = (ids == tokenizer.eos_token_id).int().argmax(dim=1, keepdim=True)
                    mask = (torch.arange(ids.shape[1])[None, :] <= first_eos).long().to(device)
                hidden = encoder(ids.to(device), attention_mask=mask)[0]
            hidden_parts.append(hidden.reshape(1, -1, hidden.shape[-1]))
        return TextEmbedding(torch.cat(hidden_parts, dim=-1), pooled)

    # -- one side and one conditioning ---------------------------------------------------------

    def _side(self, parts: WeightedPrompt) -> TextEmbedding:
        """The weighted sum of a side's sub-prompt embeddings (the empty prompt when empty)."""
        if not parts:
            parts = (("", 1.0),)
        embeddings = [(self.text(text), float(weight)) for text, weight in parts]
        if len(embeddings) == 1 and embeddings[0][1] == 1.0:
            return embeddings[0][0]
        length = max(e.hidden.shape[1] for e, _ in embeddings)
        pad = self.text("").hidden
        hidden = sum(w * _pad_sequence(e.hidden, length, pad) for e, w in embeddings)
        pooled = None
        if embeddings[0][0].pooled is not None:
            pooled = sum(w * e.pooled for e, w in embeddings)
        return TextEmbedding(hidden, pooled)

    def encode(self, conditioning: Conditioning) -> EncodedConditioning:
        """The pipeline tensors for a Conditioning (cached per Conditioning)."""
        cached = self._conditionings.get(conditioning)
        if cached is not None:
            self._conditionings.move_to_end(conditioning)
            return cached
        positive = self._side(conditioning.positive)
        pad_chunk = self.text("").hidden
        zero_negative = self.xl and self.zero_empty_negative and not conditioning.negative
        if zero_negative:
            negative = TextEmbedding(torch.zeros_like(positive.hidden), torch.zeros_like(positive.pooled))
        else:
            negative = self._side(conditioning.negative)
        length = max(positive.hidden.shape[1], negative.hidden.shape[1])
        encoded = EncodedConditioning(
            prompt_embeds=_pad_sequence(positive.hidden, length, pad_chunk),
            negative_prompt_embeds=_pad_sequence(negative.hidden, length, None if zero_negative else pad_chunk),
            pooled_prompt_embeds=positive.pooled,
            negative_pooled_prompt_embeds=negative.pooled,
            pad_chunk=pad_chunk,
            negative_is_zero=zero_negative,
        )
        self._conditionings[conditioning] = encoded
        if len(self._conditionings) > 16:
            self._conditionings.popitem(last=False)
        return encoded

    def clear(self) -> None:
        """Forget every cached embedding (e.g. after the text encoder changed)."""
        self._texts.clear()
        self._conditionings.clear()
