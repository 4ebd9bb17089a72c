"""The options of a run, grouped by stage; each default is written here and nowhere else.

The CLI builds these from its flags (its defaults are read from here); :func:`rtseg.process`
takes the same names as keywords and maps them once with :func:`options_from_keywords`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from rtseg.errors import OptionError
from rtseg.realtime.controls import VIEW_MODES
from rtseg.realtime.session import DEVICES
from rtseg.realtime.sources.base import DEFAULT_MAX_PIXELS

# x264 speed/size trade-off (docs/performance.md, "Encoder preset"). On a 2-core machine
# encoding competes with inference. On the annotated demo clip at the same PSNR, ultrafast
# takes half superfast's CPU for 3 % more bytes; veryfast makes files ~25 % smaller for ~3x
# ultrafast's CPU.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")
DEFAULT_PRESET = "ultrafast"


def _positive(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not value > 0:
            raise OptionError(f"{name} must be greater than 0, got {value}")


@dataclass(frozen=True)
class SourceOptions:
    """How to open and read the input.

    Attributes:
        max_pixels: refuse frames larger than this (checked from the header before decoding).
        camera_size: requested camera (width, height).
        camera_fps: requested camera frame rate.
        timeout: seconds to wait for a URL to open or answer.
        stall_timeout: a live source without a new frame for this long is an error.
        live: latest-frame semantics (drop when behind); None: on for cameras and live URLs.
        fps: frame rate given to image sequences (a folder or glob written as a video).
        realtime: pace a file at its own timestamps, as a camera would deliver it.
        reconnect: reopen a live source that stalls or disconnects; None: on for cameras and
            live URLs (rtsp, rtmp, udp, tcp, srt), off for files.
        reconnect_max: give up after this many reconnection attempts in a row; 0: never.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    camera_size: tuple[int, int] | None = None
    camera_fps: float | None = None
    timeout: float = 5.0
    stall_timeout: float = 2.0
    live: bool | None = None
    fps: float = 25.0
    realtime: bool = False
    reconnect: bool | None = None
    reconnect_max: int = 0

    def __post_init__(self) -> None:
        _positive(max_pixels=self.max_pixels, timeout=self.timeout, stall_timeout=self.stall_timeout,
                  fps=self.fps, camera_fps=self.camera_fps)
        if self.reconnect_max < 0:
            raise OptionError(f"reconnect_max must be 0 (forever) or more, got {self.reconnect_max}")


@dataclass(frozen=True)
class ModelOptions:
    """Which model, where it runs.

    Attributes:
        model: built-in name, ``.onnx`` path, or a loaded engine; None: the default model.
        device: ``auto`` (CUDA when usable), ``cpu`` or ``cuda``.
        threads: onnxruntime intra-op threads; ``"auto"``: tried and chosen while the job runs
            (:mod:`rtseg.realtime.thread_tuner`, CPU only); None or 0: onnxruntime's choice.
        infer_every: run the model on every N-th frame and carry its labels to the frames
            between by optical flow; ``"auto"``: when the scene has moved enough.
        smooth: smooth labels over time (fewer flickering pixels).
        streams: frames the model segments at once, each on its own thread (files only, on the
            CPU, without per-frame state); ``"auto"``: 2 for files where that is possible
            (:mod:`rtseg.realtime.streams`), else 1. ``threads`` is then the total.
    """

    model: Any = None
    device: str = "auto"
    threads: int | str | None = "auto"
    infer_every: int | str = 1
    smooth: bool = False
    streams: int | str = "auto"

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise OptionError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.threads != "auto" and not (self.threads is None or (isinstance(self.threads, int)
                                                                    and self.threads >= 0)):
            raise OptionError(f"threads must be 'auto' or a whole number >= 0, got {self.threads!r}")
        if self.streams != "auto" and not (isinstance(self.streams, int) and self.streams >= 1):
            raise OptionError(f"streams must be 'auto' or a whole number >= 1, got {self.streams!r}")
        if self.infer_every != "auto" and not (isinstance(self.infer_every, int) and self.infer_every >= 1):
            raise OptionError(f"infer_every must be a whole number >= 1 or 'auto', got {self.infer_every!r}")


