"""PyTorch -> ONNX, one testable function per step.

``export_model`` runs the steps in order and fails loudly at the first that goes wrong:

1. :func:`export_onnx` - trace the module (logits, or argmax label map inside the graph);
2. :func:`simplify` (optional, onnxslim/onnxsim when installed) and :func:`to_fp16` (optional);
3. :func:`write_metadata` - the model contract (:class:`rtseg.contract.ModelInfo`);
4. :func:`check_onnx` - onnx.checker, external-data safety, onnxruntime loads and runs it;
5. :func:`parity` - ONNX vs PyTorch on the given frames (synthetic ones only when none are
   given, and the report says so), pre-processed from the file's own metadata; when PyTorch
   predicts one class everywhere the report says the label check is not meaningful;
6. optional int8 static quantization (:mod:`rtseg.export.quantize`), compared with fp32.

Example:
    >>> from rtseg.export import export_model
    >>> result = export_model(module, "m.onnx", info, frames=frames, frames_from="frames from val/")  # doctest: +SKIP
    >>> print(result.parity)  # doctest: +SKIP
    99.998 % labels agree with pytorch on 8 frames from val/ (11 classes predicted), max |logit diff| 2.1e-05
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtseg.contract import CONFIDENCE_OUTPUT, ModelInfo
from rtseg.errors import ExportError, ModelError, RtsegError, first_line
from rtseg.export import frames as frames_mod

log = logging.getLogger(__name__)

INPUT_NAME = "images"
MIN_OPSET = 17
DEFAULT_OPSET = 17
# label agreement with PyTorch below which an export fails
MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.99}
INT8_GOAL = 0.98


@dataclass(frozen=True)
class ParityReport:
    """ONNX vs reference on the same frames.

    ``frames_from`` says which frames (``"frames from DIR"``, ``"synthetic frames (no --frames
    given)"``). ``reference_classes`` counts the classes the reference predicts on them: with
    one class everywhere (random weights, blank frames) any constant output agrees, so the
    report is not :attr:`meaningful` and says so instead of printing 100 %.
    """

    frames: int
    label_agreement: float
    max_abs_logit_diff: float | None = None  # None when the reference gives no logits
    reference: str = "pytorch"
    frames_from: str = "frames"
    reference_classes: int = 0

    @property
    def meaningful(self) -> bool:
        """True when the reference labels vary (two classes or more), so agreement can fail."""
        return self.reference_classes >= 2

    def __str__(self) -> str:
        diff = "" if self.max_abs_logit_diff is None else f", max |logit diff| {self.max_abs_logit_diff:.2e}"
        agreement = f"{self.label_agreement * 100:.3f} %"
        if not self.meaningful:
            return (f"label parity not meaningful: {self.reference} predicts one class on every pixel of "
                    f"{self.frames} {self.frames_from}, so any constant output agrees ({agreement} here){diff}")
        return (f"{agreement} labels agree with {self.reference} on {self.frames} {self.frames_from} "
                f"({self.reference_classes} classes predicted){diff}")


@dataclass
class ExportResult:
    """What ``export_model`` wrote and measured."""

    path: Path
    info: ModelInfo
    precision: str
    parity: ParityReport
    int8: object | None = None  # rtseg.export.quantize.Int8Report
    simplified: bool = False


def step(name: str) -> Callable:
    """Decorator: time an export step, log it, check a returned path is a non-empty file,
    and re-raise failures as :class:`ExportError` naming the step."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            except RtsegError:
                raise
            except Exception as exc:  # noqa: BLE001 - any library failure becomes one line
                raise ExportError(f"export step '{name}' failed: {type(exc).__name__}: {first_line(exc)}") from exc
            if isinstance(out, Path) and (not out.is_file() or out.stat().st_size == 0):
                raise ExportError(f"export step '{name}' produced no file at {out}")
            log.debug("%s: %.2f s", name, time.perf_counter() - t0)
            return out

        return inner

    return wrap


