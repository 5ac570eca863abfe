"""A render killed at a random frame and resumed writes exactly the frames of an uninterrupted render."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FRAMES = 12


def _settings(tmp_path: Path, batch: str, **extra) -> Path:
    data = {"animation_mode": "2D", "max_frames": FRAMES, "W": 64, "H": 64, "seed": 1234, "steps": 6,
            "model": "tiny-random", "sampler": "euler_ancestral", "diffusion_cadence": 2, "zoom": "0:(1.04)",
            "angle": "0:(2)", "prompts": {"0": "a red fox", "6": "a blue bird"}, "neg_prompts": "fog",
            "output_path": str(tmp_path / "out"), "batch_name": batch, "ffmpeg_fps": 6, **extra}
    path = tmp_path / f"{batch}.json"
    path.write_text(json.dumps(data))
    return path


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _render(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deforge.cli", "render", str(path)], capture_output=True,
                          text=True, env=_env(), timeout=600)


def _frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*_0*.png") if "_depth_" not in p.name and not p.name.startswith("."))


def test_kill_and_resume_is_byte_identical(tmp_path):
    full = _render(_settings(tmp_path, "full"))
    assert full.returncode == 0, full.stderr
    full_folder = next((tmp_path / "out").glob("*/full"))
    expected = {p.name: p.read_bytes() for p in _frames(full_folder)}
    assert len(expected) == FRAMES

    seed = int(os.environ.get("DEFORGE_KILL_SEED", random.randrange(10**6)))
    kill_after = random.Random(seed).randint(2, FRAMES - 3)
    print(f"kill point from DEFORGE_KILL_SEED={seed}: after {kill_after} frames")
    process = subprocess.Popen([sys.executable, "-m", "deforge.cli", "render", str(_settings(tmp_path, "killed"))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    deadline = time.monotonic() + 300
    folder = None
    while time.monotonic() < deadline:
        folder = next((tmp_path / "out").glob("*/killed"), None)
        if folder is not None and len(_frames(folder)) >= kill_after:
            break
        if process.poll() is not None:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert folder is not None
    written = _frames(folder)
    assert len(written) < FRAMES, "the render finished before it could be killed"
    timestring = written[0].name.split("_")[0] if written else None
    assert timestring, "no frame was written before the kill"

    resumed = _render(_settings(tmp_path, "killed", resume_from_timestring=True, resume_timestring=timestring))
    assert resumed.returncode == 0, resumed.stderr
    got = {p.name.replace(timestring, "T"): p.read_bytes() for p in _frames(folder)}
    want = {name.split("_", 1)[1]: data for name, data in expected.items()}
    assert sorted(got) == sorted(f"T_{k}" for k in want)
    for name, data in want.items():
        assert got[f"T_{name}"] == data, f"frame {name} differs after resume (killed after {kill_after} frames)"
    assert not list(folder.glob(".deforge-tmp-*"))
    assert (folder / f"{timestring}.mp4").exists()


def test_ctrl_c_stops_cleanly_with_a_video_of_the_frames_done(tmp_path):
    from deforge.video import probe_video

    process = subprocess.Popen([sys.executable, "-m", "deforge.cli", "render",
                                str(_settings(tmp_path, "stopped", max_frames=40))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 300
    folder = None
    while time.monotonic() < deadline and process.poll() is None:
        folder = next((tmp_path / "out").glob("*/stopped"), None)
        if folder is not None and len(_frames(folder)) >= 3:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "resume_timestring" in stderr and "Traceback" not in stderr
    frames = _frames(folder)
    assert 3 <= len(frames) < 40
    videos = list(folder.glob("*.mp4"))
    assert len(videos) == 1 and probe_video(videos[0]).frame_count == len(frames)
    assert not list(folder.glob(".deforge-tmp-*"))
