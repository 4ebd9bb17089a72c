"""``rtseg eval``: per-class IoU, mIoU, pixel accuracy and a confusion-matrix PNG.

Examples:
    rtseg eval --model rtseg/assets/camvid-road.onnx --data camvid:../shared/data/camvid --split val
    rtseg eval --model runs/camvid-road/model_best.pth --data camvid:../shared/data/camvid --out runs/eval
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rtseg import cli_types
from rtseg.data import KINDS
from rtseg.extras import require_extra


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtseg eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help=".onnx file or rtseg training checkpoint (.pth)")
    p.add_argument("--data", required=True, help=f"KIND:PATH, KIND one of {', '.join(KINDS)}")
    p.add_argument("--split", default="val")
    p.add_argument("--out", help="folder for metrics.json, per_class.txt, confusion.png "
                                 "(default: eval-SPLIT beside the model)")
    p.add_argument("--size", type=cli_types.at_least(1, int), nargs=2, metavar=("H", "W"),
                   help="checkpoints only: resize inputs (ONNX models use their own input size)")
    p.add_argument("--threads", type=cli_types.at_least(0, int), help="CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--debug", action="store_true", help="tracebacks and debug logging")
    return p


def run(args: argparse.Namespace) -> int:
    require_extra("train", "rtseg eval", ("torch", "torchvision", "matplotlib"))  # no ImageNet weights needed
    from rtseg.train.evaluation import evaluate_model

    model = Path(args.model)
    out = Path(args.out) if args.out else model.parent / f"eval-{args.split}-{model.stem}"
    cm, classes = evaluate_model(model, args.data, args.split, out=out, size=tuple(args.size) if args.size else None,
                        threads=args.threads, progress=not args.no_progress)
    print(cm.table(classes))
    print(f"report: {out}")
    return 0
