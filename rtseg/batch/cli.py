"""``rtseg batch INPUT... --out-dir DIR``: many videos and streams at once, on Ray.

Each input runs through the same pipeline, with the same flags, as
``rtseg --source INPUT --output OUT_DIR/...``; Ray spreads the inputs over worker processes
on this machine or a cluster (``pip install 'rtseg[ray]'``).
"""

from __future__ import annotations

import argparse
import logging
import textwrap
import time
from dataclasses import fields
from pathlib import Path

from rtseg import cli_types
from rtseg.batch.inputs import LIST_SUFFIXES, expand_inputs
from rtseg.batch.manifest import Manifest, Outcome
from rtseg.batch.model import model_payload
from rtseg.batch.plan import Job, plan_jobs
from rtseg.batch.progress import BatchProgress
from rtseg.batch.resources import plan_workers
from rtseg.batch.signals import StopFlags, stop_on_signals
from rtseg.errors import SinkError
from rtseg.realtime import run_cli
from rtseg.realtime.options import GROUPS, RunOptions, options_from_keywords
from rtseg.realtime.outputs import VIDEO_SUFFIXES, check_outputs_are_not_inputs
from rtseg.realtime.report import EXIT_OK, EXIT_PARTIAL

log = logging.getLogger("rtseg")

EXIT_FAILED = 4  # some inputs failed; the others were written
DEFAULT_RETRIES = 2
DEFAULT_DRAIN_TIMEOUT = 30.0
DEFAULT_CPUS_PER_WORKER = 1.0
# Flags of `rtseg --source ... --output ...` that name one input or one output, or show a
# window: a batch names its own per input (--out-dir, --stats DIR, --save-masks DIR).
PER_RUN_INPUT_FLAGS = {"--camera", "--camera-size", "--camera-fps", "--source"}
SHARED_OUTPUT_FLAGS = {"--crf", "--preset", "--quiet"}

EXAMPLES = """\
examples:
  rtseg batch 'videos/**/*.mp4' --out-dir annotated/    every video below videos/, folders mirrored
  rtseg batch videos/ --out-dir annotated/ --workers 2 --threads 1
  rtseg batch inputs.txt --out-dir annotated/ --stats stats/   a list file: a path, glob or URL per line
  rtseg batch rtsp://cam1/live rtsp://cam2/live --out-dir rec/   one worker per stream, until Ctrl-C
  rtseg batch 'videos/*.mp4' --out-dir annotated/ --address auto   join a running Ray cluster

Running the same command again resumes: outputs that exist are skipped (--overwrite redoes them).
Outputs are written through hidden temp files: a final name only ever holds a finished file.
Ctrl-C (or SIGTERM): no new inputs; running files may finish within --drain-timeout, streams stop
  now and keep what they recorded; a second Ctrl-C stops at once. The manifest says what happened.
exit codes: 0 every input done or skipped, 1 unexpected error, 2 bad input list, option or model
  (nothing was started), 3 some outputs partial (warnings say why), 4 some inputs failed (the
  others were written), 128+N stopped by signal N (130 Ctrl-C)
"""


