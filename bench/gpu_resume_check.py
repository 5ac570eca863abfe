"""GPU check (python bench/gpu_resume_check.py): a resumed 2D/3D run with frames on the GPU writes the same bytes as an uninterrupted one."""
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from deforge.api import render
from deforge.generate.diffusers_backend import load_generator
from deforge.render.animation import frame_name
gen = load_generator("tiny-random", device="cuda")
print("device", gen.device, flush=True)
for mode, cadence in (("2D", 2), ("3D", 1), ("3D", 3)):
    with tempfile.TemporaryDirectory() as out:
        s = {"animation_mode": mode, "max_frames": 10, "W": 256, "H": 256, "seed": 9, "steps": 8, "output_path": out,
             "batch_name": "full", "skip_video_for_run_all": True, "diffusion_cadence": cadence, "use_depth_warping": False,
             "zoom": "0:(1.03)", "angle": "0:(2)", "translation_z": "0:(4)", "rotation_3d_y": "0:(1)", "prompts": {"0": "a", "5": "b"}}
        full = render(s, generator=gen)
        copy = full.folder.parent / "resumed"
        shutil.copytree(full.folder, copy)
        for k in range(5, 10):
            (copy / frame_name(full.timestring, k)).unlink()
        render({**s, "batch_name": "resumed", "resume_from_timestring": True, "resume_timestring": full.timestring}, generator=gen)
        same = [(copy / frame_name(full.timestring, k)).read_bytes() == (full.folder / frame_name(full.timestring, k)).read_bytes() for k in range(10)]
        print(mode, "cadence", cadence, "identical frames:", sum(same), "/ 10", same, flush=True)
