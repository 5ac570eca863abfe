"""The 2D / 3D / Video Input render loop: a frame's steps, top to bottom.

For each diffused frame F (every c-th frame, A-7):
  1. take the previous diffusion's image, warped forward to F (or, in Video Input, the input frame F);
  2. match its colours to frame 0 (A-5), apply contrast, sharpen (A-6) and add the frame's noise;
  3. image-to-image it with the frame's prompt, seed, strength and sampler;
  4. write the frames F .. F+c-1: the new image warped forward, crossfaded from the previous one.

What is carried from frame to frame is exactly what was written to disk (quantised to the output bit
depth), so a run resumed from its frames continues exactly as an uninterrupted one (A-8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from ..cadence import frame_blend
from ..errors import InputMediaError
from ..generate.base import GenerationRequest, Generator
from ..frame_ops import FrameOps, NumpyFrameOps
from ..motion.warp2d import frame_matrix_2d
from ..output import FrameWriter, frame_suffix, from_pixels, to_pixels
from ..plan import Plan

COHERENCE_MODES = {"Match Frame 0 LAB": "LAB", "Match Frame 0 HSV": "HSV", "Match Frame 0 RGB": "RGB",
                   "Video Input": "LAB"}
MOTION_SETTINGS = ("border", "flip_2d_perspective", "padding_mode", "sampling_mode")


Frame = Any
"""A frame between steps: numpy float32 (H, W, 3) 0..255, or the same as a torch tensor on the GPU."""


class DepthModel(Protocol):
    def predict(self, image: np.ndarray) -> np.ndarray: ...


def frame_name(timestring: str, frame: int, bit_depth: int = 8) -> str:
    return f"{timestring}_{frame:05}{frame_suffix(bit_depth)}"


def quantise(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """The frame as it will read back from its file: what a resumed run starts from."""
    return from_pixels(to_pixels(image, bit_depth))


def read_frame(path: Path, bit_depth: int) -> np.ndarray:
    """A written frame as a float32 RGB frame array (the inverse of quantise)."""
    import cv2

    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InputMediaError(f"{path}: cannot read this frame to resume from")
    return from_pixels(cv2.cvtColor(pixels[..., :3], cv2.COLOR_BGR2RGB))


class Motion:
    """Moves a frame by one frame's camera motion: the 2D matrix, or the 3D depth reprojection."""

    def __init__(self, plan: Plan, depth: DepthModel | None, ops: FrameOps):
        self.plan = plan
        self.settings = plan.settings
        self.ops = ops
        self.depth = depth if (self.settings.animation_mode == "3D" and self.settings.use_depth_warping) else None
        self.fixed = {name: getattr(self.settings, name) for name in MOTION_SETTINGS}
        self._last: tuple[Frame, Frame] | None = None

    def z_for(self, image: Frame) -> Frame | None:
        """z of each pixel for a 3D warp (A-4): from the depth model, or None (flat, z = 1).
        The last answer is kept: the same image is often asked for twice (depth maps, then the warp)."""
        if self.depth is None:
            return None
        if self._last is None or self._last[0] is not image:
            inverse_depth = self.depth.predict(self.ops.download(image))
            self._last = (image, self.ops.depth_to_z(self.ops.upload(inverse_depth)))
        return self._last[1]

    def __call__(self, image: Frame, frame: int, z: Frame | None = None) -> Frame:
        return self.warp_all([image], frame, z)[0]

    def warp_all(self, images: list[Frame], frame: int, z: Frame | None = None) -> list[Frame]:
        """Several images moved by the same frame's motion (cadence tweens): the map is built once."""
        row = {name: series[frame] for name, series in self.plan.schedules.items()} | self.fixed
        height, width = images[0].shape[:2]
        if self.settings.animation_mode == "2D":
            matrix = frame_matrix_2d(width, height, row)
            return [self.ops.warp_2d(image, matrix, row["border"]) for image in images]
        translation = [float(row[f"translation_{a}"]) for a in "xyz"]
        rotation = [float(row[f"rotation_3d_{a}"]) for a in "xyz"]
        return self.ops.warp_3d_many(images, translation, rotation, float(row["fov"]), z,
                                     row["padding_mode"], row["sampling_mode"])


@dataclass
class FrameSteps:
    """The image steps between a warped frame and the generator, for one frame (A-5, A-6)."""

    plan: Plan
    ops: FrameOps
    reference: object | None = None  # a prepared colour reference (frame 0 as written)
    motion_only: bool = False

    @property
    def color_mode(self) -> str | None:
        return COHERENCE_MODES.get(self.plan.settings.color_coherence)

    def set_reference(self, frame0: Frame) -> None:
        if self.color_mode is not None:
            self.reference = self.ops.color_reference(frame0, self.color_mode)

    def __call__(self, image: Frame, frame: int) -> Frame:
        s, values, ops = self.plan.settings, self.plan.schedules, self.ops
        if self.motion_only:
            return image  # a preview shows the camera motion alone
        if self.reference is not None:
            image = ops.match_colors(image, self.reference, self.color_mode)
        if s.color_force_grayscale:
            image = ops.grayscale(image)
        image = ops.contrast(image, float(values["contrast_schedule"][frame]))
        image = ops.unsharp(image, int(values["kernel_schedule"][frame]), float(values["sigma_schedule"][frame]),
                            float(values["amount_schedule"][frame]), float(values["threshold_schedule"][frame]))
        return ops.add_noise(image, float(values["noise_schedule"][frame]), int(self.plan.seeds[frame]))


@dataclass
class AnimationState:
    """Where a run starts: its first diffusion and, when resuming, the frames read back from disk.
    The loop reads it and never changes it (during the run the carried frame may live on the GPU)."""

    next_diffusion: int = 0
    carried: np.ndarray | None = None
    """The previous diffusion's image warped up to next_diffusion - 1, exactly as written."""
    frame0: np.ndarray | None = None


