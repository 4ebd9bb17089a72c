"""The terminal progress bar: frames written, with FPS and ETA (total known for files)."""

from __future__ import annotations

import sys
from pathlib import Path

from rtseg.realtime.sources import Source
from rtseg.realtime.stats import PipelineStats


class ProgressBar:
    """A tqdm bar over frames written, fed from the run's stats; a no-op when disabled.

    Example:
        >>> with ProgressBar(source, enabled=True) as bar:  # doctest: +SKIP
        ...     bar.update(stats)
    """

    def __init__(self, source: Source, enabled: bool = True) -> None:
        self._bar = None
        self._shown = 0
        if enabled:
            from tqdm import tqdm

            total = None if source.live else source.info.frame_count
            self._bar = tqdm(total=total, unit="frame", desc=Path(str(source.info.name)).name[:30],
                             dynamic_ncols=True, file=sys.stderr)

    def update(self, stats: PipelineStats) -> None:
        if self._bar is not None and stats.written > self._shown:
            self._bar.update(stats.written - self._shown)
            self._shown = stats.written
            self._bar.set_postfix(dropped=stats.dropped, refresh=False)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()
