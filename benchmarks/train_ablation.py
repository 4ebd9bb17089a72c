"""Decoder / upsampling / initialisation ablation on CamVid val, same budget per run.

Runs ``rtseg train`` once per configuration (resumable: re-running continues unfinished
runs), evaluates each ``model_best.pth`` on val at 360x480 and prints a Markdown table.

    python benchmarks/train_ablation.py --data camvid:../shared/data/camvid --epochs 30 --out runs/ablation
    python benchmarks/train_ablation.py --dry-run   # list the commands only

CPU cost: about 2 min per epoch per run at --threads 1 (256x256 crops, batch 8), so the
default 5 runs x 30 epochs take about 5 hours on one core.
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="run a subset")
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    rows = []
    for name in args.only or CONFIGS:
        out = Path(args.out) / name
        cmd = [sys.executable, "-m", "rtseg", "train", "--data", args.data, "--epochs", str(args.epochs),
               "--threads", str(args.threads), "--out", str(out), *CONFIGS[name], *COMMON]
        print("$", shlex.join(cmd), flush=True)
        if args.dry_run:
            continue
        subprocess.run(cmd, check=True)
        report = out / "eval-val"
        subprocess.run([sys.executable, "-m", "rtseg", "eval", "--model", str(out / "model_best.pth"),
                        "--data", args.data, "--split", "val", "--out", str(report), "--no-progress",
                        "--threads", str(args.threads)], check=True, stdout=subprocess.DEVNULL)
        metrics = json.loads((report / "metrics.json").read_text())
        rows.append((name, metrics["miou"], metrics["pixel_accuracy"]))
    if rows:
        print(f"\n| run ({args.epochs} epochs) | val mIoU % | pixel acc % |\n|---|---|---|")
        for name, miou, acc in rows:
            print(f"| {name} | {100 * miou:.1f} | {100 * acc:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
