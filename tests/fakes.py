"""A recording fake generator: deterministic images from the request, no model, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deforge.generate.base import Conditioning, GenerationRequest, GenerationResult


@dataclass
class RecordingGenerator:
    """Remembers every request; the image is a function of (seed, prompt, init, strength)."""

    requests: list[GenerationRequest] = field(default_factory=list)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        rng = np.random.default_rng([request.seed, len(request.conditioning.positive)])
        fresh = rng.uniform(0, 255, (request.height, request.width, 3)).astype(np.float32)
        if request.init_image is None:
            return GenerationResult(fresh, request.steps)
        keep = np.float32(request.strength)
        image = keep * np.asarray(request.init_image, dtype=np.float32) + (1 - keep) * fresh
        return GenerationResult(image.astype(np.float32), request.steps)

    def encode(self, conditioning: Conditioning) -> object:
        return conditioning