class _Only:
    """An argument group that takes only some of the flags a shared helper adds to it."""

    def __init__(self, group: argparse._ArgumentGroup, keep=None, drop=frozenset()) -> None:
        self.group, self.keep, self.drop = group, keep, drop

    def add_argument(self, *names: str, **kwargs):
        if any(n in self.drop for n in names) or (self.keep is not None and not set(names) & self.keep):
            return None
        return self.group.add_argument(*names, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtseg batch", description="Segment many videos and streams at once, on Ray (pip install 'rtseg[ray]').",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help=f"a glob ('videos/**/*.mp4'), a folder (searched recursively), a list file "
                             f"({'/'.join(LIST_SUFFIXES)}: one path, glob or URL per line), a video, or a stream URL")
    batch = parser.add_argument_group("batch")
    batch.add_argument("--out-dir", required=True, type=Path, metavar="DIR",
                       help="annotated videos go to DIR/PATH.SUFFIX, PATH being the input's path below its "
                            "glob's fixed folder, its folder, or the folder the inputs share")
    batch.add_argument("--suffix", choices=VIDEO_SUFFIXES,
                       help="output container (default: the input's own when it is one of these, else .mp4)")
    batch.add_argument("--overwrite", action="store_true", help="run inputs whose outputs exist (default: skip them)")
    batch.add_argument("--manifest", type=Path, metavar="FILE.jsonl",
                       help="one JSON line per input (default: DIR/manifest.jsonl)")
    batch.add_argument("--save-masks", dest="masks_dir", type=Path, metavar="DIR",
                       help="per-frame label maps and colour masks, PNG, in DIR/PATH/")
    batch.add_argument("--stats", dest="stats_dir", type=Path, metavar="DIR",
                       help="per-frame timings and class shares, JSON lines, in DIR/PATH.jsonl")
    workers = parser.add_argument_group("workers (Ray)")
    workers.add_argument("--workers", type=cli_types.at_least(1, int), metavar="N",
                         help="worker processes, each with its own model session (default: as many as "
                              "the CPUs (or GPUs) hold, at most one per input)")
    workers.add_argument("--cpus-per-worker", type=cli_types.above(0.0), default=DEFAULT_CPUS_PER_WORKER,
                         metavar="C", help=f"CPUs each worker holds; also its --threads unless given "
                                           f"({DEFAULT_CPUS_PER_WORKER:g})")
    workers.add_argument("--gpus-per-worker", type=cli_types.above(0.0), metavar="G",
                         help="GPUs each worker holds, e.g. 0.25 for four per GPU (default: 1 on GPUs)")
    workers.add_argument("--retries", type=cli_types.at_least(0, int), default=DEFAULT_RETRIES, metavar="N",
                         help=f"run an input again after its worker died, at most N times ({DEFAULT_RETRIES}); "
                              "a bad input is never retried")
    workers.add_argument("--drain-timeout", type=cli_types.above(0.0), default=DEFAULT_DRAIN_TIMEOUT, metavar="S",
                         help=f"after Ctrl-C, seconds running files may take to finish ({DEFAULT_DRAIN_TIMEOUT:g})")
    workers.add_argument("--address", help="join this Ray cluster ('auto', HOST:PORT) instead of starting Ray here")
    workers.add_argument("--num-cpus", type=cli_types.at_least(1, int), metavar="N",
                         help="CPUs a local Ray may use (default: all)")
    workers.add_argument("--dashboard", action="store_true", help="start Ray's dashboard (needs ray[default])")
    run_cli._add_input_flags(_Only(parser.add_argument_group("input"), drop=PER_RUN_INPUT_FLAGS))
    run_cli._add_model_flags(parser.add_argument_group("model"))
    run_cli._add_output_flags(_Only(parser.add_argument_group("output"), keep=SHARED_OUTPUT_FLAGS))
    run_cli._add_look_flags(parser.add_argument_group("look"))
    run_cli._add_instance_flags(parser.add_argument_group("instances"))
    parser.add_argument("--debug", action="store_true", help="show tracebacks, debug logs and the workers' logs")
    return parser


def run(args: argparse.Namespace, *, worker_cls=None) -> int:
    """Run the batch as the flags say; returns the exit code.

    ``worker_cls`` replaces :class:`rtseg.batch.worker.Worker` (tests inject faults with it).
    """
    from rtseg.batch.ray_runtime import import_ray

    ray = import_ray()
    started = time.perf_counter()
    payload = model_payload(args.model)
    jobs = plan_jobs(expand_inputs(args.inputs, exclude=args.out_dir), args.out_dir, suffix=args.suffix,
                     stats_dir=args.stats_dir, masks_dir=args.masks_dir, model_path=payload.path,
                     overwrite=args.overwrite)
    manifest_path = args.manifest or args.out_dir / "manifest.jsonl"
    _check_manifest(manifest_path, jobs)
    options = run_options(args)
    todo = [job for job in jobs if not job.skip]
    skipped = [Outcome(job, "skipped") for job in jobs if job.skip]
    if skipped:
        log.info("%d of %d inputs have their outputs already: skipped (--overwrite runs them again)",
                 len(skipped), len(jobs))
    flags = StopFlags()
    if todo:
        outcomes = skipped + _run_on_ray(ray, args, payload, todo, options, manifest_path, skipped, flags,
                                         worker_cls)
    else:
        with Manifest(manifest_path) as manifest:
            for outcome in skipped:
                manifest.write(outcome)
        outcomes = skipped
    _log_summary(outcomes, time.perf_counter() - started, manifest_path)
    return exit_code(outcomes, flags.signum)


