"""Instance counts from the built-in road model vs CamVid's ground-truth label maps.

Not a test. Both label maps go through the same rule (``--instances``: connected components
of car / pedestrian / bicyclist with the minimum area); the table is
the mean absolute error of the per-image count, per class (see
``rtseg/realtime/instances/evaluate.py`` for what that does and does not measure).

    python benchmarks/instance_counts.py                      # ../shared/data/camvid, val split
    python benchmarks/instance_counts.py --split-touching --min-area 150
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2

from rtseg.realtime.engine import load_model
from rtseg.realtime.instances.evaluate import compare_counts
from rtseg.realtime.instances.records import thing_classes

CAMVID = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid"


def pairs(root: Path, split: str, engine):
    for line in (root / f"{split}.txt").read_text().split("\n"):
        if not line.strip():
            continue
        image_path, label_path = line.split()
        image = cv2.imread(str(root / image_path))
        truth = cv2.imread(str(root / label_path), cv2.IMREAD_GRAYSCALE)
        yield engine(image), truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=CAMVID)
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", default=None, help="default: the built-in road model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-area", type=int, default=None, help="default: 0.04%% of the image")
    parser.add_argument("--split-touching", action="store_true", help="split touching objects (as rtseg's flag)")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    if not (args.data / f"{args.split}.txt").exists():
        raise SystemExit(f"CamVid not found at {args.data} (expected {args.split}.txt)")
    engine = load_model(args.model, device="cpu", threads=args.threads)
    things = thing_classes(engine.info)
    t0 = time.perf_counter()
    errors = compare_counts(pairs(args.data, args.split, engine), things, args.min_area, args.split_touching)
    table = errors.table()
    print(f"{engine.info.name} on CamVid {args.split}, min area {args.min_area or '0.04% of the image'}, "
          f"split touching {'on' if args.split_touching else 'off'} ({time.perf_counter() - t0:.1f} s)")
    print("| class | images | true count (mean) | model count (mean) | MAE | bias | exact |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['images']} | {row['true_mean']:.2f} | {row['predicted_mean']:.2f} | "
              f"{row['mae']:.2f} | {row['bias']:+.2f} | {100 * row['exact']:.0f} % |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
