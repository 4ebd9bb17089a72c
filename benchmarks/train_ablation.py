"""Issue #12 ablation on CamVid: one named row per training choice, each a resumable ``rtseg train`` run.

Every row but ``long`` is the short schedule below with one thing changed; ``long`` is the 300-epoch
train-only recipe (configs/train/camvid-long-train-only.yaml). After training, a row's
``model_best.pth`` is scored by ``rtseg eval`` on the 101 val frames (``eval-val/``), exported by
``rtseg export`` (``model.onnx``, parity-checked on val frames), timed in onnxruntime at
1x3x360x480 fp32 (``onnx-latency.json``), and its per-class logit biases (``rtseg calibrate``) are
scored held out on val, two contiguous halves (``calibration.json``). Re-running a row continues
its training (``--resume``).

    python benchmarks/train_ablation.py --only base ema        # train, evaluate, export these rows
    python benchmarks/train_ablation.py --dry-run               # print the rtseg train commands
    python benchmarks/train_ablation.py --table                 # Markdown table of the finished rows

``distill`` uses the ``lite2`` row's model as its teacher (``--teacher``), so run it after ``lite2``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LONG_RECIPE = REPO / "configs" / "train" / "camvid-long-train-only.yaml"
CAMVID_CLASSES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian",
                  "bicyclist")


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX in /proc/cpuinfo: bf16 autocast is fast there (and slow elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# The short schedule every row shares (rtseg train options; True: a bare flag, False/None: left out).
SHORT = {"arch": "effl0_unet_bilinear", "epochs": 40, "batch_size": 8, "crop": (320, 416), "scale": (0.5, 2.0),
         "ohem": True, "lr": 2e-3, "bf16": cpu_has_bf16(), "val_every": 5}
# row -> (what it changes, its options over SHORT); None: the long recipe file instead of SHORT
ROWS: dict[str, tuple[str, dict | None]] = {
    "base": ("short schedule: 40 epochs, crop 320x416, scale 0.5-2, OHEM", {}),
    "no-scale-aug": ("no random scale (1-1)", {"scale": (1.0, 1.0)}),
    "ema": ("EMA of the weights, 0.999", {"ema": 0.999}),
    "ce": ("plain cross-entropy (no OHEM)", {"ohem": False}),
    "median-weights": ("cross-entropy with median-frequency class weights (no OHEM)",
                       {"ohem": False, "class_weights": "median"}),
    "aux": ("auxiliary heads at strides 8 and 16, weight 0.4", {"aux_weight": 0.4}),
    "stride2": ("U-Net decoder down to stride 2 (thin classes)", {"arch": "effl0_unet_bilinear_s2"}),
    "lite1": ("EfficientNet-Lite1 encoder", {"arch": "effl1_unet_bilinear"}),
    "lite2": ("EfficientNet-Lite2 encoder", {"arch": "effl2_unet_bilinear"}),
    # 0.01: Pix2Pix weights its per-pixel L1 term 100x its GAN term; this keeps that 1:100 ratio
    # to the segmentation loss, so the discriminator shapes the masks without dominating them.
    "adversarial": ("PatchGAN discriminator, LSGAN weight 0.01", {"adversarial": 0.01}),
    "distill": ("distilled from the lite2 row (weight 1, T 1)", {"distill": "TEACHER"}),
    "long": ("300-epoch train-only recipe (camvid-long-train-only.yaml)", None),
    "lraspp": ("LR-ASPP decoder", {"arch": "effl0_lraspp"}),
    "unet-deconv": ("U-Net decoder with transposed-conv upsampling", {"arch": "effl0_unet_deconv"}),
    "scratch": ("no ImageNet initialisation", {"scratch": True}),
    "mbv3-lraspp": ("MobileNetV3-Large LR-ASPP, from scratch", {"arch": "mbv3_lraspp"}),
}


def flags(options: dict) -> list[str]:
    """``{"batch_size": 8, "ohem": True, "crop": (320, 416)}`` -> ``--batch-size 8 --ohem --crop 320 416``."""
    out = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        out.append("--" + key.replace("_", "-"))
        if value is not True:
            out += [str(v) for v in value] if isinstance(value, (tuple, list)) else [str(value)]
    return out


def train_command(name: str, args: argparse.Namespace) -> list[str]:
    """The ``rtseg train`` command of row ``name``."""
    changes = ROWS[name][1]
    cmd = [sys.executable, "-m", "rtseg", "train", "--data", args.data, "--out", str(args.runs_dir / name),
           "--threads", str(args.threads), "--cache", "--no-progress", "--resume"]
    if changes is None:
        return cmd + ["--config", os.path.relpath(LONG_RECIPE)]
    options = {**SHORT, "epochs": args.epochs, **changes}
    if options.get("distill") == "TEACHER":
        options["distill"] = str(args.teacher)
    return cmd + flags(options)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="camvid:../shared/data/camvid")
    p.add_argument("--runs-dir", "--out", type=Path, default=Path("runs/ablation"), help="one folder per row")
    p.add_argument("--only", nargs="+", choices=list(ROWS), metavar="NAME", help=f"rows: {', '.join(ROWS)}")
    p.add_argument("--epochs", type=int, default=SHORT["epochs"], help="epochs of the short schedule (40)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--teacher", type=Path, help="teacher of the distill row (default RUNS_DIR/lite2/model_best.pth)")
    p.add_argument("--dry-run", action="store_true", help="print the rtseg train commands only")
    p.add_argument("--table", action="store_true", help="only print the table of finished rows")
    args = p.parse_args(argv)
    args.teacher = args.teacher or args.runs_dir / "lite2" / "model_best.pth"
    names = args.only or list(ROWS)
    for name in [] if args.table else names:
        cmd = train_command(name, args)
        print("$", shlex.join(cmd), flush=True)
        if args.dry_run:
            continue
        if name == "distill" and not args.teacher.is_file():
            print(f"distill: teacher {args.teacher} not found; run --only lite2 first (or give --teacher)")
            return 2
        subprocess.run(cmd, check=True)
        evaluate_and_time(args.runs_dir / name, args)
    if not args.dry_run:
        print(results_table(args.runs_dir, names))
    return 0


def evaluate_and_time(out: Path, args: argparse.Namespace) -> None:
    """``rtseg eval`` on val, ``rtseg export`` to ``model.onnx`` and its fp32 latency in ``onnx-latency.json``."""
    rtseg = [sys.executable, "-m", "rtseg"]
    best = str(out / "model_best.pth")
    subprocess.run(rtseg + ["eval", "--model", best, "--data", args.data, "--split", "val", "--out",
                            str(out / "eval-val"), "--no-progress", "--threads", str(args.threads)],
                   check=True, stdout=subprocess.DEVNULL)
    kind, _, root = args.data.partition(":")
    frames = ["--frames", str(Path(root) / "val")] if kind == "camvid" else []
    subprocess.run(rtseg + ["export", best, "-o", str(out / "model.onnx"), "--input-size", "360", "480", *frames],
                   check=True)
    import numpy as np

    from rtseg.export.quantize import time_session

    x = np.random.default_rng(0).standard_normal((1, 3, 360, 480)).astype(np.float32)
    ms = time_session(out / "model.onnx", x, threads=args.threads, runs=30, warmup=5)
    (out / "onnx-latency.json").write_text(json.dumps(
        {"ms_per_frame": ms, "threads": args.threads, "input_size": [360, 480], "precision": "fp32"}))
    (out / "calibration.json").write_text(json.dumps(held_out_calibration(out / "model.onnx", args)))


def held_out_calibration(model: Path, args: argparse.Namespace) -> dict:
    """Val mIoU and per-class IoU with per-class logit biases (all classes, and pole only), each fitted
    on one half of val and scored on the other (``rtseg calibrate``'s estimate)."""
    from rtseg.export.class_bias import collect, cross_validate, mean_iou, per_class_iou

    logits, labels, classes = collect(model, args.data, "val", threads=args.threads)
    result = {}
    for name, only in (("all", None), ("pole", [classes.index("pole")] if "pole" in classes else None)):
        if name == "pole" and only is None:
            continue
        cv = cross_validate(logits, labels, len(classes), folds=2, only=only)
        result[name] = {"before": mean_iou(cv.before), "after": mean_iou(cv.after),
                        "per_class_after": dict(zip(classes, per_class_iou(cv.after).tolist()))}
    return result


def results_table(root: Path, names: list[str]) -> str:
    """Markdown table of the rows under ``root`` that have a val evaluation (``eval-val/metrics.json``)."""
    lines = [f"| row | epochs | val mIoU % | {' | '.join(CAMVID_CLASSES)} | train time | ONNX ms "
             "| calibrated, held out: all / pole only |",
             "|---|" + "---|" * (len(CAMVID_CLASSES) + 5)]
    for name in names:
        report = root / name / "eval-val" / "metrics.json"
        if not report.is_file():
            continue
        metrics = json.loads(report.read_text())
        with open(root / name / "metrics.csv", newline="") as f:
            epochs = list(csv.DictReader(f))
        minutes = sum(float(e["epoch_s"]) for e in epochs) / 60
        iou = metrics["per_class_iou"]
        classes = " | ".join("-" if iou.get(c) is None else f"{100 * iou[c]:.1f}" for c in CAMVID_CLASSES)
        latency = root / name / "onnx-latency.json"
        ms = f"{json.loads(latency.read_text())['ms_per_frame']:.1f}" if latency.is_file() else "-"
        calibration = root / name / "calibration.json"
        calibrated = "-"
        if calibration.is_file():
            scores = json.loads(calibration.read_text())
            calibrated = " / ".join(f"{100 * scores[k]['before']:.1f} → {100 * scores[k]['after']:.1f}"
                                    if k in scores else "-" for k in ("all", "pole"))
        lines.append(f"| {name} | {len(epochs)} | {100 * metrics['miou']:.1f} | {classes} | {minutes:.0f} min | {ms} "
                     f"| {calibrated} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
