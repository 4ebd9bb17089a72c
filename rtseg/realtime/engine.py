"""Inference engines: one thin class over an onnxruntime session; model names resolved to files.

An engine turns a BGR uint8 image into a uint8 label map of the same height and width.
Pre-processing, the session run and post-processing are separate functions so each can be
tested and timed; :meth:`OnnxEngine.segment` records the three timings on a Frame.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from rtseg.assets import DEFAULT_MODEL, builtin_model_files
from rtseg.contract import CONFIDENCE_OUTPUT, ModelInfo
from rtseg.errors import ModelError
from rtseg.realtime.frame import Frame
from rtseg.realtime.otsu import OtsuEngine
from rtseg.realtime.preprocess import preprocess
from rtseg.realtime.session import DEVICES, open_model

log = logging.getLogger(__name__)

class Engine(Protocol):
    """What the pipeline needs from a model."""

    info: ModelInfo
    provider: str

    def __call__(self, image: np.ndarray) -> np.ndarray: ...
    def segment(self, frame: Frame) -> None: ...


def builtin_models() -> dict[str, str]:
    """Built-in model names -> description (ONNX files shipped in the package, and 'otsu')."""
    models = {name: str(path) for name, path in builtin_model_files().items()}
    models["otsu"] = OtsuEngine.description
    return models


def resolve_model_path(name: str) -> Path:
    """A built-in name, a name exported into the cache (``rtseg export``), or a path."""
    from rtseg.cache import models_dir

    if "/" not in name and os.sep not in name:
        for candidate in (builtin_model_files().get(name), models_dir() / f"{name}.onnx"):
            if candidate is not None and candidate.exists():
                return candidate
    return Path(name)


def default_model_name() -> str:
    """The road model when it ships with the package, else the weight-free Otsu method."""
    return DEFAULT_MODEL if DEFAULT_MODEL in builtin_model_files() else "otsu"


def load_model(model: str | os.PathLike | None = None, *, device: str = "auto",
               threads: int | None = None) -> Engine:
    """Load a model by built-in name or ``.onnx`` path.

    Args:
        model: a name from :func:`builtin_models` or a path; None picks the default.
        device: ``auto`` (CUDA when onnxruntime can really use it), ``cpu`` or ``cuda``.
        threads: intra-op threads for the CPU provider; None lets onnxruntime choose.

    Example:
        >>> engine = load_model("otsu")  # also: "camvid-road", "road.onnx", a name in the export cache
        >>> engine(np.zeros((4, 6, 3), np.uint8)).shape
        (4, 6)
    """
    if device not in DEVICES:
        raise ModelError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    name = str(model) if model is not None else default_model_name()
    if name == "otsu":
        return OtsuEngine()
    path = resolve_model_path(name)
    if not path.exists():
        if path.suffix.lower() != ".onnx" and os.sep not in name:
            raise ModelError(f"unknown model {name!r}; built-in models: {', '.join(builtin_models())}, "
                             "or give a path to an .onnx file")
        raise ModelError(f"model file not found: {name}")
    from rtseg.realtime.instances.maskrcnn import MaskRcnnEngine, is_instance_model

    if is_instance_model(path):  # ``task: instance`` in its metadata (Mask R-CNN)
        return MaskRcnnEngine(path, device=device, threads=threads)
    return OnnxEngine(path, device=device, threads=threads)


class OnnxEngine:
    """Run an ONNX segmentation model that follows the rtseg model contract.

    Example:
        >>> engine = OnnxEngine("model.onnx", device="cpu")  # doctest: +SKIP
        >>> labels = engine(bgr_image)  # uint8, same height and width as the image
    """

    def __init__(self, path: str | os.PathLike, *, device: str = "auto", threads: int | None = None) -> None:
        self.path = Path(path)
        self.session, meta = open_model(self.path, device, threads)
        self.provider = self.session.get_providers()[0]
        try:
            info, warnings = ModelInfo.from_metadata(meta, name=self.path.stem)
        except ValueError as exc:
            raise ModelError(f"{self.path}: {exc}") from None
        for warning in warnings:
            log.warning("%s: %s", self.path.name, warning)
        inp = self.session.get_inputs()
        if len(inp) != 1:
            raise ModelError(f"{self.path}: expected 1 input (an NCHW image), found {len(inp)}")
        self.input_name = inp[0].name
        self.input_dtype = _input_dtype(self.path, inp[0].type)
        self.fixed_size = _check_input_shape(self.path, inp[0].shape)
        if info.input_size and self.fixed_size and tuple(info.input_size) != self.fixed_size:
            raise ModelError(f"{self.path}: metadata input_size {list(info.input_size)} disagrees with "
                             f"the graph's fixed input {list(self.fixed_size)}")
        self.input_size = self.fixed_size or info.input_size  # None: frame size rounded to /32
        out = self.session.get_outputs()[0]
        self.output_name = out.name
        self.confidence_name = _confidence_output(self.path, self.session.get_outputs()[1:])
        integer_output = "int" in out.type
        if integer_output and info.output != "labels":
            info = replace(info, output="labels")
        num_classes = _static_classes(out.shape) if info.output == "logits" else None
        if max(num_classes or 0, len(info.classes)) > 256:
            raise ModelError(f"{self.path}: {max(num_classes or 0, len(info.classes))} classes; "
                             "rtseg supports up to 256")
        self.info = info.with_classes(num_classes or len(info.classes))

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """BGR uint8 H x W x 3 -> normalised 1 x 3 x h x w tensor at the model's input size."""
        tensor = preprocess(image, self.info, self.input_size or _round_size(image.shape[:2]))
        return tensor if self.input_dtype == np.float32 else tensor.astype(self.input_dtype)

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """One session run; returns the first output."""
        return self.session.run([self.output_name], {self.input_name: tensor})[0]

    def run_with_confidence(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One session run; the first output and the ``confidence`` output (None without one)."""
        if self.confidence_name is None:
            return self.run(tensor), None
        output, confidence = self.session.run([self.output_name, self.confidence_name], {self.input_name: tensor})
        return output, confidence

    def postprocess_confidence(self, confidence: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The ``confidence`` output -> uint8 H x W at ``size`` (nearest, like the labels)."""
        confidence = confidence[0, 0] if confidence.ndim == 4 else confidence[0]
        if confidence.shape != size:
            confidence = cv2.resize(confidence, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        return confidence

    def postprocess(self, output: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Logits or label map -> uint8 label map of ``size`` (height, width)."""
        if self.info.output == "logits":
            if output.ndim != 4:
                raise ModelError(f"{self.path}: logits output must be N x C x H x W, got shape {output.shape}")
            labels = output[0].argmax(axis=0)
        else:
            labels = output[0, 0] if output.ndim == 4 else output[0]
            if labels.ndim != 2:
                raise ModelError(f"{self.path}: label output must be N x H x W, got shape {output.shape}")
        if labels.dtype != np.uint8:
            if labels.size and int(labels.max()) > 255:
                raise ModelError(f"{self.path}: label {int(labels.max())} does not fit the 256-class "
                                 "label map rtseg draws (more than 256 classes are not supported)")
            labels = labels.astype(np.uint8)
        if labels.shape != size:
            labels = cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        return labels

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.postprocess(self.run(self.preprocess(image)), image.shape[:2])

    def segment(self, frame: Frame) -> None:
        """Set ``frame.labels`` and record preprocess/infer/postprocess seconds."""
        t0 = time.perf_counter()
        tensor = self.preprocess(frame.image)
        t1 = time.perf_counter()
        output, confidence = self.run_with_confidence(tensor)
        t2 = time.perf_counter()
        frame.labels = self.postprocess(output, frame.image.shape[:2])
        if confidence is not None:
            frame.confidence = self.postprocess_confidence(confidence, frame.image.shape[:2])
        t3 = time.perf_counter()
        frame.timings.update(preprocess=t1 - t0, infer=t2 - t1, postprocess=t3 - t2)


def _confidence_output(path: Path, outputs: list) -> str | None:
    """The name of the contract's optional ``confidence`` output (uint8 N x H x W), or None."""
    for out in outputs:
        if out.name == CONFIDENCE_OUTPUT:
            if out.type != "tensor(uint8)" or len(out.shape) not in (3, 4):
                raise ModelError(f"{path}: output '{CONFIDENCE_OUTPUT}' must be uint8 N x H x W, "
                                 f"got {out.type} with shape {out.shape}")
            return out.name
    return None


def _check_input_shape(path: Path, shape: list) -> tuple[int, int] | None:
    """Validate an NCHW image input; returns the fixed (height, width) or None if dynamic."""
    if len(shape) != 4:
        raise ModelError(f"{path}: input must be N x 3 x H x W, got shape {shape}")
    batch, channels, height, width = shape
    if isinstance(channels, int) and channels != 3:
        raise ModelError(f"{path}: input must have 3 channels (N x 3 x H x W), got shape {shape}")
    if isinstance(batch, int) and batch != 1:
        raise ModelError(f"{path}: input batch must be 1 or dynamic, got shape {shape}")
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        return height, width
    return None


def _input_dtype(path: Path, onnx_type: str) -> type:
    types = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
    if onnx_type not in types:
        raise ModelError(f"{path}: input must be float32 or float16, got {onnx_type}")
    return types[onnx_type]


def _static_classes(shape: list) -> int | None:
    return shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None


def _round_size(size: tuple[int, int], multiple: int = 32) -> tuple[int, int]:
    return tuple(max(multiple, int(round(s / multiple)) * multiple) for s in size)  # type: ignore[return-value]

