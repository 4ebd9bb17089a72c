"""The batch's record: one JSON line per input, written as each input ends.

Fields: ``input``, ``output``, ``status`` (``done``, ``partial``, ``failed``, ``skipped``,
``stopped``), ``frames_in``, ``frames_out``, ``seconds``, ``error`` (the one-line reason, or
null), ``attempts`` (runs started; more than 1 after a worker died) and ``warnings``.
Lines go to a hidden temp file beside the manifest, flushed one by one, which takes the
manifest's name when the batch ends (also after Ctrl-C); after ``kill -9`` the temp file
holds every input finished until then. A batch that fails before any input started (no
worker could start) leaves no manifest.

Example:
    >>> with Manifest(Path("annotated/manifest.jsonl")) as manifest:  # doctest: +SKIP
    ...     manifest.write(Outcome(job, "done", frames_in=221, frames_out=221, seconds=9.8))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rtseg.batch.plan import Job
from rtseg.realtime.sinks.atomic import publish, temp_path_beside

STATUSES = ("done", "partial", "failed", "skipped", "stopped")


@dataclass
class Outcome:
    """How one input ended."""

    job: Job
    status: str
    frames_in: int = 0
    frames_out: int = 0
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 0
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def record(self) -> dict:
        """The manifest line."""
        return {"input": self.job.shown, "output": str(self.job.output), "status": self.status,
                "frames_in": self.frames_in, "frames_out": self.frames_out, "seconds": round(self.seconds, 3),
                "error": self.error, "attempts": self.attempts, "warnings": self.warnings}


class Manifest:
    """A JSON-lines manifest written through a temp file; a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = temp_path_beside(self.path)
        self._file = open(self._temp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.ran = 0  # inputs that were started (not skipped)

    def write(self, outcome: Outcome) -> None:
        self._file.write(json.dumps(outcome.record(), ensure_ascii=False) + "\n")
        self._file.flush()
        self.ran += outcome.status != "skipped"

    def close(self, keep: bool = True) -> None:
        """Give the manifest its name; ``keep=False`` discards it instead."""
        if not self._file.closed:
            self._file.close()
            if keep:
                publish(self._temp, self.path)
            else:
                self._temp.unlink(missing_ok=True)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, exc_type, *exc_info: object) -> None:
        self.close(keep=exc_type is None or self.ran > 0)  # a batch that failed to start leaves none


def read_manifest(path: Path) -> list[dict]:
    """The records of a manifest file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
