"""Name every output before anything is submitted, and check the names.

The driver decides each output's path, so a retried or duplicated call writes the same
name (through a temp file and ``os.replace``: never two outputs, never a half-written final
name). Outputs mirror the inputs' folders under ``--out-dir``; two inputs that would write
the same output, or an output that is an input or the model (same file, also through links),
stop the batch before it starts. An output that exists already is skipped unless
``overwrite``: re-running a batch resumes it.

Example:
    >>> jobs = plan_jobs(expand_inputs(["videos/"]), Path("annotated"))  # doctest: +SKIP
    >>> [(j.source, str(j.output), j.skip) for j in jobs]                  # doctest: +SKIP
    [('videos/a/clip.mp4', 'annotated/a/clip.mp4', False), ...]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from rtseg.batch.inputs import BatchInput
from rtseg.errors import OptionError, SinkError
from rtseg.realtime.outputs import VIDEO_SUFFIXES, check_outputs_are_not_inputs

DEFAULT_SUFFIX = ".mp4"


@dataclass(frozen=True)
class Job:
    """One input and every file it will write.

    Attributes:
        source: what the worker opens (a path or URL).
        shown: the source as printed and in the manifest (no password).
        output: the annotated video.
        stats: per-frame JSON lines file (``--stats DIR``), or None.
        masks: per-frame mask folder (``--save-masks DIR``), or None.
        stream: a URL, stopped (and kept) when the batch is stopped.
        skip: every file output exists already (and ``overwrite`` is off).
    """

    source: str
    shown: str
    output: Path
    stats: Path | None = None
    masks: Path | None = None
    stream: bool = False
    skip: bool = False

    @property
    def files(self) -> list[Path]:
        """The single-file outputs (written through temp files): the video and the stats."""
        return [p for p in (self.output, self.stats) if p is not None]


def plan_jobs(inputs: list[BatchInput], out_dir: Path, *, suffix: str | None = None, stats_dir: Path | None = None,
              masks_dir: Path | None = None, model_path: Path | None = None, overwrite: bool = False) -> list[Job]:
    """One :class:`Job` per input, its outputs named and checked.

    Args:
        inputs: from :func:`rtseg.batch.inputs.expand_inputs`.
        out_dir: annotated videos go to ``out_dir/REL.SUFFIX``.
        suffix: the output container (``.mp4``, ``.mkv``, ``.mov``, ``.m4v``); None: the
            input's own when it is one of these, else ``.mp4``.
        stats_dir: per-frame stats go to ``stats_dir/REL.jsonl``.
        masks_dir: masks go to the folder ``masks_dir/REL/``.
        model_path: the model file, which no output may be.
        overwrite: run inputs whose outputs exist (else they are skipped).

    Raises:
        OptionError: an unsupported ``suffix``.
        SinkError: two inputs would write the same output, or an output is an input or the model.
    """
    if suffix is not None and suffix.lower() not in VIDEO_SUFFIXES:
        raise OptionError(f"unsupported output suffix {suffix!r}: use one of {', '.join(VIDEO_SUFFIXES)}")
    jobs = []
    for item in inputs:
        own = PurePosixPath(urlsplit(item.source).path if item.stream else item.source).suffix.lower()
        ext = suffix or (own if own in VIDEO_SUFFIXES else DEFAULT_SUFFIX)
        output = out_dir / f"{item.rel}{ext}"
        stats = stats_dir / f"{item.rel}.jsonl" if stats_dir is not None else None
        masks = masks_dir / str(item.rel) if masks_dir is not None else None
        job = Job(item.source, item.shown, output, stats, masks, item.stream)
        done = all(p.is_file() for p in job.files) and (masks is None or masks.is_dir())
        jobs.append(Job(**{**job.__dict__, "skip": done and not overwrite}))
    check_names_are_distinct(jobs)
    files = [Path(j.source) for j in jobs if not j.stream] + ([Path(model_path)] if model_path else [])
    check_outputs_are_not_inputs(files, [p for j in jobs for p in [*j.files, *([j.masks] if j.masks else [])]])
    return jobs


def check_names_are_distinct(jobs: list[Job]) -> None:
    """Refuse two inputs writing one name (compared resolved, before any of them exists)."""
    owner: dict[str, str] = {}
    for job in jobs:
        for path in [*job.files, *([job.masks] if job.masks else [])]:
            key = os.path.normcase(os.path.realpath(path))
            if key in owner and owner[key] != job.shown:
                raise SinkError(f"{owner[key]} and {job.shown} would both write {path}; "
                                "rename one of them")
            owner[key] = job.shown
