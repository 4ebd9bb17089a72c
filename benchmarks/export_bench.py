"""CPU latency of exported models: ONNX Runtime fp32 and int8 vs PyTorch eager, same run.

Not a test. Weights are random (latency does not depend on their values; int8 label
agreement does, so it is not reported here). Calibration frames come from ``--calib``
(default: the shared road clip when present, else synthetic frames).

    python benchmarks/export_bench.py --threads 2
    python benchmarks/export_bench.py --models lraspp_mobilenet_v3_large effl0_lraspp --sizes 360x480
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rtseg.export.builder import build
from rtseg.export.exporter import export_onnx, write_metadata
from rtseg.export.frames import batch, read_frames, synthetic_frames
from rtseg.export.quantize import quantize_int8, time_session

log = logging.getLogger("export_bench")
ROAD = Path(__file__).resolve().parents[1] / ".." / "shared" / "media" / "road_solidWhiteRight.mp4"
DEFAULT_MODELS = ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50",
                  "deeplabv3_resnet50", "effl0_lraspp", "effl0_unet_bilinear", "mbv3_lraspp"]


def torch_ms(module: torch.nn.Module, x: np.ndarray, runs: int) -> float:
    """Median eager PyTorch latency in ms (inference mode)."""
    t = torch.from_numpy(x)
    times = []
    with torch.inference_mode():
        for _ in range(2):  # warm-up: oneDNN builds its kernels for the shape
            module(t)
        for _ in range(runs):
            t0 = time.perf_counter()
            module(t)
            times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def bench(name: str, size: tuple[int, int], calib: list, runs: int, threads: int) -> dict:
    """One row: fp32/int8 ORT and eager latency for ``name`` at ``size``."""
    torch.manual_seed(0)
    built = build(name, pretrained=False)
    info = dataclasses.replace(built.info, input_size=size)
    x = batch(calib[:1], info)
    eager = torch_ms(built.module, x, runs)  # first, before any onnxruntime thread pool exists
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(built.module, Path(tmp) / "m.onnx", size)
        write_metadata(fp32, info)
        report = quantize_int8(fp32, Path(tmp) / "m8.onnx", calib, calib[:1], info, threads=threads,
                               timing_runs=1)
        ort32 = time_session(fp32, x, threads, runs)
        ort8 = time_session(Path(tmp) / "m8.onnx", x, threads, runs)
    del report
    return {"model": name, "size": f"{size[0]}x{size[1]}", "torch": eager, "fp32": ort32, "int8": ort8}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    p.add_argument("--sizes", nargs="+", default=["360x480", "540x960"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--calib", type=Path, default=ROAD if ROAD.is_file() else None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    calib = read_frames(args.calib, limit=8, stride=25) if args.calib else synthetic_frames(8, 540, 960)
    rows = []
    for name in args.models:
        for size in sizes:
            row = bench(name, size, calib, args.runs, args.threads)
            log.info("%s", row)
            rows.append(row)
    print(f"\nCPU, {args.threads} threads, median of {args.runs} runs, batch 1 (ms; ratio = PyTorch eager / ORT)\n")
    print("| model | input | PyTorch eager | ORT fp32 | ORT int8 "
          "| fp32 speed-up vs eager | int8 speed-up vs eager | int8 vs fp32 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['size']} | {r['torch']:.1f} | {r['fp32']:.1f} | {r['int8']:.1f} | "
              f"x{r['torch'] / r['fp32']:.2f} | x{r['torch'] / r['int8']:.2f} | x{r['fp32'] / r['int8']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
