"""Rebuild an rtseg PyTorch network from an ONNX file that rtseg exported (the shipped models).

The built-in ``camvid-road`` ships as ONNX only. Its initializers hold every weight of the
network, with each BatchNorm folded into the convolution before it (the exporter's
constant folding: ``W' = W * gamma / sqrt(var + eps)``, ``b' = beta - mean * gamma /
sqrt(var + eps)``). This module maps them back onto :func:`rtseg.models.build_model`'s
state dict, so ``rtseg train --init-from camvid-road`` and ``rtseg export camvid-road
--int8/--fp16`` work after a plain install.

The mapping: the ONNX ``Conv`` nodes, in graph order, are the network's ``Conv2d`` modules
in execution order (the tracer emits nodes as they run); each pair is checked (weight shape,
groups, stride, padding) before anything is copied. A convolution followed by a BatchNorm
gets the folded weight and the BatchNorm becomes an exact identity with the folded bias as
its ``beta``: exporting the rebuilt network folds it back to the same numbers, bit for bit.

For training, an identity BatchNorm is wrong: in train mode it normalises with the batch's
statistics, which the folded weights no longer have. :func:`unfold_batchnorm` measures each
folded convolution's output mean and variance on real frames and re-expresses the same
function with those statistics, so train mode starts where eval mode is.

Example:
    >>> module, info = rebuild_from_onnx("rtseg/assets/camvid-road.onnx")  # doctest: +SKIP
    >>> initializer_mapping(module, onnx.load(path))["encoder._conv_stem.weight"]  # doctest: +SKIP
    'onnx::Conv_603'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtseg.contract import ModelInfo
from rtseg.errors import ModelError

log = logging.getLogger(__name__)

# Architectures whose export changes nothing but Conv+BatchNorm folding (round trip tested).
REBUILDABLE = ("effl0_unet_bilinear", "effl0_lraspp", "effl1_unet_bilinear", "effl1_lraspp",
               "effl2_unet_bilinear", "effl2_lraspp", "effl0_unet_bilinear_s2", "effl1_unet_bilinear_s2")
CALIBRATION_FRAMES = 8


@dataclass(frozen=True)
class ConvPair:
    """One network convolution, the BatchNorm that follows it (or None) and its ONNX node."""

    conv: str  # module name in the network, e.g. "encoder._conv_stem"
    bn: str | None  # "encoder._bn0"
    node: str  # ONNX node name
    weight: str  # ONNX initializer names
    bias: str | None


def onnx_arch(model) -> str:
    """The architecture an rtseg ONNX file names in its ``arch`` metadata (``rtseg:NAME`` -> NAME)."""
    meta = {p.key: p.value for p in model.metadata_props}
    arch = meta.get("arch", "")
    family, _, name = arch.partition(":")
    if family != "rtseg" or name not in REBUILDABLE:
        raise ModelError(f"cannot rebuild a PyTorch network from this ONNX file: its metadata names arch "
                         f"{arch or '(none)'!r}; rebuildable: {', '.join('rtseg:' + a for a in REBUILDABLE)}")
    precision = meta.get("precision", "fp32")
    if precision != "fp32":
        raise ModelError(f"cannot rebuild from a {precision} ONNX file; use the fp32 one")
    return name


def conv_pairs(module: nn.Module, model, input_size: tuple[int, int] = (64, 64)) -> list[ConvPair]:
    """Pair every ``Conv2d`` of ``module`` (execution order) with its BatchNorm and ONNX Conv node.

    Raises:
        ModelError: the graph's convolutions do not match the network's (count, shape, groups,
            stride, padding), so the file is not this architecture.
    """
    convs, bn_of = _execution_order(module, input_size)
    tensors = constant_tensors(model)
    inits = set(tensors)
    nodes = [n for n in model.graph.node if n.op_type == "Conv"]
    if len(nodes) != len(convs):
        raise ModelError(f"the ONNX graph has {len(nodes)} Conv nodes, the network {len(convs)} convolutions")
    shapes = {name: tuple(t.dims) for name, t in tensors.items()}
    named = dict(module.named_modules())
    pairs = []
    for name, node in zip(convs, nodes):
        conv = named[name]
        weight, bias = node.input[1], node.input[2] if len(node.input) > 2 and node.input[2] else None
        attrs = _attributes(node)
        expected = {"group": conv.groups, "strides": list(conv.stride), "pads": list(conv.padding) * 2}
        found = {k: attrs.get(k, [1, 1] if k == "strides" else [0, 0, 0, 0] if k == "pads" else 1) for k in expected}
        if weight not in inits or shapes[weight] != tuple(conv.weight.shape) or found != expected:
            raise ModelError(f"ONNX node {node.name} ({shapes.get(weight)}, {found}) does not match "
                             f"{name} ({tuple(conv.weight.shape)}, {expected})")
        has_bias = bn_of.get(name) is not None or conv.bias is not None
        if (bias is not None) != has_bias or (bias is not None and bias not in inits):
            raise ModelError(f"ONNX node {node.name}: bias {bias!r} does not fit {name}")
        pairs.append(ConvPair(name, bn_of.get(name), node.name, weight, bias))
    return pairs


def initializer_mapping(module: nn.Module, model) -> dict[str, str]:
    """``state_dict`` key -> ONNX initializer name, for every weight the file holds.

    A folded BatchNorm's ``bias`` comes from the Conv's bias initializer; its ``weight``,
    ``running_mean`` and ``running_var`` are not in the file (they become an identity). The
    exporter may store equal tensors once (all-zero biases) or as ``Constant`` nodes; both
    are followed (:func:`constant_tensors`).
    """
    mapping = {}
    for pair in conv_pairs(module, model):
        mapping[f"{pair.conv}.weight"] = pair.weight
        if pair.bias is not None:
            mapping[f"{pair.bn}.bias" if pair.bn else f"{pair.conv}.bias"] = pair.bias
    return mapping


def load_from_onnx(module: nn.Module, model) -> nn.Module:
    """Copy the ONNX initializers into ``module`` (in place); folded BatchNorms become exact identities."""
    from onnx import numpy_helper

    arrays = constant_tensors(model)
    state = module.state_dict()
    mapping = initializer_mapping(module, model)
    with torch.no_grad():
        for key, init in mapping.items():
            value = torch.from_numpy(numpy_helper.to_array(arrays[init]).copy())
            if value.dtype != torch.float32:
                raise ModelError(f"initializer {init} is {value.dtype}, expected float32")
            state[key].copy_(value)
        for name, bn in module.named_modules():
            if isinstance(bn, nn.BatchNorm2d) and f"{name}.bias" in mapping:
                bn.weight.fill_(1.0)
                bn.running_mean.zero_()
                bn.running_var.fill_(identity_variance(bn.eps))
    missing = [k for k in state if k not in mapping and not _derived(k, mapping)]
    if missing:
        raise ModelError(f"the ONNX file holds no value for {', '.join(missing[:4])}")
    return module.eval()


def constant_tensors(model) -> dict:
    """Name -> TensorProto of every constant of the graph: initializers, ``Constant`` node values,
    and ``Identity`` nodes over them (the exporter's deduplication of equal tensors)."""
    tensors = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:  # topological order: an Identity's input is known before it
        if node.op_type == "Constant" and node.output:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None and value.dims:
                tensors.setdefault(node.output[0], value)
        elif node.op_type == "Identity" and node.input[0] in tensors:  # a deduplicated constant
            tensors.setdefault(node.output[0], tensors[node.input[0]])
    return tensors


def identity_variance(eps: float) -> float:
    """A float32 variance ``v`` with ``float32(v + eps) == 1`` exactly: BatchNorm(x) == x + beta."""
    v = np.float32(1.0 - eps)
    while np.float32(v + np.float32(eps)) > 1.0:
        v = np.nextafter(v, np.float32(0))
    while np.float32(v + np.float32(eps)) < 1.0:
        v = np.nextafter(v, np.float32(2))
    return float(v)


def rebuild_from_onnx(path: str | os.PathLike) -> tuple[nn.Module, ModelInfo]:
    """The PyTorch network of an rtseg ONNX file (eval mode) and the :class:`ModelInfo` it declares.

    Raises:
        ModelError: not a file rtseg can rebuild (see :data:`REBUILDABLE`), or it does not match.
    """
    import onnx

    from rtseg.models import build_model

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf/IO errors become one line
        raise ModelError(f"{path}: cannot read as ONNX ({exc})") from None
    arch = onnx_arch(model)
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        info, _ = ModelInfo.from_metadata(meta, name=path.stem)
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from None
    if not info.classes:
        raise ModelError(f"{path}: its metadata names no classes")
    module = build_model(arch, num_classes=len(info.classes), pretrained=False)
    try:
        load_from_onnx(module, model)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
    log.debug("rebuilt %s from %s", arch, path)
    return module, info


@torch.no_grad()
def unfold_batchnorm(module: nn.Module, inputs: Iterable[torch.Tensor]) -> nn.Module:
    """Give every identity BatchNorm (see :func:`load_from_onnx`) the statistics of its input.

    With ``m``, ``v`` the per-channel mean and variance of the convolution's output on
    ``inputs`` (normalised NCHW batches), the BatchNorm gets ``running_mean = m``,
    ``running_var = v``, ``weight = sqrt(v + eps)``, ``bias = beta + m``: the same function
    in eval mode, and about the same in train mode, where BatchNorm uses the batch's own
    statistics. Returns ``module`` in eval mode.
    """
    identity = {name: bn for name, bn in module.named_modules()
                if isinstance(bn, nn.BatchNorm2d) and bool((bn.running_mean == 0).all())
                and bool(torch.allclose(bn.running_var, torch.full_like(bn.running_var, identity_variance(bn.eps))))}
    sums: dict[str, list] = {name: [0.0, 0.0, 0] for name in identity}

    def hook(name):
        def record(_bn, args):
            x = args[0].double()
            acc = sums[name]
            acc[0] = acc[0] + x.sum(dim=(0, 2, 3))
            acc[1] = acc[1] + (x * x).sum(dim=(0, 2, 3))
            acc[2] += x.numel() // x.shape[1]
        return record

    handles = [bn.register_forward_pre_hook(hook(name)) for name, bn in identity.items()]
    try:
        module.eval()
        seen = 0
        for x in inputs:
            module(x)
            seen += 1
    finally:
        for handle in handles:
            handle.remove()
    if not seen:
        raise ModelError("unfold_batchnorm needs at least one input batch")
    for name, bn in identity.items():
        total, squares, count = sums[name]
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0.0)
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_(var.float())
        bn.weight.copy_(torch.sqrt(var + bn.eps).float())
        bn.bias.add_(mean.float())
    return module.eval()


