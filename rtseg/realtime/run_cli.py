"""``rtseg [options]``: segment a camera, video, stream or images and show or write the result."""

from __future__ import annotations

import argparse
import logging
import textwrap

from rtseg.errors import RtsegError
from rtseg.realtime.engine import DEVICES, builtin_models, default_model_name
from rtseg.realtime.render import VIEW_MODES
from rtseg.realtime.sinks.video import DEFAULT_PRESET, X264_PRESETS
from rtseg.realtime.sources.base import DEFAULT_MAX_PIXELS

log = logging.getLogger("rtseg")

EXAMPLES = """\
examples:
  rtseg --camera 0                                   live window, built-in model
  rtseg --camera 0 --camera-size 1280x720 --camera-fps 30 --view side-by-side --legend
  rtseg --source in.mp4 --output out.mp4             annotated copy: every frame, same timestamps, audio kept
  rtseg --source in.mp4 --output out.mp4 --model my_model.onnx --device cuda
  rtseg --source frames/ --output annotated/         a folder (or a glob: 'frames/*.jpg') of images
  rtseg --source rtsp://host/stream --no-display --stats stream.jsonl
  rtseg --source in.mp4 --save-masks masks/ --stats stats.jsonl --hide sky

keys in the window: q/Esc quit, space pause, m cycle the view mode
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtseg", description="Real-time semantic segmentation of a camera, video, stream or images.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_argument_group("input")
    src.add_argument("--camera", type=int, metavar="INDEX", help="camera index (OpenCV)")
    src.add_argument("--camera-size", type=_size, metavar="WxH", help="requested camera size, e.g. 1280x720")
    src.add_argument("--camera-fps", type=float, metavar="FPS", help="requested camera frame rate")
    src.add_argument("--source", metavar="PATH|URL", help="video file, image, folder, glob, or rtsp/http URL")
    src.add_argument("--live", action=argparse.BooleanOptionalAction, default=None,
                     help="latest-frame semantics (drop frames when behind); default: on for cameras and "
                          "rtsp/rtmp/udp/tcp/srt, off for files and http(s)")
    src.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a URL to open/answer (5)")
    src.add_argument("--stall-timeout", type=float, default=2.0,
                     help="a live source without a new frame for this long is an error (2)")
    src.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                     help=f"refuse frames larger than this many pixels ({DEFAULT_MAX_PIXELS})")
    mdl = parser.add_argument_group("model")
    mdl.add_argument("--model", default=None,
                     help=f"built-in name ({', '.join(builtin_models())}) or .onnx path "
                          f"(default: {default_model_name()})")
    mdl.add_argument("--device", choices=DEVICES, default="auto", help="auto: CUDA when usable, else CPU")
    mdl.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: auto)")
    out = parser.add_argument_group("output")
    out.add_argument("--output", metavar="PATH", help="annotated video (.mp4/.mkv), image, or folder for images")
    out.add_argument("--save-masks", metavar="DIR", help="per-frame label maps (pixel = class) and colour masks, PNG")
    out.add_argument("--stats", metavar="FILE.jsonl", help="per-frame timings and class pixel shares, JSON lines")
    out.add_argument("--crf", type=int, default=23, help="H.264 quality for --output video, lower is better (23)")
    out.add_argument("--preset", choices=X264_PRESETS, default=DEFAULT_PRESET,
                     help=f"H.264 encoder speed for --output video ({DEFAULT_PRESET})")
    out.add_argument("--show", action="store_true", help="show a window also for files")
    out.add_argument("--no-display", action="store_true", help="never open a window (headless)")
    out.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    look = parser.add_argument_group("look")
    look.add_argument("--view", choices=VIEW_MODES, default="overlay", help="what to draw (overlay)")
    look.add_argument("--alpha", type=float, default=0.5, help="mask opacity for the overlay, 0..1 (0.5)")
    look.add_argument("--classes", type=_names, help="draw only these classes (names or indices, comma-separated)")
    look.add_argument("--hide", type=_names, help="never draw these classes, e.g. void,sky")
    look.add_argument("--legend", action="store_true", help="draw class names with their colours")
    look.add_argument("--hud", action=argparse.BooleanOptionalAction, default=None,
                      help="FPS/latency overlay (default: on in the window, off in written files)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the pipeline as the flags say; returns the exit code (130 when interrupted)."""
    from rtseg.realtime.app import process

    if (args.camera is None) == (args.source is None):
        raise RtsegError("give exactly one input: --source PATH|URL or --camera INDEX (see rtseg --help)")
    if not 0.0 <= args.alpha <= 1.0:
        raise RtsegError(f"--alpha must be between 0 and 1, got {args.alpha}")
    live_input = args.camera is not None or "://" in (args.source or "")
    display = not args.no_display and (args.show or (live_input and args.camera is not None))
    if not display and args.output is None and args.save_masks is None and args.stats is None:
        if args.camera is not None:
            raise RtsegError("--no-display without --output, --save-masks or --stats would produce nothing")
        if not live_input:
            raise RtsegError("nothing to produce: add --output, --save-masks, --stats or --show")
    result = process(
        args.camera if args.camera is not None else args.source, args.output,
        model=args.model, device=args.device, threads=args.threads, view=args.view, alpha=args.alpha,
        classes=args.classes, hide=args.hide, legend=args.legend,
        hud=display if args.hud is None else args.hud, display=display,
        save_masks=args.save_masks, stats=args.stats, max_pixels=args.max_pixels,
        camera_size=args.camera_size, camera_fps=args.camera_fps, timeout=args.timeout,
        stall_timeout=args.stall_timeout, crf=args.crf, preset=args.preset, progress=not args.quiet, live=args.live)
    summary = result.stats.summary()
    if not args.quiet:
        stages = ", ".join(f"{k} {v:.1f} ms" for k, v in summary["stage_ms"].items())
        where = f" to {result.output}" if result.output else ""
        log.info("%s %d frames%s (%d in, %d dropped, %d corrupt packets skipped) in %.1f s, %.1f fps; "
                 "per frame: %s", "interrupted after" if summary["interrupted"] else "wrote",
                 summary["frames_out"], where, summary["frames_in"], summary["dropped"],
                 summary["skipped_packets"], summary["seconds"], summary["fps"], stages)
    return 130 if summary["interrupted"] else 0


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1280x720, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


__doc__ += "\n\n" + textwrap.indent(EXAMPLES, "    ")
