"""How many workers, on which device, with which Ray resources each.

CPU workers ask Ray for ``cpus_per_worker`` CPUs each and run onnxruntime with that many
threads (unless ``--threads`` says otherwise), so actors do not oversubscribe the cores.
GPU workers ask for ``gpus_per_worker`` GPUs (a fraction puts several on one GPU) and must
get onnxruntime's CUDA provider: a worker that would fall back to the CPU fails instead.

Example:
    >>> plan_workers({"CPU": 8.0}, device="auto", n_jobs=10, cpus_per_worker=2)
    WorkerPlan(count=4, device='cpu', num_cpus=2, num_gpus=0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rtseg.errors import OptionError


@dataclass(frozen=True)
class WorkerPlan:
    """``count`` actors on ``device``, each holding ``num_cpus`` CPUs and ``num_gpus`` GPUs."""

    count: int
    device: str
    num_cpus: float
    num_gpus: float


def plan_workers(resources: dict, *, device: str, n_jobs: int, workers: int | None = None,
                 cpus_per_worker: float = 1, gpus_per_worker: float | None = None) -> WorkerPlan:
    """Decide the pool from the cluster's resources (``ray.cluster_resources()``).

    Args:
        resources: the cluster's totals, e.g. ``{"CPU": 16.0, "GPU": 2.0}``.
        device: ``auto`` (CUDA when the cluster has GPUs), ``cpu`` or ``cuda``.
        n_jobs: inputs to run (never more workers than inputs).
        workers: the count asked for; None: as many as the resources hold.
        cpus_per_worker: CPUs each worker holds.
        gpus_per_worker: GPUs each worker holds (0.25: four per GPU); None: 1 on GPUs.

    Raises:
        OptionError: ``cuda`` without a GPU in the cluster, GPUs asked for CPU workers.
    """
    gpus = float(resources.get("GPU", 0.0))
    cpus = float(resources.get("CPU", 1.0))
    if device == "cuda" and gpus <= 0:
        raise OptionError("--device cuda: the Ray cluster has no GPU (ray status shows its resources)")
    on_gpu = device == "cuda" or (device == "auto" and gpus > 0)
    if not on_gpu and gpus_per_worker:
        raise OptionError("--gpus-per-worker needs GPUs: --device cuda, or auto on a cluster with GPUs")
    per_gpu = (gpus_per_worker or 1.0) if on_gpu else 0.0
    fits = math.floor(cpus / cpus_per_worker + 1e-9) if cpus_per_worker else n_jobs
    if on_gpu:
        fits = min(fits, math.floor(gpus / per_gpu + 1e-9))
    count = workers if workers is not None else max(1, fits)
    return WorkerPlan(max(1, min(count, n_jobs)), "cuda" if on_gpu else "cpu", cpus_per_worker, per_gpu)
