"""Run an instance-segmentation ONNX model (Mask R-CNN, ``rtseg export maskrcnn_...``) as an engine.

The file follows the model contract with ``task`` = ``instance`` in its metadata. Its one
input is ``images`` (1 x 3 x H x W, RGB in 0..1, any size; the engine resizes each frame so
its shorter side is ``min_size`` and its longer at most ``max_size``, as torchvision does
inside the PyTorch model) and its outputs are ``boxes`` (K x 4, x0 y0 x1 y1 in input pixels),
``labels`` (K, int64), ``scores`` (K) and ``masks`` (K x 1 x 28 x 28 probabilities in the box).
The engine keeps detections scoring at least the metadata's ``score_threshold``, pastes each
mask into its box (as torchvision does, in numpy), and sets both ``frame.instances`` and a
label map painted from the instances (highest score on top), so every view, sink and the
stats work unchanged. Instance-only metadata keys:

==================  ==========================================  ==========
``task``            ``instance``                                ``instance``
``score_threshold`` detections below it are dropped             ``0.5``
``mask_threshold``  mask probability counted as the object      ``0.5``
``things``          JSON list of the classes counted            ``["car"]``
``min_size``        the working size's shorter side             ``800``
``max_size``        ... and the longest its longer side may be  ``1333``
==================  ==========================================  ==========
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import time
from pathlib import Path

import cv2
import numpy as np

from rtseg.contract import ModelInfo
from rtseg.errors import ModelError
from rtseg.onnx_safety import LEN, _entry, _fields, _Malformed
from rtseg.realtime.frame import Frame
from rtseg.realtime.instances.records import FrameInstances, Instance
from rtseg.realtime.session import open_model

log = logging.getLogger(__name__)

TASK_KEY, INSTANCE_TASK = "task", "instance"
OUTPUTS = ("boxes", "labels", "scores", "masks")
MODEL_METADATA_PROPS = 14  # ModelProto.metadata_props in onnx.proto


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """An ONNX file's ``metadata_props`` without loading the graph (memory-mapped, tensors skipped).

    Example:
        >>> read_metadata("model.onnx").get("task")  # doctest: +SKIP
        'instance'
    """
    path = Path(path)
    meta: dict[str, str] = {}
    with path.open("rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return meta
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        for field, wire, data in _fields(memoryview(mapping)):
            if field == MODEL_METADATA_PROPS and wire == LEN:
                key, value = _entry(data)
                meta[key] = value
            del data
    except _Malformed:
        return {}  # not ONNX: the session says what is wrong with it
    finally:
        with contextlib.suppress(BufferError):
            mapping.close()
    return meta


def is_instance_model(path: str | os.PathLike) -> bool:
    """True when an ``.onnx`` file declares ``task: instance``."""
    try:
        return read_metadata(path).get(TASK_KEY) == INSTANCE_TASK
    except OSError:
        return False


def working_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """The size a frame is resized to: shorter side ``min_size``, longer at most ``max_size`` (as torchvision).

    Example:
        >>> working_size(540, 960, 800, 1333)
        (749, 1333)
    """
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return max(1, int(height * scale)), max(1, int(width * scale))


def instance_input(image: np.ndarray, min_size: int, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 frame -> (1 x 3 x h x w float32 RGB in 0..1 at the working size, the factors
    ``[sx, sy, sx, sy]`` from input pixels back to frame pixels, for boxes)."""
    height, width = working_size(image.shape[0], image.shape[1], min_size, max_size)
    sx, sy = image.shape[1] / width, image.shape[0] / height
    scale = np.array([sx, sy, sx, sy], np.float32)
    if (height, width) != image.shape[:2]:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    tensor = np.empty((1, 3, height, width), np.float32)
    for plane, channel in enumerate((2, 1, 0)):
        np.multiply(image[:, :, channel], 1.0 / 255.0, out=tensor[0, plane], casting="unsafe")
    return tensor, scale


def paste_mask(mask: np.ndarray, box: np.ndarray, height: int, width: int,
               threshold: float = 0.5) -> tuple[np.ndarray, tuple[int, int]] | None:
    """A M x M mask probability map of a box -> (bool mask cropped to the image, (x, y) offset).

    The same geometry as torchvision's ``paste_masks_in_image``: the mask is padded by one
    pixel and the box grown to match, then resized bilinearly to the box and thresholded.
    Returns None when nothing of the object is inside the image.

    Example:
        >>> crop, (x, y) = paste_mask(np.ones((28, 28), np.float32), np.array([10, 20, 30, 40.0]), 100, 100)
        >>> (x, y), crop.shape
        ((10, 20), (21, 21))
    """
    m = mask.shape[-1]
    scale = (m + 2) / m
    padded = np.pad(mask.astype(np.float32), 1)
    cx, cy = (box[0] + box[2]) * 0.5, (box[1] + box[3]) * 0.5
    half_w, half_h = (box[2] - box[0]) * 0.5 * scale, (box[3] - box[1]) * 0.5 * scale
    x0, y0, x1, y1 = (int(v) for v in (cx - half_w, cy - half_h, cx + half_w, cy + half_h))  # trunc, as torch
    w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
    resized = cv2.resize(padded, (w, h), interpolation=cv2.INTER_LINEAR) > threshold
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1 + 1, width), min(y1 + 1, height)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    return resized[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0], (ix0, iy0)