class ArgmaxHead(nn.Module):
    """``module(x)`` logits (N,C,H,W) -> label map (N,H,W) of ``dtype``, inside the graph.

    With ``confidence``, also the top-class probability as uint8 (N,H,W), ``round(255 * p)``
    (:func:`rtseg.realtime.confidence.top_probability_uint8`, the contract's ``confidence`` output).
    """

    def __init__(self, module: nn.Module, dtype: torch.dtype = torch.uint8, confidence: bool = False) -> None:
        super().__init__()
        self.module = module
        self.dtype = dtype
        self.confidence = confidence

    def forward(self, x: torch.Tensor):  # noqa: D102
        logits = self.module(x)
        labels = logits.argmax(dim=1)
        labels = labels if self.dtype == torch.int64 else labels.to(self.dtype)
        if not self.confidence:
            return labels
        from rtseg.realtime.confidence import top_probability_uint8

        return labels, top_probability_uint8(logits)


def label_dtype(num_classes: int) -> torch.dtype:
    """uint8 while labels fit in a byte, else int64."""
    return torch.uint8 if num_classes <= 256 else torch.int64


@step("export")
def export_onnx(module: nn.Module, path: str | Path, input_size: tuple[int, int], *,
                argmax: bool = True, num_classes: int | None = None, dynamic_hw: bool = False,
                opset: int = DEFAULT_OPSET, exporter: str = "legacy", confidence: bool = True) -> Path:
    """Trace ``module`` to ONNX: input ``images`` (N,3,H,W) float32, dynamic batch.

    Args:
        module: returns logits (N,C,H,W) at the input resolution.
        path: output ``.onnx`` file.
        input_size: (height, width) used for tracing.
        argmax: output ``labels`` (N,H,W) computed in the graph instead of ``logits``.
        num_classes: picks the label dtype (uint8 up to 256 classes, else int64).
        dynamic_hw: make H and W dynamic too.
        opset: ONNX opset, >= 17.
        exporter: ``"legacy"`` (TorchScript tracer, fast) or ``"dynamo"`` (torch.export).
        confidence: with ``argmax``, a second output ``confidence`` (uint8 N,H,W: the top-class
            probability x 255, rounded; the model contract's optional output).
    """
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old; rtseg needs >= {MIN_OPSET}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    x = torch.zeros(1, 3, *input_size)
    if argmax:
        if num_classes is None:
            with torch.inference_mode():
                num_classes = int(module(x).shape[1])
        module = ArgmaxHead(module, label_dtype(num_classes), confidence=confidence).eval()
    out_name = "labels" if argmax else "logits"
    in_axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
    out_axes = ({0: "batch", 1: "height", 2: "width"} if argmax else {0: "batch", 2: "height", 3: "width"}) \
        if dynamic_hw else {0: "batch"}
    out_names = [out_name] + ([CONFIDENCE_OUTPUT] if argmax and confidence else [])
    axes = {INPUT_NAME: in_axes, **{name: out_axes for name in out_names}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings
        if exporter == "legacy":
            torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=out_names,
                              dynamic_axes=axes, do_constant_folding=True)
        elif exporter == "dynamo":
            dims = {0: torch.export.Dim("batch", min=1, max=64)}
            if dynamic_hw:
                dims.update({2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO})
            program = torch.onnx.export(module, (x,), dynamo=True, opset_version=max(opset, 18),
                                        input_names=[INPUT_NAME], output_names=out_names,
                                        dynamic_shapes=({k: v for k, v in dims.items()},),
                                        verbose=False)
            program.save(str(path), external_data=False)
        else:
            raise ExportError(f"unknown exporter {exporter!r} (legacy or dynamo)")
    return path