def run_options(args: argparse.Namespace) -> RunOptions:
    """The per-input options, from the same flags as ``rtseg --source ... --output ...``
    (each flag's dest is its option's name); no window, no per-input progress bar."""
    names = {f.name for group in GROUPS.values() for f in fields(group)} - {"output", "stats", "save_masks"}
    given = {key: value for key, value in vars(args).items() if key in names}
    if given.get("threads") in (None, "auto"):  # one thread per CPU the worker holds, not every core of the machine
        given["threads"] = max(1, int(args.cpus_per_worker))
    return options_from_keywords(**given, display=False, progress=False)


def exit_code(outcomes: list[Outcome], signum: int | None = None) -> int:
    """128 + N when stopped by signal N, else 4 when an input failed, 3 when one is partial, else 0."""
    statuses = {outcome.status for outcome in outcomes}
    if signum:
        return 128 + signum
    if "failed" in statuses:
        return EXIT_FAILED
    return EXIT_PARTIAL if "partial" in statuses else EXIT_OK


def _run_on_ray(ray, args, payload, jobs: list[Job], options: RunOptions, manifest_path: Path,
                skipped: list[Outcome], flags: StopFlags, worker_cls) -> list[Outcome]:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from rtseg.batch.ray_runtime import ray_session
    from rtseg.batch.scheduler import Scheduler
    from rtseg.batch.worker import Worker

    with ray_session(ray, address=args.address, num_cpus=args.num_cpus, dashboard=args.dashboard, debug=args.debug):
        plan = plan_workers(ray.cluster_resources(), device=args.device, n_jobs=len(jobs), workers=args.workers,
                            cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker)
        streams = sum(job.stream for job in jobs)
        if streams > plan.count:
            log.warning("%d streams but %d workers: a stream starts only when another input ends", streams,
                        plan.count)
        log.info("%d inputs on %d workers (%s, %g CPUs%s and %d onnxruntime threads each)", len(jobs), plan.count,
                 plan.device, plan.num_cpus, f", {plan.num_gpus:g} GPUs" if plan.num_gpus else "",
                 options.model.threads)
        actor_class = ray.remote(concurrency_groups={"control": 2}, max_restarts=0, max_task_retries=0)(
            worker_cls or Worker).options(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus)
        with Manifest(manifest_path) as manifest, stop_on_signals(flags, args.drain_timeout), \
                logging_redirect_tqdm(), BatchProgress(len(jobs), len(skipped), enabled=not args.quiet) as bar:
            for outcome in skipped:
                manifest.write(outcome)
            scheduler = Scheduler(ray, actor_class, (ray.put(payload), plan.device, options.model.threads),
                                  workers=plan.count, retries=args.retries, drain_timeout=args.drain_timeout,
                                  flags=flags, on_outcome=manifest.write, on_progress=bar.update)
            return scheduler.run(jobs, options)


def _check_manifest(path: Path, jobs: list[Job]) -> None:
    inputs = [Path(job.source) for job in jobs if not job.stream]
    check_outputs_are_not_inputs(inputs, [path])
    for job in jobs:
        if Path(path).resolve() in [p.resolve() for p in job.files]:
            raise SinkError(f"the manifest {path} would be the output of {job.shown}; choose another --manifest")


def _log_summary(outcomes: list[Outcome], seconds: float, manifest: Path) -> None:
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "partial", "failed",
                                                                                  "skipped", "stopped")}
    frames = sum(o.frames_out for o in outcomes)
    text = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "nothing to do"
    log.info("batch: %s; %d frames in %.1f s (%.1f fps); manifest: %s", text, frames, seconds,
             frames / seconds if seconds > 0 else 0.0, manifest)


__doc__ += "\n\n" + textwrap.indent(EXAMPLES, "    ")
