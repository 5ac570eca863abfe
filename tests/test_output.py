"""Output safety: atomic writes, a full disk, batch names that try to leave the output folder."""

from __future__ import annotations

import errno

import numpy as np
import pytest

import deforge.output as output
from deforge.api import render
from deforge.errors import OutputError
from deforge.output import FrameWriter, run_folder, safe_batch_name, write_image
from fakes import RecordingGenerator


@pytest.mark.parametrize("name", ["../../etc", "/abs/path", "..", "a/../../b", "..\\..\\win"])
def test_batch_name_never_leads_outside_output_path(tmp_path, name):
    folder = run_folder(tmp_path / "out", name)
    parts = folder.relative_to((tmp_path / "out").resolve()).parts
    assert len(parts) <= 2 and parts[0][:2] == "20"  # output_path/<YYYY-MM>[/<one folder>]
    assert "/" not in safe_batch_name(name) and "\\" not in safe_batch_name(name)


def test_write_image_leaves_no_temporary_file(tmp_path):
    write_image(tmp_path / "a.png", np.full((8, 8, 3), 100, np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def _disk_full_after(monkeypatch, writes: int) -> None:
    real = output.os.fsync
    count = {"n": 0}

    def fsync(fd):
        count["n"] += 1
        if count["n"] > writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(output.os, "fsync", fsync)


def test_full_disk_is_a_one_line_error_and_frames_stay_complete(tmp_path, monkeypatch):
    _disk_full_after(monkeypatch, 3)
    settings = {"animation_mode": "2D", "max_frames": 8, "W": 64, "H": 64, "seed": 1, "output_path": str(tmp_path),
                "batch_name": "full", "skip_video_for_run_all": True}
    with pytest.raises(OutputError) as info:
        render(settings, generator=RecordingGenerator())
    assert "disk is full" in str(info.value) and "\n" not in str(info.value)
    folder = next(tmp_path.glob("*/full"))
    frames = sorted(folder.glob("*_0*.png"))
    assert 1 <= len(frames) <= 3 and not list(folder.glob(".deforge-tmp-*"))


def test_writer_reports_errors_on_close(tmp_path):
    writer = FrameWriter()
    writer.put(tmp_path / "missing-folder" / "x.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(OutputError):
        writer.close()
