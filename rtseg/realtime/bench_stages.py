"""The CPU limit of a file job: what each stage costs per frame, and the fps that implies.

Each stage runs alone, in its own pass over the same frames, timed with the process's CPU
clock (every thread of the process: onnxruntime's and FFmpeg's pools included) and the
wall clock:

* decode: PyAV decoding and conversion to BGR (the capture thread);
* preprocess: resize and normalise for the model; inference: the session run and the label
  map (with ``infer_every`` other than 1 also the optical flow and the warp of the frames
  between keyframes) (the inference thread);
* render: the colour mask blended over the frame; encode: H.264 at the given preset (the
  render thread).

On ``cores`` cores the pipeline cannot beat ``cores / total CPU per frame`` (work-conserving
bound), nor the slowest of its three threads running alone. The smaller of the two is the
limit the pipeline's fps is compared with.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rtseg.realtime.app import process
from rtseg.realtime.cpu import available_cores, opencv_threads_for_pipeline
from rtseg.realtime.engine import Engine
from rtseg.realtime.frame import Frame
from rtseg.realtime.options import DEFAULT_PRESET
from rtseg.realtime.preprocess import preprocess
from rtseg.realtime.render import Renderer
from rtseg.realtime.sinks import VideoFileSink
from rtseg.realtime.sources import VideoSource

# stage -> the pipeline thread it runs on
STAGES: dict[str, str] = {"decode": "capture", "preprocess": "inference", "inference": "inference",
                          "render": "render", "encode": "render"}
THREADS = ("capture", "inference", "render")


@dataclass(frozen=True)
class Cost:
    """Milliseconds per frame: CPU time (all threads) and wall time."""

    cpu_ms: float
    wall_ms: float


@dataclass(frozen=True)
class StageCosts:
    """Per-stage costs, the limit they imply, and the pipeline measured against it."""

    stages: dict[str, Cost]
    cores: int
    pipeline_fps: float | None = None
    pipeline_cpu_ms: float | None = None

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per frame, all stages."""
        return sum(c.cpu_ms for c in self.stages.values())

    def thread_wall_ms(self, thread: str) -> float:
        """Wall milliseconds per frame of one pipeline thread's stages, run alone."""
        return sum(c.wall_ms for name, c in self.stages.items() if STAGES[name] == thread)

    @property
    def cpu_bound_fps(self) -> float:
        """``cores`` x 1000 / CPU ms per frame."""
        return self.cores * 1000.0 / self.cpu_ms

    @property
    def thread_bound_fps(self) -> float:
        """1000 / the slowest thread's wall ms per frame."""
        return 1000.0 / max(self.thread_wall_ms(t) for t in THREADS)

    @property
    def limit_fps(self) -> float:
        return min(self.cpu_bound_fps, self.thread_bound_fps)

    @property
    def ratio(self) -> float | None:
        """Pipeline fps / limit."""
        return None if self.pipeline_fps is None else self.pipeline_fps / self.limit_fps


def _timed(frames: int, body: Callable[[], object]) -> tuple[object, Cost]:
    c0, w0 = time.process_time(), time.perf_counter()
    result = body()
    return result, Cost(1000 * (time.process_time() - c0) / frames, 1000 * (time.perf_counter() - w0) / frames)


def measure_stages(engine: Engine, source: str, frames: int = 120, *, infer_every: int | str = 1,
                   preset: str = DEFAULT_PRESET, cores: int | None = None) -> StageCosts:
    """Each stage alone on the first ``frames`` frames of ``source`` (see the module doc), with
    OpenCV's threads set as the pipeline sets them."""
    with opencv_threads_for_pipeline():
        return _measure_stages(engine, source, frames, infer_every, preset, cores)


