"""The plan: one row of resolved values per frame, computed once from the settings, without torch.

The plan is the contract between settings and rendering: every schedule evaluated for all
frames, the prompt pieces and their weights on both sides, the seed of each frame (G-2), the
steps actually run (G-1) and which frames are diffused or cadence in-betweens (A-7).
"""

from __future__ import annotations

import csv
import re
import json
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import ScheduleError, SettingsError
from .generate.base import Conditioning
from .prompts import PromptPiece, normalize_prompt_spec, parse_weighted_prompt, prompt_indices, split_by_sign
from .schedule import evaluate_schedule, evaluate_string_schedule
from .seeds import resolve_seed, scheduled_seed, seed_array, seed_sequence, steps_per_frame
from .settings import NUMERIC_SCHEDULES, Settings, SettingsWarning, load_settings

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class PromptTrack:
    """The prompt side of one frame series: unique texts and, per frame, which one is in force."""

    texts: list[str]
    index: np.ndarray  # int per frame, into texts

    def at(self, frame: int) -> str:
        return self.texts[int(self.index[frame])]


@dataclass
class Plan:
    """Every per-frame value of a run. Arrays have one entry per frame (or per image in None mode)."""

    settings: Settings
    seed: int
    frame_count: int
    schedules: dict[str, np.ndarray]
    sampler: list[str]
    positive: PromptTrack
    negative: PromptTrack
    seeds: np.ndarray
    strength: np.ndarray
    steps: np.ndarray
    diffused: np.ndarray
    init_images: list[str] = field(default_factory=list)
    """None mode: the init image of each row ("" for none)."""
    interpolation: list[tuple[int, int, float]] | None = None
    """Interpolation mode: per frame (prompt key index a, index b, weight of b)."""
    notes: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return self.settings.animation_mode

    # --- conditioning ---------------------------------------------------------------------
    @cached_property
    def _pieces(self) -> dict[str, list[PromptPiece]]:
        texts = set(self.positive.texts) | set(self.negative.texts)
        return {text: parse_weighted_prompt(text) for text in texts}

    @cached_property
    def _conditionings(self) -> list[Conditioning]:
        return _frame_conditionings(self)

    def conditioning(self, frame: int) -> Conditioning:
        """The weighted sub-prompts of one frame on both sides (P-2, P-3)."""
        return self._conditionings[frame]

    # --- table --------------------------------------------------------------------------------
    def columns(self) -> list[str]:
        names = ["frame"]
        if self.mode not in ("None", "Interpolation"):
            names += list(self.schedules)
            names += ["sampler", "strength"]
        names += ["prompt", "negative_prompt"]
        if self.settings.prompt_weighting:
            names += ["positive_pieces", "negative_pieces"]
        if self.mode == "None":
            names += ["init_image"]
        if self.interpolation is not None:
            names += ["prompt_to", "blend"]
        names += ["seed", "steps", "diffused"]
        return names

    def row(self, frame: int) -> dict[str, Any]:
        values: dict[str, Any] = {"frame": frame}
        if self.mode not in ("None", "Interpolation"):
            for name, series in self.schedules.items():
                values[name] = float(series[frame])
            values["sampler"] = self.sampler[frame]
            values["strength"] = float(self.strength[frame])
        values["prompt"] = self.positive.at(frame)
        values["negative_prompt"] = self.negative.at(frame)
        if self.settings.prompt_weighting:
            cond = self.conditioning(frame)
            values["positive_pieces"] = json.dumps([[t, round(w, 6)] for t, w in cond.positive], ensure_ascii=False)
            values["negative_pieces"] = json.dumps([[t, round(w, 6)] for t, w in cond.negative], ensure_ascii=False)
        if self.mode == "None":
            values["init_image"] = self.init_images[frame]
        if self.interpolation is not None:
            a, b, w = self.interpolation[frame]
            values["prompt_to"] = self.positive.texts[b]
            values["blend"] = w
        values["seed"] = int(self.seeds[frame])
        values["steps"] = int(self.steps[frame])
        values["diffused"] = bool(self.diffused[frame])
        return values

    def rows(self) -> Iterator[dict[str, Any]]:
        for frame in range(self.frame_count):
            yield self.row(frame)

    def write_csv(self, path: Path) -> None:
        """One row per frame, one column per setting name."""
        from .output import atomic_writer

        with atomic_writer(path, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns())
            writer.writeheader()
            for row in self.rows():
                writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})

    def relevant_schedules(self) -> list[str]:
        """The schedules that can change this run's images (2D ignores 3D motion and vice versa)."""
        s = self.settings
        unused = {name for name in self.schedules if name.startswith("hybrid_")}
        motion_2d = {"angle", "zoom", *(n for n in self.schedules if n.startswith("perspective_flip_"))}
        motion_3d = {"translation_z", "rotation_3d_x", "rotation_3d_y", "rotation_3d_z", "fov"}
        if self.mode == "2D":
            unused |= motion_3d
            if not s.flip_2d_perspective:
                unused |= {n for n in motion_2d if n.startswith("perspective_flip_")}
        elif self.mode == "3D":
            unused |= motion_2d
        else:
            unused |= motion_2d | motion_3d | {"translation_x", "translation_y"}
        return [name for name in self.schedules if name not in unused]

    def changing_schedules(self) -> list[str]:
        """Names of the schedules that matter for this run and are not constant over it."""
        return [name for name in self.relevant_schedules() if self.schedules[name].size and np.ptp(self.schedules[name]) > 0]


