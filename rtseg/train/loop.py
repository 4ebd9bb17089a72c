"""Training loop in the shape of torchvision's references/segmentation/train.py.

Top-level functions in reading order: :func:`get_dataset`, :func:`get_transform`,
:func:`criterion`, :func:`evaluate`, :func:`train_one_epoch`, :func:`main`, and the steps of
``main``: :func:`setup`, :func:`resume`, :func:`run_epoch`, :func:`save_checkpoints`.
``checkpoint.pth`` is rewritten every epoch and ``--resume`` restores it in full;
``model_best.pth`` keeps the best validation mIoU. Their keys:
:class:`rtseg.checkpoint.TrainCheckpoint` and :class:`rtseg.checkpoint.BestCheckpoint`.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rtseg.checkpoint import BestCheckpoint, ModelMeta, TrainCheckpoint, read_training_checkpoint, write_checkpoint
from rtseg.contract import IMAGENET_MEAN, IMAGENET_STD
from rtseg.data import EvalPreset, SegmentationDataset, TrainPreset, open_dataset
from rtseg.errors import RtsegError
from rtseg.models import build_model, efficientnet_lite_variant
from rtseg.train.extra_losses import (
    Adversarial,
    AuxHeads,
    Distiller,
    ExtraLosses,
    PatchDiscriminator,
    load_teacher,
)
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
                    progress: bool = True, amp_dtype: torch.dtype | None = None, ema=None,
                    extra: ExtraLosses | None = None) -> float:
    """One pass over ``loader``; returns the mean training loss (with the extra terms, if any).

    ``amp_dtype``: autocast dtype (float16 on CUDA with ``scaler``, bfloat16 on CPU), None for fp32.
    ``ema``: an ``AveragedModel`` updated after every step.
    ``extra``: auxiliary heads, adversarial and distillation terms (:mod:`rtseg.train.extra_losses`).
    """
    model.train()
    total, steps = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress, **_tqdm_kw())
    for image, target in bar:
        image, target = image.to(device, non_blocking=True), target.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(image)
            loss = loss_fn(logits.float(), target)
            if extra:
                loss = loss + extra.generator_terms(image, logits, target, loss_fn)
        if not torch.isfinite(loss):
            raise RtsegError(f"training diverged at epoch {epoch} (loss {loss.item()}); lower --lr")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
        else:
            loss.backward()
            optimizer.step()
        if extra:
            extra.after_step(image, logits, target, amp_dtype, scaler)
        if scaler is not None:
            scaler.update()  # once per iteration, after every optimiser's step
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        total += loss.item()
        steps += 1
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        if max_steps is not None and steps >= max_steps:
            break
    return total / max(steps, 1)


@dataclass
class Run:
    """One training run: what :func:`setup` builds and the later steps use and update."""

    args: argparse.Namespace
    out: Path
    device: torch.device
    train_set: SegmentationDataset
    loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader | None
    generator: torch.Generator  # the loader's shuffling stream, saved for --resume
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None  # CUDA float16 autocast only
    amp_dtype: torch.dtype | None  # float16 (CUDA), bfloat16 (--bf16 on the CPU) or None
    ema: torch.optim.swa_utils.AveragedModel | None
    extra: ExtraLosses  # training-only terms (aux heads, discriminator, teacher); empty by default
    meta: ModelMeta
    steps_per_epoch: int
    start_epoch: int = 1
    best: float = -1.0  # best validation mIoU so far; -1 before the first validation

    @property
    def scored(self) -> nn.Module:
        """The weights that validation scores and ``model_best.pth`` keeps: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model


def main(args: argparse.Namespace) -> dict:
    """Train as configured by ``args`` (see :mod:`rtseg.train.cli`); returns the final summary."""
    run = setup(args)
    resume(run, _resume_path(args.resume, run.out))
    rows = _read_rows(run.out / "metrics.csv", keep_until=run.start_epoch - 1)
    init = getattr(args, "init_from", None)
    start = f" (init from {init})" if init else " (ImageNet init)" if run.meta["pretrained"] else ""
    log.info("train %s: %d images, %d classes, %s%s on %s, %d steps/epoch, epochs %d..%d",
             args.data, len(run.train_set), run.meta["num_classes"], args.arch, start, run.device,
             run.steps_per_epoch, run.start_epoch, args.epochs)
    for epoch in range(run.start_epoch, args.epochs + 1):
        row, improved = run_epoch(run, epoch)
        rows.append(row)
        save_checkpoints(run, epoch, improved)
        _write_rows(run.out / "metrics.csv", rows)
        plot_history(rows, run.out / "history.png")
        log.info("epoch %d/%d: loss %s, val mIoU %s, pixel acc %s, lr %s, %ss%s", epoch, args.epochs,
                 row["train_loss"], row["val_miou"] or "-", row["val_pixel_acc"] or "-", row["lr"],
                 row["epoch_s"], " (best)" if improved else "")
    return {"out": str(run.out), "best_miou": run.best, "epochs": args.epochs, "rows": rows}


