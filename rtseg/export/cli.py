"""``rtseg export``: PyTorch model -> verified ONNX file for the live pipeline.

Examples:
    rtseg export lraspp-mbv3-voc                       # registry entry, torchvision weights
    rtseg export effl0_lraspp --weights runs/best.pt -o camvid.onnx --frames ../shared/data/camvid/val
    rtseg export lraspp_mobilenet_v3_large --random-init --input-size 360 480 --dynamic-hw
    rtseg export camvid-effl0-lraspp --weights best.pth --int8 --calib frames/ --frames held_out/
    rtseg export my-entry --registry my_configs/       # an entry of your own registry folder
    rtseg export deeplabv3_resnet50 --fp16 --logits -o dl.onnx
    rtseg export camvid-road --int8                   # the built-in model, calibrated on the demo clip
    rtseg export maskrcnn_resnet50_fpn_v2 --weights maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth --min-size 512
    rtseg export maskrcnn_mobilenet_v3_large_fpn --random-init --classes car,person -o test.onnx
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
    p.add_argument("--no-confidence", action="store_true",
                   help="label-map models: leave out the second output 'confidence' (uint8 top-class probability)")
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
    inst = p.add_argument_group("instance models (maskrcnn_resnet50_fpn_v2, maskrcnn_mobilenet_v3_large_fpn, "
                                "rtseg train --task instance checkpoints)")
    inst.add_argument("--classes", help="class names, comma-separated, background left out (default: COCO's)")
    inst.add_argument("--score-threshold", type=cli_types.between(0.0, 1.0), default=0.5,
                      help="detections below this score are not shown (metadata; default 0.5)")
    inst.add_argument("--min-size", type=cli_types.at_least(32, int), default=800,
                      help="the engine resizes each frame's shorter side to this (default 800, as torchvision's COCO "
                           "models)")
    inst.add_argument("--max-size", type=cli_types.at_least(32, int), default=1333,
                      help="... and its longer side to at most this (default 1333)")
    inst.add_argument("--detections", type=cli_types.at_least(1, int), default=100,
                      help="at most this many detections per frame (default 100)")
    inst.add_argument("--proposals", type=cli_types.at_least(1, int), default=1000,
                      help="regions scored per frame (default 1000, as torchvision); 100-300 is several times "
                           "faster on a CPU at some cost in recall")
    meta = p.add_argument_group("metadata written into the file (default: from the model/checkpoint)")
    meta.add_argument("--name", help="model name shown in the HUD and `rtseg models`")
    meta.add_argument("--license", help="licence of the weights, e.g. Apache-2.0")
    meta.add_argument("--source", dest="weights_source", help="where the weights come from (free text)")
    p.add_argument("--debug", action="store_true", help="verbose logs and full tracebacks")
    return p


def run(args: argparse.Namespace) -> int:
    """Export, verify and report; returns 0 on success (errors raise RtsegError)."""
    require_extra("export", "rtseg export")
    from rtseg.export.instance import is_instance_request, run_instance_export

    if is_instance_request(args.model):  # Mask R-CNN: its own graph, metadata and parity check
        return run_instance_export(args)
    from rtseg.cache import models_dir
    from rtseg.export.builder import build, builtin_onnx
    from rtseg.export.exporter import export_model, refuse_overwriting

    use_demo_frames(args)
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
    refuse_overwriting(Path(output), [builtin_onnx(args.model), Path(args.model), args.weights and Path(args.weights)])
    result = export_model(built.module, output, info, frames=frames, frames_from=frames_from,
                          input_size=input_size, argmax=args.argmax, dynamic_hw=args.dynamic_hw, fp16=args.fp16,
                          int8=args.int8, calib_frames=calib, calib_method=args.calib_method,
                          int8_float_convs=args.int8_float_convs, opset=args.opset, simplify_graph=args.simplify,
                          exporter=args.exporter, min_int8_agreement=args.min_int8_agreement,
                          confidence=not args.no_confidence)
    print_result(result, args, input_size)
    if args.fp16:
        note = fp16_cpu_note(built.module, result, input_size)
        if note:
            print(note)
    return 0


DEMO_CALIB_FRAMES = 16  # of the demo clip's 221 frames at stride 10: the other 7 stay held out


def use_demo_frames(args: argparse.Namespace) -> None:
    """A built-in model (``camvid-road``) without ``--calib``/``--frames``: use the built-in demo
    clip, so ``rtseg export camvid-road --int8`` works after a plain install."""
    from rtseg.assets import demo_clip
    from rtseg.export.builder import builtin_onnx

    if builtin_onnx(args.model) is None or args.calib or args.frames:
        return
    if args.int8:
        args.calib, args.calib_frames = demo_clip(), min(args.calib_frames, DEMO_CALIB_FRAMES)
        log.info("calibrating on %d frames of the built-in demo clip, the rest held out for the checks "
                 "(--calib DIR for your own frames)", args.calib_frames)
    else:
        args.frames = demo_clip()


def fp16_cpu_note(module, result, input_size: tuple[int, int], threads: int = 2) -> str | None:
    """Without a usable CUDA provider: one line with fp16 vs fp32 time on this CPU (fp16 is for GPUs)."""
    import tempfile

    import numpy as np

    from rtseg.export.exporter import export_onnx
    from rtseg.export.quantize import time_session
    from rtseg.realtime.session import provider_unavailable_reason

    if provider_unavailable_reason() is None:
        return None
    x = np.random.default_rng(0).standard_normal((1, 3, *input_size)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="rtseg-fp16-") as tmp:
        fp32 = export_onnx(module, Path(tmp) / "fp32.onnx", input_size, num_classes=len(result.info.classes))
        fp32_ms = time_session(fp32, x, threads, runs=5)
    fp16_ms = time_session(result.path, x, threads, runs=5)
    if fp16_ms < 0.9 * fp32_ms:
        return f"note: fp16 runs {fp16_ms:.1f} ms per frame on this CPU, fp32 {fp32_ms:.1f} ms ({threads} threads)"
    verdict = "slower than" if fp16_ms > fp32_ms else "no faster than"
    return (f"note: fp16 is for GPUs: on this CPU it runs {fp16_ms:.1f} ms per frame, {verdict} "
            f"{fp32_ms:.1f} ms in fp32 ({threads} threads); keep the fp32 model for CPUs")


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
