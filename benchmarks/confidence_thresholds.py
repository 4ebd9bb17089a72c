"""What ``--min-confidence P`` removes on labelled data: wrong pixels hidden vs right pixels lost.

Not a test. Runs a model with a ``confidence`` output through the live engine (the same
pre-processing, resize and confidence map the app uses) on every frame of a split, and
prints a markdown table per threshold, over the labelled (non-ignored) pixels:

- unknown: share of pixels left unpainted;
- wrong removed: share of the wrongly labelled pixels that fall below ``P``;
- right lost: share of the correctly labelled pixels that fall below ``P``;
- accuracy painted: pixel accuracy of what is still painted;
- wrong per right: wrong pixels removed per right pixel lost;
- band wrong: share of wrong pixels among those between the previous threshold and this one
  (the first row: below it); where it drops under 50 %, raising ``P`` further hides more
  right pixels than wrong ones.

    python benchmarks/confidence_thresholds.py --data camvid:../shared/data/camvid --split val
    python benchmarks/confidence_thresholds.py --model my.onnx --thresholds 0.3 0.5 0.7 0.9
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from rtseg.data import open_dataset
from rtseg.realtime.engine import OnnxEngine, resolve_model_path

CLASS_DETAIL = ("pole", "sign", "pedestrian", "bicyclist")


def measure(model: str, data: str, split: str, thresholds: list[float], threads: int) -> dict:
    """Per-threshold counts of unknown / wrong / right pixels, and per-class wrong-removed shares."""
    engine = OnnxEngine(resolve_model_path(model), device="cpu", threads=threads)
    if engine.confidence_name is None:
        raise SystemExit(f"{model}: no 'confidence' output (re-export it with rtseg export)")
    dataset = open_dataset(data, split)
    steps = np.array([int(np.ceil(round(p * 255, 6))) for p in thresholds])
    wrong_hist = np.zeros(256, np.int64)  # confidence histogram of wrong pixels
    right_hist = np.zeros(256, np.int64)
    by_class = {name: np.zeros((2, 256), np.int64) for name in dataset.classes}  # [wrong, right] per true class
    for index in range(len(dataset)):
        image, target = dataset.load(index)
        bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
        frame_labels, confidence = run(engine, bgr)
        valid = target != dataset.ignore_index
        right = (frame_labels == target) & valid
        wrong = (frame_labels != target) & valid
        right_hist += np.bincount(confidence[right], minlength=256)
        wrong_hist += np.bincount(confidence[wrong], minlength=256)
        for label, name in enumerate(dataset.classes):
            of_class = target == label
            by_class[name][0] += np.bincount(confidence[wrong & of_class], minlength=256)
            by_class[name][1] += np.bincount(confidence[right & of_class], minlength=256)
    rows = []
    previous = 0
    for p, step in zip(thresholds, steps):
        band_wrong, band_right = wrong_hist[previous:step].sum(), right_hist[previous:step].sum()
        previous = step
        wrong_below, right_below = wrong_hist[:step].sum(), right_hist[:step].sum()
        wrong_total, right_total = wrong_hist.sum(), right_hist.sum()
        kept_right, kept_wrong = right_total - right_below, wrong_total - wrong_below
        rows.append({
            "p": p,
            "unknown": (wrong_below + right_below) / (wrong_total + right_total),
            "wrong_removed": wrong_below / wrong_total,
            "right_lost": right_below / right_total,
            "accuracy": kept_right / max(1, kept_right + kept_wrong),
            "ratio": wrong_below / max(1, right_below),
            "band": band_wrong / max(1, band_wrong + band_right),
            "classes": {name: by_class[name][0][:step].sum() / max(1, by_class[name][0].sum())
                        for name in CLASS_DETAIL if name in by_class},
        })
    accuracy = right_hist.sum() / (right_hist.sum() + wrong_hist.sum())
    return {"frames": len(dataset), "accuracy": accuracy, "rows": rows, "model": engine.info.name}


def run(engine: OnnxEngine, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and confidence at the frame's size, as the live engine makes them."""
    tensor = engine.preprocess(bgr)
    output, confidence = engine.run_with_confidence(tensor)
    size = bgr.shape[:2]
    return engine.postprocess(output, size), engine.postprocess_confidence(confidence, size)


def table(result: dict) -> str:
    lines = [f"{result['model']}: {result['frames']} frames, pixel accuracy {100 * result['accuracy']:.2f} % "
             "with every pixel painted", "",
             "| P | unknown % | wrong removed % | right lost % | accuracy painted % | wrong per right | band wrong % | "
             + " | ".join(f"{c} wrong removed %" for c in CLASS_DETAIL) + " |",
             "|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(CLASS_DETAIL)]
    for r in result["rows"]:
        classes = " | ".join(f"{100 * r['classes'].get(c, float('nan')):.1f}" for c in CLASS_DETAIL)
        lines.append(f"| {r['p']:g} | {100 * r['unknown']:.2f} | {100 * r['wrong_removed']:.1f} | "
                     f"{100 * r['right_lost']:.2f} | {100 * r['accuracy']:.2f} | {r['ratio']:.2f} | "
                     f"{100 * r['band']:.0f} | {classes} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="camvid-road")
    parser.add_argument("--data", default="camvid:../shared/data/camvid")
    parser.add_argument("--split", default="val")
    parser.add_argument("--thresholds", type=float, nargs="+",
                        default=[0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(table(measure(args.model, args.data, args.split, args.thresholds, args.threads)))


if __name__ == "__main__":
    main()