# --- building the plan -------------------------------------------------------------------------

def compute_plan(source: "Settings | dict | str | Path", *, seed: int | None = None,
                 frame_count: int | None = None) -> Plan:
    """The plan of a run. `seed` overrides a -1 seed (otherwise resolved at random once);
    `frame_count` overrides the number of frames (Video Input: the extracted frame count)."""
    settings = load_settings(source)
    run_seed = seed if seed is not None else resolve_seed(settings.seed)
    plan = _plan_for_mode(settings, run_seed, frame_count)
    warn_unparsed_weights(plan)
    return plan


def _plan_for_mode(settings: Settings, run_seed: int, frame_count: int | None) -> Plan:
    mode = settings.animation_mode
    if mode in ("None", "Interpolation"):
        _evaluate_schedules(settings, 1, run_seed)  # unused here, but a malformed schedule is still an error
    if mode == "None":
        return _still_plan(settings, run_seed)
    if mode == "Interpolation":
        return _interpolation_plan(settings, run_seed)
    max_frames = frame_count if frame_count is not None else _animation_frame_count(settings)
    notes: list[str] = []
    if mode == "Video Input" and frame_count is None and not Path(settings.video_init_path).is_file():
        notes.append(f"Video Input: max_frames {max_frames} is replaced by the number of frames extracted "
                     f"from {settings.video_init_path}")
    schedules = _evaluate_schedules(settings, max_frames, run_seed)
    _check_schedule_values(settings, schedules)
    cadence = 1 if mode == "Video Input" else settings.diffusion_cadence
    if mode == "Video Input" and settings.diffusion_cadence != 1:
        notes.append("Video Input: diffusion_cadence is forced to 1")
    frames = np.arange(max_frames)
    diffused = frames % cadence == 0
    strength = np.clip(schedules["strength_schedule"], 0.0, 1.0)
    if mode != "Video Input":
        strength = strength.copy()
        strength[0] = min(max(settings.strength, 0.0), 1.0) if settings.use_init else 0.0
    steps = steps_per_frame(strength, settings.steps)
    steps[~diffused] = 0
    seeds = _animation_seeds(settings, run_seed, schedules.get("seed_schedule"), diffused)
    sampler = _sampler_series(settings, max_frames)
    positive = _track(settings.prompts, max_frames)
    negative = _track(settings.neg_prompts, max_frames)
    schedules.pop("seed_schedule", None)
    return Plan(settings, run_seed, max_frames, schedules, sampler, positive, negative, seeds,
                strength, steps, diffused, notes=notes)


