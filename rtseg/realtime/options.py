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

# x264 speed/size trade-off. On a 2-core machine encoding competes with inference:
# superfast costs ~35 % less CPU than veryfast for ~70 % more bytes at the same CRF.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")
DEFAULT_PRESET = "superfast"


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
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    camera_size: tuple[int, int] | None = None
    camera_fps: float | None = None
    timeout: float = 5.0
    stall_timeout: float = 2.0
    live: bool | None = None
    fps: float = 25.0

    def __post_init__(self) -> None:
        _positive(max_pixels=self.max_pixels, timeout=self.timeout, stall_timeout=self.stall_timeout,
                  fps=self.fps, camera_fps=self.camera_fps)


@dataclass(frozen=True)
class ModelOptions:
    """Which model, where it runs.

    Attributes:
        model: built-in name, ``.onnx`` path, or a loaded engine; None: the default model.
        device: ``auto`` (CUDA when usable), ``cpu`` or ``cuda``.
        threads: onnxruntime intra-op threads; None or 0: onnxruntime's choice.
    """

    model: Any = None
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise OptionError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.threads is not None and self.threads < 0:
            raise OptionError(f"threads must be 0 or more, got {self.threads}")


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
    """

    view: str = "overlay"
    alpha: float = 0.5
    classes: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    legend: bool = False
    hud: bool | None = None

    def __post_init__(self) -> None:
        if self.view not in VIEW_MODES:
            raise OptionError(f"view must be one of {', '.join(VIEW_MODES)}, got {self.view!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise OptionError(f"alpha must be between 0 and 1, got {self.alpha}")
        object.__setattr__(self, "classes", tuple(self.classes or ()))
        object.__setattr__(self, "hide", tuple(self.hide or ()))


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
    """

    output: str | os.PathLike | None = None
    save_masks: str | os.PathLike | None = None
    stats: str | os.PathLike | None = None
    crf: int = 23
    preset: str = DEFAULT_PRESET
    display: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise OptionError(f"crf must be between 0 and 51, got {self.crf}")
        if self.preset not in X264_PRESETS:
            raise OptionError(f"unknown x264 preset {self.preset!r}; choose one of {', '.join(X264_PRESETS)}")

    @property
    def produces_something(self) -> bool:
        """True when the run writes or shows anything."""
        return self.display or any(p is not None for p in (self.output, self.save_masks, self.stats))


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

