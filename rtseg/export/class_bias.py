"""Per-class logit biases chosen on labelled frames and folded into an exported model.

Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021):
a segmentation model trained on imbalanced pixels under-predicts its rare classes (the built-in
``camvid-road`` labels six times fewer CamVid val pixels ``pole`` than there are). Adding a
constant to one class's logits before the argmax moves that class's decision boundary, and
nothing else in the graph changes, so the model costs the same to run.

:func:`fit_biases` picks one bias per class by coordinate ascent on the mIoU of labelled pixels;
:func:`cross_validate` estimates what that is worth on frames the search did not see (k folds of
*contiguous* frames: neighbouring video frames are near copies, so shuffled folds would flatter
it); :func:`fold_biases` writes the model with the biases in the bias of its classifier
convolution, or in an ``Add`` before the ``ArgMax`` when there is no such convolution.

Example:
    >>> logits, labels, classes = collect("camvid-road.onnx", "camvid:data/camvid", "val")  # doctest: +SKIP
    >>> biases = fit_biases(np.concatenate(logits), np.concatenate(labels), len(classes))  # doctest: +SKIP
    >>> fold_biases("camvid-road.onnx", "calibrated.onnx", biases)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rtseg.errors import ModelError, RtsegError

GRID = tuple(round(float(b), 2) for b in np.arange(-1.0, 1.0001, 0.1))  # candidate biases, logit units
PASSES = 2  # coordinate-ascent sweeps over the classes
METADATA_KEY = "class_bias"  # JSON list of the folded biases, in class order
PASS_THROUGH = ("Resize", "Upsample", "Identity")  # ops between classifier and ArgMax that keep b_c + x exact


@dataclass
class CrossValidation:
    """Confusion matrices pooled over the held-out folds, without and with the fold's own biases."""

    before: np.ndarray
    after: np.ndarray
    biases: list[np.ndarray]


