"""The Python API behind `deforge render` / `deforge preview`: settings in, frames and a video out."""

from __future__ import annotations

import json
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from rich.console import Console

from .errors import SettingsError
from .generate.base import GenerationRequest, GenerationResult, Generator
from .output import FrameWriter, new_timestring, remove_stale_temporaries, run_folder
from .plan import Plan, compute_plan
from .settings import Settings, load_settings, save_settings


@dataclass
class RenderResult:
    folder: Path
    timestring: str
    frames: list[Path] = field(default_factory=list)
    video: Path | None = None
    gif: Path | None = None
    interrupted: bool = False


class Interrupted(KeyboardInterrupt):
    """A render stopped by Ctrl-C or SIGTERM; frames written so far are complete and resumable."""

    def __init__(self, result: RenderResult):
        super().__init__("interrupted")
        self.result = result


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let `kill` stop a render the way Ctrl-C does (frames flushed, video assembled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- choosing things ---------------------------------------------------------------------------

def make_generator(settings: Settings) -> Generator:
    from .generate.diffusers_backend import load_generator

    return load_generator(settings.model, device=settings.device, dtype=settings.dtype,
                          model_sha256=settings.model_sha256, model_family=settings.model_family,
                          prediction_type=settings.prediction_type, model_config=settings.model_config_path,
                          cpu_offload=settings.cpu_offload, attention_slicing=settings.attention_slicing,
                          vae_tiling=settings.vae_tiling)


def frame_ops_for_run(generator: Generator, video_input: bool):
    """Frames stay on the generator's GPU between steps when it has one; Video Input (masks, input
    frames from disk) and models on the CPU use the numpy operations."""
    from .frame_ops import NumpyFrameOps, frame_ops_for

    device = getattr(generator, "device", None)
    return NumpyFrameOps() if video_input or device is None else frame_ops_for(device)


def needs_depth(settings: Settings) -> bool:
    return settings.animation_mode == "3D" and (settings.use_depth_warping or settings.save_depth_maps)


def make_depth(settings: Settings):
    from .depth import load_depth_estimator

    return load_depth_estimator(settings.depth_algorithm, device=settings.device)


def run_seed_for(settings: Settings, folder: Path) -> int | None:
    """A resumed run keeps the seed of the run it continues (read from its settings file)."""
    if not settings.resume_from_timestring:
        return None
    saved = folder / f"{settings.resume_timestring}_settings.txt"
    try:
        return int(json.loads(saved.read_text(encoding="utf-8"))["seed"])
    except (ValueError, KeyError, TypeError):
        raise SettingsError(f"resume_timestring: {saved} is not a Deforge settings file") from None


def resolved_settings(settings: Settings, plan: Plan) -> Settings:
    """The settings with the run's seed written in, so rendering them again reproduces the run."""
    return settings.model_copy(update={"seed": plan.seed, "resume_from_timestring": False})


# --- progress ----------------------------------------------------------------------------------

class FrameProgress:
    """A progress bar with frames done, frames per second and ETA; per-frame lines when verbose."""

    def __init__(self, total: int, done: int, console: Console | None, verbose: bool, plan: Plan, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.plan, self.verbose, self.console = plan, verbose, console
        self.started = time.perf_counter()
        self.first = done
        self.progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=console, disable=console is None, transient=False)
        self.task = self.progress.add_task(label, total=total, completed=done, rate="")
        self.moving = plan.changing_schedules() if verbose else []

    def __enter__(self) -> "FrameProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def frame_done(self, frame: int, info: dict) -> None:
        elapsed = time.perf_counter() - self.started
        count = frame + 1 - self.first
        rate = f"{count / elapsed:.2f} frames/s" if elapsed > 0 and count > 0 else ""
        self.progress.update(self.task, completed=frame + 1, rate=rate)
        if self.verbose and self.console is not None:
            row = self.plan.row(frame) if frame < self.plan.frame_count else {}
            shown = {k: row[k] for k in ("seed", "steps", "strength", "sampler", "prompt") if k in row}
            moving = {k: round(float(self.plan.schedules[k][frame]), 4) for k in self.moving}
            self.progress.console.print(f"frame {frame:05} {shown | moving}", highlight=False, markup=False)


# --- render --------------------------------------------------------------------------------------

def render(source: "Settings | dict | str | Path", *, generator: Generator | None = None, depth: Any = None,
           verbose: bool = False, console: Console | None = None, motion_only: bool = False) -> RenderResult:
    """Render still images, a 2D/3D animation, a Video Input or an Interpolation run.

    `generator` and `depth` may be given (tests, notebooks that keep a model loaded); otherwise they
    are loaded from the settings. Ctrl-C (or SIGTERM) stops cleanly: frames written so far are
    complete, the video is assembled from them, and `Interrupted` carries the result.
    """
    from .image_ops import retain_freed_memory

    settings = load_settings(source)
    retain_freed_memory()
    folder = resume_folder(settings) if settings.resume_from_timestring else run_folder(settings.output_path,
                                                                                          settings.batch_name)
    remove_stale_temporaries(folder)
    timestring = settings.resume_timestring if settings.resume_from_timestring else new_timestring()
    mode = settings.animation_mode
    video_frames = None
    if mode == "Video Input":
        from .render.video_input import prepare_video_input

        video_frames = prepare_video_input(settings, folder)
    plan = compute_plan(settings, seed=run_seed_for(settings, folder),
                        frame_count=len(video_frames.inputs) if video_frames is not None else None)
    if console is not None:
        from .report import summary_lines

        for line in summary_lines(plan):
            console.print(line, highlight=False, markup=False)
    if generator is None:
        generator = MotionOnlyGenerator() if motion_only else make_generator(settings)
    if depth is None and needs_depth(settings) and not motion_only:
        depth = make_depth(settings)
    if not settings.resume_from_timestring and (mode != "None" or settings.save_settings):
        # written once the models have loaded, so a model error leaves no orphan settings file
        save_settings(resolved_settings(settings, plan), folder / f"{timestring}_settings.txt")
    if mode == "None":
        from .render.still import render_stills

        return render_stills(plan, generator, folder, timestring, console=console)
    if mode == "Interpolation":
        from .render.interpolation import render_interpolation

        return render_interpolation(plan, generator, folder, timestring, console=console)
    return _render_animation(plan, generator, depth, folder, timestring, console, verbose, motion_only, video_frames)


def resume_folder(settings: Settings) -> Path:
    """The folder of the run to resume: the month of its timestring first, then any month (a run
    started on the 31st and resumed on the 1st lives in the previous month's folder)."""
    from .output import safe_batch_name

    root = Path(settings.output_path).resolve()
    name = f"{settings.resume_timestring}_settings.txt"
    batch = safe_batch_name(settings.batch_name)
    ts = settings.resume_timestring
    candidates = ([root / f"{ts[:4]}-{ts[4:6]}" / batch] if len(ts) >= 6 and ts[:6].isdigit() else [])
    candidates += sorted(root.glob(f"*/{batch}" if batch else "*"), reverse=True)
    for folder in candidates:
        if (folder / name).is_file() and root in folder.resolve().parents:
            return folder
    raise SettingsError(f"resume_timestring: no run {ts!r} of batch {settings.batch_name!r} under {root} "
                        f"(looked for {name})")


def _render_animation(plan: Plan, generator: Generator, depth: Any, folder: Path, timestring: str,
                      console: Console | None, verbose: bool, motion_only: bool, video_frames: Any) -> RenderResult:
    from .render.animation import AnimationRun, AnimationState, resume_state

    settings = plan.settings
    cadence = 1 if video_frames is not None else settings.diffusion_cadence
    state = resume_state(plan, folder, timestring, cadence) if settings.resume_from_timestring else AnimationState()
    if state.next_diffusion >= plan.frame_count and settings.resume_from_timestring and console is not None:
        console.print("every frame already exists; assembling the video", highlight=False)
    init_image = None
    if settings.use_init and state.next_diffusion == 0 and video_frames is None:
        from .render.inputs import load_init_image

        init_image = load_init_image(settings)
    elif motion_only and state.next_diffusion == 0:
        init_image = test_card(settings.W, settings.H)
    label = "preview" if motion_only else "render"
    with frame_session(plan, folder, timestring, start=state.next_diffusion, console=console, verbose=verbose,
                       label=label, audio_source=video_frames.source if video_frames is not None else None) as session:
        run = AnimationRun(plan, generator, folder, timestring, session.writer, depth=depth, init_image=init_image,
                           input_frame=video_frames.frame if video_frames is not None else None,
                           input_mask=video_frames.mask if video_frames is not None else None,
                           on_frame=session.progress.frame_done, motion_only=motion_only,
                           ops=frame_ops_for_run(generator, video_frames is not None))
        run.run(state)
    return session.result


@dataclass
class FrameSession:
    writer: FrameWriter
    progress: "FrameProgress"
    result: RenderResult


@contextmanager
def frame_session(plan: Plan, folder: Path, timestring: str, *, start: int, console: Console | None,
                  verbose: bool, label: str, audio_source: Path | None = None) -> Iterator[FrameSession]:
    """Frames written in the background with a progress bar; afterwards (also after Ctrl-C or SIGTERM)
    the complete frames are collected and the video assembled. An interruption raises `Interrupted`."""
    from .render.animation import existing_frames, frame_name

    result = RenderResult(folder, timestring)
    writer = FrameWriter(plan.settings.bit_depth_output)
    interrupted = False
    try:
        with sigterm_as_interrupt(), FrameProgress(plan.frame_count, start, console, verbose, plan, label) as bar:
            yield FrameSession(writer, bar, result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()
    bit_depth = plan.settings.bit_depth_output
    done = existing_frames(folder, timestring, plan.frame_count, bit_depth)
    result.frames = [folder / frame_name(timestring, k, bit_depth) for k in range(done)]
    result.interrupted = interrupted
    assemble_video(result, plan.settings, audio_source)
    if interrupted:
        raise Interrupted(result)


def assemble_video(result: RenderResult, settings: Settings, audio_source: Path | None = None) -> None:
    """The mp4 (and optional GIF) of the frames written so far."""
    if settings.skip_video_for_run_all or not result.frames or settings.bit_depth_output == 32:
        return
    from .video import encode_gif, encode_video

    fps = settings.ffmpeg_fps or 12.0
    if audio_source is not None and settings.ffmpeg_fps is None:
        from .video import video_fps

        fps = video_fps(audio_source, settings.extract_nth_frame)
    audio = audio_source if (audio_source is not None and settings.video_keep_audio) else None
    result.video = encode_video(result.frames, result.folder / f"{result.timestring}.mp4", fps=fps,
                                crf=settings.video_crf, audio_from=audio)
    if settings.create_gif:
        result.gif = encode_gif(result.frames, result.folder / f"{result.timestring}.gif", fps)


# --- preview (no model) ----------------------------------------------------------------------------

class MotionOnlyGenerator:
    """Stands in for the model in `deforge preview`: returns its init image unchanged."""

    def generate(self, request: GenerationRequest) -> GenerationResult:
        image = request.init_image if request.init_image is not None else test_card(request.width, request.height)
        return GenerationResult(np.asarray(image, dtype=np.float32), 0)

    def encode(self, conditioning: Any) -> Any:
        return conditioning


def test_card(width: int, height: int) -> np.ndarray:
    """A test card drawn in code: colour gradients, a grid and concentric rings, so motion is easy to see."""
    import cv2

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    card = np.stack([255 * x / max(width - 1, 1), 255 * y / max(height - 1, 1),
                     np.full_like(x, 160.0)], axis=-1)
    step = max(8, min(width, height) // 8)
    card[(x.astype(int) % step) < 2] = 255
    card[(y.astype(int) % step) < 2] = 255
    card = card.astype(np.uint8)
    centre = (width // 2, height // 2)
    for radius in range(step, max(width, height), step):
        cv2.circle(card, centre, radius, (20, 20, 20), 2, lineType=cv2.LINE_AA)
    cv2.putText(card, "deforge", (width // 10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, max(width, 64) / 256.0,
                (255, 255, 255), max(1, width // 128), cv2.LINE_AA)
    return card.astype(np.float32)


def preview(source: "Settings | dict | str | Path", *, console: Console | None = None, depth: Any = None) -> RenderResult:
    """The camera motion of a 2D/3D settings file over the init image or a test card, with no model."""
    settings = load_settings(source)
    if settings.animation_mode not in ("2D", "3D"):
        raise SettingsError(f"animation_mode: preview shows 2D and 3D motion; this file is {settings.animation_mode!r}")
    settings = settings.model_copy(update={"batch_name": f"{settings.batch_name}_preview"})
    if depth is None and settings.animation_mode == "3D" and settings.use_depth_warping:
        depth = _cached_depth_or_none(settings, console)
    return render(settings, console=console, motion_only=True, depth=depth)


def _cached_depth_or_none(settings: Settings, console: Console | None):
    """A depth model already on this machine (never downloaded for a preview), else flat depth."""
    from .depth import load_depth_estimator
    from .errors import ModelError

    try:
        return load_depth_estimator(settings.depth_algorithm, device=settings.device, local_files_only=True)
    except ModelError:
        if console is not None:
            console.print(f"preview: depth model {settings.depth_algorithm!r} is not available here; using flat depth",
                          highlight=False, markup=False)
        return None
