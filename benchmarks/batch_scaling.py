"""Files/s and frames/s of ``rtseg batch`` against the number of workers (issue #16).

Copies the built-in demo clip N times, starts Ray once (as a running cluster would be),
then runs the same batch with each worker layout, interleaved and repeated (the machine is
shared), and a plain loop of ``rtseg.process`` over the same files as the no-Ray reference.
Each batch's time includes starting its workers (model sessions) and shutting them down.

    python benchmarks/batch_scaling.py --copies 4 --repeats 5 --layouts 1x2 1x1 2x1
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import rtseg
from rtseg.assets import demo_clip
from rtseg.batch import cli as batch_cli
from rtseg.batch.manifest import read_manifest


def run_batch(videos: Path, out: Path, workers: int, threads: int, model: str) -> tuple[float, int]:
    args = batch_cli.build_parser().parse_args([
        str(videos), "--out-dir", str(out), "--model", model, "--workers", str(workers),
        "--cpus-per-worker", str(threads), "--threads", str(threads), "--overwrite", "--quiet"])
    start = time.perf_counter()
    code = batch_cli.run(args)
    seconds = time.perf_counter() - start
    records = read_manifest(out / "manifest.jsonl")
    if code != 0 or any(r["status"] != "done" for r in records):
        raise SystemExit(f"batch failed ({code}): {records}")
    return seconds, sum(r["frames_out"] for r in records)


def run_loop(videos: Path, out: Path, threads: int, model: str) -> tuple[float, int]:
    start = time.perf_counter()
    frames = 0
    for clip in sorted(videos.glob("*.mp4")):
        result = rtseg.process(clip, out / clip.name, model=model, threads=threads, progress=False)
        frames += result.stats.written
    return time.perf_counter() - start, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layouts", nargs="+", default=["1x2", "1x1", "2x1"],
                        help="WORKERSxTHREADS: workers, each holding THREADS CPUs and onnxruntime threads")
    parser.add_argument("--loop-threads", type=int, default=2, help="threads of the no-Ray reference loop")
    parser.add_argument("--model", default="camvid-road")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()

    import ray

    logging.basicConfig(level=logging.WARNING, format="rtseg: %(message)s")
    work = Path(tempfile.mkdtemp(prefix="rtseg-batch-scaling-"))
    videos = work / "videos"
    videos.mkdir()
    for i in range(args.copies):
        shutil.copy(demo_clip(), videos / f"clip{i}.mp4")
    start = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - start:.1f} s")
    rows: dict[str, list[tuple[float, int]]] = {}
    try:
        for repeat in range(args.repeats):
            for layout in args.layouts:
                workers, threads = (int(v) for v in layout.split("x"))
                result = run_batch(videos, work / f"out-{layout}", workers, threads, args.model)
                rows.setdefault(f"rtseg batch, {workers} worker(s) x {threads} thread(s)", []).append(result)
                print(f"repeat {repeat}: {layout}: {result[0]:.1f} s, {result[1]} frames", flush=True)
            result = run_loop(videos, work / "out-loop", args.loop_threads, args.model)
            rows.setdefault(f"rtseg.process loop, no Ray, {args.loop_threads} thread(s)", []).append(result)
            print(f"repeat {repeat}: loop: {result[0]:.1f} s", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.copies} copies of the demo clip ({rows and next(iter(rows.values()))[0][1]} frames), "
          f"model {args.model}, {args.repeats} interleaved runs: median (best)\n")
    print("| layout | seconds | files/s | frames/s |\n|---|---:|---:|---:|")
    for name, results in rows.items():
        median, best = statistics.median(s for s, _ in results), min(s for s, _ in results)
        frames = results[0][1]
        print(f"| {name} | {median:.1f} ({best:.1f}) | {args.copies / median:.3f} ({args.copies / best:.3f}) "
              f"| {frames / median:.1f} ({frames / best:.1f}) |")


if __name__ == "__main__":
    main()