def confusion(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """``num_classes`` x ``num_classes`` counts, rows true class, columns predicted."""
    flat = labels.astype(np.int64) * num_classes + predicted
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_iou(matrix: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for a class absent from both truth and prediction."""
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    """Mean IoU over the classes present in truth or prediction."""
    return float(np.nanmean(per_class_iou(matrix)))


def fit_biases(logits: np.ndarray, labels: np.ndarray, num_classes: int, grid: Sequence[float] = GRID,
               passes: int = PASSES, only: Sequence[int] | None = None) -> np.ndarray:
    """Biases (float32, one per class) that maximise mIoU of ``argmax(logits + bias)``.

    Coordinate ascent: for each class in turn, every value of ``grid`` is tried with the other
    classes' biases held, and kept when it raises mIoU (ties keep the smaller magnitude, so a
    class that does not matter stays at 0). Each try compares the class's shifted logit with the
    best of the others, so it costs one pass over the pixels.

    Args:
        logits: P x C float logits of labelled pixels.
        labels: P true classes (all < C).
        only: the classes whose bias is searched (default all); the others keep 0.
    """
    logits = np.asarray(logits, np.float32)
    if logits.ndim != 2 or logits.shape[1] != num_classes or len(labels) != len(logits):
        raise ValueError(f"logits must be P x {num_classes} with one label per row, got {logits.shape}")
    labels = np.asarray(labels, np.int64)
    order = sorted(grid, key=lambda b: (abs(b), b))
    bias = np.zeros(num_classes, np.float32)
    shifted = logits.copy()
    best = mean_iou(confusion(labels, shifted.argmax(1), num_classes))
    for _ in range(passes):
        for c in range(num_classes) if only is None else sorted(set(only)):
            shifted[:, c] = -np.inf  # the best of the other classes, with their biases
            rest_class = shifted.argmax(1)
            rest_value = np.take_along_axis(shifted, rest_class[:, None], 1)[:, 0]
            raw = logits[:, c]
            for b in order:
                predicted = np.where(raw + np.float32(b) > rest_value, c, rest_class)
                score = mean_iou(confusion(labels, predicted, num_classes))
                if score > best + 1e-9:
                    best, bias[c] = score, b
            shifted[:, c] = raw + bias[c]
    return bias


def cross_validate(logits: Sequence[np.ndarray], labels: Sequence[np.ndarray], num_classes: int,
                   folds: int = 2, **fit_options) -> CrossValidation:
    """Fit on all frames but one contiguous block, score that block; pooled over the blocks.

    ``logits``/``labels``: per frame, in the data set's order (P_i x C and P_i).
    """
    if not 2 <= folds <= len(logits):
        raise ValueError(f"folds must be between 2 and the number of frames ({len(logits)}), got {folds}")
    before = np.zeros((num_classes, num_classes), np.int64)
    after = before.copy()
    fitted = []
    for block in np.array_split(np.arange(len(logits)), folds):
        held = set(block.tolist())
        train = [i for i in range(len(logits)) if i not in held]
        bias = fit_biases(np.concatenate([logits[i] for i in train]), np.concatenate([labels[i] for i in train]),
                          num_classes, **fit_options)
        test_logits = np.concatenate([logits[i] for i in block])
        test_labels = np.concatenate([labels[i] for i in block])
        before += confusion(test_labels, test_logits.argmax(1), num_classes)
        after += confusion(test_labels, (test_logits + bias).argmax(1), num_classes)
        fitted.append(bias)
    return CrossValidation(before, after, fitted)


def collect(model: str | os.PathLike, data: str, split: str, *, max_pixels: int = 32768, threads: int | None = None,
            seed: int = 0, progress: bool = False) -> tuple[list[np.ndarray], list[np.ndarray], tuple[str, ...]]:
    """Logits of labelled pixels of ``data``/``split``, per frame (at most ``max_pixels`` each, drawn at random).

    The model runs as the live engine feeds it (contract pre-processing at its input size); each
    label map is resized (nearest) to the logits' size and void pixels are left out.

    Returns:
        per-frame logits (P_i x C float32), per-frame labels (P_i int64), the model's class names.
    """
    from tqdm import tqdm

    from rtseg.data import open_dataset
    from rtseg.export.exporter import read_metadata
    from rtseg.onnx_safety import check_external_data
    from rtseg.realtime.engine import _round_size as round_size
    from rtseg.realtime.preprocess import preprocess

    path = Path(model)
    check_external_data(path)  # untrusted files: external data only from the model's own folder
    info = read_metadata(path)
    session, logits_name = logits_session(path, info.output, threads)
    shape = session.get_inputs()[0].shape[2:]
    fixed = tuple(shape) if len(shape) == 2 and all(isinstance(d, int) for d in shape) else None
    dataset = open_dataset(data, split)
    classes = tuple(info.classes)
    if len(dataset.classes) != len(classes):
        raise RtsegError(f"{path}: model has {len(classes)} classes, dataset {data} has {len(dataset.classes)}")
    rng = np.random.default_rng(seed)
    all_logits, all_labels = [], []
    for index in tqdm(range(len(dataset)), desc="frames", disable=not progress, leave=False):
        rgb, mask = dataset.load(index)
        size = fixed or info.input_size or round_size(rgb.shape[:2])  # as the live engine sizes its input
        tensor = preprocess(np.ascontiguousarray(rgb[:, :, ::-1]), info, size)
        logits = session.run([logits_name], {session.get_inputs()[0].name: tensor})[0][0]  # C x h x w
        if logits.shape[0] != len(classes):
            raise ModelError(f"{path}: logits have {logits.shape[0]} channels, "
                             f"the model declares {len(classes)} classes")
        if mask.shape != logits.shape[1:]:
            mask = cv2.resize(mask, (logits.shape[2], logits.shape[1]), interpolation=cv2.INTER_NEAREST)
        keep = np.flatnonzero(mask.ravel() < len(classes))
        if len(keep) > max_pixels:
            keep = np.sort(rng.choice(keep, max_pixels, replace=False))
        all_logits.append(logits.reshape(len(classes), -1)[:, keep].T.astype(np.float32))
        all_labels.append(mask.ravel()[keep].astype(np.int64))
    if not all_logits:
        raise RtsegError(f"{data} ({split}) has no frames")
    return all_logits, all_labels, classes


def logits_session(path: Path, output: str, threads: int | None):
    """A CPU session of ``path`` and the name of its logits tensor (the ArgMax's input for label models)."""
    from rtseg.export.exporter import CONFIDENCE_OUTPUT, ort_session

    session = ort_session(path, threads=threads or 0, with_logits=output != "logits")
    names = [o.name for o in session.get_outputs()]
    if output == "logits":
        return session, names[0]
    exposed = [name for name in names[1:] if name != CONFIDENCE_OUTPUT]  # what ort_session added
    if not exposed:
        raise ModelError(f"{path}: a label-map model without an ArgMax node; calibration needs the logits")
    return session, exposed[-1]


def fold_biases(source: str | os.PathLike, destination: str | os.PathLike, biases: Sequence[float]) -> str:
    """Write ``source`` with ``biases`` added to its logits; returns how (for the report).

    The logits are the input of the graph's last ``ArgMax`` (label-map models) or the first
    output (logits models). When they come from a ``Conv`` whose bias has one value per class,
    through ops that keep a per-channel constant exact (``Resize``, ``Identity``), the biases go
    into that bias; otherwise an ``Add`` is inserted right after the logits. Earlier biases in
    the metadata (``class_bias``) are summed with the new ones. Written through a temp file beside
    ``destination`` and renamed, so a link planted there is replaced, never written through.

    Raises:
        RtsegError: ``destination`` is ``source``, or the graph has no logits to shift.
    """
    import onnx

    from rtseg.onnx_safety import check_external_data
    from rtseg.realtime.sinks.atomic import publish, temp_path_beside

    source, destination = Path(source), Path(destination)
    check_external_data(source)
    if destination.exists() and os.path.samefile(os.path.realpath(source), os.path.realpath(destination)):
        raise RtsegError(f"output {destination} is the model being calibrated; choose another name")
    model = onnx.load(str(source))
    graph = model.graph
    biases = np.asarray(biases, np.float64)
    argmax = [n for n in graph.node if n.op_type == "ArgMax"]
    target = argmax[-1].input[0] if argmax else graph.output[0].name
    producers = {out: node for node in graph.node for out in node.output}
    if target not in producers:
        raise ModelError(f"{source}: the logits ({target}) come from no node; nothing to calibrate")
    how = _fold_into_conv(graph, producers, target, biases) or _insert_add(graph, producers, target, biases)
    earlier = {p.key: p.value for p in model.metadata_props}.get(METADATA_KEY)
    total = biases + (np.asarray(json.loads(earlier), np.float64) if earlier else 0.0)
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps([round(float(b), 4) for b in total]))
    onnx.checker.check_model(model)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_beside(destination)
    try:
        onnx.save(model, str(temp))
        publish(temp, destination)
    finally:
        temp.unlink(missing_ok=True)
    return how


def _fold_into_conv(graph, producers: dict, target: str, biases: np.ndarray) -> str | None:
    """Add ``biases`` to the classifier Conv's bias initializer; None when the graph does not allow it."""
    from onnx import numpy_helper

    node = producers[target]
    while node.op_type in PASS_THROUGH:
        if node.op_type == "Resize" and _attribute(node, "mode", b"nearest") not in (b"nearest", b"linear", b"cubic"):
            return None
        node = producers.get(node.input[0])
        if node is None:
            return None
    if node.op_type != "Conv" or len(node.input) < 3 or not node.input[2]:
        return None
    initializers = {init.name: init for init in graph.initializer}
    bias_init = initializers.get(node.input[2])
    uses = sum(name == node.input[2] for n in graph.node for name in n.input)
    if bias_init is None or uses != 1:
        return None
    values = numpy_helper.to_array(bias_init)
    if values.shape != biases.shape or values.dtype.kind != "f":
        return None
    bias_init.CopyFrom(numpy_helper.from_array((values + biases).astype(values.dtype), bias_init.name))
    return f"folded into the bias of the classifier convolution {node.name or node.output[0]!r}"


def _insert_add(graph, producers: dict, target: str, biases: np.ndarray) -> str:
    """Rename the logits' producer output and re-create the logits as ``raw + biases`` right after it."""
    from onnx import helper, numpy_helper

    dtype = _elem_type(graph, target)
    raw, constant = f"{target}_unbiased", f"{target}_class_bias"
    producer = producers[target]
    producer.output[list(producer.output).index(target)] = raw
    values = biases.reshape(1, -1, 1, 1).astype(np.float16 if dtype == 10 else np.float32)
    graph.initializer.append(numpy_helper.from_array(values, constant))
    add = helper.make_node("Add", [raw, constant], [target], name="rtseg_class_bias")
    position = list(graph.node).index(producer) + 1
    graph.node.insert(position, add)
    return "added to the logits by an Add node before the ArgMax"


def _elem_type(graph, name: str) -> int:
    """ONNX element type of tensor ``name`` (1 float32, 10 float16), by shape inference; float32 if unknown."""
    import onnx

    model = onnx.helper.make_model(graph)
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - inference is best effort; float32 is the common case
        return 1
    for value in list(inferred.value_info) + list(inferred.output):
        if value.name == name and value.type.tensor_type.elem_type:
            return value.type.tensor_type.elem_type
    return 1


def _attribute(node, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute.s
    return default