@dataclass(frozen=True)
class RenderOptions:
    """What the annotated image shows.

    Attributes:
        view: one of ``overlay``, ``mask``, ``side-by-side``, ``contours``.
        alpha: mask opacity for the overlay, 0..1.
        classes: draw only these classes (names or indices).
        hide: never draw these classes.
        legend: draw class names with their colours.
        hud: draw FPS, latency and drops in the corner; None: only in the window.
        min_confidence: leave pixels whose top-class probability is below this (0..1) unpainted
            and count them as ``unknown``; 0: off; None: 0.5 for models with a ``confidence``
            output, off for the others (docs/models/camvid-road.md has the measurements).
        instances: split thing classes (car, pedestrian, ...) into tracked instances: IDs drawn,
            counts on the HUD, in the preview and in the stats JSONL.
        count_line: ``(x1, y1, x2, y2)`` in frame pixels: count objects crossing it, in each
            direction (implies ``instances``).
        min_area: smallest instance in pixels; None: 0.04 % of the frame.
        split_touching: split touching objects of one class (distance-transform cores).
    """

    view: str = "overlay"
    alpha: float = 0.5
    classes: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    legend: bool = False
    hud: bool | None = None
    min_confidence: float | None = None
    instances: bool = False
    count_line: tuple[float, float, float, float] | None = None
    min_area: int | None = None
    split_touching: bool = False

    def __post_init__(self) -> None:
        if self.view not in VIEW_MODES:
            raise OptionError(f"view must be one of {', '.join(VIEW_MODES)}, got {self.view!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise OptionError(f"alpha must be between 0 and 1, got {self.alpha}")
        object.__setattr__(self, "classes", tuple(self.classes or ()))
        object.__setattr__(self, "hide", tuple(self.hide or ()))
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise OptionError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        if self.count_line is not None:
            line = tuple(self.count_line)
            if len(line) != 4 or line[:2] == line[2:]:
                raise OptionError(f"count_line must be x1, y1, x2, y2 with two different points, got {line}")
            object.__setattr__(self, "count_line", line)
            object.__setattr__(self, "instances", True)
        if self.min_area is not None and self.min_area < 1:
            raise OptionError(f"min_area must be 1 or more pixels, got {self.min_area}")


@dataclass(frozen=True)
class OutputOptions:
    """Where results go.

    Attributes:
        output: annotated video (.mp4/.mkv/.mov/.m4v), image, or folder for images.
        save_masks: folder for per-frame label maps and colour masks (PNG).
        stats: per-frame JSON lines file.
        crf: H.264 quality, 0..51, lower is better.
        preset: x264 speed preset.
        display: show a window.
        progress: show a progress bar.
        serve: ``[HOST:]PORT`` for the browser preview (HOST defaults to 127.0.0.1; port 0
            picks a free one); None: no preview.
    """

    output: str | os.PathLike | None = None
    save_masks: str | os.PathLike | None = None
    stats: str | os.PathLike | None = None
    crf: int = 23
    preset: str = DEFAULT_PRESET
    display: bool = False
    progress: bool = True
    serve: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise OptionError(f"crf must be between 0 and 51, got {self.crf}")
        if self.preset not in X264_PRESETS:
            raise OptionError(f"unknown x264 preset {self.preset!r}; choose one of {', '.join(X264_PRESETS)}")
        if self.serve is not None:
            parse_address(self.serve)

    @property
    def produces_something(self) -> bool:
        """True when the run writes or shows anything."""
        return self.display or any(p is not None for p in (self.output, self.save_masks, self.stats, self.serve))


@dataclass(frozen=True)
class RunOptions:
    """All options of one run."""

    source: SourceOptions = field(default_factory=SourceOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    render: RenderOptions = field(default_factory=RenderOptions)
    output: OutputOptions = field(default_factory=OutputOptions)


GROUPS = {"source": SourceOptions, "model": ModelOptions, "render": RenderOptions, "output": OutputOptions}


def options_from_keywords(**keywords: Any) -> RunOptions:
    """Sort flat keywords (``alpha=0.3, stats="s.jsonl"``) into the option groups.

    Raises:
        TypeError: a keyword no group has.
        OptionError: a value out of range.
    """
    grouped: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    owner = {f.name: group for group, cls in GROUPS.items() for f in fields(cls)}
    for key, value in keywords.items():
        if key not in owner:
            raise TypeError(f"unknown option {key!r}; options: {', '.join(sorted(owner))}")
        grouped[owner[key]][key] = value
    return RunOptions(**{group: GROUPS[group](**values) for group, values in grouped.items()})



def parse_address(text: str) -> tuple[str, int]:
    """``"8080"`` -> ("127.0.0.1", 8080); ``"0.0.0.0:8080"``, ``"[::1]:0"`` as written.

    Example:
        >>> parse_address("8080")
        ('127.0.0.1', 8080)
    """
    host, sep, port = str(text).rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise OptionError(f"serve address must be [HOST:]PORT with PORT 0..65535, got {text!r}")
    return host, int(port)
