"""The render loop's per-frame operations behind one interface, on numpy (CPU) or torch (GPU) frames.

NumpyFrameOps wraps the existing numpy/OpenCV functions. TorchFrameOps does the same operations
on float32 (H, W, 3) 0..255 tensors on one device, so a GPU run keeps its frames on the model's
device between steps; only 3x3 matrices, 1-D kernels and scalars are made on the host.
"""

from __future__ import annotations

import functools

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .image_ops import (
    COLOR_MODES,
    ColorReference,
    _check_kernel,
    add_noise,
    apply_contrast,
    color_reference,
    match_colors,
    to_grayscale,
    unsharp_mask,
)
from .motion.warp2d import BORDER_MODES, warp_2d
from .motion.warp3d import (
    COORD_LIMIT,
    PADDING_MODES,
    SAMPLE_OFFSET,
    SAMPLING_MODES,
    camera_translation,
    depth_to_z,
    remap,
    rotation_matrix,
    sampling_grid,
)
from .output import from_pixels, to_pixels

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
HSV_SHIFT = 12  # OpenCV's fixed-point bits for 8-bit RGB -> HSV
# HSV -> RGB: which of (v, v(1-s), v(1-sf), v(1-s(1-f))) is r, g, b in each of the six sectors
HSV_SECTORS = ((0, 3, 1), (2, 0, 1), (1, 0, 3), (1, 2, 0), (3, 1, 0), (0, 1, 2))


class _WarpMany:
    """warp_3d for one or several frames on top of an implementation's sampling_grid and remap."""

    def warp_3d(self, image: Any, translation: Sequence[float], rotation_deg: Sequence[float], fov: float,
                z: Any = None, padding_mode: str = "border", sampling_mode: str = "bicubic") -> Any:
        """Move the camera over the depth map z (None: flat, z = 1), as motion.warp3d.warp_3d."""
        return self.warp_3d_many([image], translation, rotation_deg, fov, z, padding_mode, sampling_mode)[0]

    def warp_3d_many(self, images: Sequence[Any], translation: Sequence[float], rotation_deg: Sequence[float],
                     fov: float, z: Any = None, padding_mode: str = "border",
                     sampling_mode: str = "bicubic") -> list[Any]:
        """Several same-sized frames moved by one camera motion: the sampling grid is built once."""
        height, width = images[0].shape[:2]
        map_x, map_y = self.sampling_grid(width, height, translation, rotation_deg, fov, z)
        return [self.remap(image, map_x, map_y, padding_mode, sampling_mode) for image in images]


