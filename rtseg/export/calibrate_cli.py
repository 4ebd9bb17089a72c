"""``rtseg calibrate``: per-class logit biases chosen on labelled frames, folded into a copy of the model.

A model trained on imbalanced pixels under-predicts its rare classes. This picks one bias per
class (added to its logits before the argmax) that maximises mIoU on DATA/SPLIT, reports the
per-class IoU before and after, estimated on frames the search did not see (--folds contiguous
blocks), and with --output writes the model with the biases fitted on all the frames. The
calibrated model runs exactly as fast as the original.

Examples:
    rtseg calibrate --model camvid-road --data camvid:../shared/data/camvid --split val
    rtseg calibrate --model runs/a/model.onnx --data masks:my_streets --split val -o runs/a/calibrated.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rtseg import cli_types
from rtseg.data import KINDS
from rtseg.errors import ModelError, RtsegError
from rtseg.extras import require_extra


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtseg calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="built-in model name or rtseg .onnx file")
    p.add_argument("--data", required=True, help=f"KIND:PATH, KIND one of {', '.join(KINDS)}")
    p.add_argument("--split", default="val")
    p.add_argument("-o", "--output", type=Path, help="write the calibrated model here (default: only report)")
    p.add_argument("--classes", help="comma-separated class names whose bias is searched (default: all)")
    p.add_argument("--folds", type=cli_types.at_least(2, int), default=2,
                   help="contiguous blocks of frames for the held-out estimate (default 2)")
    p.add_argument("--max-pixels", type=cli_types.at_least(1, int), default=32768,
                   help="labelled pixels drawn per frame (default 32768)")
    p.add_argument("--threads", type=cli_types.at_least(0, int), help="CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--debug", action="store_true", help="tracebacks and debug logging")
    return p


def run(args: argparse.Namespace) -> int:
    """Collect logits, cross-validate, fit on all frames, report, and write the model if asked."""
    require_extra("train", "rtseg calibrate", ("torch", "torchvision", "onnx"))
    from rtseg.export.builder import builtin_onnx
    from rtseg.export.class_bias import collect, confusion, cross_validate, fit_biases, fold_biases

    model = builtin_onnx(args.model) or Path(args.model)
    if not Path(model).is_file():
        raise ModelError(f"model not found: {args.model} (a built-in name or an .onnx file)")
    logits, labels, classes = collect(model, args.data, args.split, max_pixels=args.max_pixels,
                                      threads=args.threads, progress=not args.no_progress)
    n = len(classes)
    only = class_indices(args.classes, classes) if args.classes else None
    folds = min(args.folds, len(logits))
    held_out = cross_validate(logits, labels, n, folds=folds, only=only) if folds >= 2 else None
    all_logits, all_labels = np.concatenate(logits), np.concatenate(labels)
    biases = fit_biases(all_logits, all_labels, n, only=only)
    fitted = confusion(all_labels, (all_logits + biases).argmax(1), n)
    original = confusion(all_labels, all_logits.argmax(1), n)
    print(report(classes, biases, original, fitted, held_out, len(logits), folds))
    if args.output:
        how = fold_biases(model, args.output, biases)
        print(f"wrote {args.output}: biases {how}")
    return 0


def class_indices(names: str, classes: tuple[str, ...]) -> list[int]:
    """``"pole,sign"`` -> their indices in ``classes``; one line naming an unknown one."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in classes]
    if unknown or not wanted:
        raise RtsegError(f"--classes: {', '.join(unknown) or names!r} not among the model's classes "
                         f"({', '.join(classes)})")
    return [classes.index(name) for name in wanted]


def report(classes, biases, original, fitted, held_out, frames: int, folds: int) -> str:
    """Per-class IoU table: on all frames (biases fitted on them) and held out (fitted on the other folds)."""
    from rtseg.export.class_bias import mean_iou, per_class_iou

    columns = [("all frames, before", original), ("all frames, after", fitted)]
    if held_out is not None:
        columns += [("held out, before", held_out.before), ("held out, after", held_out.after)]
    lines = [f"| class | bias | {' | '.join(name for name, _ in columns)} |",
             "|---|---:|" + "---:|" * len(columns)]
    ious = [per_class_iou(matrix) for _, matrix in columns]
    for c, name in enumerate(classes):
        cells = " | ".join("-" if np.isnan(iou[c]) else f"{100 * iou[c]:.1f}" for iou in ious)
        lines.append(f"| {name} | {biases[c] + 0.0:+.1f} | {cells} |")
    lines.append(f"| **mIoU** | | {' | '.join(f'**{100 * mean_iou(m):.2f}**' for _, m in columns)} |")
    note = (f"{frames} frames; held out: biases fitted on the other {folds - 1} of {folds} contiguous blocks, "
            "scored on the block left out (the estimate to trust); 'all frames, after' is fitted and scored on "
            "the same frames") if held_out is not None else f"{frames} frame: no held-out estimate"
    return "\n".join(lines) + "\n" + note
