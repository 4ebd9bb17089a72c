"""``rtseg bench``: raw inference vs naive loop vs threaded pipeline, same model and threads, and
each stage's CPU time per frame with the fps limit it implies on this machine's cores.

``--keyframes``: every-frame inference vs keyframes (N=2, 3, 5, auto, and --smooth): speed,
agreement with every-frame labels, flip rate and temporal consistency."""

from __future__ import annotations

import argparse
import os

from rtseg import cli_types
from rtseg.realtime.engine import load_model
from rtseg.realtime.options import DEFAULT_PRESET, X264_PRESETS
from rtseg.realtime.session import DEVICES
from rtseg.realtime.sources import resolve_source


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtseg bench", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  rtseg bench --model camvid-road --source road.mp4 --threads 2\n"
               "  rtseg bench --keyframes --threads 2")
    parser.add_argument("--model", default=None, help="built-in name or .onnx path (default: the default model)")
    parser.add_argument("--source", default="demo", help="a video file (default: demo, the built-in road clip)")
    parser.add_argument("--frames", type=cli_types.at_least(1, int), default=120, help="frames per run (120)")
    parser.add_argument("--repeats", type=cli_types.at_least(1, int), default=3,
                        help="interleaved runs per mode; the median is kept (3)")
    parser.add_argument("--threads", type=cli_types.at_least(0, int), default=None,
                        help="onnxruntime intra-op threads (default: auto)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--infer-every", type=cli_types.every, default=1, metavar="N|auto",
                        help="run the naive loop, the pipeline and the stages with keyframe inference (1)")
    parser.add_argument("--streams", type=cli_types.every, default="auto", metavar="N|auto",
                        help="the pipeline's inference streams, as in rtseg --streams (auto)")
    parser.add_argument("--preset", choices=X264_PRESETS, default=DEFAULT_PRESET,
                        help=f"x264 preset of the encoded output ({DEFAULT_PRESET})")
    parser.add_argument("--keyframes", action="store_true",
                        help="keyframe inference (--infer-every N|auto, --smooth) against every-frame inference")
    parser.add_argument("--live", action="store_true",
                        help="camera-to-output latency with the clip paced at its own speed (median, p99)")
    parser.add_argument("--noise", type=cli_types.at_least(0.0), default=0.0, metavar="SIGMA",
                        help="with --keyframes: add Gaussian noise to the frames (a flickery clip)")
    parser.add_argument("--debug", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    from rtseg.realtime.bench import format_table, run_bench

    engine = load_model(args.model, device=args.device, threads=args.threads)
    source = str(resolve_source(args.source))
    if args.keyframes:
        return _keyframes(args, engine, source)
    if args.live:
        return _live(args, engine, source)
    # The pipeline runs the model as `rtseg --source ... --output ...` would (threads, streams).
    pipeline_model = None if getattr(engine, "path", None) is None else {
        "model": str(engine.path), "device": args.device, "threads": args.threads or "auto", "streams": args.streams}
    result = run_bench(engine, source, frames=args.frames, repeats=args.repeats, infer_every=args.infer_every,
                       preset=args.preset, pipeline_model=pipeline_model)
    threads = args.threads or "auto"
    title = (f"model {engine.info.name} on {engine.provider} (threads {threads}), "
             f"{os.path.basename(source)}, {os.cpu_count()} CPU cores")
    print(format_table(result, title))
    return 0


def _keyframes(args: argparse.Namespace, engine, source: str) -> int:
    from rtseg.realtime.bench_keyframes import format_keyframe_table, run_keyframe_bench

    bench = run_keyframe_bench(engine, source, frames=args.frames, repeats=args.repeats, noise=args.noise)
    title = (f"keyframes: model {engine.info.name} on {engine.provider} (threads {args.threads or 'auto'}), "
             f"{os.path.basename(source)}, {os.cpu_count()} CPU cores")
    print(format_keyframe_table(bench, title))
    return 0


def _live(args: argparse.Namespace, engine, source: str) -> int:
    from rtseg.realtime.bench_live import format_live_table, run_live_bench

    result = run_live_bench(engine, source, frames=args.frames, repeats=args.repeats)
    title = (f"live latency: model {engine.info.name} on {engine.provider} (threads {args.threads or 'auto'}), "
             f"{os.path.basename(source)}, {os.cpu_count()} CPU cores")
    print(format_live_table(result, title))
    return 0
