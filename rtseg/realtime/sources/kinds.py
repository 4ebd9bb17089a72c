"""What kind of input a user named: a camera, a URL, images, or a video file."""

from __future__ import annotations

from pathlib import Path

from rtseg.suffixes import IMAGE_SUFFIXES

SOURCE_KINDS = ("camera", "url", "images", "video")
# Streams that run in real time: consumed with latest-frame semantics unless told otherwise.
# http(s) may be a file on a server or a live feed; it defaults to back-pressure (no frame
# dropped) and takes --live for a live feed.
LIVE_URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt")
MAX_CAMERA_INDEX = 1023


def is_url(spec: str) -> bool:
    """True for ``scheme://...`` strings."""
    return "://" in spec


def is_live_url(spec: str) -> bool:
    """True for URLs of real-time protocols (rtsp, rtmp, udp, tcp, srt)."""
    return is_url(spec) and spec.split("://", 1)[0].lower() in LIVE_URL_SCHEMES


def is_image_path(spec: str | Path) -> bool:
    """True when ``spec`` names an image file by its suffix."""
    return Path(spec).suffix.lower() in IMAGE_SUFFIXES


def camera_index(spec: str) -> int | None:
    """The camera index a string names (``"0"``, ``"2"``), or None; a digit string that is
    also an existing file is the file."""
    if spec.isdigit() and not Path(spec).exists():
        return int(spec)
    return None


def source_kind(spec: str | int) -> str:
    """One of :data:`SOURCE_KINDS` for a camera index, URL, image/folder/glob or video path.

    Example:
        >>> [source_kind(s) for s in (0, "rtsp://cam/1", "frames/*.png", "clip.mp4")]
        ['camera', 'url', 'images', 'video']
    """
    if isinstance(spec, int):
        return "camera"
    if is_url(spec):
        return "url"
    if is_image_path(spec) or any(ch in spec for ch in "*?[") or Path(spec).is_dir():
        return "images"
    return "video"
