"""Video in and out through PyAV: encode frames to MP4 / GIF, probe a video, extract its frames.

Everything here works on files (or numpy frames) at the edge of the program. Outputs are always
written to a hidden temporary name in the destination folder and moved into place with
``os.replace``, so an interrupted encode or extraction never leaves a torn file under its final
name.

Odd frame sizes: H.264 in yuv420p needs even width and height, so a frame of odd size is padded by
one row / column on the bottom / right, repeating the edge pixels (e.g. 65x63 is encoded as 66x64).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from deforge.errors import InputMediaError, OutputError
from deforge.output import temporary_path

__all__ = [
    "VideoInfo",
    "encode_video",
    "encode_gif",
    "probe_video",
    "extract_frames",
    "video_fps",
]

log = logging.getLogger(__name__)

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)

_CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

JPEG_QUALITY = 95


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: its first video stream, and whether any audio stream is present."""

    frame_count: int
    fps: float
    width: int
    height: int
    has_audio: bool
    duration: float  # seconds


# ---------------------------------------------------------------------------------------------
# Small helpers


def _reason(exc: BaseException) -> str:
    """The human part of an FFmpeg / OS error, on one line."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _fps_fraction(fps: float) -> Fraction:
    """A frame rate as a small exact fraction: 12 -> 12/1, 29.97 -> 2997/100, 30000/1001 (as a float)
    -> 30000/1001."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise OutputError(f"frame rate must be a positive number, got {fps!r}")
    return Fraction(value).limit_denominator(1001)


@contextmanager
def _atomic_target(final: Path, error: type[Exception] = OutputError) -> Iterator[Path]:
    """Yield a hidden temporary path beside `final`; move it onto `final` only if the body succeeds."""
    folder = final.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot create folder {folder}: {_reason(exc)}") from exc
    tmp = temporary_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        raise error(f"cannot write {final}: {_reason(exc)}") from exc
    finally:
        # Only present when the body or the rename failed (including KeyboardInterrupt).
        tmp.unlink(missing_ok=True)


def _to_rgb8(image: np.ndarray, source: str, *, bgr: bool) -> np.ndarray:
    """Any 2-D / 3-D image array (uint8, uint16 or float in [0, 1]) as contiguous HxWx3 uint8 RGB."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.floating):
        image = (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputMediaError(f"frame {source}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        image = image[:, :, :3]  # alpha is dropped
        if bgr:
            image = image[:, :, ::-1]
    else:
        raise InputMediaError(f"frame {source}: unsupported image shape {image.shape}")
    return np.ascontiguousarray(image)


def _load_frame(item: Path | str | np.ndarray, index: int) -> np.ndarray:
    """One frame as HxWx3 uint8 RGB. Paths are read with OpenCV (8- and 16-bit PNG, JPEG);
    arrays are taken as RGB."""
    if isinstance(item, np.ndarray):
        return _to_rgb8(item, f"#{index}", bgr=False)
    path = Path(item)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # fromfile + imdecode copes with any path encoding
    except OSError as exc:
        raise InputMediaError(f"cannot read frame {path}: {_reason(exc)}") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputMediaError(f"cannot read frame {path}: not a readable image")
    return _to_rgb8(image, str(path), bgr=True)


def _pad_even(image: np.ndarray) -> np.ndarray:
    """Pad bottom / right by one edge-repeated row / column where height / width is odd."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _frames(frame_paths: Sequence[Path | str | np.ndarray]) -> Iterator[np.ndarray]:
    """Frames loaded one at a time, all checked to have the size of the first."""
    size = None
    for index, item in enumerate(frame_paths):
        image = _load_frame(item, index)
        if size is None:
            size = image.shape[:2]
        elif image.shape[:2] != size:
            h, w = image.shape[:2]
            name = item if not isinstance(item, np.ndarray) else f"#{index}"
            raise InputMediaError(f"frame {name} is {w}x{h}, but the first frame is {size[1]}x{size[0]}")
        yield image


