"""Frames for parity checks, calibration and benchmarks: from a folder, a video, or synthetic.

Pre-processing follows the model contract (:mod:`rtseg.contract`): BGR uint8 -> bilinear
resize to ``input_size`` -> channel order -> /255 -> (x - mean) / std -> NCHW float32.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from rtseg.contract import ModelInfo
from rtseg.errors import RtsegError
from rtseg.suffixes import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_frames(source: str | Path, limit: int | None = None, stride: int = 1,
                offset: int = 0) -> list[np.ndarray]:
    """Read BGR uint8 frames from an image folder or a video file.

    Args:
        source: folder of images (sorted by name) or a video file.
        limit: at most this many frames (None: all).
        stride: keep every ``stride``-th frame.
        offset: skip this many (already strided) frames first; lets calibration and
            held-out evaluation draw disjoint frames from one source.

    Raises:
        RtsegError: the source does not exist, is unreadable or yields no frame.
    """
    return list(iter_frames(source, limit=limit, stride=stride, offset=offset)) or _empty(source)


def _empty(source) -> list:
    raise RtsegError(f"{source}: no frames found (need an image folder or a video file)")


def iter_frames(source: str | Path, limit: int | None = None, stride: int = 1,
                offset: int = 0) -> Iterator[np.ndarray]:
    """Iterate BGR uint8 frames (see :func:`read_frames`)."""
    source = Path(source).expanduser()
    stride = max(1, int(stride))
    if source.is_dir():
        frames = (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in list_images(source))
    elif source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
        frames = _video_frames(source)
    elif source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
        frames = iter([cv2.imread(str(source), cv2.IMREAD_COLOR)])
    else:
        raise RtsegError(f"{source}: not an image folder, image or video file")
    count = 0
    for index, frame in enumerate(frames):
        if index % stride or index // stride < offset:
            continue
        if frame is None:
            continue
        yield frame
        count += 1
        if limit is not None and count >= limit:
            return


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="bgr24")
    except av.error.FFmpegError as exc:
        raise RtsegError(f"{path}: cannot decode video ({exc})") from None


def synthetic_frames(count: int, height: int = 360, width: int = 480, seed: int = 0) -> list[np.ndarray]:
    """Smooth, structured BGR frames (gradients + blobs), for when no real frames are given."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for _ in range(count):
        img = np.zeros((height, width, 3), np.float32)
        for c in range(3):
            a, b, ph = rng.uniform(0.005, 0.05, 3)
            img[..., c] = 127 + 100 * np.sin(a * xx + b * yy + ph * 10)
        for _ in range(6):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(10, 80)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            img[mask] = rng.uniform(0, 255, 3)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def preprocess(bgr: np.ndarray, info: ModelInfo, size: tuple[int, int] | None = None) -> np.ndarray:
    """One BGR uint8 frame -> (1, 3, H, W) float32 per the model contract: the runtime's own
    pre-processing (:func:`rtseg.realtime.preprocess.preprocess`), so parity and calibration
    see exactly what the live pipeline feeds."""
    from rtseg.realtime.preprocess import preprocess as runtime_preprocess

    return runtime_preprocess(bgr, info, size)


def batch(frames: list[np.ndarray], info: ModelInfo, size: tuple[int, int] | None = None) -> np.ndarray:
    """Pre-process a list of frames into one (N, 3, H, W) float32 array."""
    return np.concatenate([preprocess(f, info, size) for f in frames], axis=0)
