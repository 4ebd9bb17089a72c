"""Camera-to-display latency on a clip played at its own speed (``rtseg bench --live``).

The clip is paced at its timestamps, as a camera would deliver it, with latest-frame
semantics, through the pipeline. Each frame's latency runs from the moment it was delivered
to the moment every sink had it, measured two ways in the same run: to display (the
annotated frame is ready for a window or the browser preview) and to file (also encoded
to H.264). Compared with the model's own median time per frame on the same frames.
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
MODES = ("display", "file")  # to the rendered frame; to the rendered and H.264-encoded frame


@dataclass
class LiveBenchResult:
    """Medians over the runs: inference ms per frame; latency median and p99 ms and drops,
    to display and to file."""

    frames: int
    infer_ms: float
    latency_median_ms: dict[str, float]
    latency_p99_ms: dict[str, float]
    dropped: dict[str, int]
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
    infers: list[float] = []
    samples: dict[str, dict[str, list[float]]] = {m: {"median": [], "p99": [], "dropped": []} for m in MODES}
    with tempfile.TemporaryDirectory(prefix="rtseg-bench-live-") as tmp:
        for _ in range(repeats):
            infers.append(infer_ms(engine, images))
            for mode in MODES:
                paced = PacedSource(VideoSource(source, live=True, max_frames=frames), live=True)
                # display: the browser preview's sink with nobody watching (a frame ready to show,
                # no JPEG made); file: the same plus an H.264 file
                output = Path(tmp) / "live.mp4" if mode == "file" else None
                stats = process(paced, output, serve="127.0.0.1:0", model=engine, progress=False).stats
                latency = stats.latency_ms()
                samples[mode]["median"].append(latency["median"])
                samples[mode]["p99"].append(latency["p99"])
                samples[mode]["dropped"].append(stats.dropped)
    return LiveBenchResult(
        len(images), statistics.median(infers),
        {m: statistics.median(samples[m]["median"]) for m in MODES},
        {m: statistics.median(samples[m]["p99"]) for m in MODES},
        {m: int(statistics.median(samples[m]["dropped"])) for m in MODES}, repeats)


def format_live_table(result: LiveBenchResult, title: str) -> str:
    """A Markdown table with the two ratios the goals are about (judged to display)."""
    infer = result.infer_ms
    lines = [title, "", "| measure | ms | x inference | dropped |", "|---|---:|---:|---:|",
             f"| inference alone (median per frame) | {infer:.1f} | 1.00 | |"]
    for mode, what in (("display", "capture -> display"), ("file", "capture -> file (+ H.264 encode)")):
        for stat, values in (("median", result.latency_median_ms), ("p99", result.latency_p99_ms)):
            lines.append(f"| {what}, {stat} | {values[mode]:.1f} | {values[mode] / infer:.2f} | "
                         f"{result.dropped[mode] if stat == 'median' else ''} |")
    lines += ["", f"median latency to display / inference = {result.latency_median_ms['display'] / infer:.2f} "
                  f"(goal <= {GOAL_MEDIAN})",
              f"p99 latency to display / inference = {result.latency_p99_ms['display'] / infer:.2f} "
              f"(goal <= {GOAL_P99})",
              f"({result.frames} frames at the clip's own speed, median of {result.runs} runs)"]
    return "\n".join(lines)