def _open_input(path: Path) -> av.container.InputContainer:
    """Open a media file for reading, turning every failure into one InputMediaError line."""
    if not path.exists():
        raise InputMediaError(f"video not found: {path}")
    if not path.is_file():
        raise InputMediaError(f"not a file: {path}")
    try:
        return av.open(str(path), "r")
    except (av.error.FFmpegError, OSError) as exc:
        raise InputMediaError(f"cannot read video {path}: {_reason(exc)}") from exc


# ---------------------------------------------------------------------------------------------
# Encoding


class _AudioPump:
    """Re-encodes a source's audio track to AAC, trimmed to [start, start + duration), on demand.

    Audio is pushed in step with the video (`until(t)`) so the muxer can interleave the two.
    """

    def __init__(self, source: Path, output: av.container.OutputContainer, start: float, duration: float):
        self.input = _open_input(source)
        try:
            self._setup(output, start, duration)
        except BaseException:
            self.input.close()
            raise

    def _setup(self, output: av.container.OutputContainer, start: float, duration: float) -> None:
        src = self.input.streams.audio[0]
        self.rate = src.codec_context.sample_rate or 44100
        self.layout = "mono" if src.codec_context.channels == 1 else "stereo"
        self.stream = output.add_stream("aac", rate=self.rate)
        self.stream.layout = self.layout
        self.resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self.skip = max(0, round(start * self.rate))  # samples to drop from the start of the track
        self.keep = max(0, round(duration * self.rate))  # samples to write
        self.read = 0  # resampled source samples seen so far
        self.written = 0
        self._frames = self._trimmed(src)
        self.output = output

    def _resampled(self, src: av.audio.stream.AudioStream) -> Iterator[av.AudioFrame]:
        for frame in self.input.decode(src):
            yield from self.resampler.resample(frame)
        yield from self.resampler.resample(None)

    def _trimmed(self, src: av.audio.stream.AudioStream) -> Iterator[av.AudioFrame]:
        for frame in self._resampled(src):
            begin, end = self.read, self.read + frame.samples
            self.read = end
            lo, hi = max(begin, self.skip), min(end, self.skip + self.keep)
            if hi <= lo:
                if begin >= self.skip + self.keep:
                    return
                continue
            if (lo, hi) != (begin, end):
                samples = np.ascontiguousarray(frame.to_ndarray()[:, lo - begin : hi - begin])
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self.layout)
                frame.sample_rate = self.rate
            frame.pts = self.written
            frame.time_base = Fraction(1, self.rate)
            self.written += frame.samples
            yield frame

    def until(self, seconds: float) -> None:
        """Encode and mux audio up to (at least) `seconds` of output time."""
        while self.written < seconds * self.rate:
            frame = next(self._frames, None)
            if frame is None:
                return
            self.output.mux(self.stream.encode(frame))

    def finish(self) -> None:
        self.until(math.inf)
        self.output.mux(self.stream.encode(None))

    def close(self) -> None:
        self.input.close()


def _audio_pump(
    audio_from: Path, output: av.container.OutputContainer, start: float, duration: float
) -> _AudioPump | None:
    """An _AudioPump for `audio_from`, or None (with a warning) when that file has no audio track."""
    probe = _open_input(audio_from)
    try:
        has_audio = bool(probe.streams.audio)
    finally:
        probe.close()
    if not has_audio:
        log.warning("%s has no audio track; the video is written without sound", audio_from)
        return None
    try:
        return _AudioPump(audio_from, output, start, duration)
    except (av.error.FFmpegError, ValueError) as exc:
        raise InputMediaError(f"cannot read audio from {audio_from}: {_reason(exc)}") from exc