def _animation_frame_count(settings: Settings) -> int:
    if settings.animation_mode == "Video Input" and Path(settings.video_init_path).is_file():
        from .errors import InputMediaError
        from .video import probe_video

        try:
            info = probe_video(Path(settings.video_init_path))
        except InputMediaError:
            return settings.max_frames
        return -(-info.frame_count // settings.extract_nth_frame)
    return settings.max_frames


def _evaluate_schedules(settings: Settings, max_frames: int, run_seed: int) -> dict[str, np.ndarray]:
    """Every numeric schedule, once, vectorised; all problems reported together."""
    problems: list[str] = []
    values: dict[str, np.ndarray] = {}
    names = list(NUMERIC_SCHEDULES) + (["seed_schedule"] if settings.seed_behavior == "schedule" else [])
    for name in names:
        try:
            values[name] = evaluate_schedule(getattr(settings, name), max_frames, setting=name, seed=run_seed)
        except ScheduleError as error:
            problems.append(str(error.with_setting(name) if error.setting is None else error))
    if problems:
        raise SettingsError(problems)
    return values


def _check_schedule_values(settings: Settings, schedules: dict[str, np.ndarray]) -> None:
    """Values a frame cannot use, found before anything is rendered."""
    problems = []
    kernel = schedules["kernel_schedule"].astype(np.int64)
    bad = np.flatnonzero(((kernel < 1) | (kernel % 2 == 0)) & (schedules["amount_schedule"] != 0))
    if bad.size:
        problems.append(f"kernel_schedule: the unsharp kernel must be a positive odd size; frame {bad[0]} "
                        f"has {schedules['kernel_schedule'][bad[0]]:g}")
    if settings.animation_mode == "3D":
        bad = np.flatnonzero(np.mod(schedules["fov"], 360.0) == 0)
        if bad.size:
            problems.append(f"fov: {schedules['fov'][bad[0]]:g} at frame {bad[0]} gives no image; use a field "
                            "of view between 0 and 180 degrees")
    if problems:
        raise SettingsError(problems)


def _sampler_series(settings: Settings, max_frames: int) -> list[str]:
    if not settings.enable_schedule_samplers:
        return [settings.sampler] * max_frames
    from .generate.samplers import SAMPLERS

    try:
        names = evaluate_string_schedule(settings.sampler_schedule, max_frames, setting="sampler_schedule")
    except ScheduleError as error:
        raise SettingsError(str(error)) from None
    unknown = sorted({n for n in names if n not in SAMPLERS})
    if unknown:
        raise SettingsError(f"sampler_schedule: unknown sampler {', '.join(map(repr, unknown))}; "
                            f"allowed: {', '.join(SAMPLERS)}")
    return names


def _animation_seeds(settings: Settings, run_seed: int, seed_schedule: np.ndarray | None,
                     diffused: np.ndarray) -> np.ndarray:
    """The seed of each frame: a diffused frame's own seed; an in-between frame shows the seed of
    the diffusion that starts its group. Seeds advance once per diffusion (G-2)."""
    diffused_at = np.flatnonzero(diffused)
    if settings.seed_behavior == "schedule":
        assert seed_schedule is not None
        own = np.array([scheduled_seed(seed_schedule[f], run_seed, int(f)) for f in diffused_at], dtype=np.int64)
    else:
        own = seed_array(run_seed, settings.seed_behavior, settings.seed_iter_N, diffused_at.size)
    group = np.cumsum(diffused) - 1
    return own[group]


def _track(spec: Any, max_frames: int) -> PromptTrack:
    prompts = normalize_prompt_spec(spec)
    keys = sorted(prompts)
    index = prompt_indices(keys, max_frames)
    return PromptTrack([prompts[k] for k in keys], index)


def _frame_conditionings(plan: Plan) -> list[Conditioning]:
    settings = plan.settings
    n = plan.frame_count
    if not settings.prompt_weighting:
        return [Conditioning.plain(plan.positive.at(f), plan.negative.at(f)) for f in range(n)]
    frames = np.arange(n, dtype=np.float64) if plan.mode not in ("None", "Interpolation") else np.zeros(n)
    names = dict(max_frames=max(n, 1), max_f=max(n, 1) - 1, s=plan.seed)
    weights_cache: dict[str, np.ndarray] = {}

    def weights(text: str) -> np.ndarray:
        if text not in weights_cache:
            pieces = plan._pieces[text]
            weights_cache[text] = np.stack([p.weights(frames, **names) for p in pieces]) if pieces else np.zeros((0, n))
        return weights_cache[text]

    result = []
    for f in range(n):
        text, neg_text = plan.positive.at(f), plan.negative.at(f)
        pos_pieces = plan._pieces[text]
        positive, negative_from_weights = split_by_sign(pos_pieces, weights(text)[:, f], settings.normalize_prompt_weights)
        neg_positive, _ = split_by_sign(plan._pieces[neg_text], weights(neg_text)[:, f], settings.normalize_prompt_weights)
        negative = [p for p in neg_positive if p[0]] + negative_from_weights
        result.append(Conditioning(tuple(positive), tuple(negative)))
    return result


# --- still images (None mode) ----------------------------------------------------------------

def still_init_images(settings: Settings) -> list[str]:
    """Init images of a still-image run: "" without init; a file or URL; every image of a folder."""
    if not settings.use_init:
        return [""]
    source = settings.init_image or ""
    if not source:
        raise SettingsError("init_image: use_init is true but init_image is empty")
    if source.startswith(("http://", "https://")):
        return [source]
    path = Path(source)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise SettingsError(f"init_image: the folder {source} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return files
    return [source]


def _still_plan(settings: Settings, run_seed: int) -> Plan:
    positives = list(normalize_prompt_spec(settings.prompts).values())
    negatives = list(normalize_prompt_spec(settings.neg_prompts).values())
    negatives = (negatives + [negatives[-1]] * len(positives))[: len(positives)]
    inits = still_init_images(settings)
    rows = [(p, n, init) for p, n in zip(positives, negatives) for _ in range(settings.n_batch) for init in inits]
    count = len(rows)
    sequence = seed_sequence(run_seed, "iter" if settings.seed_behavior == "schedule" else settings.seed_behavior,
                             settings.seed_iter_N)
    seeds = np.array([next(sequence) for _ in range(count)], dtype=np.int64)
    strength = np.array([min(max(settings.strength, 0.0), 1.0) if init else 0.0 for _, _, init in rows])
    steps = steps_per_frame(strength, settings.steps)
    pos_texts = list(dict.fromkeys(r[0] for r in rows))
    neg_texts = list(dict.fromkeys(r[1] for r in rows))
    positive = PromptTrack(pos_texts, np.array([pos_texts.index(r[0]) for r in rows]))
    negative = PromptTrack(neg_texts, np.array([neg_texts.index(r[1]) for r in rows]))
    notes = ["seed_behavior schedule applies to animations; still images use iter"] if settings.seed_behavior == "schedule" else []
    return Plan(settings, run_seed, count, {}, [settings.sampler] * count, positive, negative, seeds, strength,
                steps, np.ones(count, dtype=bool), init_images=[r[2] for r in rows], notes=notes)


# --- interpolation (V-2) -------------------------------------------------------------------------

def interpolation_schedule(keys: list[int], x_frames: int, key_spacing: bool) -> list[tuple[int, int, float]]:
    """(prompt a, prompt b, weight of b) for every output frame of Interpolation mode (V-2).

    Key spacing off: each consecutive pair gives its key image and x_frames in-betweens with weights
    j/(x_frames+1); then the last key's image: (P-1)(x_frames+1)+1 frames. Key spacing on: the
    in-betweens between keys k_i and k_(i+1) number k_(i+1)-k_i-1, so frame numbers follow the keys:
    (last key - first key) + 1 frames.
    """
    if len(keys) == 1:
        return [(0, 0, 0.0)]
    frames: list[tuple[int, int, float]] = []
    for i in range(len(keys) - 1):
        span = (keys[i + 1] - keys[i]) if key_spacing else x_frames + 1
        for j in range(span):
            frames.append((i, i + 1, j / span))
    last = len(keys) - 1
    frames.append((last, last, 0.0))
    return frames


def _interpolation_plan(settings: Settings, run_seed: int) -> Plan:
    prompts = normalize_prompt_spec(settings.prompts)
    keys = sorted(prompts)
    schedule = interpolation_schedule(keys, settings.interpolate_x_frames, settings.interpolate_key_frames)
    count = len(schedule)
    positive = PromptTrack([prompts[k] for k in keys], np.array([a for a, _, _ in schedule]))
    neg_track = _track(settings.neg_prompts, max(keys) + 1)
    negative = PromptTrack(neg_track.texts, np.array([neg_track.index[keys[a]] for a, _, _ in schedule]))
    steps = np.full(count, settings.steps)
    return Plan(settings, run_seed, count, {}, [settings.sampler] * count, positive, negative,
                np.full(count, run_seed, dtype=np.int64), np.zeros(count), steps, np.ones(count, dtype=bool),
                interpolation=schedule, notes=["Interpolation: the seed is fixed for every frame"])


_WEIGHT_SYNTAX = re.compile(r"[A-Za-z)\]]\s*:+\s*(-?\d+(\.\d+)?|`[^`]*`)")


def warn_unparsed_weights(plan: Plan) -> None:
    """Weight syntax in prompts while prompt_weighting is off reaches the text encoder literally."""
    if plan.settings.prompt_weighting:
        return
    texts = [t for t in dict.fromkeys(plan.positive.texts + plan.negative.texts) if _WEIGHT_SYNTAX.search(t)]
    if texts:
        warnings.warn(f"prompts: {len(texts)} prompt(s) contain weight syntax such as {texts[0][:60]!r} but "
                      "prompt_weighting is false, so the text goes to the encoder as written; set "
                      "prompt_weighting true to use the weights", SettingsWarning, stacklevel=2)