def setup(args: argparse.Namespace) -> Run:
    """Seed, device, data, model, loss, optimiser, schedule, AMP, EMA and the extra loss terms (this order
    fixes the random streams)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_set, loader, val_loader, generator = make_loaders(args, device)
    num_classes, ignore = len(train_set.classes), train_set.ignore_index
    pretrained = efficientnet_lite_variant(args.arch) is not None and not args.scratch
    init = getattr(args, "init_from", None)  # trained weights instead of ImageNet (rtseg.train.init_from)
    model = build_model(args.arch, num_classes, pretrained=pretrained and not init)
    if init:
        from rtseg.train.init_from import init_from

        log.info("initial weights from %s", init_from(model, init, args.arch, train_set.classes))
    model = model.to(device)
    weight = class_weights(train_set, args.class_weights)
    if weight is not None:
        log.info("class weights: %s", ", ".join(f"{c}={w:.2f}" for c, w in zip(train_set.classes, weight)))
    loss_fn = criterion(args, ignore, weight).to(device)
    ema = make_ema(model, args.ema) if args.ema else None  # a copy of the model before anything hooks into it
    aux_weight = getattr(args, "aux_weight", 0.0)
    aux = AuxHeads(model, num_classes, aux_weight).to(device) if aux_weight else None
    optimizer = make_optimizer(model, args, extra=aux)
    steps_per_epoch = min(len(loader), args.max_steps or len(loader))
    scheduler = make_scheduler(optimizer, args, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" and not args.no_amp else None
    cpu_bf16 = args.bf16 and device.type == "cpu"
    amp_dtype = torch.float16 if scaler is not None else (torch.bfloat16 if cpu_bf16 else None)
    meta = ModelMeta(arch=args.arch, num_classes=num_classes, classes=list(train_set.classes), ignore_index=ignore,
                     mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), pretrained=pretrained)
    extra = ExtraLosses(aux=aux, adversarial=make_adversarial(args, num_classes, ignore, steps_per_epoch, device),
                        distiller=make_distiller(args, meta, ignore, device))
    return Run(args=args, out=out, device=device, train_set=train_set, loader=loader, val_loader=val_loader,
               generator=generator, model=model, loss_fn=loss_fn, optimizer=optimizer, scheduler=scheduler,
               scaler=scaler, amp_dtype=amp_dtype, ema=ema, extra=extra, meta=meta, steps_per_epoch=steps_per_epoch)


def make_loaders(args: argparse.Namespace, device: torch.device):
    """(training set, its shuffling loader, validation loader or None, the loader's generator)."""
    train_set = get_dataset(args.data, args.train_split, cache=args.cache)
    val_set = get_dataset(args.val_data or args.data, args.val_split, cache=args.cache) if args.val_every else None
    ignore = train_set.ignore_index
    if val_set is not None and val_set.classes != train_set.classes:
        raise RtsegError(f"validation classes {val_set.classes} differ from training classes {train_set.classes}")
    base_size = args.base_size or min(train_set.load(0)[0].shape[:2])
    train_set.transforms = get_transform(True, args, ignore, base_size)
    generator = torch.Generator().manual_seed(args.seed)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, drop_last=len(train_set) > args.batch_size,
        num_workers=args.workers, generator=generator, worker_init_fn=_seed_worker,
        persistent_workers=args.workers > 0, pin_memory=device.type == "cuda")
    val_loader = None
    if val_set is not None:
        val_set.transforms = get_transform(False, args, ignore, base_size)
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=1, num_workers=args.workers)
    return train_set, loader, val_loader, generator