@dataclass
class AnimationRun:
    """Everything one 2D/3D/Video Input run needs; `run` executes the loop.

    `ops` decides where frames live between steps: numpy on the CPU, or torch tensors on the
    generator's GPU (then they leave it only to be written)."""

    plan: Plan
    generator: Generator
    folder: Path
    timestring: str
    writer: FrameWriter
    depth: DepthModel | None = None
    init_image: np.ndarray | None = None
    input_frame: Callable[[int], np.ndarray] | None = None
    """Video Input: the (W, H) input frame of each output frame."""
    input_mask: Callable[[int], np.ndarray] | None = None
    on_frame: Callable[[int, dict], None] = lambda frame, info: None
    motion_only: bool = False
    ops: FrameOps = field(default_factory=NumpyFrameOps)
    _overlay: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def run(self, state: AnimationState) -> None:
        plan, settings, ops = self.plan, self.plan.settings, self.ops
        cadence = 1 if self.input_frame is not None else settings.diffusion_cadence
        motion = Motion(plan, self.depth, ops)
        steps = FrameSteps(plan, ops, motion_only=self.motion_only)
        frame0 = ops.upload(state.frame0) if state.frame0 is not None else None
        carried = ops.upload(state.carried) if state.carried is not None else None
        if frame0 is not None:
            steps.set_reference(frame0)
        bit_depth = settings.bit_depth_output
        for F in range(state.next_diffusion, plan.frame_count, cadence):
            # 1-2. the init image of diffusion F
            if self.input_frame is not None:
                init = steps(ops.upload(self.input_frame(F)), F)
                older = None
            elif F == 0:
                init, older = (ops.upload(self.init_image) if self.init_image is not None else None), None
            else:
                older = motion(carried, F, motion.z_for(carried))
                init = steps(older, F)
            # 3. generate
            image = self._generate(F, init)
            if F == 0:
                frame0 = ops.quantise(image, bit_depth)
                steps.set_reference(frame0)
            # 4. frames F .. F+c-1: the new image warped forward, crossfaded from the previous one
            newer = image
            last = min(F + cadence, plan.frame_count) - 1
            for k in range(F, last + 1):
                if k > F:
                    z = motion.z_for(newer)
                    if older is None:
                        newer = motion(newer, k, z)
                    else:
                        newer, older = motion.warp_all([newer, older], k, z)
                weight = frame_blend(k, cadence)[-1].weight
                if k == F + cadence - 1:  # the last frame of a group is the new image alone, as written
                    newer = ops.quantise(newer, bit_depth)
                frame = newer if older is None or weight >= 1 else ops.blend(older, newer, weight)
                self._write(k, frame)
                self.on_frame(k, {"diffused": k == F, "weight": weight})
            carried = newer  # the next diffusion starts from the last frame of this group, as written

    def _generate(self, frame: int, init: Frame | None) -> Frame:
        plan, s = self.plan, self.plan.settings
        mask = self.input_mask(frame) if self.input_mask is not None else None
        overlay = self._overlay_for(mask) if mask is not None and s.overlay_mask else None
        request = GenerationRequest(
            conditioning=plan.conditioning(frame), seed=int(plan.seeds[frame]), width=s.W, height=s.H,
            steps=s.steps, scale=s.scale, sampler=plan.sampler[frame], ddim_eta=s.ddim_eta,
            init_image=init, strength=float(plan.strength[frame]) if init is not None else 0.0,
            mask=mask, overlay_mask=overlay, on_device=self.ops.on_device,
        )
        image = self.generator.generate(request).image
        if s.color_force_grayscale:
            image = self.ops.grayscale(image)
        return image

    def _overlay_for(self, mask: np.ndarray) -> np.ndarray:
        """The blurred paste-back mask; built once while the mask stays the same (one mask file)."""
        from ..generate.masks import overlay_mask

        if self._overlay is None or self._overlay[0] is not mask:
            self._overlay = (mask, overlay_mask(mask, self.plan.settings.mask_overlay_blur))
        return self._overlay[1]

    def _write(self, frame: int, image: Frame) -> None:
        bit_depth = self.plan.settings.bit_depth_output
        pixels = self.ops.download(image)
        self.writer.put(self.folder / frame_name(self.timestring, frame, bit_depth), pixels)
        if self.plan.settings.save_depth_maps and self.depth is not None:
            from ..depth import depth_map_name, normalize_depth, save_depth_map

            save_depth_map(self.folder / depth_map_name(self.timestring, frame), normalize_depth(self.depth.predict(pixels)))


def existing_frames(folder: Path, timestring: str, frame_count: int, bit_depth: int = 8) -> int:
    """How many frames 0, 1, 2, ... of a run exist without a gap."""
    n = 0
    while n < frame_count and (folder / frame_name(timestring, n, bit_depth)).exists():
        n += 1
    return n


def resume_state(plan: Plan, folder: Path, timestring: str, cadence: int) -> AnimationState:
    """Continue at the last complete diffusion group (A-8): frames after it are rendered again."""
    bit_depth = plan.settings.bit_depth_output
    done = existing_frames(folder, timestring, plan.frame_count, bit_depth)
    if done >= plan.frame_count:
        return AnimationState(next_diffusion=plan.frame_count)
    next_diffusion = (done // cadence) * cadence
    if next_diffusion == 0:
        return AnimationState()
    frame0 = read_frame(folder / frame_name(timestring, 0, bit_depth), bit_depth)
    carried = read_frame(folder / frame_name(timestring, next_diffusion - 1, bit_depth), bit_depth)
    return AnimationState(next_diffusion=next_diffusion, carried=carried, frame0=frame0)
