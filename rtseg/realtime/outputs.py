"""Which sinks a run writes to, decided once from the output options and the source."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rtseg.errors import SinkError
from rtseg.realtime.controls import Controls
from rtseg.realtime.options import OptionError, OutputOptions
from rtseg.realtime.sinks import ImageFileSink, MaskSink, Sink, StatsSink, VideoFileSink, WindowSink
from rtseg.realtime.sinks.atomic import PublishOnClose
from rtseg.realtime.sinks.base import prepare_output_file
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
                what = "an input or the model" if other in inputs else "another output"
                raise SinkError(f"output {out} is the same file as {what} ({other}); choose another name")
        seen.append(out)


def build_sinks(source: Source, options: OutputOptions, lut: np.ndarray, class_names: tuple[str, ...],
                controls: Controls, model_path: Path | None = None,
                status: Callable[[], dict] | None = None) -> list[Sink]:
    """The sinks for ``options``, in write order (stats last: it sees the others' timings).

    ``status`` gives the browser preview (``options.serve``) the run's figures.

    Files are written to a temp file and renamed when finished (:class:`PublishOnClose`);
    image and mask files one by one through temp files. Every output is checked against
    every input, the model file and the other outputs before anything is opened.
    """
    inputs = source.input_paths() + ([Path(model_path)] if model_path is not None else [])
    kind = output_kind(options.output) if options.output is not None else None
    check_outputs_are_not_inputs(inputs, [Path(p) for p in (options.output, options.save_masks, options.stats)
                                          if p is not None])
    folders = [p for p in (options.save_masks, options.output if kind == "folder" else None) if p is not None]
    check_folders_hold_no_inputs(source.input_paths(), [Path(p) for p in folders])
    sinks: list[Sink] = []
    if kind == "video":
        final = prepare_output_file(Path(options.output), "output")
        sinks.append(PublishOnClose(final, lambda temp: VideoFileSink(
            temp, fps=source.info.fps, passthrough_streams=source.info.passthrough_streams,
            crf=options.crf, preset=options.preset)))
    elif kind is not None:
        sinks.append(ImageFileSink(options.output, single=kind == "image"))
    if options.save_masks is not None:
        sinks.append(MaskSink(options.save_masks, lut))
    if options.display:
        sinks.append(WindowSink(f"rtseg - {source.info.name}", controls))
    if options.stats is not None:
        final = prepare_output_file(Path(options.stats), "stats")
        sinks.append(PublishOnClose(final, lambda temp: StatsSink(temp, class_names)))
    if options.serve is not None:  # its server starts last (nothing after it can fail); it writes before stats
        from rtseg.realtime.preview import PreviewSink

        preview = PreviewSink(options.serve, controls, status or dict, class_names)
        sinks.insert(len(sinks) - (options.stats is not None), preview)
    return sinks


def check_folders_hold_no_inputs(inputs: list[Path], folders: list[Path]) -> None:
    """Refuse writing per-frame files into a folder that holds input images (their names
    would collide with the inputs')."""
    for folder in folders:
        for path in inputs:
            if _same_file(folder, path.parent):
                raise SinkError(f"output folder {folder} holds the input images (e.g. {path.name}); "
                                "choose another folder")


def _same_file(a: Path, b: Path) -> bool:
    """Same device and inode, after resolving symlinks and ``..`` (also through folders
    that do not exist yet, which the output's folder creation would make)."""
    try:
        return os.path.samefile(os.path.realpath(a), os.path.realpath(b))
    except OSError:  # one of them does not exist (yet)
        return False
