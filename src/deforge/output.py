"""Files at the edge: atomic writes, the run's output folder, and a background frame writer.

Every file is written to a temporary name in its folder and renamed into place, so an interrupted
run (Ctrl-C, kill, full disk) leaves complete files only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import IO, Callable, Iterator

import numpy as np

from .errors import OutputError

TEMP_PREFIX = ".deforge-tmp-"


def _output_error(path: Path, error: OSError) -> OutputError:
    if error.errno == errno.ENOSPC:
        return OutputError(f"{path.parent}: the disk is full; frames written so far are complete and the run can be resumed")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{path.parent}: the output folder is not writable ({error.strerror})")
    return OutputError(f"{path}: cannot write ({error.strerror or error})")


def temporary_path(final: Path) -> Path:
    """A hidden name beside `final` for writing it; it carries this process's id, so a later run can
    tell a temporary file left by a killed run from one another live run is still writing."""
    final = Path(final)
    return final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{final.name}")


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success it replaces `path`, on failure it vanishes."""
    path = Path(path)
    temp = temporary_path(path)
    try:
        handle = open(temp, mode.replace("w", "x"), **({"encoding": "utf-8"} if "b" not in mode else {}), **kwargs)
    except OSError as error:
        raise _output_error(path, error) from None
    try:
        with handle:
            yield handle
        os.replace(temp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise _output_error(path, error) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)


def atomic_write_with(path: Path, write: Callable[[Path], None]) -> None:
    """Let `write(temp_path)` produce the file (an image library, an encoder), then rename it into place."""
    path = Path(path)
    temp = temporary_path(path)
    try:
        write(temp)
        os.replace(temp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise _output_error(path, error) from None
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files left by runs that were killed while writing (never a live run's)."""
    for stale in Path(folder).glob(f"{TEMP_PREFIX}*"):
        pid = stale.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            stale.unlink()


_UNSAFE = re.compile(r"[^A-Za-z0-9 _.\-]")


def safe_batch_name(batch_name: str) -> str:
    """A batch name as one folder name: no separators, no `..`, nothing that leaves output_path."""
    name = _UNSAFE.sub("_", batch_name.replace("/", "_").replace("\\", "_")).strip(" .")
    return name


def run_folder(output_path: str | Path, batch_name: str, when: datetime | None = None) -> Path:
    """output_path/<YYYY-MM>/<batch_name>, created; the batch name can never lead outside output_path."""
    root = Path(output_path).resolve()
    month = (when or datetime.now()).strftime("%Y-%m")
    folder = root / month
    name = safe_batch_name(batch_name)
    if name:
        folder = folder / name
    folder = folder.resolve()
    if root not in folder.parents:
        raise OutputError(f"batch_name {batch_name!r} would write outside {root}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _output_error(folder / "x", error) from None
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{folder}: the output folder is not writable")
    return folder


def new_timestring(when: datetime | None = None) -> str:
    return (when or datetime.now()).strftime("%Y%m%d%H%M%S")


def frame_suffix(bit_depth: int) -> str:
    """8 and 16 bits: PNG; 32 bits: float TIFF (this OpenCV build has no EXR)."""
    return ".tif" if bit_depth == 32 else ".png"


def to_pixels(image: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """A float frame (0..255) as the array a file stores: uint8, uint16 (full 0..65535, A-10) or float32 0..1."""
    clipped = np.clip(image, 0.0, 255.0)
    if bit_depth == 16:
        return np.round(clipped * (65535.0 / 255.0)).astype(np.uint16)
    if bit_depth == 32:
        return (clipped / 255.0).astype(np.float32)
    return clipped.astype(np.uint8)


def from_pixels(pixels: np.ndarray) -> np.ndarray:
    """The stored array back as a float frame (0..255): the inverse of to_pixels for its dtype."""
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) * np.float32(255.0 / 65535.0)
    if pixels.dtype == np.float32:
        return pixels * np.float32(255.0)
    return pixels.astype(np.float32)


def write_image(path: Path, image: np.ndarray, bit_depth: int = 8) -> Path:
    """Write a frame atomically in the format its bit depth uses. Returns the final path."""
    import cv2

    pixels = to_pixels(image, bit_depth)
    path = Path(path).with_suffix(frame_suffix(bit_depth))
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)

    def write(temp: Path) -> None:
        ok, encoded = cv2.imencode(Path(path).suffix, bgr)
        if not ok:
            raise OutputError(f"{path}: the image could not be encoded")
        with open(temp, "wb") as handle:
            handle.write(encoded.tobytes())
            handle.flush()
            os.fsync(handle.fileno())

    atomic_write_with(Path(path), write)
    return Path(path)


class FrameWriter:
    """Writes frames on a background thread so saving stays off the render loop's critical path.

    Errors surface on the next `put` or on `close`. `close` waits for every queued frame.
    """

    def __init__(self, bit_depth: int = 8, max_pending: int = 8):
        self.bit_depth = bit_depth
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="deforge-frame-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            path, image, bit_depth = item
            if self._error is None:
                try:
                    write_image(path, image, bit_depth)
                except BaseException as error:  # reported to the render loop
                    self._error = error

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, path: Path, image: np.ndarray, bit_depth: int | None = None) -> None:
        """Queue a frame for writing. The writer keeps a reference: do not change the array afterwards
        (the render loops never do: every step returns a new array), so no copy is made here."""
        self._raise_pending()
        self._queue.put((Path(path), np.asarray(image), bit_depth or self.bit_depth))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise_pending()

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