def demo_inputs(info: ModelInfo, count: int = CALIBRATION_FRAMES) -> list[torch.Tensor]:
    """``count`` frames spread over the built-in demo clip, pre-processed per the model contract."""
    from rtseg.assets import demo_clip
    from rtseg.export.frames import preprocess, read_frames

    frames = read_frames(demo_clip(), limit=count, stride=25)
    size = tuple(info.input_size or (360, 480))
    return [torch.from_numpy(preprocess(frame, info, size)) for frame in frames]


def trainable_from_onnx(path: str | os.PathLike, inputs: Iterable[torch.Tensor] | None = None
                        ) -> tuple[nn.Module, ModelInfo]:
    """:func:`rebuild_from_onnx` with BatchNorm statistics measured on ``inputs`` (default: the
    demo clip's frames, :func:`demo_inputs`), ready to fine-tune."""
    module, info = rebuild_from_onnx(path)
    return unfold_batchnorm(module, inputs if inputs is not None else demo_inputs(info)), info


def _execution_order(module: nn.Module, input_size: tuple[int, int]) -> tuple[list[str], dict[str, str]]:
    """Conv2d module names in the order they run, and which BatchNorm consumes each one's output."""
    order: list[str] = []
    outputs: dict[int, tuple[str, torch.Tensor]] = {}  # the tensor is kept so its id stays unique
    bn_of: dict[str, str] = {}
    handles = []
    for name, mod in module.named_modules():
        if isinstance(mod, nn.ConvTranspose2d):
            raise ModelError(f"{name}: transposed convolutions are not rebuildable from ONNX")
        if isinstance(mod, nn.Conv2d):
            def after_conv(_m, _args, out, name=name):
                order.append(name)
                outputs[id(out)] = (name, out)
            handles.append(mod.register_forward_hook(after_conv))
        elif isinstance(mod, nn.BatchNorm2d):
            def before_bn(_m, args, name=name):
                conv = outputs.get(id(args[0]))
                if conv is not None:
                    bn_of[conv[0]] = name
            handles.append(mod.register_forward_pre_hook(before_bn))
    was_training = module.training
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(1, 3, *input_size))
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return order, bn_of


def _attributes(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _derived(key: str, mapping: dict[str, str]) -> bool:
    """BatchNorm entries the folded file cannot hold (set to an identity) and counters."""
    owner, _, leaf = key.rpartition(".")
    return leaf == "num_batches_tracked" or (leaf in ("weight", "running_mean", "running_var")
                                            and f"{owner}.bias" in mapping)
