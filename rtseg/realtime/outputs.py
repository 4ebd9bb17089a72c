"""Which sinks a run writes to, decided once from the output options and the source."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rtseg.errors import SinkError
from rtseg.realtime.controls import Controls
from rtseg.realtime.options import OptionError, OutputOptions
from rtseg.realtime.sinks import ImageFileSink, MaskSink, Sink, StatsSink, VideoFileSink, WindowSink
from rtseg.realtime.sources import Source
from rtseg.realtime.sources.kinds import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v")
OUTPUT_KINDS = ("video", "image", "folder")


def output_kind(path: str | os.PathLike) -> str:
    """``video`` (.mp4/.mkv/.mov/.m4v), ``image`` (.png/.jpg/...), or ``folder`` (no suffix,
    or an existing folder); any other suffix is an error naming the ones that work."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or not suffix:
        return "folder"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise OptionError(f"unsupported output extension {suffix!r} ({path}): use {', '.join(VIDEO_SUFFIXES)} "
                      f"for a video, {', '.join(IMAGE_SUFFIXES)} for an image, or a folder name without one")


def check_outputs_are_not_inputs(inputs: list[Path], outputs: list[Path]) -> None:
    """Refuse an output that is an input or another output (same file by device and inode,
    so hard links and symlinks are caught, not only equal names)."""
    seen: list[Path] = []
    for out in outputs:
        for other in [*inputs, *seen]:
            if _same_file(out, other):
                what = "an input" if other in inputs else "another output"
                raise SinkError(f"output {out} is the same file as {what} ({other}); choose another name")
        seen.append(out)


def build_sinks(source: Source, options: OutputOptions, lut: np.ndarray, class_names: tuple[str, ...],
                controls: Controls) -> list[Sink]:
    """The sinks for ``options``, in write order (stats last: it sees the others' timings)."""
    paths = [Path(p) for p in (options.output, options.save_masks, options.stats) if p is not None]
    check_outputs_are_not_inputs(source.input_paths(), paths)
    sinks: list[Sink] = []
    if options.output is not None:
        kind = output_kind(options.output)
        if kind == "video":
            sinks.append(VideoFileSink(options.output, fps=source.info.fps,
                                       passthrough_streams=source.info.passthrough_streams,
                                       crf=options.crf, preset=options.preset))
        else:
            sinks.append(ImageFileSink(options.output, single=kind == "image"))
    if options.save_masks is not None:
        sinks.append(MaskSink(options.save_masks, lut))
    if options.display:
        sinks.append(WindowSink(f"rtseg - {source.info.name}", controls))
    if options.stats is not None:
        sinks.append(StatsSink(options.stats, class_names))
    return sinks


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False
