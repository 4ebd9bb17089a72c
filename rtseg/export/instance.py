"""Mask R-CNN (torchvision) -> ONNX for the live pipeline, one testable function per step.

1. :func:`build_for_export` - the architecture (:mod:`rtseg.models.instance`) with local
   weights (``--weights``: torchvision's COCO file, an ``rtseg train --task instance``
   checkpoint, or any state dict whose tensors fit) or random init;
2. :func:`export_instance_onnx` - trace :class:`InstanceGraph` (dynamic height and width);
3. metadata (``task: instance``, classes, score threshold; :mod:`rtseg.realtime.instances.maskrcnn`);
4. check: onnx.checker, external-data safety, onnxruntime loads and runs it;
5. :func:`instance_parity` - onnxruntime vs PyTorch on frames of two sizes: detections matched
   by box, box and score differences, mask agreement.

The graph stops before torchvision pastes the masks into the image (an ONNX loop per
detection, several times slower in onnxruntime): it outputs each detection's 28 x 28 mask
and the engine pastes it with the same geometry in numpy.

Example:
    rtseg export maskrcnn_mobilenet_v3_large_fpn --random-init --classes car,person -o m.onnx
    rtseg export maskrcnn_resnet50_fpn_v2 --weights maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtseg.contract import ModelInfo, default_palette
from rtseg.errors import ExportError, ModelError, RtsegError
from rtseg.export.exporter import step
from rtseg.models.instance import (
    COCO_SOURCE,
    INSTANCE_ARCHITECTURES,
    build_instance_model,
    calibrate_random_init,
    coco_categories,
    load_instance_weights,
)
from rtseg.realtime.instances.maskrcnn import INSTANCE_TASK, OUTPUTS, TASK_KEY, instance_input
from rtseg.realtime.instances.maskrcnn import read_metadata as path_meta

log = logging.getLogger(__name__)

INPUT_NAME = "images"
SKIPPED_NAMES = ("__background__", "background", "N/A")


class InstanceGraph(nn.Module):
    """What is traced: 1 x 3 x H x W RGB in 0..1, already resized by the caller to the model's
    working size -> boxes (input pixels), labels, scores, 28 x 28 masks.

    The resize stays outside the graph: torchvision's in-graph resize gives onnxruntime
    different pixels than PyTorch at any size other than the traced one (its scale factor is
    rounded differently), so the engine resizes with OpenCV (:func:`instance_input`) and both
    sides of the parity check see the same input.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, images: torch.Tensor):
        from torchvision.models.detection.image_list import ImageList

        m = self.model
        image = m.transform.normalize(images[0])
        batch = m.transform.batch_images([image], size_divisible=m.transform.size_divisible)
        image_list = ImageList(batch, [(image.shape[-2], image.shape[-1])])
        features = m.backbone(image_list.tensors)
        proposals, _ = m.rpn(image_list, features)
        detections, _ = m.roi_heads(features, proposals, image_list.image_sizes)
        found = detections[0]
        return found["boxes"], found["labels"], found["scores"], found["masks"]


def is_instance_request(name: str) -> bool:
    """True for an instance architecture name or an ``rtseg train --task instance`` checkpoint."""
    if name.removeprefix("torchvision:").removeprefix("rtseg:") in INSTANCE_ARCHITECTURES:
        return True
    path = Path(name)
    if path.suffix in (".pt", ".pth", ".ckpt") and path.is_file():
        from rtseg.checkpoint import read_checkpoint

        try:
            ckpt = read_checkpoint(path)
        except ModelError:
            return False
        return isinstance(ckpt, dict) and ckpt.get("task") == INSTANCE_TASK
    return False


@dataclass
class BuiltInstanceModel:
    """A Mask R-CNN ready to export, its architecture and what the file will declare."""

    module: nn.Module
    arch: str
    info: ModelInfo