@step("simplify")
def simplify(path: Path) -> bool:
    """Simplify the graph in place with onnxslim (or onnxsim); False when neither is installed."""
    import onnx

    try:
        import onnxslim
    except ImportError:
        onnxslim = None
    if onnxslim is not None:
        slim = onnxslim.slim(str(path))
        onnx.save(slim, str(path))
        return True
    try:
        import onnxsim
    except ImportError:
        log.warning("graph simplification skipped: install onnxslim (pip install onnxslim)")
        return False
    model, ok = onnxsim.simplify(onnx.load(str(path)))
    if not ok:
        raise ExportError(f"{path}: onnxsim could not validate the simplified graph")
    onnx.save(model, str(path))
    return True


@step("fp16")
def to_fp16(path: Path, out: Path | None = None, keep_io_types: bool = True) -> Path:
    """Convert weights and activations to float16 (I/O stays float32 unless ``keep_io_types=False``)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model16 = convert_float_to_float16(model, keep_io_types=keep_io_types)
    # the converter appends the input Casts at the end of the node list; ONNX wants topological order
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapper = OnnxModel(model16)
    wrapper.topological_sort()
    model16 = wrapper.model
    out = Path(out or path)
    onnx.save(model16, str(out))
    return out


@step("metadata")
def write_metadata(path: Path, info: ModelInfo) -> Path:
    """Write ``info.to_metadata()`` into ``metadata_props`` (replacing earlier rtseg keys)."""
    import onnx

    model = onnx.load(str(path))
    meta = info.to_metadata()
    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "rtseg"
    onnx.save(model, str(path))
    return path


def read_metadata(path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` an ONNX file declares, read the way the pipeline reads it (ORT)."""
    session = ort_session(path)
    try:
        info, _ = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, name=Path(path).stem)
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from None
    return info


def ort_session(path: str | Path, threads: int = 0, with_logits: bool = False):
    """A CPU onnxruntime session; ``with_logits`` adds the tensor feeding the in-graph ArgMax
    as a second output (so label-map graphs can be compared on logits too)."""
    import onnxruntime as ort

    from rtseg.realtime.session import session_options

    opts = session_options(threads)
    source: str | bytes = str(path)
    if with_logits:
        import onnx

        model = onnx.load(str(path))
        argmax = [n for n in model.graph.node if n.op_type == "ArgMax"]
        if argmax and argmax[-1].input[0] not in [o.name for o in model.graph.output]:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(argmax[-1].input[0]))
            source = model.SerializeToString()
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


@step("check")
def check_onnx(path: Path, input_size: tuple[int, int] | None = None, min_opset: int = MIN_OPSET) -> Path:
    """onnx.checker (full), external-data safety, opset, I/O names, and onnxruntime loads and runs it."""
    import onnx

    from rtseg.export.safety import check_external_data

    check_external_data(path)
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path), load_external_data=False)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < min_opset:
        raise ExportError(f"{path}: opset {opset} < {min_opset}")
    session = ort_session(path)
    inputs = session.get_inputs()
    if [i.name for i in inputs] != [INPUT_NAME] or inputs[0].type != "tensor(float)":
        raise ExportError(f"{path}: expected one float32 input named {INPUT_NAME!r}, got "
                          f"{[(i.name, i.type) for i in inputs]}")
    shape = inputs[0].shape
    h, w = input_size or tuple(d if isinstance(d, int) else 64 for d in shape[2:])
    out = session.run(None, {INPUT_NAME: np.zeros((1, 3, h, w), np.float32)})[0]
    if out.shape[0] != 1 or tuple(out.shape[-2:]) != (h, w):
        raise ExportError(f"{path}: output shape {out.shape} does not match input (1, 3, {h}, {w})")
    return path


