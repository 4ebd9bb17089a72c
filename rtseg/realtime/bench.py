"""Throughput of the same model three ways, measured side by side in one run.

* raw: ``engine(image)`` on frames decoded into memory beforehand (inference alone);
* naive: one thread doing read -> infer -> blend -> write per frame;
* pipeline: the threaded pipeline doing the same work (what ``rtseg --source`` runs).

Each is run ``repeats`` times, interleaved, and the median frames per second is reported,
so background load on a shared machine hits all three alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtseg.realtime.app import process
from rtseg.realtime.engine import Engine
from rtseg.realtime.render import Renderer
from rtseg.realtime.sinks import VideoFileSink
from rtseg.realtime.sources import VideoSource

MODES = ("raw", "naive", "pipeline")


@dataclass
class BenchResult:
    """Median frames per second per mode, and every sample."""

    frames: int
    samples: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})

    def fps(self, mode: str) -> float:
        return statistics.median(self.samples[mode])


def raw_fps(engine: Engine, images: list) -> float:
    """Inference alone on pre-decoded frames (after a short warm-up)."""
    for image in images[:3]:
        engine(image)
    t0 = time.perf_counter()
    for image in images:
        engine(image)
    return len(images) / (time.perf_counter() - t0)


def naive_fps(engine: Engine, source: str, frames: int, output: Path) -> float:
    """Single thread: decode, infer, blend, encode, one frame after the other."""
    renderer = Renderer(engine.info)
    t0 = time.perf_counter()
    count = 0
    with VideoSource(source, max_frames=frames) as src:
        with VideoFileSink(output, fps=src.info.fps, passthrough_streams=src.info.passthrough_streams) as sink:
            for frame in src:
                engine.segment(frame)
                sink.write(frame, renderer.render(frame))
                count += 1
    return count / (time.perf_counter() - t0)


def pipeline_fps(engine: Engine, source: str, frames: int, output: Path) -> float:
    """The threaded pipeline on the same frames, with the same renderer settings."""
    t0 = time.perf_counter()
    result = process(VideoSource(source, max_frames=frames), output, model=engine, hud=False, progress=False)
    return result.stats.written / (time.perf_counter() - t0)


def run_bench(engine: Engine, source: str, frames: int = 120, repeats: int = 3) -> BenchResult:
    """Measure the three modes ``repeats`` times, interleaved."""
    with VideoSource(source, max_frames=frames) as src:
        images = [f.image for f in src]
    result = BenchResult(frames=len(images))
    with tempfile.TemporaryDirectory(prefix="rtseg-bench-") as tmp:
        for _ in range(repeats):
            result.samples["raw"].append(raw_fps(engine, images))
            result.samples["naive"].append(naive_fps(engine, source, frames, Path(tmp) / "naive.mp4"))
            result.samples["pipeline"].append(pipeline_fps(engine, source, frames, Path(tmp) / "pipe.mp4"))
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
    lines += ["", f"pipeline / raw inference = {pipe / raw:.2f} (goal >= 0.90)",
              f"pipeline / naive loop = {pipe / naive:.2f} (goal >= 1.30)",
              f"({result.frames} frames, median of {len(result.samples['raw'])} interleaved runs)"]
    return "\n".join(lines)
