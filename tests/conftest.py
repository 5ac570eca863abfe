"""Shared test helpers: conformance vectors are read from ../shared/conformance (never copied)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE_DIR = Path(os.environ.get("DEFORGE_CONFORMANCE", REPO.parent / "shared" / "conformance"))
CORPUS_DIR = Path(os.environ.get("DEFORGE_CORPUS", REPO.parent / "shared" / "corpus"))


def load_conformance(name: str):
    """The parsed JSON of one conformance file, or a skip with the reason when it is absent."""
    path = CONFORMANCE_DIR / name
    if not path.exists():
        pytest.skip(f"conformance vectors not found at {path} (set DEFORGE_CONFORMANCE)")
    return json.loads(path.read_text(encoding="utf-8"))


def conformance_cases(name: str, key: str | None = None) -> list:
    """Cases for pytest.mark.parametrize; an empty list (the test is then skipped) when absent."""
    path = CONFORMANCE_DIR / name
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    cases = data[key] if key else data
    return [pytest.param(c, id=str(c.get("id", i))) for i, c in enumerate(cases)]


def float_close(actual: float, expected: float) -> bool:
    """The conformance tolerance for floats: 1e-6 relative (absolute below 1)."""
    return abs(actual - expected) <= 1e-6 * max(1.0, abs(expected))


@pytest.fixture(scope="module", autouse=True)
def _fixed_torch_threads(request):
    """Bit-exact comparisons need a fixed thread count (it changes float summation order). A module
    that imports torch gets `TORCH_THREADS` threads (default 1) for its tests."""
    import sys

    if "torch" not in sys.modules:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(getattr(request.module, "TORCH_THREADS", 1))
    yield
    torch.set_num_threads(previous)
