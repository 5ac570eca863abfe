"""Helpers that make small test videos (PyAV directly, independent of deforge.video).

    from fixtures_video import make_test_video, pattern_frame
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["make_test_video", "pattern_frame", "write_png_frames"]


def pattern_frame(index: int, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """Frame `index` of the test pattern as HxWx3 uint8 RGB, `size` = (width, height).

    A fixed colour gradient background with a white square moving right and a red disc moving
    down, so consecutive frames differ clearly and any frame can be recognised by its content.
    """
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (40 + 120 * x / max(width - 1, 1)).astype(np.uint8)
    image[..., 1] = (40 + 120 * y / max(height - 1, 1)).astype(np.uint8)
    image[..., 2] = 90
    side = max(4, min(width, height) // 4)
    left = (index * max(2, width // 8)) % max(1, width - side)
    image[height // 8 : height // 8 + side, left : left + side] = 255
    radius = max(3, min(width, height) // 8)
    cy = (radius + index * max(2, height // 10)) % max(1, height - radius)
    disc = (x - width * 0.7) ** 2 + (y - cy) ** 2 <= radius**2
    image[disc] = (220, 30, 30)
    return image


def make_test_video(
    path: Path,
    n_frames: int = 12,
    size: tuple[int, int] = (64, 64),
    fps: float = 12,
    audio: bool = False,
) -> Path:
    """Write an H.264 MP4 of `pattern_frame(0..n_frames-1, size)` at `fps`; `size` must be even.

    With audio=True it also carries a mono 44.1 kHz 440 Hz sine (AAC) as long as the video.
    Encoded near-losslessly (crf 10) so decoded frames stay close to `pattern_frame`.
    """
    width, height = size
    assert width % 2 == 0 and height % 2 == 0, "yuv420p needs even sizes"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as output:
        video = output.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "10", "preset": "ultrafast"}
        sound = None
        if audio:
            sound = output.add_stream("aac", rate=44100)
            sound.layout = "mono"
        for index in range(n_frames):
            frame = av.VideoFrame.from_ndarray(pattern_frame(index, size), format="rgb24")
            frame.pts = index
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        if sound is not None:
            total = int(44100 * n_frames / rate)
            t = np.arange(total) / 44100
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, total, 1024):
                chunk = np.ascontiguousarray(samples[None, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate = 44100
                frame.pts = start
                output.mux(sound.encode(frame))
            output.mux(sound.encode(None))
    return path


def write_png_frames(folder: Path, n_frames: int, size: tuple[int, int] = (64, 64), prefix: str = "") -> list[Path]:
    """Write `pattern_frame(i, size)` as folder/{prefix}{i:05}.png (any size, odd included)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n_frames):
        path = folder / f"{prefix}{index:05d}.png"
        Image.fromarray(pattern_frame(index, size)).save(path)
        paths.append(path)
    return paths
