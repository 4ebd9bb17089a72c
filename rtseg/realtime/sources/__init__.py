"""Frame sources: cameras, video files and streams, still images, and the built-in demo clip."""

from __future__ import annotations

import os
from pathlib import Path

from rtseg.assets import DEMO_NAME, demo_clip
from rtseg.errors import SourceError
from rtseg.realtime.sources.base import DEFAULT_MAX_PIXELS, Source, SourceInfo
from rtseg.realtime.sources.camera import CameraSource
from rtseg.realtime.sources.images import ImageSource, is_image_path
from rtseg.realtime.sources.kinds import SOURCE_KINDS, camera_index, is_live_url, is_url, source_kind
from rtseg.realtime.sources.paced import PacedSource
from rtseg.realtime.sources.reconnect import ReconnectingSource
from rtseg.realtime.sources.video import VideoSource

__all__ = ["DEFAULT_MAX_PIXELS", "SOURCE_KINDS", "CameraSource", "ImageSource", "PacedSource", "ReconnectingSource",
           "Source", "SourceInfo", "VideoSource", "camera_index", "is_image_path", "is_live_url", "is_url",
           "open_source", "resolve_source", "source_kind"]


def resolve_source(spec: str | int | os.PathLike) -> str | int:
    """``demo`` -> the packaged demo clip; a camera index string (``"0"``) -> int; else the path."""
    if isinstance(spec, int):
        return spec
    spec = os.fspath(spec)
    if spec == DEMO_NAME and not Path(spec).exists():
        return str(demo_clip())
    index = camera_index(spec)
    return index if index is not None else spec


def open_source(spec: str | int | os.PathLike, options=None) -> Source:
    """Open what the user named: a camera index, a URL, a video, an image, folder or glob.

    Args:
        spec: see :func:`source_kind`; ``demo`` is the built-in road clip.
        options: a :class:`rtseg.realtime.options.SourceOptions` (None: defaults).
    """
    from rtseg.realtime.options import SourceOptions

    opts = options or SourceOptions()
    spec = resolve_source(spec)
    kind = source_kind(spec)
    live_kind = kind == "camera" or (kind == "url" and is_live_url(str(spec)))
    if opts.reconnect if opts.reconnect is not None else live_kind:
        if not live_kind and not opts.live:
            raise SourceError(f"--reconnect is for cameras and live streams; {spec} is not one (add --live "
                              "for a live http stream)")
        # Audio is not passed through: each new connection restarts the stream's clocks.
        return ReconnectingSource(lambda: _open_once(spec, kind, opts, audio=False), max_attempts=opts.reconnect_max)
    source = _open_once(spec, kind, opts)
    if kind in ("video", "images") and (opts.realtime or opts.live):
        return PacedSource(source, live=bool(opts.live))  # --live on a file implies --realtime
    return source


def _open_once(spec: str | int, kind: str, opts, audio: bool = True) -> Source:
    if kind == "camera":
        return CameraSource(int(spec), size=opts.camera_size, fps=opts.camera_fps, max_pixels=opts.max_pixels)
    if kind == "images":
        return ImageSource(str(spec), max_pixels=opts.max_pixels, fps=opts.fps)
    return VideoSource(str(spec), live=opts.live, max_pixels=opts.max_pixels, timeout=opts.timeout,
                       passthrough_audio=audio)
