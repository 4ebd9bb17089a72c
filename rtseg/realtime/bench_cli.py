"""``rtseg bench``: raw inference vs naive loop vs threaded pipeline, same model and threads."""

from __future__ import annotations

import argparse
import os

from rtseg.errors import RtsegError
from rtseg.realtime.engine import load_model
from rtseg.realtime.session import DEVICES
from rtseg.realtime.sources import resolve_source


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtseg bench", description=__doc__,
        epilog="example: rtseg bench --model camvid-road --source road.mp4 --threads 2")
    parser.add_argument("--model", default=None, help="built-in name or .onnx path (default: the default model)")
    parser.add_argument("--source", default="demo", help="a video file (default: demo, the built-in road clip)")
    parser.add_argument("--frames", type=int, default=120, help="frames per run (120)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per mode; the median is kept (3)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: auto)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--debug", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    from rtseg.realtime.bench import format_table, run_bench

    if args.frames < 1 or args.repeats < 1:
        raise RtsegError("--frames and --repeats must be at least 1")
    engine = load_model(args.model, device=args.device, threads=args.threads)
    source = str(resolve_source(args.source))
    result = run_bench(engine, source, frames=args.frames, repeats=args.repeats)
    threads = args.threads or "auto"
    title = (f"model {engine.info.name} on {engine.provider} (threads {threads}), "
             f"{os.path.basename(source)}, {os.cpu_count()} CPU cores")
    print(format_table(result, title))
    return 0
