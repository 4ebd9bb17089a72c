"""``rtseg train``: train a segmentation model.

Examples:
    rtseg train --config configs/train/camvid-road.yaml --data camvid:../shared/data/camvid
    rtseg train --data camvid:../shared/data/camvid --arch effl0_unet_bilinear --epochs 120 --out runs/camvid-road
    rtseg train --data camvid:../shared/data/camvid --out runs/camvid-road --epochs 120 --resume
    rtseg train --data masks:my_streets --init-from camvid-road --epochs 30 --lr 5e-4 --out runs/my-streets
    rtseg train --data masks:my_data --arch effl0_lraspp --epochs 50 --crop 320 320 --out runs/mine
    rtseg train --data labelme:annotated/ --epochs 30 --out runs/labelme
    rtseg train --data camvid:../shared/data/camvid --arch effl0_unet_bilinear --aux-weight 0.4 \
        --distill runs/lite2/model_best.pth --out runs/student
    rtseg train --task instance --data labelme:annotated/ --epochs 20 --min-size 512 --out runs/parts
    rtseg train --data coco:annotations/instances_train.json \
        --val-data coco:annotations/instances_val.json --out runs/coco
"""

from __future__ import annotations

import argparse

from rtseg import cli_types
from rtseg.data import KINDS
from rtseg.errors import RtsegError
from rtseg.extras import require_extra
from rtseg.models import ARCHITECTURES
from rtseg.models.instance import INSTANCE_ARCHITECTURES
from rtseg.yamlfile import load_yaml


class ConfigParser(argparse.ArgumentParser):
    """An argument parser whose ``--config FILE.yaml`` sets defaults that other flags override."""

    def parse_known_args(self, args=None, namespace=None):
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--config")
        known, _ = pre.parse_known_args(args)
        if known.config:
            self.set_defaults(**read_config(known.config, self))
        return super().parse_known_args(args, namespace)


