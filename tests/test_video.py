"""deforge.video: encoding frames to MP4 / GIF, probing, and extracting frames from a video."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from deforge.errors import InputMediaError, OutputError
from deforge.video import VideoInfo, encode_gif, encode_video, extract_frames, probe_video, video_fps
from fixtures_video import make_test_video, pattern_frame, write_png_frames


def _stream_facts(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        facts = {
            "codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "size": (video.codec_context.width, video.codec_context.height),
            "fps": video.average_rate,
            "audio": len(container.streams.audio),
        }
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video)]
    facts["frames"] = frames
    return facts


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporary files left in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def seven(tmp_path_factory) -> Path:
    """A 7-frame 64x48 video at 12 fps, no audio."""
    return make_test_video(tmp_path_factory.mktemp("src") / "seven.mp4", n_frames=7, size=(64, 48), fps=12)


@pytest.fixture(scope="module")
def with_audio(tmp_path_factory) -> Path:
    """A 24-frame (2 s) video with a sine audio track."""
    return make_test_video(tmp_path_factory.mktemp("src") / "sound.mp4", n_frames=24, fps=12, audio=True)


# ----------------------------------------------------------------------------------- encoding


def test_encode_mp4_frames_fps_size_codec(tmp_path):
    pngs = write_png_frames(tmp_path / "frames", 10, size=(64, 48))
    out = encode_video(pngs, tmp_path / "out" / "run.mp4", fps=12)
    assert out == tmp_path / "out" / "run.mp4"
    facts = _stream_facts(out)
    assert facts["codec"] == "h264"
    assert facts["pix_fmt"] == "yuv420p"
    assert facts["size"] == (64, 48)
    assert facts["fps"] == 12
    assert facts["audio"] == 0
    assert len(facts["frames"]) == 10
    # Frames come back in order and close to the originals (crf 17 is near-transparent).
    for index, decoded in enumerate(facts["frames"]):
        assert _diff(decoded, pattern_frame(index, (64, 48))) < 6
    assert _leftovers(out.parent) == []


def test_encode_fractional_fps_and_arrays(tmp_path):
    frames = [pattern_frame(i) for i in range(5)]
    out = encode_video(frames, tmp_path / "ntsc.mp4", fps=30000 / 1001, crf=23, preset="ultrafast")
    info = probe_video(out)
    assert info.frame_count == 5
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_encode_odd_size_is_padded_to_even(tmp_path):
    pngs = write_png_frames(tmp_path / "frames", 4, size=(65, 63))
    out = encode_video(pngs, tmp_path / "odd.mp4", fps=8)
    facts = _stream_facts(out)
    assert facts["size"] == (66, 64)
    assert len(facts["frames"]) == 4
    # The original pixels sit at the top left; the padding repeats the edge.
    assert _diff(facts["frames"][2][:63, :65], pattern_frame(2, (65, 63))) < 6


def test_encode_gif(tmp_path):
    pngs = write_png_frames(tmp_path / "frames", 10, size=(65, 63))
    out = encode_gif(pngs, tmp_path / "run.gif", fps=12)
    with Image.open(out) as gif:
        assert gif.format == "GIF"
        assert gif.size == (65, 63)
        assert gif.n_frames == 10
        gif.seek(3)
        assert _diff(np.asarray(gif.convert("RGB")), pattern_frame(3, (65, 63))) < 8
    assert _leftovers(tmp_path) == []


def test_encode_muxes_audio_trimmed_to_video(tmp_path, with_audio):
    pngs = write_png_frames(tmp_path / "frames", 6)
    out = encode_video(pngs, tmp_path / "sound.mp4", fps=12, audio_from=with_audio, audio_start=0.5)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        samples = sum(frame.samples for frame in container.decode(audio))
    # 6 frames at 12 fps = 0.5 s; AAC rounds up to whole 1024-sample frames.
    assert 0.45 * 44100 <= samples <= 0.5 * 44100 + 2048
    assert probe_video(out).has_audio


def test_encode_audio_start_near_end_of_source(tmp_path, with_audio):
    pngs = write_png_frames(tmp_path / "frames", 12)
    out = encode_video(pngs, tmp_path / "late.mp4", fps=12, audio_from=with_audio, audio_start=1.9)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        seconds = float(audio.duration * audio.time_base)
    assert 0.09 <= seconds <= 0.15  # only the last 0.1 s of the 2 s source is left


def test_encode_without_audio_source_or_silent_source(tmp_path, seven):
    pngs = write_png_frames(tmp_path / "frames", 3)
    assert _stream_facts(encode_video(pngs, tmp_path / "a.mp4", fps=12))["audio"] == 0
    # A source without an audio track gives a silent video, not an error.
    assert _stream_facts(encode_video(pngs, tmp_path / "b.mp4", fps=12, audio_from=seven))["audio"] == 0


def test_encode_missing_audio_source(tmp_path):
    pngs = write_png_frames(tmp_path / "frames", 2)
    with pytest.raises(InputMediaError, match="nowhere.mp4"):
        encode_video(pngs, tmp_path / "a.mp4", fps=12, audio_from=tmp_path / "nowhere.mp4")
    assert not (tmp_path / "a.mp4").exists()


def test_failed_encode_leaves_previous_file_and_no_temporaries(tmp_path):
    pngs = write_png_frames(tmp_path / "frames", 6)
    out = tmp_path / "out" / "run.mp4"
    out.parent.mkdir()
    out.write_bytes(b"previous video")
    broken = pngs[:3] + [tmp_path / "frames" / "missing.png"] + pngs[3:]
    with pytest.raises(InputMediaError, match="missing.png"):
        encode_video(broken, out, fps=12)
    assert out.read_bytes() == b"previous video"
    assert _leftovers(out.parent) == []
    with pytest.raises(InputMediaError, match="is 32x32"):
        encode_video(pngs[:2] + write_png_frames(tmp_path / "small", 1, size=(32, 32)), out, fps=12)
    with pytest.raises(InputMediaError, match="missing.png"):
        encode_gif(broken, tmp_path / "out" / "run.gif", fps=12)
    assert sorted(p.name for p in out.parent.iterdir()) == ["run.mp4"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fps": 0}, "frame rate"),
        ({"fps": 12, "crf": 60}, "crf"),
        ({"fps": 12, "preset": "turbo"}, "preset"),
    ],
)
def test_encode_rejects_bad_options(tmp_path, kwargs, match):
    pngs = write_png_frames(tmp_path, 1)
    with pytest.raises(OutputError, match=match):
        encode_video(pngs, tmp_path / "x.mp4", **kwargs)


def test_encode_rejects_no_frames_and_unknown_suffix(tmp_path):
    with pytest.raises(OutputError, match="no frames"):
        encode_video([], tmp_path / "x.mp4", fps=12)
    with pytest.raises(OutputError, match=r"\.avi"):
        encode_video(write_png_frames(tmp_path, 1), tmp_path / "x.avi", fps=12)


def test_encode_16bit_png(tmp_path):
    import cv2

    image16 = (pattern_frame(0).astype(np.uint16) * 257)[:, :, ::-1]  # BGR for OpenCV
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), image16)
    facts = _stream_facts(encode_video([path], tmp_path / "deep.mp4", fps=12))
    assert _diff(facts["frames"][0], pattern_frame(0)) < 6


# ------------------------------------------------------------------------------------ probing


def test_probe(seven, with_audio):
    info = probe_video(seven)
    assert isinstance(info, VideoInfo)
    assert (info.frame_count, info.width, info.height, info.has_audio) == (7, 64, 48, False)
    assert info.fps == pytest.approx(12)
    assert info.duration == pytest.approx(7 / 12, abs=0.01)
    assert probe_video(with_audio).has_audio
    assert video_fps(seven) == pytest.approx(12)
    assert video_fps(seven, every_nth=3) == pytest.approx(4)


def _bad_videos(folder: Path) -> dict[str, Path]:
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    zero = folder / "zero.mp4"
    zero.write_bytes(b"")
    empty = folder / "empty.mp4"  # a valid container with no frames
    with av.open(str(empty), "w") as output:
        stream = output.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        output.start_encoding()
    return {"missing": folder / "missing.mp4", "corrupt": corrupt, "zero": zero, "empty": empty, "folder": folder}


@pytest.mark.parametrize("kind", ["missing", "corrupt", "zero", "empty", "folder"])
def test_bad_video_is_input_media_error(tmp_path, kind):
    path = _bad_videos(tmp_path)[kind]
    with pytest.raises(InputMediaError) as probed:
        probe_video(path)
    assert str(path) in str(probed.value) and "\n" not in str(probed.value)
    with pytest.raises(InputMediaError) as extracted:
        extract_frames(path, tmp_path / "frames")
    assert str(path) in str(extracted.value)
    assert not (tmp_path / "frames").exists() or list((tmp_path / "frames").iterdir()) == []


# --------------------------------------------------------------------------------- extracting


def test_extract_every_frame(tmp_path, seven):
    paths = extract_frames(seven, tmp_path / "inputframes")
    assert [p.name for p in paths] == [f"{i:05d}.jpg" for i in range(1, 8)]
    assert sorted(p.name for p in (tmp_path / "inputframes").iterdir()) == [p.name for p in paths]
    for index, path in enumerate(paths):
        assert _diff(_read_rgb(path), pattern_frame(index, (64, 48))) < 6


def test_extract_every_third_frame(tmp_path, seven):
    paths = extract_frames(seven, tmp_path / "inputframes", every_nth=3)
    assert [p.name for p in paths] == ["00001.jpg", "00002.jpg", "00003.jpg"]
    for path, source in zip(paths, (0, 3, 6)):
        image = _read_rgb(path)
        distances = [_diff(image, pattern_frame(i, (64, 48))) for i in range(7)]
        assert int(np.argmin(distances)) == source
        assert distances[source] < 6


def test_extract_resizes(tmp_path, seven):
    paths = extract_frames(seven, tmp_path / "f", every_nth=10, size=(32, 24))
    assert len(paths) == 1
    assert _read_rgb(paths[0]).shape == (24, 32, 3)


def test_extract_overwrite_removes_stale_frames(tmp_path, seven):
    folder = tmp_path / "inputframes"
    folder.mkdir()
    (folder / "99999.jpg").write_bytes(b"stale")
    (folder / "notes.txt").write_text("kept")
    paths = extract_frames(seven, folder, every_nth=2, overwrite=True)
    assert [p.name for p in paths] == ["00001.jpg", "00002.jpg", "00003.jpg", "00004.jpg"]
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in paths] + ["notes.txt"]


def test_extract_without_overwrite_reuses_existing(tmp_path, seven):
    folder = tmp_path / "inputframes"
    first = extract_frames(seven, folder, every_nth=3, overwrite=False)  # folder empty: extracts
    assert len(first) == 3
    stamps = [p.stat().st_mtime_ns for p in first]
    again = extract_frames(seven, folder, every_nth=1, overwrite=False)
    assert again == first
    assert [p.stat().st_mtime_ns for p in again] == stamps
    # Reuse does not even need the video any more.
    assert extract_frames(tmp_path / "gone.mp4", folder, overwrite=False) == first


def test_extract_missing_video_keeps_existing_frames(tmp_path):
    folder = tmp_path / "inputframes"
    folder.mkdir()
    (folder / "00001.jpg").write_bytes(b"earlier")
    with pytest.raises(InputMediaError, match="gone.mp4"):
        extract_frames(tmp_path / "gone.mp4", folder, overwrite=True)
    assert (folder / "00001.jpg").read_bytes() == b"earlier"


def test_extract_rejects_bad_every_nth(tmp_path, seven):
    with pytest.raises(ValueError):
        extract_frames(seven, tmp_path / "f", every_nth=0)


def test_round_trip_extract_then_encode_with_source_audio(tmp_path, with_audio):
    frames = extract_frames(with_audio, tmp_path / "inputframes", every_nth=2)
    assert len(frames) == 12
    out = encode_video(frames, tmp_path / "out.mp4", fps=video_fps(with_audio, every_nth=2), audio_from=with_audio)
    info = probe_video(out)
    assert (info.frame_count, info.has_audio) == (12, True)
    assert info.fps == pytest.approx(6)
    assert _leftovers(tmp_path) == []
