"""The batch's progress display: files done / running / failed and the aggregate fps."""

from __future__ import annotations

import sys
import time

from rtseg.batch.scheduler import Progress

REFRESH_SECONDS = 0.5


class BatchProgress:
    """A tqdm bar over inputs; a no-op when disabled.

    Example:
        >>> with BatchProgress(total=3, skipped=1, enabled=False) as bar:
        ...     bar.update(Progress(total=3, done=1))
    """

    def __init__(self, total: int, skipped: int = 0, enabled: bool = True) -> None:
        self.skipped = skipped
        self._bar = None
        self._shown = 0
        self._refreshed = 0.0
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="file", desc="rtseg batch", dynamic_ncols=True, file=sys.stderr)

    def update(self, progress: Progress) -> None:
        if self._bar is None:
            return
        ended = progress.done + progress.partial + progress.failed + progress.stopped
        now = time.monotonic()
        if ended == self._shown and now - self._refreshed < REFRESH_SECONDS:
            return
        self._refreshed = now
        if ended > self._shown:
            self._bar.update(ended - self._shown)
            self._shown = ended
        counts = {"done": progress.done, "running": progress.running, "failed": progress.failed}
        for name, value in (("partial", progress.partial), ("stopped", progress.stopped),
                            ("skipped", self.skipped)):
            if value:
                counts[name] = value
        counts["fps"] = f"{progress.fps:.1f}"
        self._bar.set_postfix(counts, refresh=True)

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()