def read_config(path: str, parser: argparse.ArgumentParser) -> dict:
    """A training recipe file: a YAML mapping of ``rtseg train`` options (``batch_size: 8``
    or ``batch-size: 8``), checked against the parser's options."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise RtsegError(f"{path}: expected a mapping of rtseg train options, got {type(data).__name__}")
    known = {a.dest for a in parser._actions}
    config = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(config) - known - {"config"})
    if unknown:
        raise RtsegError(f"{path}: unknown rtseg train options {', '.join(unknown)}")
    return config


def build_parser() -> argparse.ArgumentParser:
    p = ConfigParser(prog="rtseg train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE.yaml",
                   help="a recipe file (e.g. configs/train/camvid-road.yaml); flags given here override it")
    p.add_argument("--data", help=f"KIND:PATH, KIND one of {', '.join(KINDS)} (required)")
    p.add_argument("--val-data", help="validation data spec (default: --data with --val-split)")
    p.add_argument("--train-split", default="train",
                   help="split(s) to train on, joined with + (default: train; train+val for a final model)")
    p.add_argument("--val-split", default="val", help="split name for validation (default: val)")
    p.add_argument("--task", choices=("semantic", "instance"), default="semantic",
                   help="semantic: a label-map model; instance: fine-tune a Mask R-CNN on labelme/COCO polygons, "
                        "evaluated by mask AP on held-out images")
    p.add_argument("--arch", default="effl0_unet_bilinear", choices=ARCHITECTURES + INSTANCE_ARCHITECTURES,
                   help=f"(default effl0_unet_bilinear; {INSTANCE_ARCHITECTURES[1]} with --task instance)")
    p.add_argument("--scratch", action="store_true", help="random init instead of ImageNet weights")
    p.add_argument("--init-from", metavar="MODEL|PATH",
                   help="fine-tune from trained weights: a built-in model (camvid-road), an rtseg .onnx file or a "
                        ".pth checkpoint; classes are matched by name, new ones start from scratch")
    p.add_argument("--epochs", type=cli_types.at_least(1, int), default=100)
    p.add_argument("--batch-size", type=cli_types.at_least(1, int), default=8)
    p.add_argument("--crop", type=cli_types.at_least(1, int), nargs=2, default=(256, 256), metavar=("H", "W"))
    p.add_argument("--base-size", type=cli_types.at_least(1, int),
                   help="shorter side at scale 1.0 (default: first image's)")
    p.add_argument("--scale", type=cli_types.above(0.0), nargs=2, default=(0.75, 1.5), metavar=("MIN", "MAX"))
    p.add_argument("--jitter", type=cli_types.between(0.0, 1.0), default=0.3, help="colour jitter strength (0: off)")
    p.add_argument("--opt", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--lr", type=cli_types.above(0.0), default=None,
                   help="learning rate (2e-3; 1e-4 with --task instance)")
    p.add_argument("--weight-decay", type=cli_types.at_least(0.0), default=0.01)
    p.add_argument("--schedule", choices=("poly", "cosine"), default="poly")
    p.add_argument("--warmup-epochs", type=cli_types.at_least(0.0), default=1.0)
    p.add_argument("--class-weights", choices=("none", "enet", "median"), default="none")
    p.add_argument("--ohem", action="store_true", help="online hard example mining (p < 0.7)")
    p.add_argument("--val-every", type=cli_types.at_least(0, int), default=1, help="validate every N epochs (0: never)")
    p.add_argument("--val-size", type=cli_types.at_least(1, int), nargs=2, metavar=("H", "W"), help="resize val images")
    p.add_argument("--out", help="run folder: checkpoint.pth, model_best.pth, metrics.csv, history.png (required)")
    p.add_argument("--resume", nargs="?", const="auto",
                   help="resume from PATH, or from OUT/checkpoint.pth when given alone")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast on the CPU (fast on AVX512-BF16/AMX)")
    p.add_argument("--ema", type=cli_types.between(0.0, 0.99999), default=0.0, metavar="DECAY",
                   help="keep an EMA of the weights (e.g. 0.999); validation and model_best use it")
    extra = p.add_argument_group("training-only loss terms (never part of the exported model)")
    extra.add_argument("--aux-weight", type=cli_types.at_least(0.0), default=0.0, metavar="W",
                       help="auxiliary 1x1-conv heads on the stride-8 and stride-16 features, each loss times W "
                            "(0: off; e.g. 0.4)")
    extra.add_argument("--adversarial", type=cli_types.at_least(0.0), default=0.0, metavar="W",
                       help="Pix2Pix-style PatchGAN discriminator on (image, class probabilities), LSGAN loss "
                            "times W (0: off; e.g. 0.01)")
    extra.add_argument("--adv-lr", type=cli_types.above(0.0), metavar="LR",
                       help="the discriminator's AdamW learning rate (default: --lr)")
    extra.add_argument("--distill", metavar="TEACHER.pth",
                       help="distil from a trained rtseg checkpoint of any architecture with the same classes")
    extra.add_argument("--distill-weight", type=cli_types.at_least(0.0), metavar="W",
                       help="weight of the distillation term (default 1.0 with --distill)")
    extra.add_argument("--distill-temp", type=cli_types.above(0.0), default=1.0, metavar="T",
                       help="softmax temperature of the distillation term; the term is scaled by T^2 (default 1)")
    p.add_argument("--threads", type=cli_types.at_least(0, int), default=0, help="torch CPU threads (0: default)")
    p.add_argument("--workers", type=cli_types.at_least(0, int), default=0, help="data-loader processes")
    p.add_argument("--cache", action="store_true", help="keep decoded frames in memory")
    p.add_argument("--max-steps", type=cli_types.at_least(1, int), help="cap steps per epoch (quick tries)")
    p.add_argument("--seed", type=cli_types.at_least(0, int), default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    inst = p.add_argument_group("--task instance")
    inst.add_argument("--holdout", type=cli_types.between(0.0, 0.9), default=0.25,
                      help="share of the images held out for mask AP when there is no --val-data (0.25)")
    inst.add_argument("--min-size", type=cli_types.at_least(32, int), default=800,
                      help="images resized so their shorter side is this (800)")
    inst.add_argument("--max-size", type=cli_types.at_least(32, int), default=1333,
                      help="... and their longer side at most this (1333)")
    p.add_argument("--debug", action="store_true", help="tracebacks and debug logging")
    return p


def run(args: argparse.Namespace) -> int:
    missing = [flag for flag, value in (("--data", args.data), ("--out", args.out)) if not value]
    if missing:
        raise RtsegError(f"rtseg train needs {' and '.join(missing)} (as flags or in --config)")
    if args.init_from and args.scratch:
        raise RtsegError("--init-from and --scratch exclude each other")
    if args.distill_weight is not None and not args.distill:
        raise RtsegError("--distill-weight needs --distill TEACHER.pth")
    if args.adv_lr is not None and not args.adversarial:
        raise RtsegError("--adv-lr needs --adversarial W")
    require_extra("train", "rtseg train")
    if args.task == "instance":
        from rtseg.train import instance

        instance.check_args(args)
        summary = instance.main(args)
        best = summary["best_mask_ap"]
        result = f"best held-out mask AP {100 * best:.1f}" if best >= 0 else "no evaluation run"
        print(f"{result}; outputs in {summary['out']} (rtseg export {summary['out']}/model_best.pth)")
        return 0
    joined = args.train_split.split("+")
    if len(joined) > 1 and args.val_every and not args.val_data and args.val_split in joined:
        raise RtsegError(f"--train-split {args.train_split} trains on the {args.val_split} split, so validating on "
                         "it would score training frames: add --val-every 0 (the last epoch is the model) or "
                         "give --val-data")
    if args.arch in INSTANCE_ARCHITECTURES:
        raise RtsegError(f"--arch {args.arch} is an instance model: add --task instance")
    if args.lr is None:
        args.lr = 2e-3
    from rtseg.train.loop import main

    summary = main(args)
    best = summary["best_miou"]
    result = f"best val mIoU {100 * best:.2f} %" if best >= 0 else "no validation run"
    print(f"{result}; outputs in {summary['out']}")
    return 0
