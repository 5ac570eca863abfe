"""The one interface between the render loops and an image generator.

Images cross this boundary as numpy float32 arrays of shape (H, W, 3), RGB, values in 0..255
("frame arrays"). Masks are float32 (H, W) in 0..1 where 1 (white) keeps the init image and
0 (black) is repainted. Nothing here imports torch, so render loops and tests can use a
recording fake generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

WeightedPrompt = tuple[tuple[str, float], ...]
"""Sub-prompts with weights; the conditioning is the weighted sum of their embeddings.
An empty tuple means the empty prompt ""."""


@dataclass(frozen=True)
class Conditioning:
    """What to encode for one image: positive and negative weighted sub-prompts (P-2, P-3)."""

    positive: WeightedPrompt
    negative: WeightedPrompt = ()

    @classmethod
    def plain(cls, prompt: str, negative: str = "") -> "Conditioning":
        return cls(((prompt, 1.0),), ((negative, 1.0),) if negative else ())


@dataclass(frozen=True)
class GenerationRequest:
    """One image to generate. `strength` follows Deforum: the fraction of the init image kept
    (0 = ignore the init, full denoising; 1 = return the init). Steps actually run with an init
    image: floor((1 - strength) * steps + 1e-6) (G-1)."""

    conditioning: Conditioning
    seed: int
    width: int
    height: int
    steps: int = 50
    scale: float = 7.0
    sampler: str = "euler_ancestral"
    ddim_eta: float = 0.0
    init_image: np.ndarray | None = None
    strength: float = 0.0
    mask: np.ndarray | None = None
    overlay_mask: np.ndarray | None = None
    """Full-resolution blurred mask used to paste the init back after decoding (overlay_mask)."""
    conditioning_override: object | None = None
    """Pre-computed conditioning tensors (Interpolation mode tweens); bypasses the prompt encoder."""
    on_device: bool = False
    """Return the image as a torch tensor (H, W, 3) 0..255 on the generator's device instead of numpy;
    `init_image` may then be such a tensor too (render loops that keep frames on the GPU)."""


@dataclass
class GenerationResult:
    image: np.ndarray
    """float32 (H, W, 3) RGB in 0..255."""
    steps_run: int
    info: dict = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """Text-to-image (no init image) and image-to-image (init image, strength, optional mask)."""

    def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def encode(self, conditioning: Conditioning) -> object:
        """The conditioning tensors for a prompt pair (cached per unique text)."""
        ...