def run_onnx(path: str | Path, x: np.ndarray, want_logits: bool = True, chunk: int = 4,
             threads: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Run an exported model on a pre-processed batch; returns (labels, logits or None)."""
    session = ort_session(path, threads=threads, with_logits=want_logits)
    outputs = [o.name for o in session.get_outputs()]
    extra = [n for n in outputs[1:] if n != CONFIDENCE_OUTPUT]  # the logits ort_session exposed
    names = outputs[:1] + (extra[-1:] if want_logits else [])
    labels, logits = [], []
    for i in range(0, len(x), chunk):
        outs = session.run(names, {INPUT_NAME: x[i:i + chunk]})
        first = outs[0]
        if first.dtype.kind == "f":  # logits output
            logits.append(first.astype(np.float32))
            labels.append(first.argmax(1))
        else:
            labels.append(first.reshape(first.shape[0], *first.shape[-2:]))
            if len(outs) > 1:
                logits.append(outs[1].astype(np.float32))
    return np.concatenate(labels).astype(np.int64), (np.concatenate(logits) if logits and want_logits else None)


def run_torch(module: nn.Module, x: np.ndarray, chunk: int = 4) -> np.ndarray:
    """Logits of a PyTorch module on a pre-processed batch (float32 numpy)."""
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), chunk):
            outs.append(module.eval()(torch.from_numpy(x[i:i + chunk])).float().numpy())
    return np.concatenate(outs)


@step("parity")
def parity(module: nn.Module, path: Path, frames: Sequence[np.ndarray], info: ModelInfo | None = None,
           size: tuple[int, int] | None = None, frames_from: str = "frames") -> ParityReport:
    """Compare the ONNX file with the PyTorch module on the same frames.

    Frames are pre-processed with the metadata read back from the file (``info`` None), so
    this also checks that what export writes is what the pipeline reads. ``frames_from`` says
    where the frames come from, for the report.
    """
    info = info or read_metadata(path)
    x = frames_mod.batch(list(frames), info, size)
    ref = run_torch(module, x)
    ref_labels = ref.argmax(1)
    labels, logits = run_onnx(path, x)
    agreement = float((labels == ref_labels).mean())
    diff = float(np.abs(logits - ref).max()) if logits is not None else None
    return ParityReport(frames=len(x), label_agreement=agreement, max_abs_logit_diff=diff,
                        frames_from=frames_from, reference_classes=len(np.unique(ref_labels)))


def export_model(module: nn.Module, path: str | Path, info: ModelInfo | None = None, *,
                 frames: Sequence[np.ndarray] | None = None, frames_from: str | None = None,
                 input_size: tuple[int, int] | None = None, argmax: bool = True, dynamic_hw: bool = False,
                 fp16: bool = False, int8: bool = False, calib_frames: Sequence[np.ndarray] | None = None,
                 calib_method: str = "minmax", int8_float_convs: int = 3, opset: int = DEFAULT_OPSET,
                 simplify_graph: bool = False, exporter: str = "legacy",
                 min_agreement: float | None = None, min_int8_agreement: float = 0.0,
                 confidence: bool = True) -> ExportResult:
    """Export any ``torch.nn.Module`` (logits at input resolution) to a verified ONNX file.

    Args:
        module: the model; ``forward(images) -> logits (N, C, H, W)``.
        path: output ``.onnx`` file.
        info: what the model declares (classes, palette, mean/std...); ``output`` is set here.
        frames: BGR uint8 frames for the parity check (None: synthetic frames, and the report says so).
        frames_from: where ``frames`` come from, for the reports, e.g. ``"frames from val/"``.
        input_size: (height, width) to trace and verify at; default ``info.input_size`` or 360x480.
        argmax: label map inside the graph (the live default) instead of logits.
        dynamic_hw: dynamic height/width besides the dynamic batch.
        fp16: half-precision weights/activations, float32 I/O.
        int8: static QDQ per-channel quantization calibrated on ``calib_frames``.
        calib_method, int8_float_convs: int8 calibration method; how many first convolutions stay float.
        min_agreement: fail below this label agreement with PyTorch (default 99.9 % fp32, 99 % fp16).
        min_int8_agreement: fail when int8 agrees with fp32 less than this on the parity frames.
        confidence: with ``argmax``, also output the top-class probability (uint8 ``confidence``).

    Raises:
        ExportError: a step failed or parity is below the threshold; nothing is left at ``path``.
    """
    check_request(fp16, int8, calib_frames)
    path, precision = Path(path), "fp16" if fp16 else "int8" if int8 else "fp32"
    info = info or ModelInfo()
    info = file_info(module, info, tuple(input_size or info.input_size or (360, 480)), argmax=argmax,
                     precision=precision, opset=opset, dynamic_hw=dynamic_hw)
    frames, frames_from = parity_frames(frames, frames_from, info.input_size)
    with tempfile.TemporaryDirectory(prefix="rtseg-export-") as tmp:
        fp32_path = Path(tmp) / "model.fp32.onnx"
        simplified = write_fp32(module, fp32_path, info, dynamic_hw=dynamic_hw, opset=opset, exporter=exporter,
                                simplify_graph=simplify_graph, confidence=confidence)
        fp32_minimum = MIN_AGREEMENT["fp32"] if min_agreement is None or fp16 else min_agreement
        report = require_parity(module, fp32_path, frames, frames_from, "fp32", fp32_minimum, path)
        final, int8_report = fp32_path, None
        if fp16:
            final = write_fp16(fp32_path, info)
            minimum = MIN_AGREEMENT["fp16"] if min_agreement is None else min_agreement
            report = require_parity(module, final, frames, frames_from, "fp16", minimum, path)
        elif int8:
            final, int8_report = write_int8(fp32_path, info, calib_frames, frames, frames_from, path,
                                            method=calib_method, float_convs=int8_float_convs,
                                            minimum=min_int8_agreement)
        publish_copy(final, path)
    return ExportResult(path=path, info=info, precision=precision, parity=report, int8=int8_report,
                        simplified=simplified)


def publish_copy(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path`` through a temp file beside it and a rename: a symlink or hard
    link planted at ``path`` is replaced, never written through, and ``path`` is never half-written."""
    from rtseg.realtime.sinks.atomic import publish, temp_path_beside

    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_beside(path)
    try:
        shutil.copyfile(source, temp)
        publish(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def refuse_overwriting(output: Path, inputs: Sequence[Path | None]) -> None:
    """One-line error when ``output`` is one of ``inputs`` (same file, also through links)."""
    if not output.exists():
        return
    for source in inputs:
        if source is not None and Path(source).exists() and os.path.samefile(output, source):
            raise ExportError(f"output {output} is the model's own source file {source}; choose another -o")


def check_request(fp16: bool, int8: bool, calib_frames: Sequence[np.ndarray] | None) -> None:
    """Refuse option combinations that cannot work, before any work."""
    if fp16 and int8:
        raise ExportError("--fp16 and --int8 exclude each other")
    if int8 and not calib_frames:
        raise ExportError("int8 quantization needs calibration frames (--calib DIR)")


def file_info(module: nn.Module, info: ModelInfo, input_size: tuple[int, int], *, argmax: bool,
              precision: str, opset: int, dynamic_hw: bool) -> ModelInfo:
    """``info`` as the file will declare it, with its classes checked against the module's output.

    Raises:
        ExportError: the module does not return logits at input resolution, or ``info`` names
            another number of classes.
    """
    with torch.inference_mode():
        probe = module.eval()(torch.zeros(1, 3, *input_size))
    if probe.ndim != 4 or tuple(probe.shape[-2:]) != input_size:
        raise ExportError(f"model output shape {tuple(probe.shape)} is not logits (1, C, {input_size[0]}, "
                          f"{input_size[1]}) at input resolution")
    num_classes = int(probe.shape[1])
    if info.classes and len(info.classes) != num_classes:
        raise ExportError(f"model has {num_classes} output classes but the info names {len(info.classes)}")
    return dataclasses.replace(info.with_classes(num_classes), input_size=input_size,
                               output="labels" if argmax else "logits",
                               extra={**dict(info.extra), "precision": precision, "opset": str(opset),
                                      "dynamic_hw": str(dynamic_hw).lower()})


def with_precision(info: ModelInfo, precision: str) -> ModelInfo:
    """``info`` with another ``precision`` in its extra metadata."""
    return dataclasses.replace(info, extra={**dict(info.extra), "precision": precision})


def parity_frames(frames: Sequence[np.ndarray] | None, frames_from: str | None,
                  input_size: tuple[int, int]) -> tuple[list[np.ndarray], str]:
    """The parity frames and what the reports call them; synthetic frames when none are given."""
    if frames is not None:
        return list(frames), frames_from or "frames passed to export_model"
    log.warning("no frames given for the parity check; using synthetic frames")
    return frames_mod.synthetic_frames(4, *input_size), "synthetic frames (no real frames given)"


def write_fp32(module: nn.Module, path: Path, info: ModelInfo, *, dynamic_hw: bool, opset: int,
               exporter: str, simplify_graph: bool, confidence: bool = True) -> bool:
    """Steps 1-4 for the float32 file: trace, simplify (optional), metadata, checks; True if simplified."""
    export_onnx(module, path, info.input_size, argmax=info.output == "labels", num_classes=len(info.classes),
                dynamic_hw=dynamic_hw, opset=opset, exporter=exporter, confidence=confidence)
    simplified = simplify(path) if simplify_graph else False
    write_metadata(path, with_precision(info, "fp32"))
    check_onnx(path, info.input_size)
    return simplified


def require_parity(module: nn.Module, onnx_path: Path, frames: Sequence[np.ndarray], frames_from: str,
                   precision: str, minimum: float, path: Path) -> ParityReport:
    """Step 5: parity of ``onnx_path`` with ``module``, logged; a warning when it is not meaningful.

    Raises:
        ExportError: label agreement below ``minimum`` (the message names the output ``path``).
    """
    report = parity(module, onnx_path, frames, frames_from=frames_from)
    log.info("%s parity: %s", precision, report)
    if not report.meaningful:
        log.warning("%s parity: %s; check with real frames (--frames) and trained weights", precision, report)
    if report.label_agreement < minimum:
        raise ExportError(f"{path}: {precision} parity failed: {report} (need >= {minimum * 100:.1f} %); "
                          f"not written")
    return report


def write_fp16(fp32_path: Path, info: ModelInfo) -> Path:
    """Step 2 (fp16) on the verified float32 file, then its metadata and checks."""
    final = to_fp16(fp32_path, fp32_path.with_name("model.fp16.onnx"))
    write_metadata(final, info)
    check_onnx(final, info.input_size)
    return final


def write_int8(fp32_path: Path, info: ModelInfo, calib_frames: Sequence[np.ndarray],
               heldout: Sequence[np.ndarray], heldout_from: str, path: Path, *, method: str, float_convs: int,
               minimum: float):
    """Step 6: quantize the verified float32 file, write metadata, check; returns (file, Int8Report).

    Raises:
        ExportError: int8 agrees with fp32 on fewer labels than ``minimum``.
    """
    from rtseg.export.quantize import quantize_int8

    final = fp32_path.with_name("model.int8.onnx")
    report = quantize_int8(fp32_path, final, calib_frames, heldout_frames=heldout, info=with_precision(info, "fp32"),
                           method=method, float_convs=float_convs, heldout_from=heldout_from)
    write_metadata(final, info)
    check_onnx(final, info.input_size)
    log.info("int8: %s", report)
    if report.label_agreement < INT8_GOAL:
        log.warning("int8 agrees with fp32 on %.2f %% of labels, below the %.0f %% goal",
                    report.label_agreement * 100, INT8_GOAL * 100)
    if report.label_agreement < minimum:
        raise ExportError(f"{path}: int8 label agreement {report.label_agreement * 100:.2f} % "
                          f"< required {minimum * 100:.2f} %; not written")
    return final, report
