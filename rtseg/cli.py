"""Command line: ``rtseg [OPTIONS]`` runs the live pipeline; ``rtseg COMMAND ...`` runs a tool.

Each command lives in its own module exposing ``build_parser() -> argparse.ArgumentParser``
and ``run(args) -> int``; this module only dispatches and turns errors into one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rtseg.errors import RtsegError

# command name -> module with build_parser() and run(args)
COMMANDS = {
    "bench": "rtseg.realtime.bench_cli",
    "doctor": "rtseg.doctor",
    "export": "rtseg.export.cli",
    "models": "rtseg.export.models_cli",
    "train": "rtseg.train.cli",
    "eval": "rtseg.train.eval_cli",
    "calibrate": "rtseg.export.calibrate_cli",
    "batch": "rtseg.batch.cli",
}
RUN_MODULE = "rtseg.realtime.run_cli"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rtseg`` command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        module_name, argv = COMMANDS[argv[0]], argv[1:]
    else:
        module_name = RUN_MODULE
    module = importlib.import_module(module_name)
    parser: argparse.ArgumentParser = module.build_parser()
    if module_name == RUN_MODULE:
        parser.epilog = (parser.epilog or "") + "\n\nother commands: " + ", ".join(
            f"rtseg {name} --help" for name in COMMANDS)
    try:
        args = parser.parse_args(argv)
    except RtsegError as exc:  # e.g. a --config file that cannot be read
        print(f"rtseg: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "debug", False)
        else logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="rtseg: %(message)s",
    )
    try:
        return int(module.run(args) or 0)
    except RtsegError as exc:
        print(f"rtseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rtseg: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback wall
        if getattr(args, "debug", False):
            raise
        print(f"rtseg: error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
