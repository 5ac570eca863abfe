"""Video Input: the frames (and optional mask frames) of a source video, ready for the render loop.

`prepare_video_input` extracts every `extract_nth_frame`-th source frame of `video_init_path` into
`<run folder>/inputframes/00001.jpg, 00002.jpg, ...` at (W, H); the run has one output frame per
extracted frame. `overwrite_extracted_frames: false` reuses the frames already in that folder (the
video must still be readable: its fps and audio go into the output video).

With `use_mask_video`, `video_mask_path` is extracted the same way into `<run folder>/maskframes/`.
A mask video with fewer frames than the input holds its last frame for the remaining output frames
(this is logged once); extra mask frames are ignored. Each mask is prepared with `invert_mask`,
`mask_brightness_adjust` and `mask_contrast_adjust`. Without a mask video, `use_mask` with a
`mask_file` applies that one mask to every frame (`use_alpha_as_mask` has no alpha to read here).

The render loop turns input frame F into frame F's init image (colour match, contrast, sharpening,
noise: V-1) and image-to-images it with strength_schedule[F]; cadence is forced to 1. The video is
assembled at the source fps / extract_nth_frame (unless ffmpeg_fps is set) with the source's audio
(unless video_keep_audio is false).

Problems with the source (missing, empty, corrupt, no video stream, no frames) raise one-line
`InputMediaError`s before anything is rendered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputMediaError
from ..generate.masks import image_to_frame, load_image, prepare_mask
from ..settings import Settings
from ..video import extract_frames, probe_video

log = logging.getLogger(__name__)

INPUT_FOLDER = "inputframes"
MASK_FOLDER = "maskframes"


@dataclass
class VideoFrames:
    """The extracted input (and mask) frames of a Video Input run."""

    source: Path
    """The input video (its fps and audio go into the output video)."""
    inputs: list[Path]
    size: tuple[int, int]
    """(W, H) of every frame handed to the render loop."""
    masks: list[Path] = field(default_factory=list)
    invert_mask: bool = False
    mask_brightness: float = 1.0
    mask_contrast: float = 1.0
    static_mask: np.ndarray | None = None
    """use_mask with a mask_file (no mask video): the same mask for every frame."""

    def frame(self, k: int) -> np.ndarray:
        """Input frame k as float32 (H, W, 3) RGB 0..255 at (W, H)."""
        return image_to_frame(load_image(self.inputs[k]), self.size)

    def mask(self, k: int) -> np.ndarray | None:
        """The mask of output frame k as float32 (H, W) in 0..1, or None without a mask."""
        if not self.masks:
            return self.static_mask
        path = self.masks[min(k, len(self.masks) - 1)]  # a short mask video holds its last frame
        return prepare_mask(load_image(path), self.invert_mask, self.mask_brightness, self.mask_contrast, self.size)


def _extract(video: str, folder: Path, settings: Settings, what: str) -> tuple[Path, list[Path]]:
    """Check the video, then extract its frames; every failure is one InputMediaError line."""
    if not video:
        raise InputMediaError(f"{what}: no video given")
    path = Path(video).expanduser()
    try:
        probe_video(path)  # missing, empty or corrupt files fail here, before any folder is touched
        frames = extract_frames(path, folder, every_nth=settings.extract_nth_frame,
                                overwrite=settings.overwrite_extracted_frames, size=(settings.W, settings.H))
    except InputMediaError as error:
        raise InputMediaError(f"{what}: {error}") from None
    if not frames:
        raise InputMediaError(f"{what}: no frames were extracted from {path}")
    return path, frames


def prepare_video_input(settings: Settings, folder: Path) -> VideoFrames:
    """Extract the input (and mask) frames of a Video Input run into the run folder."""
    folder = Path(folder)
    source, inputs = _extract(settings.video_init_path, folder / INPUT_FOLDER, settings, "video_init_path")
    frames = VideoFrames(source, inputs, (settings.W, settings.H), invert_mask=settings.invert_mask,
                         mask_brightness=settings.mask_brightness_adjust, mask_contrast=settings.mask_contrast_adjust)
    if settings.use_mask_video:
        _, masks = _extract(settings.video_mask_path, folder / MASK_FOLDER, settings, "video_mask_path")
        if len(masks) < len(inputs):
            log.warning("the mask video %s gives %d frames for %d input frames; its last frame is held for "
                        "frames %d to %d", settings.video_mask_path, len(masks), len(inputs), len(masks),
                        len(inputs) - 1)
        frames.masks = masks[: len(inputs)]
    elif settings.use_mask and not settings.use_alpha_as_mask:
        from .inputs import load_masks

        frames.static_mask, _ = load_masks(settings)
    return frames
