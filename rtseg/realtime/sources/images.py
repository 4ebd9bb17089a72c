"""Still images: one file, a folder, or a glob pattern, read in sorted order."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2

from rtseg.errors import SourceError, first_line
from rtseg.realtime.frame import Frame
from rtseg.realtime.sources.base import DEFAULT_MAX_PIXELS, Source, SourceInfo, check_pixel_cap
from rtseg.realtime.sources.image_header import header_size
from rtseg.realtime.sources.kinds import IMAGE_SUFFIXES, is_image_path

__all__ = ["IMAGE_SUFFIXES", "ImageSource", "expand_image_spec", "is_image_path", "probe_image_size"]


def expand_image_spec(spec: str) -> list[Path]:
    """An image file, a folder of images, or a glob -> sorted list of image paths."""
    if any(ch in spec for ch in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(spec, recursive=True)) if is_image_path(p)]
        if not paths:
            raise SourceError(f"no images match the pattern {spec}")
        return paths
    path = Path(spec)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.is_file() and is_image_path(p.name))
        if not paths:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {spec}")
        return paths
    if not path.exists():
        raise SourceError(f"no such file: {spec}")
    return [path]


def probe_image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        size = header_size(path)
    except OSError as exc:
        raise SourceError(f"cannot read image {path}: {first_line(exc)}") from None
    if size is not None:
        if min(size) <= 0:
            raise SourceError(f"cannot read image {path}: invalid size {size[0]}x{size[1]} in its header")
        return size
    try:  # other formats (TIFF, ...): FFmpeg's probe
        with av.open(str(path)) as container:
            ctx = container.streams.video[0].codec_context
            size = ctx.width, ctx.height
    except (av.FFmpegError, IndexError, OSError):
        raise SourceError(f"cannot read image {path}: not an image or corrupt") from None
    if min(size) <= 0:
        raise SourceError(f"cannot read image {path}: not an image or corrupt")
    return size


class ImageSource(Source):
    """Frames from still images; each frame's ``name`` is the file stem.

    Frames are stamped ``pts = index`` in a time base of ``1 / fps``, so a folder written
    as a video plays at ``fps``.

    Example:
        >>> src = ImageSource("frames/*.png", fps=25)  # doctest: +SKIP
    """

    live = False

    def __init__(self, spec: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, fps: float = 25.0) -> None:
        self._paths = expand_image_spec(spec)
        self._max_pixels = max_pixels
        self._time_base = Fraction(1) / Fraction(fps).limit_denominator(1001)
        self.info = SourceInfo(name=spec, fps=fps, frame_count=len(self._paths))

    def input_paths(self) -> list[Path]:
        return list(self._paths)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self._paths):
            if not os.access(path, os.R_OK):
                raise SourceError(f"image is not readable (permission denied): {path}")
            width, height = probe_image_size(path)
            check_pixel_cap(str(path), width, height, self._max_pixels)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError(f"cannot read image {path}: not an image or corrupt")
            yield Frame(image=image, index=index, pts=index, time_base=self._time_base, name=path.stem)