def encode_video(
    frame_paths: Sequence[Path | str | np.ndarray],
    out_path: Path,
    *,
    fps: float,
    crf: int = 17,
    preset: str = "veryfast",
    audio_from: Path | None = None,
    audio_start: float = 0.0,
) -> Path:
    """Encode frames (image files or RGB arrays, read one at a time) to H.264 yuv420p video.

    The container follows `out_path`'s suffix (.mp4, .m4v, .mov, .mkv). Odd sizes are padded to
    even (see the module docstring). With `audio_from`, the first audio track of that file,
    starting `audio_start` seconds in, is re-encoded to AAC and trimmed to the video's length; a
    file without audio gives a silent video and a logged warning.

    Raises InputMediaError for unreadable frames / audio source, OutputError for anything that
    stops the video from being written. Returns `out_path`.
    """
    out_path = Path(out_path)
    container_format = _CONTAINER_FORMATS.get(out_path.suffix.lower())
    if container_format is None:
        raise OutputError(f"{out_path}: video files must end in one of {', '.join(_CONTAINER_FORMATS)}")
    rate = _fps_fraction(fps)
    if not (isinstance(crf, int) and 0 <= crf <= 51):
        raise OutputError(f"crf must be a whole number from 0 to 51, got {crf!r}")
    if preset not in X264_PRESETS:
        raise OutputError(f"unknown x264 preset {preset!r}; use one of {', '.join(X264_PRESETS)}")
    if not frame_paths:
        raise OutputError(f"no frames to encode into {out_path}")
    if audio_from is not None:
        audio_from = Path(audio_from)
        if not audio_from.is_file():
            raise InputMediaError(f"audio source not found: {audio_from}")

    frames = _frames(frame_paths)
    first = _pad_even(next(frames))
    height, width = first.shape[:2]
    duration = len(frame_paths) / rate

    with _atomic_target(out_path) as tmp:
        options = {"movflags": "+faststart"} if container_format in ("mp4", "mov") else {}
        try:
            output = av.open(str(tmp), "w", format=container_format, container_options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {out_path}: {_reason(exc)}") from exc
        audio = None
        try:
            stream = output.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            if audio_from is not None:
                audio = _audio_pump(audio_from, output, audio_start, float(duration))
            index = 0
            image = first
            while image is not None:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                output.mux(stream.encode(frame))
                index += 1
                if audio is not None:
                    audio.until(index / rate)
                image = next(frames, None)
                if image is not None:
                    image = _pad_even(image)
            output.mux(stream.encode(None))
            if audio is not None:
                audio.finish()
        except av.error.FFmpegError as exc:
            _close_quietly(output)
            raise OutputError(f"cannot encode {out_path}: {_reason(exc)}") from exc
        except BaseException:
            _close_quietly(output)
            raise
        finally:
            if audio is not None:
                audio.close()
        _close(output, out_path)
    return out_path


def _close(output: av.container.OutputContainer, out_path: Path) -> None:
    """Close a finished output; this writes the trailer (the MP4 index), which can still fail."""
    try:
        output.close()
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"cannot finish {out_path}: {_reason(exc)}") from exc


def _close_quietly(output: av.container.OutputContainer) -> None:
    """Close an output that is being abandoned; its temporary file is deleted anyway."""
    try:
        output.close()
    except (av.error.FFmpegError, OSError):
        pass


def _palettised(image: np.ndarray) -> av.VideoFrame:
    """An RGB frame as a pal8 frame with its own 256-colour adaptive palette."""
    quantised = Image.fromarray(image).quantize(256)
    rgb = np.zeros((256, 3), np.uint8)
    palette = np.frombuffer(bytes(quantised.getpalette() or []), np.uint8)[:768].reshape(-1, 3)
    rgb[: len(palette)] = palette
    argb = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)
    return av.VideoFrame.from_ndarray((np.asarray(quantised), argb), format="pal8")


