"""The whole job in one call: open the source and model, build sinks, run the pipeline.

``rtseg.process(...)`` is the Python API; the CLI calls :func:`run` with the same options
already grouped (:mod:`rtseg.realtime.options`).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rtseg.errors import RtsegError
from rtseg.realtime.controls import Controls
from rtseg.realtime.engine import Engine, default_model_name, load_model, resolve_model_path
from rtseg.realtime.instances.maskrcnn import is_instance_model
from rtseg.realtime.memory import release_freed_memory
from rtseg.realtime.options import OptionError, RunOptions, options_from_keywords
from rtseg.realtime.outputs import build_sinks
from rtseg.realtime.pipeline import Pipeline
from rtseg.realtime.preview import preview_status
from rtseg.realtime.progress import ProgressBar
from rtseg.realtime.render import Renderer, hud_lines
from rtseg.realtime.report import RunCheck, check_run
from rtseg.realtime.session import CUDA, provider_unavailable_reason
from rtseg.realtime.sources import Source, open_source
from rtseg.realtime.stats import PipelineStats
from rtseg.realtime.streams import StreamPlan, is_stateful, plan_streams, stateful_options
from rtseg.realtime.thread_tuner import ThreadTuner, thread_candidates, tune_threads

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced; ``check.shortfalls`` lists what did not make it out."""

    stats: PipelineStats
    output: Path | None
    model: str
    provider: str
    check: RunCheck

    @property
    def complete(self) -> bool:
        """True when every frame (and audio stream) of the input was written."""
        return self.check.complete


def process(source: str | int | Source, output: str | os.PathLike | None = None, **options: Any) -> RunResult:
    """Segment a camera (int index), video, stream URL, image, folder, glob, or ``"demo"``.

    Keywords are the fields of the option groups in :mod:`rtseg.realtime.options`, one per
    CLI flag: SourceOptions (``max_pixels``, ``camera_size``, ``camera_fps``, ``timeout``,
    ``stall_timeout``, ``live``, ``fps``), ModelOptions (``model`` - a name, ``.onnx`` path or
    loaded engine -, ``device``, ``threads``), RenderOptions (``view``, ``alpha``,
    ``classes``, ``hide``, ``legend``, ``hud``, ``min_confidence``, ``instances``, ``count_line``,
    ``min_area``, ``split_touching``) and OutputOptions (``save_masks``, ``stats``,
    ``crf``, ``preset``, ``display``, ``progress``).

    Example:
        >>> import rtseg
        >>> rtseg.process("demo", "out.mp4", model="otsu", view="mask")  # doctest: +SKIP
    """
    return run(source, options_from_keywords(output=output, **options))


def run(source: str | int | Source, options: RunOptions) -> RunResult:
    """Run one job with grouped options; see :func:`process`."""
    try:
        return _run(source, options)
    finally:
        release_freed_memory()  # a caller that loops over inputs (or retries failures) stays flat


def _run(source: str | int | Source, options: RunOptions) -> RunResult:
    out = options.output
    if not out.produces_something:
        raise OptionError("nothing to produce: give an output (--output, --save-masks, --stats) or a window")
    if out.display:
        _check_display()
    src = source if isinstance(source, Source) else open_source(source, options.source)  # cheap checks first
    try:
        stats = PipelineStats()
        engine, streams = _engine(options, stats, src)
        log.info("model %s on %s", engine.info.name, engine.provider)
        controls = Controls(view=options.render.view, alpha=options.render.alpha)
        hud = options.render.hud if options.render.hud is not None else out.display
        render = replace(options.render, hud=hud)
        if getattr(engine, "makes_instances", False) and not (render.hide or render.classes):
            render = replace(render, hide=(engine.info.classes[0],))  # an instance model's background: the image
        renderer = Renderer(engine.info, render, controls=controls,
                            hud_lines=lambda: hud_lines(stats, engine.info.name, engine.provider))
        sinks = build_sinks(src, out, renderer.lut, engine.info.classes, controls, getattr(engine, "path", None),
                            status=preview_status(stats, engine, controls))
    except BaseException:
        src.close()
        raise
    with ProgressBar(src, enabled=out.progress) as bar:
        Pipeline(src, engine, renderer, sinks, controls=controls, stats=stats,
                 stall_timeout=options.source.stall_timeout, progress=bar.update, workers=streams).run()
    if not src.live and controls.stop_reason is None and stats.written != stats.captured:
        raise RtsegError(f"internal error: {stats.captured} frames in but {stats.written} out")
    check = check_run(stats, src, sinks)
    for shortfall in check.shortfalls:
        log.warning("warning: %s", shortfall)
    output = Path(out.output) if out.output is not None else None
    return RunResult(stats, output, engine.info.name, engine.provider, check)


def _engine(options: RunOptions, stats: PipelineStats, src: Source) -> tuple[Engine, int]:
    """The job's engine (the model and its wrappers) and how many inference streams run it."""
    model = options.model
    given = hasattr(model.model, "segment")  # a loaded engine: one stream unless asked for more
    stateful = stateful_options(model.infer_every, model.smooth, options.render.instances)
    if not given and is_instance_model(resolve_model_path(str(model.model or default_model_name()))):
        stateful.append("an instance model")  # it tracks objects from frame to frame
    device = model.device
    if device == "auto" and not given and provider_unavailable_reason(CUDA) is None:
        device = "cuda"  # CUDA will be tried first: one stream
    plan = plan_streams(1 if given and model.streams == "auto" else model.streams, model.threads,
                        live=src.live, stateful=stateful, device=device)
    engine = _build_engine(options, stats, src, plan)
    if plan.streams > 1 and is_stateful(engine):
        raise OptionError("--streams above 1 needs an engine that keeps no state from frame to frame")
    if plan.streams > 1:
        stats.threads = plan  # its report goes into the run summary
    return engine, plan.streams


def _build_engine(options: RunOptions, stats: PipelineStats, src: Source, plan: StreamPlan) -> Engine:
    model = options.model
    if hasattr(model.model, "segment"):
        engine = model.model
    elif plan.tune:  # all cores or one fewer, measured on this job's first frames
        candidates = thread_candidates()
        engine = tune_threads(load_model(model.model, device=model.device, threads=candidates[0]), candidates)
        if isinstance(engine, ThreadTuner):
            stats.threads = engine  # its report goes into the run summary
    else:
        engine = load_model(model.model, device=model.device, threads=plan.threads)
    if model.infer_every != 1 or model.smooth:  # keyframes and smoothing live in the inference stage
        from rtseg.realtime.keyframes import KeyframeEngine, live_budget

        engine = KeyframeEngine(engine, every=model.infer_every, smooth=model.smooth, stats=stats,
                                behind=live_budget(src))  # a live source: auto skips the model when late
    render = options.render
    from rtseg.realtime.instances.stage import InstanceEngine, makes_instances

    if render.instances or makes_instances(engine):  # once per frame, on the model's labels

        engine = InstanceEngine(engine, count_line=render.count_line, min_area=render.min_area,
                                split=render.split_touching)
    from rtseg.realtime.confidence import gate_engine

    engine = gate_engine(engine, options.render.min_confidence)  # --min-confidence, before anything reads labels
    return engine


def _check_display() -> None:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RtsegError("no display to open a window on (DISPLAY is not set): watch in a browser with "
                         "--serve 8080, or run headless with --no-display and --output, --save-masks or --stats")
