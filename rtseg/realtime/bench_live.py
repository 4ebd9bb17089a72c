"""Camera-to-output latency on a clip played at its own speed (``rtseg bench --live``).

The clip is paced at its timestamps, as a camera would deliver it, with latest-frame
semantics, through the whole pipeline (decode, infer, blend, H.264 encode). Each frame's
latency is from the moment it was delivered to the moment every sink had it. Compared with
the model's own median time per frame on the same frames, measured in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rtseg.realtime.app import process
from rtseg.realtime.engine import Engine
from rtseg.realtime.sources import PacedSource, VideoSource

GOAL_MEDIAN, GOAL_P99 = 1.5, 3.0


@dataclass
class LiveBenchResult:
    """Medians over the runs: inference ms per frame, latency median and p99 ms, drops."""

    frames: int
    infer_ms: float
    latency_median_ms: float
    latency_p99_ms: float
    dropped: int
    runs: int


def infer_ms(engine: Engine, images: list) -> float:
    """The model's median milliseconds per frame (after a short warm-up)."""
    for image in images[:3]:
        engine(image)
    times = []
    for image in images:
        t0 = time.perf_counter()
        engine(image)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def run_live_bench(engine: Engine, source: str, frames: int = 120, repeats: int = 3) -> LiveBenchResult:
    """Inference alone, then the paced live pipeline, ``repeats`` times, interleaved."""
    with VideoSource(source, max_frames=frames) as src:
        images = [f.image for f in src]
    infers, medians, p99s, drops = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="rtseg-bench-live-") as tmp:
        for _ in range(repeats):
            infers.append(infer_ms(engine, images))
            paced = PacedSource(VideoSource(source, live=True, max_frames=frames), live=True)
            stats = process(paced, Path(tmp) / "live.mp4", model=engine, progress=False).stats
            latency = stats.latency_ms()
            medians.append(latency["median"])
            p99s.append(latency["p99"])
            drops.append(stats.dropped)
    return LiveBenchResult(len(images), statistics.median(infers), statistics.median(medians),
                           statistics.median(p99s), int(statistics.median(drops)), repeats)


def format_live_table(result: LiveBenchResult, title: str) -> str:
    """A Markdown table with the two ratios the goals are about."""
    median_ratio = result.latency_median_ms / result.infer_ms
    p99_ratio = result.latency_p99_ms / result.infer_ms
    lines = [title, "", "| measure | ms | x inference |", "|---|---:|---:|",
             f"| inference alone (median per frame) | {result.infer_ms:.1f} | 1.00 |",
             f"| capture -> output latency, median | {result.latency_median_ms:.1f} | {median_ratio:.2f} |",
             f"| capture -> output latency, p99 | {result.latency_p99_ms:.1f} | {p99_ratio:.2f} |", "",
             f"median latency / inference = {median_ratio:.2f} (goal <= {GOAL_MEDIAN})",
             f"p99 latency / inference = {p99_ratio:.2f} (goal <= {GOAL_P99})",
             f"frames dropped to stay live: {result.dropped} of {result.frames}",
             f"({result.frames} frames at the clip's own speed, median of {result.runs} runs)"]
    return "\n".join(lines)