def build_for_export(name: str, *, weights: str | None = None, classes: list[str] | None = None,
                     random_init: bool = False, min_size: int = 800, max_size: int = 1333,
                     graph_score_threshold: float = 0.05, detections: int = 100,
                     proposals: int = 1000) -> BuiltInstanceModel:
    """The architecture ``name`` (or the network of an instance checkpoint) with its weights.

    Classes: the checkpoint's, else ``classes`` (the background is added first), else COCO's.
    ``proposals``: regions the box head scores per frame (torchvision: 1000). Its cost does not
    depend on the frame size and dominates a small working size; 100-300 is much faster at
    some cost in recall (torchvision's mobile "320" detector uses 150).

    Raises:
        ModelError: no weights given without ``random_init``, or weights that do not fit.
    """
    from rtseg.checkpoint import read_checkpoint, state_dict_of

    arch = name.removeprefix("torchvision:").removeprefix("rtseg:")
    state, source, ckpt = None, "random initialisation (not a trained model)", None
    if arch not in INSTANCE_ARCHITECTURES:  # an rtseg train --task instance checkpoint
        ckpt = read_checkpoint(name)
        arch, weights = str(ckpt["arch"]), name
        classes = list(ckpt["classes"])[1:]
        min_size, max_size = int(ckpt.get("min_size", min_size)), int(ckpt.get("max_size", max_size))
    if weights:
        state = state_dict_of(ckpt if ckpt is not None else read_checkpoint(weights), weights)
        source = f"weights from {Path(weights).name}"
    elif not random_init:
        raise ModelError(f"{arch}: give local weights with --weights FILE (e.g. torchvision's COCO checkpoint), "
                         "or --random-init for an untrained model")
    names = ["__background__", *classes] if classes else coco_categories()
    module = build_instance_model(arch, len(names), min_size=min_size, max_size=max_size,
                                  score_threshold=graph_score_threshold, detections=detections,
                                  rpn_pre_nms_top_n_test=proposals, rpn_post_nms_top_n_test=proposals)
    if state is None:  # random init: batch-norm statistics from one synthetic frame (see calibrate_random_init)
        from rtseg.export.frames import synthetic_frames

        frame = synthetic_frames(1, 240, 320, seed=0)[0]
        calibrate_random_init(module, torch.from_numpy(frame[:, :, ::-1].transpose(2, 0, 1) / 255.0).float())
    if state is not None:
        missing = load_instance_weights(module, state, weights)
        if missing:
            log.warning("%s: %d tensors not in %s stay randomly initialised (e.g. %s)", arch, len(missing),
                        Path(weights).name, ", ".join(missing[:3]))
        if not classes and ckpt is None:
            source += f" ({COCO_SOURCE})"
    things = [n for n in names[1:] if n not in SKIPPED_NAMES]
    info = ModelInfo(name=arch if ckpt is None else Path(name).parent.name or arch, classes=tuple(names),
                     palette=tuple(default_palette(len(names))), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                     channel_order="RGB", source=source, license="",
                     extra={TASK_KEY: INSTANCE_TASK, "arch": arch, "things": json.dumps(things),
                            "min_size": str(min_size), "max_size": str(max_size), "proposals": str(proposals)})
    return BuiltInstanceModel(module.eval(), arch, info)


