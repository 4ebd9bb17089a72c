"""CPU latency of Mask R-CNN models through rtseg's instance engine, on the demo clip's frames.

Not a test. Weights are random (latency does not depend on their values; the graph's score
threshold is set to 0 so every frame has ``--detections`` detections to paste and draw, the
worst case). Each model is exported with ``rtseg export`` at each working size, then timed
on 960 x 540 frames: the session alone and the whole engine (resize, session, mask pasting,
label map), median of the runs after one warm-up.

    python benchmarks/instance_bench.py --threads 2
    python benchmarks/instance_bench.py --models maskrcnn_mobilenet_v3_large_fpn --sizes 320 512
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rtseg.assets import demo_clip
from rtseg.export.frames import read_frames
from rtseg.export.instance import build_for_export, export_instance_model
from rtseg.realtime.instances.maskrcnn import MaskRcnnEngine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["maskrcnn_mobilenet_v3_large_fpn", "maskrcnn_resnet50_fpn_v2"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[320, 512, 800], help="working size (shorter side)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--detections", type=int, default=20)
    parser.add_argument("--proposals", type=int, nargs="+", default=[1000, 150],
                        help="regions the box head scores per frame (rtseg export --proposals)")
    args = parser.parse_args(argv)
    frames = read_frames(demo_clip(), limit=args.runs + 1, stride=20)
    print(f"| model | working size | proposals | session ms | engine ms (resize + session + {args.detections} masks) |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            for size, proposals in ((s, p) for s in args.sizes for p in args.proposals):
                torch.manual_seed(0)
                built = build_for_export(name, random_init=True, min_size=size, max_size=int(size * 1333 / 800),
                                         graph_score_threshold=0.0, detections=args.detections, proposals=proposals)
                path, _ = export_instance_model(built, Path(tmp) / f"{name}-{size}.onnx", score_threshold=0.0)
                engine = MaskRcnnEngine(path, device="cpu", threads=args.threads)
                session, whole = [], []
                for frame in frames:
                    tensor, _ = engine.preprocess(frame)
                    t0 = time.perf_counter()
                    engine.run(tensor)
                    t1 = time.perf_counter()
                    engine(frame)
                    session.append(t1 - t0)
                    whole.append(time.perf_counter() - t1)
                h, w = tensor.shape[2:]
                print(f"| {name} | {h}x{w} | {proposals} | {1000 * statistics.median(session[1:]):.0f} | "
                      f"{1000 * statistics.median(whole[1:]):.0f} |", flush=True)
                path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