def _measure_stages(engine: Engine, source: str, frames: int, infer_every: int | str, preset: str,
                    cores: int | None) -> StageCosts:
    def decode() -> tuple[list[Frame], float]:
        with VideoSource(source, max_frames=frames) as src:
            return list(src), src.info.fps

    (decoded, fps), decode_cost = _timed(1, decode)
    n = len(decoded)
    if n == 0:
        raise ValueError(f"{source}: no frames to measure")
    decode_cost = Cost(decode_cost.cpu_ms / n, decode_cost.wall_ms / n)
    segmenter = engine
    if infer_every != 1:
        from rtseg.realtime.keyframes import KeyframeEngine

        segmenter = KeyframeEngine(engine, every=infer_every)
    for frame in decoded[:3]:
        engine.segment(frame)  # warm-up (the keyframe wrapper starts fresh below)
    _, seg = _timed(n, lambda: [segmenter.segment(f) for f in decoded])
    keyframes = [f for f in decoded if getattr(f, "inferred", True)]  # the model preprocesses only these
    _, pre = _timed(n, lambda: [preprocess(f.image, engine.info) for f in keyframes])
    renderer = Renderer(engine.info)
    images, render = _timed(n, lambda: [renderer.render(f) for f in decoded])
    with tempfile.TemporaryDirectory(prefix="rtseg-stages-") as tmp:
        def encode() -> None:
            with VideoFileSink(Path(tmp) / "stages.mp4", fps=fps, preset=preset) as sink:
                for frame, image in zip(decoded, images):
                    sink.write(frame, image)

        _, enc = _timed(n, encode)
    inference = Cost(max(0.0, seg.cpu_ms - pre.cpu_ms), max(0.0, seg.wall_ms - pre.wall_ms))
    stages = {"decode": decode_cost, "preprocess": pre, "inference": inference, "render": render, "encode": enc}
    return StageCosts(stages, cores or available_cores())


def measure_pipeline(engine: Engine, source: str, frames: int, output: Path, *, infer_every: int | str = 1,
                     preset: str = DEFAULT_PRESET, model: dict | None = None) -> tuple[float, float, str | None]:
    """The threaded pipeline's fps, CPU milliseconds per frame and how it ran the model (the
    summary's thread report) on the same job. ``model``: the model options to run it with
    (e.g. ``{"model": path, "threads": "auto", "streams": "auto"}``, as the CLI does);
    default: ``engine`` itself, one frame at a time."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = process(VideoSource(source, max_frames=frames), output, **(model or {"model": engine}),
                     infer_every=infer_every, preset=preset, hud=False, progress=False)
    written = max(1, result.stats.written)
    fps, cpu_ms = written / (time.perf_counter() - w0), 1000 * (time.process_time() - c0) / written
    return fps, cpu_ms, result.stats.summary()["threads"]


def format_stage_table(costs: StageCosts, title: str = "") -> str:
    """Markdown: per-stage CPU and wall ms, the implied limit, and the pipeline against it."""
    lines = [title, ""] if title else []
    lines += ["| stage | thread | CPU ms/frame | wall ms/frame (alone) |", "|---|---|---:|---:|"]
    lines += [f"| {name} | {STAGES[name]} | {c.cpu_ms:.2f} | {c.wall_ms:.2f} |" for name, c in costs.stages.items()]
    lines.append(f"| **all** | | **{costs.cpu_ms:.2f}** | |")
    slowest = max(THREADS, key=costs.thread_wall_ms)
    lines += ["", f"CPU limit on {costs.cores} cores: {costs.cpu_bound_fps:.1f} fps "
              f"({costs.cores} x 1000 / {costs.cpu_ms:.1f} ms); slowest thread ({slowest}) alone: "
              f"{costs.thread_bound_fps:.1f} fps; limit {costs.limit_fps:.1f} fps"]
    if costs.pipeline_fps is not None:
        lines.append(f"pipeline {costs.pipeline_fps:.1f} fps = {costs.ratio:.2f} x the limit (goal >= 0.90); "
                     f"it spent {costs.pipeline_cpu_ms:.1f} CPU ms per frame (stages alone: {costs.cpu_ms:.1f})")
    return "\n".join(lines)
