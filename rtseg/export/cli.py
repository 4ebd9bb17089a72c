"""``rtseg export``: PyTorch model -> verified ONNX file for the live pipeline.

Examples:
    rtseg export lraspp-mbv3-voc                       # registry entry, torchvision weights
    rtseg export effl0_lraspp --weights runs/best.pt -o camvid.onnx --frames ../shared/data/camvid/val
    rtseg export lraspp_mobilenet_v3_large --random-init --input-size 360 480 --dynamic-hw
    rtseg export camvid-effl0-lraspp --weights best.pth --int8 --calib frames/ --frames held_out/
    rtseg export my-entry --registry my_configs/       # an entry of your own registry folder
    rtseg export deeplabv3_resnet50 --fp16 --logits -o dl.onnx
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from rtseg import cli_types
from rtseg.errors import RtsegError
from rtseg.extras import require_extra

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The ``rtseg export`` argument parser."""
    p = argparse.ArgumentParser(prog="rtseg export", description=__doc__.split("\n\n")[0],
                                epilog="\n".join(__doc__.split("\n")[2:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="registry entry (rtseg models) or architecture name "
                                 "(torchvision:NAME, rtseg:ARCH or bare NAME)")
    p.add_argument("-o", "--output", type=Path, help="output .onnx (default: $RTSEG_CACHE/models/NAME.onnx)")
    p.add_argument("--weights", help="local checkpoint (.pt/.pth weights-only, or .safetensors); "
                                     "overrides the registry's weights")
    p.add_argument("--registry", action="append", type=Path, metavar="DIR",
                   help="also read registry entries (*.yaml) from DIR; built-in entries win on equal names")
    p.add_argument("--random-init", action="store_true",
                   help="ignore the registry's weights: random initialisation, no download")
    p.add_argument("--num-classes", type=cli_types.between(1, 256, int),
                   help="classes of a bare architecture (default 11, CamVid)")
    p.add_argument("--input-size", type=cli_types.at_least(1, int), nargs=2, metavar=("H", "W"),
                   help="input height and width (default: registry value or 360 480)")
    p.add_argument("--dynamic-hw", action="store_true", help="dynamic input height/width (batch is always dynamic)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--argmax", dest="argmax", action="store_true", default=True,
                     help="output a uint8 label map computed in the graph (default)")
    out.add_argument("--logits", dest="argmax", action="store_false", help="output float logits N x C x H x W")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="half-precision weights/activations, float32 I/O")
    prec.add_argument("--int8", action="store_true", help="static int8 quantization (QDQ, per-channel); needs --calib")
    p.add_argument("--calib", type=Path, help="folder of calibration frames (or a video) for --int8")
    p.add_argument("--calib-frames", type=cli_types.at_least(1, int), default=32,
                   help="calibration frames to use (default 32)")
    p.add_argument("--calib-method", default="minmax", choices=("minmax", "entropy", "percentile"))
    p.add_argument("--int8-float-convs", type=cli_types.at_least(0, int), default=3,
                   help="the first N convolutions stay float: the full-resolution stem is the most "
                        "sensitive to 8-bit activations (default 3)")
    p.add_argument("--min-int8-agreement", type=cli_types.between(0.0, 1.0), default=0.0,
                   help="fail when int8 agrees with fp32 on fewer labels than this fraction (default 0: report only)")
    p.add_argument("--frames", type=Path, help="frames for the parity check: image folder or video "
                                               "(default: held-out frames of --calib, else synthetic ones, "
                                               "and the report says so)")
    p.add_argument("--parity-frames", type=cli_types.at_least(1, int), default=8,
                   help="frames for the parity check (default 8)")
    p.add_argument("--opset", type=cli_types.between(17, 30, int), default=17, help="ONNX opset (>= 17, default 17)")
    p.add_argument("--exporter", default="legacy", choices=("legacy", "dynamo"),
                   help="torch.onnx tracer: legacy TorchScript (fast, default) or dynamo")
    p.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim/onnxsim when installed")
    meta = p.add_argument_group("metadata written into the file (default: from the model/checkpoint)")
    meta.add_argument("--name", help="model name shown in the HUD and `rtseg models`")
    meta.add_argument("--license", help="licence of the weights, e.g. Apache-2.0")
    meta.add_argument("--source", dest="weights_source", help="where the weights come from (free text)")
    p.add_argument("--debug", action="store_true", help="verbose logs and full tracebacks")
    return p


def run(args: argparse.Namespace) -> int:
    """Export, verify and report; returns 0 on success (errors raise RtsegError)."""
    require_extra("export", "rtseg export")
    from rtseg.cache import models_dir
    from rtseg.export.builder import build
    from rtseg.export.exporter import export_model

    if args.int8 and not args.calib:
        raise RtsegError("--int8 needs --calib DIR (a folder of calibration frames)")
    if args.calib and not args.int8:
        raise RtsegError("--calib is only used with --int8")
    built = build(args.model, weights=args.weights, num_classes=args.num_classes,
                  pretrained=not args.random_init, registry_dirs=args.registry or ())
    overrides = {key: value for key, value in (("name", args.name), ("license", args.license),
                                               ("source", args.weights_source)) if value}
    info = dataclasses.replace(built.info, **overrides)
    input_size = tuple(args.input_size) if args.input_size else info.input_size or (360, 480)
    calib, frames, frames_from = read_export_frames(args)
    suffix = ".fp16" if args.fp16 else ".int8" if args.int8 else ""
    output = args.output or models_dir() / f"{info.name}{suffix}.onnx"
    result = export_model(built.module, output, info, frames=frames, frames_from=frames_from,
                          input_size=input_size, argmax=args.argmax, dynamic_hw=args.dynamic_hw, fp16=args.fp16,
                          int8=args.int8, calib_frames=calib, calib_method=args.calib_method,
                          int8_float_convs=args.int8_float_convs, opset=args.opset, simplify_graph=args.simplify,
                          exporter=args.exporter, min_int8_agreement=args.min_int8_agreement)
    print_result(result, args, input_size)
    return 0


def read_export_frames(args: argparse.Namespace) -> tuple[list | None, list | None, str | None]:
    """Calibration frames (``--int8``), parity frames and what the report calls them.

    Parity frames: ``--frames``, else the frames of ``--calib`` after the calibration ones,
    else None (``export_model`` then uses synthetic frames and its report says so).
    """
    from rtseg.export.frames import read_frames

    calib = read_frames(args.calib, limit=args.calib_frames, stride=_stride(args.calib)) if args.int8 else None
    if args.frames:
        frames = read_frames(args.frames, limit=args.parity_frames, stride=_stride(args.frames))
        return calib, frames, f"frames from {args.frames}"
    if calib:
        heldout = list(_frames_or_none(args.calib, args.parity_frames, offset=len(calib), stride=_stride(args.calib)))
        if heldout:
            return calib, heldout, f"held-out frames of --calib {args.calib}"
        log.warning("%s has no frames beyond the %d calibration frames; parity and int8 agreement are "
                    "measured on synthetic frames (give --frames for held-out frames)", args.calib, len(calib))
    return calib, None, None


def print_result(result, args: argparse.Namespace, input_size: tuple[int, int]) -> None:
    """What was written and what the checks measured (stdout)."""
    size_mb = result.path.stat().st_size / 1e6
    print(f"wrote {result.path} ({size_mb:.1f} MB, {result.precision}, opset {args.opset}, "
          f"output {result.info.output}, input {input_size[0]}x{input_size[1]}"
          f"{' dynamic H/W' if args.dynamic_hw else ''})")
    print(f"  classes: {len(result.info.classes)} ({', '.join(result.info.classes[:6])}"
          f"{', ...' if len(result.info.classes) > 6 else ''})")
    print(f"  weights: {result.info.source or 'unknown'}")
    print(f"  parity:  {result.parity}")
    if result.int8 is not None:
        print(f"  int8:    {result.int8}")


def _frames_or_none(source: Path, limit: int, offset: int, stride: int):
    from rtseg.export.frames import iter_frames

    try:
        yield from iter_frames(source, limit=limit, offset=offset, stride=stride)
    except RtsegError:
        return


def _stride(source: Path) -> int:
    """Spread parity frames over a video instead of taking the first few."""
    from rtseg.export.frames import VIDEO_SUFFIXES

    return 10 if source.suffix.lower() in VIDEO_SUFFIXES else 1