class NumpyFrameOps(_WarpMany):
    """Frame operations on float32 numpy (H, W, 3) RGB frames, 0..255: the existing CPU functions."""

    device: torch.device | None = None
    on_device = False  # frames are host arrays

    def upload(self, image: np.ndarray) -> np.ndarray:
        """A float32 copy of the frame."""
        return np.array(image, dtype=np.float32)

    def download(self, image: np.ndarray) -> np.ndarray:
        """The frame as a float32 numpy array."""
        return np.asarray(image, dtype=np.float32)

    def warp_2d(self, image: np.ndarray, matrix: np.ndarray, border: str = "replicate") -> np.ndarray:
        """Warp with a forward 3x3 matrix, bilinear, replicate or wrap border."""
        return warp_2d(image, matrix, border)

    sampling_grid = staticmethod(sampling_grid)
    remap = staticmethod(remap)

    def depth_to_z(self, inverse_depth: np.ndarray | None) -> np.ndarray | None:
        """z = 2 - normalised inverse depth."""
        return depth_to_z(inverse_depth)

    def color_reference(self, frame0: np.ndarray, mode: str) -> ColorReference:
        """Prepare frame 0 as the colour-coherence reference."""
        return color_reference(frame0, mode)

    def match_colors(self, image: np.ndarray, reference: Any, mode: str) -> np.ndarray:
        """Match the frame's colour histograms to the reference's."""
        return match_colors(image, reference, mode)

    def contrast(self, image: np.ndarray, factor: float) -> np.ndarray:
        """Multiply by the contrast factor."""
        return apply_contrast(image, factor)

    def unsharp(
        self, image: np.ndarray, kernel: int, sigma: float, amount: float, threshold: float = 0.0
    ) -> np.ndarray:
        """Unsharp mask, rounded half to even."""
        return unsharp_mask(image, kernel, sigma, amount, threshold)

    def add_noise(self, image: np.ndarray, amount: float, seed: int) -> np.ndarray:
        """Add seeded Gaussian noise of std amount*127.5."""
        return add_noise(image, amount, seed)

    def grayscale(self, image: np.ndarray) -> np.ndarray:
        """Luma replicated to three channels."""
        return to_grayscale(image)

    def quantise(self, image: np.ndarray, bit_depth: int) -> np.ndarray:
        """The frame as it reads back from a file of this bit depth."""
        return from_pixels(to_pixels(image, bit_depth))

    def blend(self, a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
        """(1 - weight) * a + weight * b."""
        return (1 - weight) * a + weight * b


class TorchColorReference:
    """A colour-coherence reference on a device: per channel, the values present and their quantiles."""

    def __init__(self, mode: str, histograms: tuple[tuple[torch.Tensor, torch.Tensor], ...]):
        self.mode = mode
        self.histograms = histograms


class TorchFrameOps(_WarpMany):
    """Frame operations on float32 (H, W, 3) RGB tensors, 0..255, on one torch device."""

    on_device = True  # frames are tensors on self.device

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        # MPS has no float64; elsewhere quantiles and interpolation use float64 as numpy does
        self.exact = torch.float32 if self.device.type == "mps" else torch.float64
        self._kernels: dict[tuple[int, float], torch.Tensor] = {}
        self._hsv_tables: tuple[torch.Tensor, torch.Tensor] | None = None
        self._lab_tables: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- transfer -------------------------------------------------------------------------------

    def upload(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The frame as a float32 tensor on the device (always a copy)."""
        if isinstance(image, torch.Tensor):
            return image.to(self.device, torch.float32, copy=True)
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(self.device, copy=True)

    def download(self, image: torch.Tensor) -> np.ndarray:
        """The frame as a float32 numpy array on the host (a copy)."""
        return np.array(image.detach().to("cpu", torch.float32), dtype=np.float32)

    def _tensor(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A float32 tensor on the device, uploading a numpy frame if given one."""
        if isinstance(image, torch.Tensor) and image.device == self.device and image.dtype == torch.float32:
            return image
        return self.upload(image)

    # -- sampling -------------------------------------------------------------------------------

    @staticmethod
    def _sample(image: torch.Tensor, px: torch.Tensor, py: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
        """grid_sample at pixel coordinates (px, py) (pixel centres at integers, OpenCV's convention)."""
        height, width = image.shape[:2]
        grid = torch.stack(((2.0 * px + 1.0) / width - 1.0, (2.0 * py + 1.0) / height - 1.0), dim=-1)
        out = F.grid_sample(
            image.permute(2, 0, 1)[None], grid[None], mode=mode, padding_mode=padding, align_corners=False
        )
        return out[0].permute(1, 2, 0).contiguous()

    @staticmethod
    def _bounded(coords: torch.Tensor) -> torch.Tensor:
        """Coordinates limited to +-COORD_LIMIT, nan to -COORD_LIMIT (as warp3d._bounded)."""
        coords = torch.nan_to_num(coords, nan=-COORD_LIMIT, posinf=COORD_LIMIT, neginf=-COORD_LIMIT)
        return coords.clamp_(-COORD_LIMIT, COORD_LIMIT)

    def warp_2d(self, image: torch.Tensor, matrix: np.ndarray, border: str = "replicate") -> torch.Tensor:
        """Warp with a forward 3x3 matrix like cv2.warpPerspective: bilinear, replicate or wrap border."""
        if border not in BORDER_MODES:
            raise ValueError(f"border must be one of {sorted(BORDER_MODES)}, got {border!r}")
        image = self._tensor(image)
        height, width = image.shape[:2]
        inv = np.linalg.inv(np.asarray(matrix, dtype=np.float64))
        kw = {"device": self.device, "dtype": torch.float32}
        xs = torch.arange(width, **kw)[None, :]
        ys = torch.arange(height, **kw)[:, None]
        rows = [xs * float(inv[r, 0]) + (ys * float(inv[r, 1]) + float(inv[r, 2])) for r in range(3)]
        w = rows[2]
        # OpenCV maps a point at infinity (w == 0) to source (0, 0)
        inv_w = torch.where(w != 0, 1.0 / torch.where(w != 0, w, torch.ones_like(w)), torch.zeros_like(w))
        px, py = self._bounded(rows[0] * inv_w), self._bounded(rows[1] * inv_w)
        if border == "replicate":
            return self._sample(image, px, py, "bilinear", "border")
        # wrap: coordinates modulo the size on an image with its first row/column repeated after
        # the last, so a tap past the right/bottom edge reads the left/top one
        padded = torch.cat((image, image[:1]), dim=0)
        padded = torch.cat((padded, padded[:, :1]), dim=1)
        return self._sample(padded, torch.remainder(px, width), torch.remainder(py, height), "bilinear", "border")

    def sampling_grid(
        self,
        width: int,
        height: int,
        translation: Sequence[float],
        rotation_deg: Sequence[float],
        fov: float,
        z: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """warp3d.sampling_grid on the device: source pixel coordinates (map_x, map_y), float32 (H, W)."""
        rot = rotation_matrix(rotation_deg)
        trans = camera_translation(translation)
        s = 1.0 / math.tan(math.radians(fov) / 2.0)
        kw = {"device": self.device, "dtype": torch.float32}
        xs = torch.linspace(-1.0, 1.0, width, **kw)[None, :]
        ys = torch.linspace(-1.0, 1.0, height, **kw)[:, None]
        if z is not None:
            z = self._tensor(z)
            if tuple(z.shape) != (height, width):
                raise ValueError(f"z has shape {tuple(z.shape)}, expected {(height, width)}")

        def camera_axis(j: int) -> torch.Tensor:
            """Component j of the camera point C = [X, Y, Z] . R + T, (H, W)."""
            if z is None:
                return (xs * float(rot[0, j]) + (ys * float(rot[1, j]) + float(trans[j] + rot[2, j]))).expand(
                    height, width
                )
            return z * float(rot[2, j]) + (xs * float(rot[0, j]) + (ys * float(rot[1, j]) + float(trans[j])))

        inv_cz = torch.reciprocal(camera_axis(2))
        inv_z = None if z is None else torch.reciprocal(z)
        maps = []
        for j, (coords, size) in enumerate(((xs, width), (ys, height))):
            k = float(np.float32(s * size / 2.0))
            index = torch.arange(size, **kw).reshape(coords.shape)
            start = coords * k if inv_z is None else (coords * k) * inv_z
            start = start + index
            projected = camera_axis(j) * inv_cz
            maps.append(self._bounded(projected * -k + start))
        return maps[0], maps[1]

    def remap(
        self, image: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor, padding_mode: str, sampling_mode: str
    ) -> torch.Tensor:
        """Sample at the given coordinates like warp3d.remap (offset, then clamped to 0..255)."""
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {sorted(PADDING_MODES)}, got {padding_mode!r}")
        if sampling_mode not in SAMPLING_MODES:
            raise ValueError(f"sampling_mode must be one of {sorted(SAMPLING_MODES)}, got {sampling_mode!r}")
        shifted = self._tensor(image) + SAMPLE_OFFSET
        return self._sample(shifted, map_x, map_y, sampling_mode, padding_mode).clamp_(0.0, 255.0)

    def depth_to_z(self, inverse_depth: torch.Tensor | np.ndarray | None) -> torch.Tensor | None:
        """z = 2 - d for the min-max normalised inverse depth d, as warp3d.depth_to_z."""
        if inverse_depth is None:
            return None
        inv = self._tensor(inverse_depth)
        finite = torch.isfinite(inv)
        if not bool(finite.all()):
            if not bool(finite.any()):
                return torch.ones_like(inv)
            inv = torch.where(finite, inv, inv[finite].min())
        lo, hi = (float(v) for v in torch.aminmax(inv))
        if hi - lo <= 1e-6 * max(1.0, abs(lo), abs(hi)):
            return torch.ones_like(inv)
        scale = float(np.float32(1.0 / (hi - lo)))
        return 2.0 - (inv - float(np.float32(lo))) * scale

    # -- colour ---------------------------------------------------------------------------------

    def _hsv_lookup(self) -> tuple[torch.Tensor, torch.Tensor]:
        """OpenCV's fixed-point division tables for 8-bit RGB -> HSV (S and H, 180 range)."""
        if self._hsv_tables is None:
            i = np.arange(256, dtype=np.float64)
            with np.errstate(divide="ignore"):
                sdiv = np.where(i > 0, np.rint((255 << HSV_SHIFT) / i), 0)
                hdiv = np.where(i > 0, np.rint((180 << HSV_SHIFT) / (6.0 * i)), 0)
            self._hsv_tables = (
                torch.from_numpy(sdiv.astype(np.int32)).to(self.device),
                torch.from_numpy(hdiv.astype(np.int32)).to(self.device),
            )
        return self._hsv_tables

    def _rgb_to_hsv8(self, rgb: torch.Tensor) -> torch.Tensor:
        """8-bit RGB (int32 values) to OpenCV's 8-bit HSV (H 0..179), in its fixed-point arithmetic."""
        sdiv, hdiv = self._hsv_lookup()
        r, g, b = rgb.unbind(-1)
        v = torch.maximum(torch.maximum(r, g), b)
        diff = v - torch.minimum(torch.minimum(r, g), b)
        half = 1 << (HSV_SHIFT - 1)
        s = (diff * sdiv[v] + half) >> HSV_SHIFT
        h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
        h = (h * hdiv[diff] + half) >> HSV_SHIFT
        h = torch.where(h < 0, h + 180, h)
        return torch.stack((h, s, v), dim=-1)

    @staticmethod
    def _hsv8_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
        """OpenCV 8-bit HSV (H 0..179) to 8-bit RGB values (as float32), as its vectorised path does."""
        h, s, v = hsv.to(torch.float32).unbind(-1)
        # float32 scale factors and truncation, as OpenCV's vectorised 8-bit HSV -> RGB
        h = torch.remainder(h * float(np.float32(6.0 / 180.0)), 6.0)
        s = s * float(np.float32(1.0 / 255.0))
        v = v * float(np.float32(1.0 / 255.0))
        sector = torch.floor(h).clamp_(0, 5)
        f = h - sector
        tab = torch.stack((v, v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))), dim=-1)
        order = torch.tensor(HSV_SECTORS, device=hsv.device)[sector.long()]  # (H, W, 3): r, g, b
        rgb = torch.gather(tab, -1, order)
        return torch.trunc(rgb * 255.0).clamp_(0, 255)

    def _lab_lookup(self) -> tuple[torch.Tensor, torch.Tensor]:
        """OpenCV's exact 8-bit RGB -> LAB and LAB -> RGB, tabulated once for all 2**24 triplets.

        OpenCV's 8-bit LAB uses fixed-point tables and LUT interpolation: the documented float
        formulas differ by up to 3 levels at ~10% of colours, which moves histogram bins. Two
        48 MiB tables, built on the host once and kept on the device, give its exact values.
        """
        if self._lab_tables is None:
            levels = np.arange(256, dtype=np.uint8)
            cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(4096, 4096, 3)
            self._lab_tables = tuple(  # type: ignore[assignment]
                torch.from_numpy(cv2.cvtColor(cube, code).reshape(-1, 3)).to(self.device)
                for code in (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB)
            )
        return self._lab_tables  # type: ignore[return-value]

    @staticmethod
    def _lookup(table: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """A (2**24, 3) table indexed by the 8-bit triplets of an integer (H, W, 3) image."""
        values = values.to(torch.int64)
        index = (values[..., 0] << 16) | (values[..., 1] << 8) | values[..., 2]
        return table[index]

    def _to_color_space(self, image: torch.Tensor, mode: str) -> torch.Tensor:
        """The frame as int64 8-bit values (clip, truncate) in the mode's OpenCV 8-bit colour space."""
        if mode not in COLOR_MODES:
            raise ValueError(f"colour matching mode must be one of {sorted(COLOR_MODES)}, got {mode!r}")
        rgb = self._tensor(image).clamp(0.0, 255.0).to(torch.int32)  # float -> int truncates
        if mode == "HSV":
            rgb = self._rgb_to_hsv8(rgb)
        elif mode == "LAB":
            rgb = self._lookup(self._lab_lookup()[0], rgb)
        return rgb.to(torch.int64)

    @staticmethod
    def _channel_counts(values: torch.Tensor) -> torch.Tensor:
        """(3, 256) counts of each value 0..255 per channel of an int64 (H, W, 3) image."""
        offsets = torch.arange(3, device=values.device) * 256
        return torch.bincount((values + offsets).reshape(-1), minlength=3 * 256).reshape(3, 256)

    def color_reference(self, frame0: torch.Tensor | np.ndarray, mode: str) -> TorchColorReference:
        """Prepare frame 0 as the colour-coherence reference (the values present and their quantiles)."""
        counts = self._channel_counts(self._to_color_space(frame0, mode))
        histograms = []
        for channel in counts:
            values = torch.nonzero(channel).flatten()
            cumulative = torch.cumsum(channel[values], 0).to(self.exact)
            histograms.append((values.to(self.exact), cumulative / cumulative[-1]))
        return TorchColorReference(mode, tuple(histograms))

    def _interp(self, x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
        """np.interp(x, xp, fp) for increasing xp: same formula, clamped to fp's ends outside xp."""
        if xp.numel() == 1:
            return fp.expand_as(x).clone()
        j = (torch.searchsorted(xp, x, right=True) - 1).clamp_(0, xp.numel() - 2)
        slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
        out = slope * (x - xp[j]) + fp[j]
        out = torch.where(x < xp[0], fp[0], out)
        return torch.where(x >= xp[-1], fp[-1], out)

    def match_colors(
        self, image: torch.Tensor, reference: TorchColorReference | torch.Tensor | np.ndarray, mode: str
    ) -> torch.Tensor:
        """Match the frame's 8-bit colour histograms to the reference's, as image_ops.match_colors."""
        if not isinstance(reference, TorchColorReference):
            reference = self.color_reference(reference, mode)
        elif reference.mode != mode:
            raise ValueError(f"the colour reference was prepared for {reference.mode}, not {mode}")
        source = self._to_color_space(image, mode)
        counts = self._channel_counts(source)
        cumulative = torch.cumsum(counts, dim=1).to(self.exact)
        quantiles = cumulative / cumulative[:, -1:]
        # a value's table entry only matters where the value is present, so every entry is computed
        tables = torch.stack(
            [self._interp(quantiles[c], ref_q, ref_v) for c, (ref_v, ref_q) in enumerate(reference.histograms)]
        )
        tables = torch.floor(tables).to(torch.int32)  # truncation toward zero (values are >= 0)
        offsets = torch.arange(3, device=self.device) * 256
        matched = tables.reshape(-1)[source + offsets]
        if mode == "HSV":
            return self._hsv8_to_rgb(matched)
        if mode == "LAB":
            return self._lookup(self._lab_lookup()[1], matched).to(torch.float32)
        return matched.to(torch.float32)

    # -- tone and noise -------------------------------------------------------------------------

    def contrast(self, image: torch.Tensor, factor: float) -> torch.Tensor:
        """Multiply by the contrast factor (no clipping)."""
        image = self._tensor(image)
        return image.clone() if factor == 1.0 else image * float(factor)

    def _gaussian(self, size: int, sigma: float) -> torch.Tensor:
        """OpenCV's getGaussianKernel(size, sigma) as a float32 tensor, cached."""
        key = (size, float(sigma))
        if key not in self._kernels:
            kernel = cv2.getGaussianKernel(size, float(sigma), ktype=cv2.CV_32F).ravel()
            self._kernels[key] = torch.from_numpy(np.ascontiguousarray(kernel)).to(self.device)
        return self._kernels[key]

    def _reflect101(self, n: int, pad: int) -> torch.Tensor:
        """Indices of n samples padded by pad on each side, OpenCV's BORDER_REFLECT_101 (any pad)."""
        index = torch.arange(-pad, n + pad, device=self.device)
        if n == 1:
            return torch.zeros_like(index)
        period = 2 * (n - 1)
        index = torch.remainder(index, period)
        return torch.where(index >= n, period - index, index)

    def _blur(self, image: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
        """Separable Gaussian blur with reflect-101 borders, as cv2.GaussianBlur (sigma for x and y)."""
        kernel = self._gaussian(size, sigma)
        pad = size // 2
        height, width = image.shape[:2]
        planes = image.permute(2, 0, 1)[None]
        planes = planes.index_select(3, self._reflect101(width, pad))
        planes = F.conv2d(planes, kernel.reshape(1, 1, 1, size).expand(3, 1, 1, size), groups=3)
        planes = planes.index_select(2, self._reflect101(height, pad))
        planes = F.conv2d(planes, kernel.reshape(1, 1, size, 1).expand(3, 1, size, 1), groups=3)
        return planes[0].permute(1, 2, 0)

    def unsharp(
        self, image: torch.Tensor, kernel: int, sigma: float, amount: float, threshold: float = 0.0
    ) -> torch.Tensor:
        """Unsharp mask as image_ops.unsharp_mask: clipped to 0..255, rounded half to even."""
        image = self._tensor(image)
        if amount == 0:
            return torch.round(image.clamp(0.0, 255.0))
        blurred = self._blur(image, _check_kernel(kernel), sigma)
        sharp = (image * float(1.0 + amount) + blurred * float(-amount)).clamp_(0.0, 255.0)
        if threshold > 0:
            low_contrast = (image - blurred).abs() < threshold
            sharp = torch.where(low_contrast, image.clamp(0.0, 255.0), sharp)
        return torch.round(sharp)

    def add_noise(self, image: torch.Tensor, amount: float, seed: int) -> torch.Tensor:
        """Add Gaussian noise of std amount*127.5, a pure function of the seed (torch's generator)."""
        image = self._tensor(image)
        if amount == 0:
            return image.clone()
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        noise = torch.randn(image.shape, generator=generator, device=self.device, dtype=torch.float32)
        return image + noise * float(amount * 127.5)

    def grayscale(self, image: torch.Tensor) -> torch.Tensor:
        """Luma (0.299 R + 0.587 G + 0.114 B) replicated to three channels."""
        image = self._tensor(image)
        r, g, b = image.unbind(-1)
        gray = r * GRAY_WEIGHTS[0] + g * GRAY_WEIGHTS[1] + b * GRAY_WEIGHTS[2]
        return gray[..., None].expand(*gray.shape, 3).contiguous()

    def quantise(self, image: torch.Tensor, bit_depth: int) -> torch.Tensor:
        """The frame as it reads back from a file of this bit depth (output.to_pixels/from_pixels)."""
        clipped = self._tensor(image).clamp(0.0, 255.0)
        if bit_depth == 16:
            return torch.round(clipped * (65535.0 / 255.0)) * float(np.float32(255.0 / 65535.0))
        if bit_depth == 32:
            return (clipped / 255.0) * 255.0
        return torch.floor(clipped)

    def blend(self, a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
        """(1 - weight) * a + weight * b."""
        return (1 - weight) * a + weight * b


def frame_ops_for(device: torch.device | str | None) -> NumpyFrameOps | TorchFrameOps:
    """Torch frame operations for a CUDA or MPS device; numpy ones for the CPU or no device.
    One TorchFrameOps per device for the process: its lookup tables are built once, not per run."""
    if device is not None and torch.device(device).type in ("cuda", "mps"):
        return _torch_ops(str(torch.device(device)))
    return NumpyFrameOps()


@functools.lru_cache(maxsize=None)
def _torch_ops(device: str) -> TorchFrameOps:
    return TorchFrameOps(device)


FrameOps = NumpyFrameOps | TorchFrameOps
"""Either implementation: the render loop calls the same methods on both."""