def resume(run: Run, path: Path | None) -> None:
    """Restore weights, optimiser, schedule, scaler, EMA, auxiliary heads, discriminator, random states and
    the epoch from ``path``."""
    if path is None:
        return
    ckpt = read_training_checkpoint(path)
    for key in ("arch", "num_classes"):
        if ckpt.get(key) != run.meta[key]:
            raise RtsegError(f"--resume {path}: checkpoint has {key}={ckpt.get(key)!r}, run has {run.meta[key]!r}")
    if "optimizer" not in ckpt:
        raise RtsegError(f"--resume {path}: holds weights only (model_best.pth?); resume from checkpoint.pth")
    extra = run.extra
    if bool(ckpt.get("aux")) != (extra.aux is not None):  # the heads' weights are in the optimiser's groups
        raise RtsegError(f"--resume {path}: the checkpoint was trained {'with' if ckpt.get('aux') else 'without'} "
                         f"auxiliary heads; resume with the same --aux-weight setting (0 or not)")
    if extra.adversarial is not None and not ckpt.get("adversarial"):
        raise RtsegError(f"--resume {path}: checkpoint has no discriminator; resume without --adversarial")
    run.model.load_state_dict(ckpt["model"])
    if extra.aux is not None:
        extra.aux.load_state_dict(ckpt["aux"])
    if extra.adversarial is not None:
        extra.adversarial.load_state_dict(ckpt["adversarial"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    if run.ema is not None:
        if not ckpt.get("ema"):
            raise RtsegError(f"--resume {path}: checkpoint has no EMA weights; resume without --ema")
        run.ema.load_state_dict(ckpt["ema"])
    if run.scaler is not None and ckpt.get("scaler"):
        run.scaler.load_state_dict(ckpt["scaler"])
    run.start_epoch, run.best = ckpt["epoch"] + 1, ckpt.get("best_miou", -1.0)
    if "rng" in ckpt:
        torch.set_rng_state(ckpt["rng"]["torch"])
        random.setstate(ckpt["rng"]["python"])
        run.generator.set_state(ckpt["rng"]["loader"])
    log.info("resumed from %s at epoch %d (best val mIoU %.4f)", path, ckpt["epoch"], run.best)


def run_epoch(run: Run, epoch: int) -> tuple[dict, bool]:
    """Train one epoch and validate when due; returns the metrics.csv row and whether mIoU improved."""
    args, t0, progress = run.args, time.perf_counter(), not run.args.no_progress
    np.random.seed(args.seed + epoch)
    train_loss = train_one_epoch(run.model, run.loss_fn, run.optimizer, run.scheduler, run.loader, run.device,
                                 epoch, run.scaler, args.max_steps, progress, run.amp_dtype, run.ema, run.extra)
    if run.extra:
        log.info("epoch %d extra loss terms (weighted means): %s", epoch, run.extra.summary())
    row = {"epoch": epoch, "lr": f"{run.optimizer.param_groups[0]['lr']:.6g}",
           "train_loss": f"{train_loss:.5f}", "val_loss": "", "val_miou": "", "val_pixel_acc": ""}
    improved = False
    if run.val_loader is not None and (epoch % args.val_every == 0 or epoch == args.epochs):
        cm, val_loss = evaluate(run.scored, run.val_loader, run.device, run.meta["num_classes"], run.loss_fn,
                                progress)
        miou = cm.miou()
        row.update(val_loss=f"{val_loss:.5f}", val_miou=f"{miou:.5f}", val_pixel_acc=f"{cm.pixel_accuracy():.5f}")
        improved = miou > run.best
        run.best = max(run.best, miou)
    row["epoch_s"] = f"{time.perf_counter() - t0:.1f}"
    return row, improved


def save_checkpoints(run: Run, epoch: int, improved: bool) -> None:
    """``checkpoint.pth`` every epoch; ``model_best.pth`` when mIoU improved (every epoch without validation)."""
    options = vars(run.args)
    ckpt = TrainCheckpoint(
        model=run.model.state_dict(), optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(),
        scaler=run.scaler.state_dict() if run.scaler else None,
        ema=run.ema.state_dict() if run.ema is not None else None,
        aux=run.extra.aux.state_dict() if run.extra.aux is not None else None,
        adversarial=run.extra.adversarial.state_dict() if run.extra.adversarial is not None else None,
        epoch=epoch, args=options, best_miou=run.best,
        rng={"torch": torch.get_rng_state(), "python": random.getstate(), "loader": run.generator.get_state()},
        **run.meta)
    write_checkpoint(ckpt, run.out / "checkpoint.pth")
    if improved or run.val_loader is None:
        best = BestCheckpoint(model=run.scored.state_dict(), epoch=epoch, val_miou=run.best, args=options, **run.meta)
        write_checkpoint(best, run.out / "model_best.pth")


# ---------------------------------------------------------------------------- helpers

def make_optimizer(model: nn.Module, args: argparse.Namespace, extra: nn.Module | None = None) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on BatchNorm and bias parameters. ``extra``'s parameters (the
    auxiliary heads) follow the model's in the same two groups."""
    decay, no_decay = [], []
    params = list(model.parameters()) + (list(extra.parameters()) if extra is not None else [])
    for p in params:
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


def make_adversarial(args: argparse.Namespace, num_classes: int, ignore_index: int, steps_per_epoch: int,
                     device: torch.device) -> Adversarial | None:
    """``--adversarial W``: a PatchGAN discriminator with its own AdamW (``--adv-lr``, default ``--lr``;
    betas 0.5/0.999 as in Pix2Pix, no weight decay) on the main schedule's warm-up and decay."""
    weight = getattr(args, "adversarial", 0.0)
    if not weight:
        return None
    disc = PatchDiscriminator(3 + num_classes).to(device)
    optimizer = torch.optim.AdamW(disc.parameters(), lr=getattr(args, "adv_lr", None) or args.lr,
                                  betas=(0.5, 0.999), weight_decay=0.0)
    return Adversarial(disc, optimizer, make_scheduler(optimizer, args, steps_per_epoch), weight, ignore_index)


def make_distiller(args: argparse.Namespace, meta: ModelMeta, ignore_index: int,
                   device: torch.device) -> Distiller | None:
    """``--distill TEACHER.pth``: the teacher, ``--distill-weight`` (default 1) and ``--distill-temp``."""
    path = getattr(args, "distill", None)
    if not path:
        return None
    teacher = load_teacher(path, meta["classes"], meta["mean"], meta["std"], device)
    weight = getattr(args, "distill_weight", None)
    log.info("distilling from %s (%s)", path, type(teacher).__name__)
    return Distiller(teacher, 1.0 if weight is None else weight, getattr(args, "distill_temp", 1.0), ignore_index)


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
