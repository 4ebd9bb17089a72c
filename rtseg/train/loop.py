"""Training loop in the shape of torchvision's references/segmentation/train.py.

Top-level functions in reading order: :func:`get_dataset`, :func:`get_transform`,
:func:`criterion`, :func:`evaluate`, :func:`train_one_epoch`, :func:`main`. The checkpoint is a
plain dict (model, optimizer, scheduler, scaler, epoch, args, ...) that ``--resume`` restores
in full; ``checkpoint.pth`` is rewritten every epoch and ``model_best.pth`` keeps the best
validation mIoU.

Python API:
    >>> from rtseg.train import train
    >>> train(data="camvid:../shared/data/camvid", arch="effl0_unet_bilinear",
    ...       epochs=2, out="runs/try")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rtseg.contract import IMAGENET_MEAN, IMAGENET_STD
from rtseg.data import EvalPreset, SegmentationDataset, TrainPreset, open_dataset
from rtseg.errors import RtsegError
from rtseg.models import build_model
from rtseg.train.losses import OhemCrossEntropy, class_weights
from rtseg.train.metrics import ConfusionMatrix, plot_history

log = logging.getLogger(__name__)

CSV_FIELDS = ("epoch", "lr", "train_loss", "val_loss", "val_miou", "val_pixel_acc", "epoch_s")


def get_dataset(spec: str, split: str, transforms=None, cache: bool = False) -> SegmentationDataset:
    """Open ``spec`` (``KIND:PATH``) for ``split`` with ``transforms``."""
    return open_dataset(spec, split, transforms=transforms, cache=cache)


def get_transform(train: bool, args: argparse.Namespace, ignore_index: int, base_size: int):
    """Training augmentation or evaluation preprocessing."""
    if train:
        return TrainPreset(tuple(args.crop), base_size, tuple(args.scale), ignore_index,
                           hflip=0.5, jitter=args.jitter)
    return EvalPreset(tuple(args.val_size) if args.val_size else None)


def criterion(args: argparse.Namespace, ignore_index: int, weight: torch.Tensor | None) -> nn.Module:
    """Cross-entropy with ignore index, optional class weights, optionally OHEM."""
    if args.ohem:
        return OhemCrossEntropy(ignore_index, weight=weight)
    return nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)


@torch.inference_mode()
def evaluate(model: nn.Module, loader, device: torch.device, num_classes: int,
             loss_fn: nn.Module | None = None, progress: bool = True) -> tuple[ConfusionMatrix, float]:
    """Confusion matrix over ``loader`` and the mean loss (NaN without ``loss_fn``)."""
    model.eval()
    cm = ConfusionMatrix(num_classes)
    total, batches = 0.0, 0
    for image, target in tqdm(loader, desc="val", leave=False, disable=not progress, **_tqdm_kw()):
        image, target = image.to(device), target.to(device)
        logits = model(image)
        if loss_fn is not None:
            total += float(loss_fn(logits.float(), target))
            batches += 1
        cm.update(target, logits.argmax(1))
    return cm, (total / batches if batches else float("nan"))


def train_one_epoch(model: nn.Module, loss_fn: nn.Module, optimizer, scheduler, loader,
                    device: torch.device, epoch: int, scaler=None, max_steps: int | None = None,
                    progress: bool = True, amp_dtype: torch.dtype | None = None, ema=None) -> float:
    """One pass over ``loader``; returns the mean training loss.

    ``amp_dtype``: autocast dtype (float16 on CUDA with ``scaler``, bfloat16 on CPU), None for fp32.
    ``ema``: an ``AveragedModel`` updated after every step.
    """
    model.train()
    total, steps = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress, **_tqdm_kw())
    for image, target in bar:
        image, target = image.to(device, non_blocking=True), target.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(image).float(), target)
        if not torch.isfinite(loss):
            raise RtsegError(f"training diverged at epoch {epoch} (loss {loss.item()}); lower --lr")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        total += loss.item()
        steps += 1
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        if max_steps is not None and steps >= max_steps:
            break
    return total / max(steps, 1)


def main(args: argparse.Namespace) -> dict:
    """Train as configured by ``args`` (see :mod:`rtseg.train.cli`); returns the final summary."""
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train_set = get_dataset(args.data, "train", cache=args.cache)
    val_set = get_dataset(args.val_data or args.data, args.val_split, cache=args.cache) if args.val_every else None
    ignore = train_set.ignore_index
    if val_set is not None and val_set.classes != train_set.classes:
        raise RtsegError(f"validation classes {val_set.classes} differ from training classes {train_set.classes}")
    base_size = args.base_size or min(train_set.load(0)[0].shape[:2])
    train_set.transforms = get_transform(True, args, ignore, base_size)
    num_classes = len(train_set.classes)
    generator = torch.Generator().manual_seed(args.seed)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, drop_last=len(train_set) > args.batch_size,
        num_workers=args.workers, generator=generator, worker_init_fn=_seed_worker,
        persistent_workers=args.workers > 0, pin_memory=device.type == "cuda")
    val_loader = None
    if val_set is not None:
        val_set.transforms = get_transform(False, args, ignore, base_size)
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=1, num_workers=args.workers)

    pretrained = args.arch.startswith("effl0_") and not args.scratch
    model = build_model(args.arch, num_classes, pretrained=pretrained).to(device)
    weight = class_weights(train_set, args.class_weights)
    if weight is not None:
        log.info("class weights: %s", ", ".join(f"{c}={w:.2f}" for c, w in zip(train_set.classes, weight)))
    loss_fn = criterion(args, ignore, weight).to(device)
    optimizer = make_optimizer(model, args)
    steps_per_epoch = min(len(loader), args.max_steps or len(loader))
    scheduler = make_scheduler(optimizer, args, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" and not args.no_amp else None
    cpu_bf16 = args.bf16 and device.type == "cpu"
    amp_dtype = torch.float16 if scaler is not None else (torch.bfloat16 if cpu_bf16 else None)
    ema = make_ema(model, args.ema) if args.ema else None

    start_epoch, best = 1, -1.0
    resume = _resume_path(args.resume, out)
    if resume is not None:
        ckpt = torch.load(resume, map_location="cpu", weights_only=True)
        for key, value in (("arch", args.arch), ("num_classes", num_classes)):
            if ckpt.get(key) != value:
                raise RtsegError(f"--resume {resume}: checkpoint has {key}={ckpt.get(key)!r}, run has {value!r}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ema is not None:
            if not ckpt.get("ema"):
                raise RtsegError(f"--resume {resume}: checkpoint has no EMA weights; resume without --ema")
            ema.load_state_dict(ckpt["ema"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, best = ckpt["epoch"] + 1, ckpt.get("best_miou", -1.0)
        if "rng" in ckpt:
            torch.set_rng_state(ckpt["rng"]["torch"])
            random.setstate(ckpt["rng"]["python"])
            generator.set_state(ckpt["rng"]["loader"])
        log.info("resumed from %s at epoch %d (best val mIoU %.4f)", resume, ckpt["epoch"], best)
    rows = _read_rows(out / "metrics.csv", keep_until=start_epoch - 1)

    log.info("train %s: %d images, %d classes, %s%s on %s, %d steps/epoch, epochs %d..%d",
             args.data, len(train_set), num_classes, args.arch, " (ImageNet init)" if pretrained else "",
             device, steps_per_epoch, start_epoch, args.epochs)
    meta = {"arch": args.arch, "num_classes": num_classes, "classes": list(train_set.classes),
            "ignore_index": ignore, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "pretrained": pretrained}
    progress = not args.no_progress
    for epoch in range(start_epoch, args.epochs + 1):
        t0 = time.perf_counter()
        np.random.seed(args.seed + epoch)
        train_loss = train_one_epoch(model, loss_fn, optimizer, scheduler, loader, device, epoch,
                                     scaler, args.max_steps, progress, amp_dtype, ema)
        scored = ema.module if ema is not None else model
        row = {"epoch": epoch, "lr": f"{optimizer.param_groups[0]['lr']:.6g}",
               "train_loss": f"{train_loss:.5f}", "val_loss": "", "val_miou": "", "val_pixel_acc": ""}
        improved = False
        if val_loader is not None and (epoch % args.val_every == 0 or epoch == args.epochs):
            cm, val_loss = evaluate(scored, val_loader, device, num_classes, loss_fn, progress)
            miou = cm.miou()
            row.update(val_loss=f"{val_loss:.5f}", val_miou=f"{miou:.5f}", val_pixel_acc=f"{cm.pixel_accuracy():.5f}")
            improved = miou > best
            best = max(best, miou)
        row["epoch_s"] = f"{time.perf_counter() - t0:.1f}"
        rows.append(row)
        ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                "ema": ema.state_dict() if ema is not None else None,
                "epoch": epoch, "args": vars(args), "best_miou": best,
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                        "loader": generator.get_state()}, **meta}
        _atomic_save(ckpt, out / "checkpoint.pth")
        if improved or val_loader is None:
            _atomic_save({"model": scored.state_dict(), "epoch": epoch, "val_miou": best,
                          "args": vars(args), **meta}, out / "model_best.pth")
        _write_rows(out / "metrics.csv", rows)
        plot_history(rows, out / "history.png")
        log.info("epoch %d/%d: loss %s, val mIoU %s, pixel acc %s, lr %s, %ss%s", epoch, args.epochs,
                 row["train_loss"], row["val_miou"] or "-", row["val_pixel_acc"] or "-", row["lr"],
                 row["epoch_s"], " (best)" if improved else "")
    return {"out": str(out), "best_miou": best, "epochs": args.epochs, "rows": rows}


# ---------------------------------------------------------------------------- helpers

def make_optimizer(model: nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on BatchNorm and bias parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if args.opt == "sgd":
        return torch.optim.SGD(groups, lr=args.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=args.lr)


def make_scheduler(optimizer, args: argparse.Namespace, steps_per_epoch: int):
    """Per-step linear warm-up then poly (power 0.9) or cosine decay."""
    total = max(1, args.epochs * steps_per_epoch)
    warmup = min(int(args.warmup_epochs * steps_per_epoch), total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / max(1, warmup)
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        if args.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * t))
        return (1 - t) ** 0.9

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_ema(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """Exponential moving average of the weights (and BatchNorm buffers), updated every step."""
    if not 0.0 < decay < 1.0:
        raise RtsegError(f"--ema must be between 0 and 1 (exclusive), got {decay}")
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RtsegError("--device cuda: PyTorch sees no CUDA device")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _resume_path(resume: str | None, out: Path) -> Path | None:
    if not resume:
        return None
    path = out / "checkpoint.pth" if resume == "auto" else Path(resume)
    if not path.is_file():
        if resume == "auto":
            log.info("--resume: no %s yet, starting fresh", path)
            return None
        raise RtsegError(f"--resume: checkpoint {path} not found")
    return path


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _read_rows(path: Path, keep_until: int) -> list[dict]:
    if not path.is_file() or keep_until < 1:
        return []
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["epoch"]) <= keep_until]


def _write_rows(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _tqdm_kw() -> dict:
    """Redraw often on a terminal, rarely in a log file."""
    return {} if sys.stderr.isatty() else {"mininterval": 60.0}