@step("trace")
def export_instance_onnx(module: nn.Module, path: str | Path, sample_size: tuple[int, int] = (240, 320),
                         opset: int = 17) -> Path:
    """Trace :class:`InstanceGraph` with dynamic height, width and detection count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = InstanceGraph(module).eval()
    x = torch.rand(1, 3, *sample_size)
    dynamic = {INPUT_NAME: {2: "height", 3: "width"}, **{name: {0: "detections"} for name in OUTPUTS}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values in torchvision's code
        torch.onnx.export(graph, (x,), str(path), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                          output_names=list(OUTPUTS), dynamic_axes=dynamic)
    return path


@step("metadata")
def write_instance_metadata(path: Path, info: ModelInfo, score_threshold: float, mask_threshold: float = 0.5) -> Path:
    import onnx

    model = onnx.load(str(path))
    meta = info.to_metadata()
    meta.update(score_threshold=f"{score_threshold:g}", mask_threshold=f"{mask_threshold:g}")
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "rtseg"
    onnx.save(model, str(path))
    return path


@step("check")
def check_instance_onnx(path: Path) -> Path:
    import onnx

    from rtseg.onnx_safety import check_external_data
    from rtseg.realtime.instances.maskrcnn import MaskRcnnEngine

    onnx.checker.check_model(str(path), full_check=True)
    check_external_data(path)
    engine = MaskRcnnEngine(path, device="cpu")
    engine(np.zeros((64, 96, 3), np.uint8))
    return path


@dataclass(frozen=True)
class InstanceParity:
    """onnxruntime vs PyTorch detections on the same frames."""

    frames: int
    detections: int  # PyTorch's, all frames
    matched: int  # ORT detections matched one to one (same class, box IoU >= 0.9)
    max_box_diff: float  # pixels, matched pairs
    max_score_diff: float
    mask_agreement: float  # share of 28 x 28 mask cells (p > 0.5) that agree, matched pairs
    frames_from: str = "frames"

    @property
    def ok(self) -> bool:
        return self.detections == 0 or (self.matched / self.detections >= 0.95 and self.mask_agreement >= 0.99)

    def __str__(self) -> str:
        if not self.detections:
            return (f"parity not meaningful: PyTorch finds no detection on {self.frames} {self.frames_from} "
                    "(random weights, or a score threshold above every score)")
        return (f"{self.matched}/{self.detections} detections match PyTorch on {self.frames} {self.frames_from} "
                f"(max box diff {self.max_box_diff:.2g} px, max score diff {self.max_score_diff:.1e}, "
                f"mask cells agree {100 * self.mask_agreement:.3f} %)")


def instance_parity(module: nn.Module, path: Path, frames: list[np.ndarray], frames_from: str = "frames",
                    threads: int = 0) -> InstanceParity:
    """Run both on every frame (resized, RGB 0..1, as the engine feeds them); match detections by class and box."""
    from rtseg.export.exporter import ort_session
    from rtseg.realtime.instances.tracker import box_iou

    session = ort_session(path, threads)
    graph = InstanceGraph(module).eval()
    total = matched = 0
    box_diff = score_diff = 0.0
    agree = cells = 0
    min_size, max_size = int(path_meta(path).get("min_size", 800)), int(path_meta(path).get("max_size", 1333))
    for frame in frames:
        x, _ = instance_input(frame, min_size, max_size)
        with torch.no_grad():
            ref = [t.numpy() for t in graph(torch.from_numpy(x))]
        out = session.run(list(OUTPUTS), {INPUT_NAME: x})
        total += len(ref[0])
        if not len(ref[0]) or not len(out[0]):
            continue
        iou = box_iou(ref[0].astype(np.float64), out[0].astype(np.float64))
        iou[ref[1][:, None] != out[1][None, :]] = 0
        used: set[int] = set()
        for r in np.argsort(-ref[2]):
            candidates = [o for o in np.argsort(-iou[r]) if o not in used and iou[r, o] >= 0.9]
            if not candidates:
                continue
            o = candidates[0]
            used.add(o)
            matched += 1
            box_diff = max(box_diff, float(np.abs(ref[0][r] - out[0][o]).max()))
            score_diff = max(score_diff, float(abs(ref[2][r] - out[2][o])))
            agree += int(((ref[3][r] > 0.5) == (out[3][o] > 0.5)).sum())
            cells += ref[3][r].size
    return InstanceParity(len(frames), total, matched, box_diff, score_diff, agree / cells if cells else 1.0,
                          frames_from)


def export_instance_model(built: BuiltInstanceModel, output: Path, *, score_threshold: float = 0.5,
                          frames: list[np.ndarray] | None = None, frames_from: str | None = None,
                          opset: int = 17) -> tuple[Path, InstanceParity]:
    """Trace, write metadata, check and compare; :class:`ExportError` when parity fails."""
    from rtseg.export.frames import synthetic_frames

    t0 = time.perf_counter()
    export_instance_onnx(built.module, output, opset=opset)
    write_instance_metadata(output, built.info, score_threshold)
    check_instance_onnx(output)
    if not frames:
        frames = synthetic_frames(1, 240, 320, seed=1) + synthetic_frames(1, 200, 300, seed=2)
        frames_from = "synthetic frames of two sizes (no --frames given)"
    report = instance_parity(built.module, output, frames, frames_from or "frames")
    if not report.ok:
        raise ExportError(f"{output}: onnxruntime disagrees with PyTorch: {report}")
    log.debug("instance export: %.1f s", time.perf_counter() - t0)
    return output, report


def run_instance_export(args: argparse.Namespace) -> int:
    """``rtseg export`` for an instance architecture or checkpoint (called by :mod:`rtseg.export.cli`)."""
    from rtseg.cache import models_dir
    from rtseg.export.frames import read_frames

    if args.int8 or args.fp16:
        raise RtsegError("--int8 and --fp16 are not supported for instance models yet; export fp32")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    built = build_for_export(args.model, weights=args.weights, classes=classes, random_init=args.random_init,
                             min_size=args.min_size, max_size=args.max_size,
                             graph_score_threshold=min(0.05, args.score_threshold), detections=args.detections,
                             proposals=args.proposals)
    overrides = {k: v for k, v in (("name", args.name), ("license", args.license),
                                   ("source", args.weights_source)) if v}
    if overrides:
        from dataclasses import replace

        built.info = replace(built.info, **overrides)
    frames = read_frames(args.frames, limit=args.parity_frames) if args.frames else None
    output = args.output or models_dir() / f"{built.info.name}.onnx"
    path, report = export_instance_model(built, Path(output), score_threshold=args.score_threshold, frames=frames,
                                         frames_from=f"frames from {args.frames}" if args.frames else None,
                                         opset=args.opset)
    size_mb = path.stat().st_size / 1e6
    sizes = f"{built.info.extra['min_size']}..{built.info.extra['max_size']}"
    print(f"wrote {path} ({size_mb:.1f} MB, fp32, opset {args.opset}, task instance, {built.arch}, "
          f"dynamic H/W; frames resized to {sizes} by the engine)")
    print(f"  classes: {len(built.info.classes) - 1} + background ({', '.join(built.info.classes[1:7])}"
          f"{', ...' if len(built.info.classes) > 7 else ''}); score threshold {args.score_threshold:g}")
    print(f"  weights: {built.info.source}")
    print(f"  parity:  {report}")
    return 0
