"""Decoder / upsampling / initialisation ablation on CamVid val, same budget per run.

Runs ``rtseg train`` once per configuration (resumable: re-running continues unfinished
runs), evaluates each ``model_best.pth`` on val at 360x480 and prints a Markdown table.

    python benchmarks/train_ablation.py --data camvid:../shared/data/camvid --out runs/ablation
    python benchmarks/train_ablation.py --dry-run   # list the commands only

CPU cost on the 2-core dev machine (256x256 crops, batch 8, --threads 2): 35-45 s per epoch,
so the 5 runs x 25 epochs take about 1.5 h; ``--table`` reprints the table from finished runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

CONFIGS = {
    "lraspp-imagenet": ["--arch", "effl0_lraspp"],
    "unet-deconv-imagenet": ["--arch", "effl0_unet_deconv"],
    "unet-bilinear-imagenet": ["--arch", "effl0_unet_bilinear"],
    "unet-bilinear-scratch": ["--arch", "effl0_unet_bilinear", "--scratch"],
    "mbv3-lraspp-scratch": ["--arch", "mbv3_lraspp"],
}
COMMON = ["--batch-size", "8", "--crop", "256", "256", "--scale", "0.75", "1.5", "--lr", "2e-3", "--ohem",
          "--val-every", "5", "--cache", "--no-progress", "--resume"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="camvid:../shared/data/camvid")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="run a subset")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--table", action="store_true", help="only print the table of finished runs")
    args = p.parse_args(argv)
    names = args.only or list(CONFIGS)
    for name in [] if args.table else names:
        out = Path(args.out) / name
        cmd = [sys.executable, "-m", "rtseg", "train", "--data", args.data, "--epochs", str(args.epochs),
               "--threads", str(args.threads), "--out", str(out), *CONFIGS[name], *COMMON]
        print("$", shlex.join(cmd), flush=True)
        if args.dry_run:
            continue
        subprocess.run(cmd, check=True)
        subprocess.run([sys.executable, "-m", "rtseg", "eval", "--model", str(out / "model_best.pth"),
                        "--data", args.data, "--split", "val", "--out", str(out / "eval-val"), "--no-progress",
                        "--threads", str(args.threads)], check=True, stdout=subprocess.DEVNULL)
    if not args.dry_run:
        print(results_table(Path(args.out), names))
    return 0


def results_table(root: Path, names: list[str]) -> str:
    """Markdown table of the runs under ``root`` that have a val evaluation."""
    lines = ["| run | epochs | best epoch | val mIoU % | pixel acc % | pole | sign | pedestrian | train time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        report = root / name / "eval-val" / "metrics.json"
        if not report.is_file():
            continue
        metrics = json.loads(report.read_text())
        with open(root / name / "metrics.csv", newline="") as f:
            epochs = list(csv.DictReader(f))
        scored = [e for e in epochs if e["val_miou"]]
        best = max(scored, key=lambda e: float(e["val_miou"]))["epoch"] if scored else "-"
        minutes = sum(float(e["epoch_s"]) for e in epochs) / 60
        iou = metrics["per_class_iou"]
        lines.append(f"| {name} | {len(epochs)} | {best} | {100 * metrics['miou']:.1f} | "
                     f"{100 * metrics['pixel_accuracy']:.1f} | {100 * iou['pole']:.0f} | {100 * iou['sign']:.0f} | "
                     f"{100 * iou['pedestrian']:.0f} | {minutes:.0f} min |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