def encode_gif(frame_paths: Sequence[Path | str | np.ndarray], out_path: Path, fps: float) -> Path:
    """Encode frames to a looping GIF, one adaptive palette per frame, streaming (flat memory).

    GIF stores delays in 1/100 s, so e.g. 12 fps plays at 8/100 s per frame.
    """
    out_path = Path(out_path)
    rate = _fps_fraction(fps)
    if not frame_paths:
        raise OutputError(f"no frames to encode into {out_path}")
    frames = _frames(frame_paths)
    first = next(frames)
    height, width = first.shape[:2]
    with _atomic_target(out_path) as tmp:
        try:
            output = av.open(str(tmp), "w", format="gif")
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {out_path}: {_reason(exc)}") from exc
        try:
            stream = output.add_stream("gif", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
            image = first
            index = 0
            while image is not None:
                frame = _palettised(image)
                frame.pts = index
                output.mux(stream.encode(frame))
                index += 1
                image = next(frames, None)
            output.mux(stream.encode(None))
        except av.error.FFmpegError as exc:
            _close_quietly(output)
            raise OutputError(f"cannot encode {out_path}: {_reason(exc)}") from exc
        except BaseException:
            _close_quietly(output)
            raise
        _close(output, out_path)
    return out_path


# ---------------------------------------------------------------------------------------------
# Reading


def _count_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Frames in a stream whose header does not say, counted by demuxing (no decoding)."""
    return sum(1 for packet in container.demux(stream) if packet.size)


def probe_video(path: Path) -> VideoInfo:
    """Frame count, frame rate, size, audio presence and duration of a video file.

    A missing, unreadable or frameless file raises InputMediaError naming the path.
    """
    path = Path(path)
    container = _open_input(path)
    try:
        if not container.streams.video:
            raise InputMediaError(f"no video stream in {path}")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        has_audio = bool(container.streams.audio)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        count = stream.frames or _count_packets(container, stream)
    except av.error.FFmpegError as exc:
        raise InputMediaError(f"cannot read video {path}: {_reason(exc)}") from exc
    finally:
        container.close()
    if count <= 0 or not width or not height:
        raise InputMediaError(f"no video frames in {path}")
    if fps <= 0:
        fps = count / duration if duration > 0 else 0.0
    if fps <= 0:
        raise InputMediaError(f"cannot tell the frame rate of {path}")
    return VideoInfo(count, fps, width, height, has_audio, duration or count / fps)


def video_fps(path: Path, every_nth: int = 1) -> float:
    """The frame rate of a video, divided by `every_nth`: the rate at which frames extracted with
    `extract_frames(..., every_nth=every_nth)` play back at the source's speed."""
    if every_nth < 1:
        raise ValueError(f"every_nth must be at least 1, got {every_nth}")
    return probe_video(path).fps / every_nth


def extract_frames(
    video: Path,
    folder: Path,
    *,
    every_nth: int = 1,
    overwrite: bool = True,
    size: tuple[int, int] | None = None,
) -> list[Path]:
    """Write source frames i with i % every_nth == 0 as folder/00001.jpg, 00002.jpg, ...

    overwrite=True removes the folder's ``*.jpg`` first (only once the video has been opened, so a
    bad path never destroys earlier frames). overwrite=False reuses the ``*.jpg`` already there and
    extracts only when there are none. `size` is (width, height); frames are resized with Lanczos.
    Each frame is written under a temporary name and renamed; if extraction fails, the frames this
    call wrote are removed again. Returns the frame paths in order.
    """
    if every_nth < 1:
        raise ValueError(f"every_nth must be at least 1, got {every_nth}")
    video, folder = Path(video), Path(folder)
    existing = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if existing and not overwrite:
        log.info("reusing %d frames already extracted in %s", len(existing), folder)
        return existing

    container = _open_input(video)
    written: list[Path] = []
    try:
        if not container.streams.video:
            raise InputMediaError(f"no video stream in {video}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for stale in existing:
                stale.unlink(missing_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot prepare frame folder {folder}: {_reason(exc)}") from exc
        for index, frame in enumerate(container.decode(stream)):
            if index % every_nth:
                continue
            image = frame.to_image()  # RGB
            if size is not None and image.size != tuple(size):
                image = image.resize(tuple(size), Image.Resampling.LANCZOS)
            target = folder / f"{len(written) + 1:05d}.jpg"
            with _atomic_target(target) as tmp:
                image.save(tmp, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
            written.append(target)
        if not written:
            raise InputMediaError(f"no video frames could be decoded from {video}")
    except av.error.FFmpegError as exc:
        _remove(written)
        raise InputMediaError(f"cannot decode video {video}: {_reason(exc)}") from exc
    except BaseException:
        _remove(written)
        raise
    finally:
        container.close()
    return written


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
