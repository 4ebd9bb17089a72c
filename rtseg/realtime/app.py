"""The whole job in one call: open the source and model, build sinks, run the pipeline.

``rtseg.process(...)`` here is what the CLI calls; each keyword is one CLI flag.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtseg.errors import RtsegError, SinkError
from rtseg.realtime.engine import Engine, load_model
from rtseg.realtime.pipeline import Pipeline, PipelineStats
from rtseg.realtime.render import Renderer
from rtseg.realtime.sinks import ImageFileSink, MaskSink, Sink, StatsSink, VideoFileSink, WindowSink
from rtseg.realtime.sinks.video import DEFAULT_PRESET
from rtseg.realtime.sources import ImageSource, Source, open_source
from rtseg.realtime.sources.base import DEFAULT_MAX_PIXELS

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced."""

    stats: PipelineStats
    output: Path | None
    model: str
    provider: str


def process(source: str | int, output: str | os.PathLike | None = None, *,
            model: str | os.PathLike | Engine | None = None, device: str = "auto",
            threads: int | None = None, view: str = "overlay", alpha: float = 0.5,
            classes: Sequence[str] | None = None, hide: Sequence[str] | None = None,
            legend: bool = False, hud: bool = True, display: bool = False,
            save_masks: str | os.PathLike | None = None, stats: str | os.PathLike | None = None,
            max_pixels: int = DEFAULT_MAX_PIXELS, camera_size: tuple[int, int] | None = None,
            camera_fps: float | None = None, timeout: float = 5.0, stall_timeout: float = 2.0,
            live: bool | None = None,
            crf: int = 23, preset: str = DEFAULT_PRESET, progress: bool = True) -> RunResult:
    """Segment a camera (int index), video, stream URL, image, folder or glob.

    Example:
        >>> import rtseg
        >>> rtseg.process("in.mp4", "out.mp4", model="otsu")  # doctest: +SKIP
    """
    if display:
        _check_display()
    src = source if isinstance(source, Source) else open_source(  # cheap checks fail first
        source, max_pixels=max_pixels, camera_size=camera_size, camera_fps=camera_fps, timeout=timeout,
        live=live)
    try:
        engine = model if hasattr(model, "segment") else load_model(model, device=device, threads=threads)
        log.info("model %s on %s", engine.info.name, engine.provider)
        stop_request = threading.Event()
        counters = PipelineStats()
        renderer = Renderer(engine.info, view=view, alpha=alpha, classes=classes, hide=hide, legend=legend,
                            hud_lines=(lambda: _hud_lines(counters, engine)) if hud else None)
        sinks = _build_sinks(src, output, renderer, save_masks, stats, display, stop_request, crf, preset)
    except BaseException:
        src.close()
        raise
    bar = _ProgressBar(src) if progress else None
    pipeline = Pipeline(src, engine, renderer, sinks, stop_request=stop_request,
                        stall_timeout=stall_timeout, progress=bar, stats=counters)
    try:
        result = pipeline.run()
    finally:
        if bar is not None:
            bar.close()
    if not src.live and not result.interrupted and result.written != result.captured:
        raise RtsegError(f"internal error: {result.captured} frames in but {result.written} out")
    return RunResult(result, Path(output) if output is not None else None, engine.info.name, engine.provider)


def _build_sinks(src: Source, output, renderer: Renderer, save_masks, stats, display: bool,
                 stop_request: threading.Event, crf: int, preset: str) -> list[Sink]:
    sinks: list[Sink] = []
    if output is not None:
        out = Path(output)
        if src.info.name and Path(str(src.info.name)).exists() and out.exists() \
                and out.resolve() == Path(str(src.info.name)).resolve():
            raise SinkError(f"output {out} is the input file; choose another name")
        if isinstance(src, ImageSource):
            sinks.append(ImageFileSink(out))
        else:
            sinks.append(VideoFileSink(out, fps=src.info.fps, passthrough_streams=src.info.passthrough_streams,
                                       crf=crf, preset=preset))
    if save_masks is not None:
        sinks.append(MaskSink(save_masks, renderer.lut))
    if display:
        sinks.append(WindowSink(f"rtseg - {src.info.name}", renderer.state, stop_request))
    if stats is not None:
        sinks.append(StatsSink(stats, renderer.info.classes))  # last: sees the other sinks' timings
    return sinks


def _check_display() -> None:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RtsegError("no display available (DISPLAY is not set); use --no-display with --output, "
                         "--save-masks or --stats")


def _hud_lines(s: PipelineStats, engine: Engine) -> list[str]:
    latency = (s.latency.value or 0.0) * 1000
    return [
        f"{engine.info.name} on {engine.provider.replace('ExecutionProvider', '')}",
        f"capture {s.capture_rate.rate():.1f} fps  infer {s.infer_rate.rate():.1f} fps",
        f"latency {latency:.0f} ms  dropped {s.dropped}",
    ]


class _ProgressBar:
    """tqdm bar over frames written, with FPS and ETA; total known for files."""

    def __init__(self, src: Source) -> None:
        from tqdm import tqdm

        total = None if src.live else src.info.frame_count
        self._bar = tqdm(total=total, unit="frame", desc=Path(str(src.info.name)).name[:30],
                         dynamic_ncols=True, file=sys.stderr)
        self._shown = 0

    def __call__(self, stats: PipelineStats) -> None:
        if stats.written > self._shown:
            self._bar.update(stats.written - self._shown)
            self._shown = stats.written
            self._bar.set_postfix(dropped=stats.dropped, refresh=False)

    def close(self) -> None:
        self._bar.close()
