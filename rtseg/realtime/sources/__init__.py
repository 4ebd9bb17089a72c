"""Frame sources: cameras, video files and streams, still images."""

from __future__ import annotations

from rtseg.realtime.sources.base import DEFAULT_MAX_PIXELS, Source, SourceInfo
from rtseg.realtime.sources.camera import CameraSource
from rtseg.realtime.sources.images import ImageSource, is_image_path
from rtseg.realtime.sources.video import VideoSource, is_url

__all__ = ["CameraSource", "ImageSource", "Source", "SourceInfo", "VideoSource", "open_source"]


def open_source(spec: str | int, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                camera_size: tuple[int, int] | None = None, camera_fps: float | None = None,
                timeout: float = 5.0, live: bool | None = None) -> Source:
    """Open what the user named: a camera index, a URL, a video, an image, folder or glob.

    ``live`` forces (or refuses) latest-frame semantics for a video or URL; by default
    cameras and rtsp/rtmp/udp/tcp/srt streams are live, files and http(s) are not.
    """
    if isinstance(spec, int):
        return CameraSource(spec, size=camera_size, fps=camera_fps, max_pixels=max_pixels)
    if is_url(spec):
        return VideoSource(spec, live=live, max_pixels=max_pixels, timeout=timeout)
    if is_image_path(spec) or any(ch in spec for ch in "*?[") or _is_dir(spec):
        return ImageSource(spec, max_pixels=max_pixels)
    return VideoSource(spec, live=live, max_pixels=max_pixels)


def _is_dir(spec: str) -> bool:
    from pathlib import Path

    return Path(spec).is_dir()
