"""What an attempt that died leaves behind, and how it is removed before the next attempt.

Every file output is written to a hidden temp file beside its final name and renamed when
finished (:mod:`rtseg.realtime.sinks.atomic`), so a worker killed mid-file never leaves a
half-written final name, only its hidden temp files. The driver runs one attempt of an input
at a time, so when an attempt starts (or the driver has killed one) these are stale.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path

from rtseg.batch.plan import Job

log = logging.getLogger(__name__)


def remove_leftovers(job: Job) -> list[Path]:
    """Delete the hidden temp files of earlier attempts at ``job``'s outputs; returns them."""
    found = []
    for final in job.files:
        found += _matches(final.parent, f".{glob.escape(final.name)}.*.tmp{glob.escape(final.suffix)}")
    if job.masks is not None:
        found += _matches(job.masks, ".*.tmp.*")
    for path in found:
        path.unlink(missing_ok=True)
        log.debug("removed %s, left by an attempt that did not finish", path)
    return found


def remove_stale_partials(job: Job) -> list[Path]:
    """After a finished attempt: delete ``NAME.partial.SUFFIX`` kept by an earlier failed run,
    so an input never has two outputs."""
    stale = [final.with_name(f"{final.stem}.partial{final.suffix}") for final in job.files]
    stale = [p for p in stale if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _matches(folder: Path, pattern: str) -> list[Path]:
    return [Path(p) for p in glob.glob(str(Path(glob.escape(str(folder))) / pattern))]
