"""``rtseg [SOURCE] [options]``: segment a camera, video, stream or images and show or write the result."""

from __future__ import annotations

import argparse
import logging
import textwrap

from rtseg import cli_types
from rtseg.errors import RtsegError
from rtseg.realtime.confidence import DEFAULT_MIN_CONFIDENCE
from rtseg.realtime.controls import VIEW_MODES
from rtseg.realtime.engine import builtin_models, default_model_name
from rtseg.realtime.options import (
    DEVICES,
    X264_PRESETS,
    ModelOptions,
    OutputOptions,
    RenderOptions,
    RunOptions,
    SourceOptions,
)
from rtseg.realtime.report import EXIT_OK, EXIT_PARTIAL
from rtseg.realtime.sources import resolve_source, source_kind

log = logging.getLogger("rtseg")
SRC, MDL, RND, OUT = SourceOptions(), ModelOptions(), RenderOptions(), OutputOptions()  # the defaults

EXAMPLES = """\
examples:
  rtseg --source demo --output demo.mp4              the built-in road clip through the built-in model
  rtseg 0                                            camera 0 in a live window (same as --camera 0)
  rtseg in.mp4 --output out.mp4                      annotated copy: every frame, same timestamps, audio kept
  rtseg --camera 0 --camera-size 1280x720 --camera-fps 30 --view side-by-side --legend
  rtseg --source in.mp4 --output out.mp4 --model my_model.onnx --device cuda
  rtseg --source frames/ --output annotated/         a folder (or a glob: 'frames/*.jpg') of images
  rtseg --source frames/ --output frames.mp4 --fps 30   images to a video
  rtseg --source rtsp://host/stream --no-display --stats stream.jsonl
  rtseg --source in.mp4 --save-masks masks/ --stats stats.jsonl --hide sky
  rtseg --source demo --output counted.mp4 --count-line 0,330,960,330 --stats counts.jsonl

keys in the window: q/Esc quit, space pause, m cycle the view mode; closing the window quits
exit codes: 0 done, 1 unexpected error, 2 bad input or option, 3 partial output (warnings say why),
  128+N stopped by signal N (130 Ctrl-C)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtseg", description="Real-time semantic segmentation of a camera, video, stream or images.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", metavar="SOURCE",
                        help="camera index, video, image, folder, glob, URL, or 'demo' (same as --source)")
    parser.add_argument("--version", action="version", version=f"rtseg {_version()}")
    _add_input_flags(parser.add_argument_group("input"))
    _add_model_flags(parser.add_argument_group("model"))
    _add_output_flags(parser.add_argument_group("output"))
    _add_look_flags(parser.add_argument_group("look"))
    _add_instance_flags(parser.add_argument_group("instances"))
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return parser


def _add_model_flags(mdl: argparse._ArgumentGroup) -> None:
    mdl.add_argument("--model", default=MDL.model,
                     help=f"built-in name ({', '.join(builtin_models())}) or .onnx path "
                          f"(default: {default_model_name()})")
    mdl.add_argument("--device", choices=DEVICES, default=MDL.device, help="auto: CUDA when usable, else CPU")
    mdl.add_argument("--threads", type=cli_types.threads, default=MDL.threads, metavar="N|auto",
                     help="onnxruntime intra-op threads, shared by the --streams; auto: all cores (one stream: "
                          "all cores or one fewer, whichever runs the job faster, measured on its first frames); "
                          "0: onnxruntime's choice (auto)")
    mdl.add_argument("--streams", type=cli_types.every, default=MDL.streams, metavar="N|auto",
                     help="frames the model segments at once, each on its own thread (files on the CPU; not with "
                          "--infer-every, --smooth, --instances); auto: 2 where possible, else 1")
    mdl.add_argument("--infer-every", type=cli_types.every, default=MDL.infer_every, metavar="N|auto",
                     help="run the model on every N-th frame, carry labels between by optical flow; "
                          "auto: when the scene moved enough (1)")
    mdl.add_argument("--smooth", action="store_true", help="smooth labels over time (less flicker)")


def _add_look_flags(look: argparse._ArgumentGroup) -> None:
    look.add_argument("--view", choices=VIEW_MODES, default=RND.view, help=f"what to draw ({RND.view})")
    look.add_argument("--alpha", type=cli_types.between(0.0, 1.0), default=RND.alpha,
                      help=f"mask opacity for the overlay, 0..1 ({RND.alpha})")
    look.add_argument("--classes", type=cli_types.names, default=RND.classes,
                      help="draw only these classes (names or indices, comma-separated)")
    look.add_argument("--hide", type=cli_types.names, default=RND.hide, help="never draw these classes, e.g. void,sky")
    look.add_argument("--legend", action="store_true", help="draw class names with their colours")
    look.add_argument("--hud", action=argparse.BooleanOptionalAction, default=RND.hud,
                      help="FPS/latency overlay (default: on in the window, off in written files)")
    look.add_argument("--min-confidence", type=cli_types.between(0.0, 1.0), default=RND.min_confidence, metavar="P",
                      help="leave pixels whose top-class probability is below P unpainted, counted as 'unknown' "
                           f"in --stats (0: off; default {DEFAULT_MIN_CONFIDENCE:g} for models with a confidence "
                           "output, off for others)")


def _add_instance_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--instances", action="store_true",
                       help="split cars, pedestrians, bicyclists (the model's thing classes) into objects: "
                            "tracked IDs drawn, counts on the HUD, in the preview and in --stats")
    group.add_argument("--count-line", type=cli_types.line, default=RND.count_line, metavar="X1,Y1,X2,Y2",
                       help="count objects crossing this line (frame pixels), in each direction; implies --instances")
    group.add_argument("--min-area", type=cli_types.at_least(1, int), default=RND.min_area, metavar="PX",
                       help="smallest object in pixels (default: 0.04%% of the frame)")
    group.add_argument("--split-touching", action="store_true",
                       help="split touching objects of one class where they narrow (distance transform)")


def _add_input_flags(src: argparse._ArgumentGroup) -> None:
    src.add_argument("--camera", type=cli_types.at_least(0, int), metavar="INDEX", help="camera index (OpenCV)")
    src.add_argument("--camera-size", type=cli_types.size, metavar="WxH", help="requested camera size, e.g. 1280x720")
    src.add_argument("--camera-fps", type=cli_types.above(0.0), metavar="FPS", help="requested camera frame rate")
    src.add_argument("--source", metavar="PATH|URL",
                     help="video file, image, folder, glob, rtsp/http URL, or 'demo' (the built-in road clip)")
    src.add_argument("--live", action=argparse.BooleanOptionalAction, default=SRC.live,
                     help="latest-frame semantics (drop frames when behind); default: on for cameras and "
                          "rtsp/rtmp/udp/tcp/srt, off for files and http(s)")
    src.add_argument("--realtime", action="store_true",
                     help="pace a file at its own timestamps, like a camera (implied by --live on a file)")
    src.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=SRC.reconnect,
                     help="reopen a live source that stalls or disconnects, with backoff 0.5-10 s "
                          "(default: on for cameras and live streams)")
    src.add_argument("--reconnect-max", type=cli_types.at_least(0, int), default=SRC.reconnect_max, metavar="N",
                     help="give up after N reconnection attempts in a row (0: never)")
    src.add_argument("--fps", type=cli_types.above(0.0), default=SRC.fps,
                     help=f"frame rate of an image sequence written as a video ({SRC.fps:g})")
    src.add_argument("--timeout", type=cli_types.above(0.0), default=SRC.timeout,
                     help=f"seconds to wait for a URL to open/answer ({SRC.timeout:g})")
    src.add_argument("--stall-timeout", type=cli_types.above(0.0), default=SRC.stall_timeout, metavar="S",
                     help=f"a live source (camera or stream) without a new frame for this long is an error "
                          f"({SRC.stall_timeout:g})")
    src.add_argument("--max-pixels", type=cli_types.at_least(1, int), default=SRC.max_pixels, metavar="N",
                     help=f"refuse frames larger than this many pixels ({SRC.max_pixels}, 8K)")


def _add_output_flags(out: argparse._ArgumentGroup) -> None:
    out.add_argument("--output", metavar="PATH", help="annotated video (.mp4/.mkv/.mov/.m4v), image, or folder")
    out.add_argument("--save-masks", metavar="DIR", help="per-frame label maps (pixel = class) and colour masks, PNG")
    out.add_argument("--stats", metavar="FILE.jsonl", help="per-frame timings and class pixel shares, JSON lines")
    out.add_argument("--crf", type=cli_types.between(0, 51, int), default=OUT.crf,
                     help=f"H.264 quality for --output video, 0..51, lower is better ({OUT.crf})")
    out.add_argument("--preset", choices=X264_PRESETS, default=OUT.preset,
                     help=f"H.264 encoder speed for --output video ({OUT.preset})")
    out.add_argument("--serve", metavar="[HOST:]PORT",
                     help="browser preview at http://HOST:PORT/ (HOST 127.0.0.1 unless given; 0: a free port)")
    out.add_argument("--show", action="store_true", help="show a window also for files")
    out.add_argument("--no-display", action="store_true", help="never open a window (headless)")
    out.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    """Run the pipeline as the flags say; returns the exit code (128 + N when stopped by signal N)."""
    from rtseg.realtime.app import run as run_job

    source = _one_source(args)
    is_camera = source_kind(resolve_source(source)) == "camera"
    display = not args.no_display and (args.show or is_camera)
    options = RunOptions(
        source=SourceOptions(max_pixels=args.max_pixels, camera_size=args.camera_size, camera_fps=args.camera_fps,
                             timeout=args.timeout, stall_timeout=args.stall_timeout, live=args.live, fps=args.fps,
                             realtime=args.realtime, reconnect=args.reconnect, reconnect_max=args.reconnect_max),
        model=ModelOptions(model=args.model, device=args.device, threads=args.threads, streams=args.streams,
                           infer_every=args.infer_every, smooth=args.smooth),
        render=RenderOptions(view=args.view, alpha=args.alpha, classes=args.classes, hide=args.hide,
                             legend=args.legend, hud=args.hud, min_confidence=args.min_confidence,
                             instances=args.instances,
                             count_line=args.count_line, min_area=args.min_area,
                             split_touching=args.split_touching),
        output=OutputOptions(output=args.output, save_masks=args.save_masks, stats=args.stats, crf=args.crf,
                             preset=args.preset, display=display, progress=not args.quiet, serve=args.serve),
    )
    if not options.output.produces_something:
        hint = "--output, --save-masks or --stats" + ("" if args.no_display else ", or --show for a window")
        raise RtsegError(f"nothing to produce: add {hint}")
    result = run_job(source, options)
    stats = result.stats
    if not args.quiet:
        _log_summary(result)
    if stats.exit_signal:
        return 128 + stats.exit_signal
    return EXIT_OK if result.complete else EXIT_PARTIAL


def _one_source(args: argparse.Namespace) -> str | int:
    given = [v for v in (args.input, args.source, args.camera) if v is not None]
    if len(given) != 1:
        raise RtsegError("give exactly one input: SOURCE, --source PATH|URL or --camera INDEX (see rtseg --help)")
    return given[0]


def _log_summary(result) -> None:
    for note in result.check.notes:
        log.info("%s", note)
    summary = result.stats.summary()
    stages = ", ".join(f"{k} {v:.1f} ms" for k, v in summary["stage_ms"].items())
    where = f" to {result.output}" if result.output else ""
    reason = summary["stop_reason"]
    verb = "interrupted after" if summary["interrupted"] else f"stopped ({reason}) after" if reason else "wrote"
    latency = summary["latency_ms"]
    latency_text = f"; latency median {latency['median']:.0f} ms, p99 {latency['p99']:.0f} ms" if latency else ""
    if summary["threads"]:  # how the model ran (streams, tuned threads), before the closing line
        log.info("%s", summary["threads"])
    log.info("%s %d frames%s (%d in, %d dropped, %d corrupt packets skipped) in %.1f s, %.1f fps; per frame: %s%s",
             verb, summary["frames_out"], where, summary["frames_in"], summary["dropped"],
             summary["skipped_packets"], summary["seconds"], summary["fps"], stages, latency_text)
    instances = result.stats.last_instances
    if instances is not None:
        totals = instances.totals()
        seen = ", ".join(f"{n} {name}" for name, n in totals["unique_ids"].items())
        crossed = "".join(f"; crossed {direction}: {sum(c.values())}" for direction, c in
                          totals.get("crossings", {}).items())
        log.info("instances: %s distinct IDs%s", seen, crossed)


def _version() -> str:
    from rtseg import __version__

    return __version__


__doc__ += "\n\n" + textwrap.indent(EXAMPLES, "    ")