class MaskRcnnEngine:
    """An engine for ``task: instance`` ONNX models: instances and a label map per frame.

    Example:
        >>> engine = MaskRcnnEngine("maskrcnn.onnx", device="cpu")  # doctest: +SKIP
        >>> frame = Frame(image, 0); engine.segment(frame)  # doctest: +SKIP
        >>> [(i.class_name, round(i.score, 2)) for i in frame.instances.instances]  # doctest: +SKIP
        [('car', 0.97), ('person', 0.88)]
    """

    makes_instances = True

    def __init__(self, path: str | os.PathLike, *, device: str = "auto", threads: int | None = None,
                 score_threshold: float | None = None) -> None:
        self.path = Path(path)
        self.session, meta = open_model(self.path, device, threads)
        self.provider = self.session.get_providers()[0]
        try:
            info, _ = ModelInfo.from_metadata(meta, name=self.path.stem)
            self.score_threshold = float(meta.get("score_threshold", 0.5)) if score_threshold is None \
                else score_threshold
            self.mask_threshold = float(meta.get("mask_threshold", 0.5))
            self.min_size, self.max_size = int(meta.get("min_size", 800)), int(meta.get("max_size", 1333))
        except ValueError as exc:
            raise ModelError(f"{self.path}: {exc}") from None
        inputs = self.session.get_inputs()
        names = [o.name for o in self.session.get_outputs()]
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(f"{self.path}: an instance model needs one N x 3 x H x W input")
        if sorted(names) != sorted(OUTPUTS):
            raise ModelError(f"{self.path}: an instance model needs outputs {', '.join(OUTPUTS)}, "
                             f"has {', '.join(names)}")
        if not info.classes:
            raise ModelError(f"{self.path}: an instance model must declare its classes")
        if len(info.classes) > 256:
            raise ModelError(f"{self.path}: {len(info.classes)} classes; rtseg supports up to 256")
        self.input_name = inputs[0].name
        self.info = info.with_classes(len(info.classes))

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BGR uint8 -> (1 x 3 x h x w float32 RGB 0..1 at the working size, box factors back to the frame)."""
        return instance_input(image, self.min_size, self.max_size)

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """One session run: ``boxes``, ``labels``, ``scores``, ``masks``."""
        return dict(zip(OUTPUTS, self.session.run(list(OUTPUTS), {self.input_name: tensor})))

    def postprocess(self, outputs: dict[str, np.ndarray], size: tuple[int, int],
                    scale: np.ndarray | None = None) -> tuple[np.ndarray, list[Instance]]:
        """Detections (boxes in input pixels; ``scale``: ``[sx, sy, sx, sy]`` to frame pixels) ->
        (uint8 label map of ``size``, instances), highest score first."""
        height, width = size
        labels = np.zeros(size, np.uint8)
        found = []
        keep = np.flatnonzero(outputs["scores"] >= self.score_threshold)
        for k in keep[np.argsort(-outputs["scores"][keep], kind="stable")]:
            cls = int(outputs["labels"][k])
            if not 0 < cls < len(self.info.classes):
                continue
            box = outputs["boxes"][k] * scale if scale is not None else outputs["boxes"][k]
            pasted = paste_mask(outputs["masks"][k, 0], box, height, width, self.mask_threshold)
            if pasted is None or not pasted[0].any():
                continue
            crop, offset = pasted
            found.append(Instance.from_mask(cls, self.info.classes[cls], crop, offset,
                                            score=float(outputs["scores"][k])))
        for inst in reversed(found):  # lowest score first, so the best one ends on top
            x0, y0, x1, y1 = inst.box
            labels[y0:y1, x0:x1][inst.mask] = inst.class_index
        return labels, found

    def __call__(self, image: np.ndarray) -> np.ndarray:
        tensor, scale = self.preprocess(image)
        return self.postprocess(self.run(tensor), image.shape[:2], scale)[0]

    def segment(self, frame: Frame) -> None:
        """Set ``frame.labels`` and ``frame.instances``; record preprocess/infer/postprocess seconds."""
        t0 = time.perf_counter()
        tensor, scale = self.preprocess(frame.image)
        t1 = time.perf_counter()
        outputs = self.run(tensor)
        t2 = time.perf_counter()
        frame.labels, found = self.postprocess(outputs, frame.image.shape[:2], scale)
        frame.instances = FrameInstances(found)
        frame.timings.update(preprocess=t1 - t0, infer=t2 - t1, postprocess=time.perf_counter() - t2)
