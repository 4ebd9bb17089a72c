"""fp32 ONNX latency of architectures side by side: 1x3x360x480, onnxruntime CPU, 2 threads.

Each architecture is exported with random weights (latency does not depend on them) as ``rtseg
export`` writes it (label map + confidence outputs), then timed in interleaved rounds so that
background load affects all of them alike. Prints a Markdown table with the ratio of each to the
Lite0 model with the same decoder.

    python benchmarks/encoder_latency.py
    python benchmarks/encoder_latency.py --archs effl0_lraspp effl2_lraspp --rounds 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rtseg.export.exporter import INPUT_NAME, export_onnx, ort_session
from rtseg.models import build_model

DEFAULT = ["effl0_unet_bilinear", "effl1_unet_bilinear", "effl2_unet_bilinear", "effl0_lraspp", "effl1_lraspp",
           "effl2_lraspp"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=DEFAULT)
    p.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=8, help="rounds of 10 runs per architecture")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal((1, 3, *args.size)).astype(np.float32)
    rows, times = {}, {}
    with tempfile.TemporaryDirectory(prefix="rtseg-latency-") as tmp:
        for arch in args.archs:
            torch.manual_seed(0)
            model = build_model(arch, 11).eval()
            path = export_onnx(model, Path(tmp) / f"{arch}.onnx", tuple(args.size), num_classes=11)
            session = ort_session(path, threads=args.threads)
            for _ in range(3):
                session.run(None, {INPUT_NAME: x})
            rows[arch] = (sum(t.numel() for t in model.parameters()) / 1e6, path.stat().st_size / 1e6, session)
            times[arch] = []
        for _ in range(args.rounds):
            for arch, (*_, session) in rows.items():
                for _ in range(10):
                    t = time.perf_counter()
                    session.run(None, {INPUT_NAME: x})
                    times[arch].append((time.perf_counter() - t) * 1e3)
    print(f"fp32 ONNX, 1x3x{args.size[0]}x{args.size[1]}, onnxruntime CPU {args.threads} threads, "
          f"{10 * args.rounds} runs each; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| arch | params | ONNX | median ms | p10-p90 ms | vs Lite0 |\n|---|---|---|---|---|---|")
    for arch, (params, size_mb, _) in rows.items():
        median = np.median(times[arch])
        lite0 = "effl0_" + arch.partition("_")[2]
        ratio = f"x{median / np.median(times[lite0]):.2f}" if lite0 in times else "-"
        print(f"| `{arch}` | {params:.1f} M | {size_mb:.1f} MB | {median:.1f} | "
              f"{np.percentile(times[arch], 10):.1f}-{np.percentile(times[arch], 90):.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
