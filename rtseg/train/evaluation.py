"""Evaluate a model (``.onnx`` or training checkpoint) on a dataset split.

ONNX models run through the live engine (:func:`rtseg.realtime.engine.load_model`), so the
score is what users get: contract preprocessing, resize to the model's input size, label map
resized back (nearest) to each label image's size. Checkpoints run in PyTorch at the
dataset's resolution (or ``size``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from rtseg.checkpoint import load_model_checkpoint
from rtseg.data import EvalPreset, SegmentationDataset, open_dataset
from rtseg.errors import ModelError, RtsegError
from rtseg.train.metrics import ConfusionMatrix, plot_confusion

log = logging.getLogger(__name__)


def torch_predictor(model: torch.nn.Module, size: tuple[int, int] | None) -> Callable[[np.ndarray], np.ndarray]:
    """RGB uint8 image -> label map (H, W) with a PyTorch model."""
    preset = EvalPreset(size)

    @torch.inference_mode()
    def predict(rgb: np.ndarray) -> np.ndarray:
        from torchvision import tv_tensors

        image = tv_tensors.Image(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())
        dummy = tv_tensors.Mask(torch.zeros(rgb.shape[:2], dtype=torch.int64))
        tensor, _ = preset(image, dummy)
        labels = model(tensor[None]).argmax(1)[0].to(torch.uint8).numpy()
        if labels.shape != rgb.shape[:2]:
            labels = cv2.resize(labels, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
        return labels

    return predict


def onnx_predictor(path: Path, threads: int | None) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[str, ...]]:
    """RGB uint8 image -> label map via the live engine; also returns the model's class names."""
    from rtseg.realtime.engine import load_model

    engine = load_model(str(path), device="cpu", threads=threads)
    classes = tuple(engine.info.classes)
    return (lambda rgb: engine(np.ascontiguousarray(rgb[:, :, ::-1]))), classes


def evaluate_model(model: str | Path, data: str, split: str = "val", out: str | Path | None = None,
                   size: tuple[int, int] | None = None, threads: int | None = None,
                   progress: bool = True) -> tuple[ConfusionMatrix, tuple[str, ...]]:
    """Confusion matrix of ``model`` on ``data``/``split`` and the class names; with ``out``: writes
    ``metrics.json``, ``per_class.txt`` and ``confusion.png`` there.

    Raises:
        RtsegError: missing model, unreadable data, or class count mismatch.
    """
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    dataset: SegmentationDataset = open_dataset(data, split)
    num_classes = len(dataset.classes)
    if path.suffix.lower() == ".onnx":
        predict, classes = onnx_predictor(path, threads)
        if len(classes) != num_classes:
            raise RtsegError(f"{path}: model has {len(classes)} classes, dataset {data} has {num_classes}")
    else:
        if threads:
            torch.set_num_threads(threads)
        net, ckpt = load_model_checkpoint(path)
        if ckpt["num_classes"] != num_classes:
            raise RtsegError(f"{path}: model has {ckpt['num_classes']} classes, dataset {data} has {num_classes}")
        predict = torch_predictor(net, size)
    cm = ConfusionMatrix(num_classes)
    for i in tqdm(range(len(dataset)), desc=f"eval {split}", disable=not progress):
        rgb, target = dataset.load(i)
        labels = predict(rgb)
        cm.update(torch.from_numpy(target.astype(np.int64)), torch.from_numpy(labels.astype(np.int64)))
    if out is not None:
        write_report(cm, dataset.classes, Path(out), {"model": str(path), "data": data, "split": split})
    return cm, dataset.classes


def write_report(cm: ConfusionMatrix, classes, out: Path, info: dict) -> None:
    """Write ``metrics.json``, ``per_class.txt`` and ``confusion.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    iou = cm.iou()
    metrics = {**info, "miou": cm.miou(), "pixel_accuracy": cm.pixel_accuracy(),
               "per_class_iou": {c: (None if not np.isfinite(v) else float(v)) for c, v in zip(classes, iou)},
               "confusion_matrix": cm.mat.tolist()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "per_class.txt").write_text(cm.table(classes) + "\n")
    plot_confusion(cm, classes, out / "confusion.png")
