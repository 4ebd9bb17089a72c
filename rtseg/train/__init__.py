"""Training and evaluation: ``rtseg train`` / ``rtseg eval`` and their Python API.

The loop lives in :mod:`rtseg.train.loop`, scoring in :mod:`rtseg.train.evaluation`; the
names here are functions (no submodule shares their names).
"""

from __future__ import annotations

from typing import Any


def train(data: str, out: str, **options: Any) -> dict:
    """Train with the same options as ``rtseg train`` (underscored names); returns a summary.

    Example:
        >>> train("camvid:../shared/data/camvid", "runs/try", arch="effl0_lraspp", epochs=1)  # doctest: +SKIP
    """
    from rtseg.train.cli import build_parser
    from rtseg.train.loop import main

    args = build_parser().parse_args(["--data", data, "--out", str(out)])
    for key, value in options.items():
        if not hasattr(args, key):
            raise TypeError(f"train() got an unknown option {key!r}")
        setattr(args, key, value)
    return main(args)


def evaluate(model: str, data: str, split: str = "val", **options: Any):
    """Evaluate a checkpoint or .onnx model; see :func:`rtseg.train.evaluation.evaluate_model`."""
    from rtseg.train.evaluation import evaluate_model

    return evaluate_model(model, data, split, **options)
