"""Throughput of the same model three ways, measured side by side in one run.

* raw: ``engine(image)`` on frames decoded into memory beforehand (inference alone);
* naive: one thread doing read -> infer -> blend -> write per frame;
* pipeline: the threaded pipeline doing the same work (what ``rtseg --source`` runs);
* stages: each stage's CPU and wall time per frame, alone, and the fps limit they imply on
  this machine's cores (:mod:`rtseg.realtime.bench_stages`), next to the pipeline's fps.

Each is run ``repeats`` times, interleaved, and the median is reported, so background load
on a shared machine hits all of them alike. ``infer_every`` and ``preset`` apply to the naive
loop, the pipeline and the stages alike (raw inference is the model on every frame).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtseg.realtime.bench_stages import Cost, StageCosts, format_stage_table, measure_pipeline, measure_stages
from rtseg.realtime.engine import Engine
from rtseg.realtime.options import DEFAULT_PRESET
from rtseg.realtime.render import Renderer
from rtseg.realtime.sinks import VideoFileSink
from rtseg.realtime.sources import VideoSource

MODES = ("raw", "naive", "pipeline")


@dataclass
class BenchResult:
    """Median frames per second per mode, and every sample."""

    frames: int
    samples: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    stage_samples: list[StageCosts] = field(default_factory=list)
    pipeline_cpu_ms: list[float] = field(default_factory=list)
    infer_every: int | str = 1
    preset: str = DEFAULT_PRESET
    pipeline_threads: str | None = None  # how the pipeline ran the model (streams, tuned threads)

    def fps(self, mode: str) -> float:
        return statistics.median(self.samples[mode])

    def stages(self) -> StageCosts:
        """Median cost of each stage over the runs, with the pipeline's median fps and CPU."""
        first = self.stage_samples[0]
        median = {name: Cost(statistics.median(s.stages[name].cpu_ms for s in self.stage_samples),
                             statistics.median(s.stages[name].wall_ms for s in self.stage_samples))
                  for name in first.stages}
        return StageCosts(median, first.cores, self.fps("pipeline"), statistics.median(self.pipeline_cpu_ms))


def raw_fps(engine: Engine, images: list) -> float:
    """Inference alone on pre-decoded frames (after a short warm-up)."""
    for image in images[:3]:
        engine(image)
    t0 = time.perf_counter()
    for image in images:
        engine(image)
    return len(images) / (time.perf_counter() - t0)


def naive_fps(engine: Engine, source: str, frames: int, output: Path, *, infer_every: int | str = 1,
              preset: str = DEFAULT_PRESET) -> float:
    """Single thread: decode, infer, blend, encode, one frame after the other."""
    renderer = Renderer(engine.info)
    if infer_every != 1:
        from rtseg.realtime.keyframes import KeyframeEngine

        engine = KeyframeEngine(engine, every=infer_every)
    t0 = time.perf_counter()
    count = 0
    with VideoSource(source, max_frames=frames) as src:
        with VideoFileSink(output, fps=src.info.fps, passthrough_streams=src.info.passthrough_streams,
                           preset=preset) as sink:
            for frame in src:
                engine.segment(frame)
                sink.write(frame, renderer.render(frame))
                count += 1
    return count / (time.perf_counter() - t0)


def run_bench(engine: Engine, source: str, frames: int = 120, repeats: int = 3, *, infer_every: int | str = 1,
              preset: str = DEFAULT_PRESET, pipeline_model: dict | None = None) -> BenchResult:
    """Measure the three modes and the stages ``repeats`` times, interleaved.

    ``pipeline_model``: model options for the pipeline (the CLI's threads and streams);
    default: ``engine`` itself, as raw inference and the naive loop run it."""
    with VideoSource(source, max_frames=frames) as src:
        images = [f.image for f in src]
    result = BenchResult(frames=len(images), infer_every=infer_every, preset=preset)
    with tempfile.TemporaryDirectory(prefix="rtseg-bench-") as tmp:
        for _ in range(repeats):
            result.samples["raw"].append(raw_fps(engine, images))
            result.samples["naive"].append(naive_fps(engine, source, frames, Path(tmp) / "naive.mp4",
                                                     infer_every=infer_every, preset=preset))
            fps, cpu_ms, result.pipeline_threads = measure_pipeline(
                engine, source, frames, Path(tmp) / "pipe.mp4", infer_every=infer_every, preset=preset,
                model=pipeline_model)
            result.samples["pipeline"].append(fps)
            result.pipeline_cpu_ms.append(cpu_ms)
            result.stage_samples.append(measure_stages(engine, source, frames, infer_every=infer_every,
                                                       preset=preset))
    return result


def format_table(result: BenchResult, title: str) -> str:
    """A Markdown table with fps, ms per frame and the two ratios the goals are about."""
    raw, naive, pipe = (result.fps(m) for m in MODES)
    rows = [
        ("raw inference (pre-decoded frames)", raw),
        ("naive loop (read -> infer -> blend -> write)", naive),
        ("pipeline (capture / inference / render threads)", pipe),
    ]
    lines = [title, "", "| mode | fps | ms/frame |", "|---|---:|---:|"]
    lines += [f"| {name} | {fps:.1f} | {1000 / fps:.1f} |" for name, fps in rows]
    keyframes = f", --infer-every {result.infer_every}" if result.infer_every != 1 else ""
    lines += ["", f"pipeline / raw inference = {pipe / raw:.2f} (goal >= 0.90)",
              f"pipeline / naive loop = {pipe / naive:.2f} (goal >= 1.30)",
              f"({result.frames} frames, median of {len(result.samples['raw'])} interleaved runs; "
              f"x264 preset {result.preset}{keyframes})"]
    if result.pipeline_threads:
        lines.append(f"pipeline: {result.pipeline_threads}")
    if result.stage_samples:
        lines += ["", format_stage_table(result.stages(), "Each stage alone (CPU time counts every thread):")]
    return "\n".join(lines)
