"""``rtseg train --task instance``: fine-tune a Mask R-CNN on labelme or COCO polygons.

Top-level functions in reading order: data, model, one epoch, evaluation (mask AP with
pycocotools on the held-out images), main. The run folder gets ``model_best.pth`` (the
weights with the best mask AP, plus what export needs: task, arch, classes, sizes),
``metrics.csv`` and ``metrics.json``; ``rtseg export OUT/model_best.pth`` turns it into an
instance ONNX model for the live pipeline.

Example:
    rtseg train --task instance --data labelme:annotated/ --epochs 30 --out runs/parts \
        --init-from maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth --arch maskrcnn_resnet50_fpn_v2
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from rtseg.checkpoint import read_checkpoint, state_dict_of, write_checkpoint
from rtseg.data.instances import InstanceDataset, collate, read_instance_data, split_holdout
from rtseg.errors import MissingExtraError, RtsegError
from rtseg.models.instance import (
    INSTANCE_ARCHITECTURES,
    build_instance_model,
    calibrate_random_init,
    load_instance_weights,
)

log = logging.getLogger(__name__)

DEFAULT_ARCH = "maskrcnn_mobilenet_v3_large_fpn"
DEFAULT_LR = 1e-4  # AdamW, fine-tuning


def get_data(args: argparse.Namespace) -> tuple[dict, dict, list[str]]:
    """(train COCO document, held-out document, class names with the background first)."""
    doc = read_instance_data(args.data, "train")
    if args.val_data:
        train, held = doc, read_instance_data(args.val_data, args.val_split)
        if [c["name"] for c in held["categories"]] != [c["name"] for c in doc["categories"]]:
            raise RtsegError("--val-data has other categories than --data")
    else:
        train, held = split_holdout(doc, args.holdout, args.seed)
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    if [c["id"] for c in cats] != list(range(1, len(cats) + 1)):  # torchvision needs labels 1..N
        remap = {c["id"]: i + 1 for i, c in enumerate(cats)}
        for part in (train, held):
            part["annotations"] = [dict(a, category_id=remap[a["category_id"]]) for a in part["annotations"]]
            part["categories"] = [dict(c, id=remap[c["id"]]) for c in cats]
    return train, held, ["__background__", *[str(c["name"]) for c in cats]]


def get_model(args: argparse.Namespace, num_classes: int, sample: torch.Tensor | None = None) -> torch.nn.Module:
    """The architecture, with ``--init-from`` weights (a local file) where their tensors fit; without
    them, batch-norm statistics from ``sample`` (an untrained network's activations vanish otherwise)."""
    # Fewer sampled regions than torchvision's COCO recipe (512 per image, 2000 proposals): a few
    # objects per image need fewer, and the mask head's cost grows with the positive regions.
    model = build_instance_model(args.arch, num_classes, min_size=args.min_size, max_size=args.max_size,
                                 box_batch_size_per_image=128, rpn_post_nms_top_n_train=1000)
    if args.init_from:
        source = Path(args.init_from)
        missing = load_instance_weights(model, state_dict_of(read_checkpoint(source), source), str(source))
        log.info("initialised from %s; %d tensors start from scratch (e.g. %s)", source.name, len(missing),
                 ", ".join(missing[:3]) or "-")
    elif sample is not None:
        log.warning("no --init-from weights: training %s from scratch (fine-tuning COCO weights needs far "
                    "fewer images and epochs)", args.arch)
        calibrate_random_init(model, sample)
    return model


def train_one_epoch(model, optimizer, loader, device, max_steps: int | None = None) -> float:
    """One pass over ``loader``; returns the mean total loss. Batch-norm statistics stay as they
    are (batches of one or two images would make them noise)."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    losses = []
    for step, (images, targets) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        images = [i.to(device) for i in images]
        targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
        loss = sum(model(images, targets).values())
        value = loss.item()
        if not math.isfinite(value):
            raise RtsegError(f"training diverged (loss {value}): lower --lr")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(value)
    return float(np.mean(losses)) if losses else float("nan")


@torch.no_grad()
def evaluate(model, doc: dict, device, score_threshold: float = 0.05) -> dict[str, float]:
    """Mask and box AP of ``model`` on the images of ``doc`` (pycocotools COCOeval).

    Returns ``{"mask_ap", "mask_ap50", "box_ap", "box_ap50", "images", "objects"}``; AP in 0..1,
    -1 where COCOeval has nothing to measure.
    """
    try:
        from pycocotools import mask as mask_utils
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingExtraError("rtseg train --task instance needs pycocotools for mask AP, not installed: "
                                "pip install 'rtseg[train]'") from None
    model.eval()
    dataset = InstanceDataset(doc)
    results = []
    for index in range(len(dataset)):
        image, target = dataset[index]
        out = model([image.to(device)])[0]
        keep = out["scores"] >= score_threshold
        masks = (out["masks"][keep, 0] > 0.5).cpu().numpy().astype(np.uint8)
        for box, label, score, mask in zip(out["boxes"][keep].cpu().numpy(), out["labels"][keep].cpu().numpy(),
                                           out["scores"][keep].cpu().numpy(), masks):
            rle = mask_utils.encode(np.asfortranarray(mask))
            rle["counts"] = rle["counts"].decode("ascii")
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append({"image_id": target["image_id"], "category_id": int(label), "score": float(score),
                            "segmentation": rle, "bbox": [x0, y0, x1 - x0, y1 - y0]})
    gt = COCO()
    gt.dataset = {"images": doc["images"], "annotations": doc["annotations"], "categories": doc["categories"]}
    with _quiet():
        gt.createIndex()
    metrics = {"images": len(doc["images"]), "objects": len(doc["annotations"])}
    for kind in ("segm", "bbox"):
        name = "mask" if kind == "segm" else "box"
        if not results:
            metrics[f"{name}_ap"] = metrics[f"{name}_ap50"] = 0.0
            continue
        with _quiet():
            evaluator = COCOeval(gt, gt.loadRes(results), kind)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        metrics[f"{name}_ap"], metrics[f"{name}_ap50"] = float(evaluator.stats[0]), float(evaluator.stats[1])
    return metrics


def main(args: argparse.Namespace) -> dict:
    """Train, evaluate every ``--val-every`` epochs, keep the best mask AP; returns a summary."""
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and device.type != "cuda":
        raise RtsegError("--device cuda: PyTorch sees no usable CUDA device")
    train_doc, held_doc, classes = get_data(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = InstanceDataset(train_doc, flip=True)
    model = get_model(args, len(classes), dataset[0][0]).to(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size,
                                         shuffle=True, collate_fn=collate, num_workers=args.workers,
                                         generator=torch.Generator().manual_seed(args.seed))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = (torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
                 if args.opt == "sgd" else torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay))
    log.info("training %s on %d images (%d objects), holding out %d images (%d objects), %d classes, on %s",
             args.arch, len(train_doc["images"]), len(train_doc["annotations"]), len(held_doc["images"]),
             len(held_doc["annotations"]), len(classes) - 1, device)
    history, best = [], -1.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        loss = train_one_epoch(model, optimizer, loader, device, args.max_steps)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch, "loss": round(loss, 4), "train_s": round(seconds, 2)}
        if args.val_every and (epoch % args.val_every == 0 or epoch == args.epochs):
            t1 = time.perf_counter()
            row.update({k: round(v, 4) if isinstance(v, float) else v
                        for k, v in evaluate(model, held_doc, device).items()})
            row["eval_s"] = round(time.perf_counter() - t1, 2)
            if row["mask_ap"] > best:
                best = row["mask_ap"]
                write_checkpoint(_checkpoint(model, args, classes, epoch, row), out / "model_best.pth")
        history.append(row)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v}" for k, v in row.items() if k != "epoch"))
    write_checkpoint(_checkpoint(model, args, classes, args.epochs, history[-1]), out / "last.pth")
    _write_metrics(out, history)
    return {"best_mask_ap": best, "out": str(out), "history": history}


def _checkpoint(model, args: argparse.Namespace, classes: list[str], epoch: int, metrics: dict) -> dict:
    return {"task": "instance", "arch": args.arch, "num_classes": len(classes), "classes": classes,
            "min_size": args.min_size, "max_size": args.max_size, "model": model.state_dict(), "epoch": epoch,
            "metrics": metrics, "args": {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float))}}


def _write_metrics(out: Path, history: list[dict]) -> None:
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    (out / "metrics.json").write_text(json.dumps(history, indent=1))


class _quiet:
    """COCOeval prints its tables; keep them in the debug log instead."""

    def __enter__(self):
        import contextlib
        import io

        self._buffer = io.StringIO()
        self._redirect = contextlib.redirect_stdout(self._buffer)
        self._redirect.__enter__()

    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)
        log.debug("%s", self._buffer.getvalue())


def check_args(args: argparse.Namespace) -> None:
    """Fill the instance defaults (arch, lr) and refuse semantic-only settings."""
    if args.arch not in INSTANCE_ARCHITECTURES:
        if args.arch != "effl0_unet_bilinear":  # the semantic default: replaced silently
            raise RtsegError(f"--task instance needs --arch {' or '.join(INSTANCE_ARCHITECTURES)}, got {args.arch}")
        args.arch = DEFAULT_ARCH
    if args.lr is None:
        args.lr = DEFAULT_LR
    if args.resume:
        raise RtsegError("--resume is not supported with --task instance yet")
    used = [flag for flag, value in (("--aux-weight", getattr(args, "aux_weight", 0)),
                                     ("--adversarial", getattr(args, "adversarial", 0)),
                                     ("--distill", getattr(args, "distill", None))) if value]
    if used:
        raise RtsegError(f"{', '.join(used)}: semantic segmentation only, not with --task instance")
