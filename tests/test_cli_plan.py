"""The CLI's plan, plot and error handling: one line per problem, no traceback, exit code 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import conformance_cases, float_close

PYTHON = sys.executable


def deforge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "deforge.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def write(tmp_path: Path, data: dict | str, name: str = "settings.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_import_and_plan_do_not_import_torch():
    code = ("import sys, deforge; p = deforge.compute_plan({'animation_mode': '3D', 'max_frames': 50}, seed=1); "
            "list(p.rows()); assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'diffusers' not in sys.modules; print('ok')")
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_plan_prints_a_table(tmp_path):
    path = write(tmp_path, {"animation_mode": "2D", "max_frames": 30, "zoom": "0:(1.0), 20:(1.1)",
                            "prompts": {"0": "a lake", "10": "a forest"}, "seed": 5})
    result = deforge("plan", str(path))
    assert result.returncode == 0, result.stderr
    assert "zoom" in result.stdout and "a forest" in result.stdout and "seed 5" in result.stdout


SCHEDULE_CASES = [c for c in conformance_cases("schedules.json")
                  if "expected" in c.values[0] and c.values[0]["max_frames"] > 0]


@pytest.mark.parametrize("case", SCHEDULE_CASES[:40])
def test_csv_numbers_equal_the_conformance_vectors(tmp_path, case):
    settings = {"animation_mode": "2D", "max_frames": case["max_frames"], "zoom": case["input"],
                "seed": case.get("seed", 0)}
    out = tmp_path / "plan.csv"
    result = deforge("plan", str(write(tmp_path, settings)), "--csv", str(out))
    assert result.returncode == 0, result.stderr
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == case["max_frames"]
    for row, expected in zip(rows, case["expected"]):
        assert float_close(float(row["zoom"]), expected)


def test_csv_has_one_column_per_setting(tmp_path):
    out = tmp_path / "plan.csv"
    result = deforge("plan", str(write(tmp_path, {"animation_mode": "3D", "max_frames": 4, "seed": 1})), "--csv", str(out))
    assert result.returncode == 0, result.stderr
    header = out.read_text().splitlines()[0].split(",")
    for name in ("frame", "zoom", "translation_x", "rotation_3d_y", "strength_schedule", "prompt",
                 "negative_prompt", "seed", "steps", "diffused"):
        assert name in header


def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "plot.png"
    result = deforge("plot", str(write(tmp_path, {"animation_mode": "2D", "max_frames": 40, "seed": 1})), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content,expected", [
    ('{"steps": 10,', "not valid JSON"),
    ({"steps": "many"}, "steps"),
    ({"zoom": "0:(1) 4:(2)"}, "zoom"),
    ({"sampler": "magic"}, "sampler"),
    ({"seed_behavior": "sometimes"}, "seed_behavior"),
])
def test_malformed_settings_exit_2_without_traceback(tmp_path, content, expected):
    result = deforge("plan", str(write(tmp_path, content)))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines and expected in lines[0]


def test_one_line_per_problem(tmp_path):
    result = deforge("plan", str(write(tmp_path, {"zoom": "abc", "angle": "0:(", "animation_mode": "2D"})))
    assert result.returncode == 2
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 2


def test_missing_settings_file(tmp_path):
    result = deforge("plan", str(tmp_path / "nope.json"))
    assert result.returncode == 2 and "not found" in result.stderr
