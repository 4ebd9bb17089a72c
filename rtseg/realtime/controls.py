"""What people and the process ask of a running pipeline: the view, pause, and stop.

One small thread-safe object, written by the window's keys, signal handlers, the browser
preview and the pipeline itself, and read by the renderer and the pipeline's threads.
Stopping has two levels, as in uvicorn (``should_exit`` / ``force_exit``):

* :meth:`Controls.request_stop` drains: stop reading, finish the frames in flight,
  finalize the outputs;
* :meth:`Controls.force_stop` stops every thread now (outputs are still closed).

Each records its reason (``"key"``, ``"window closed"``, ``"signal SIGINT"``, ``"browser"``,
``"error"``, ...); the first reason given is kept.
"""

from __future__ import annotations

import threading

VIEW_MODES = ("overlay", "mask", "side-by-side", "contours")


class Controls:
    """Switches shared by every thread of one run.

    Example:
        >>> controls = Controls(view="mask")
        >>> controls.next_view()
        'side-by-side'
        >>> controls.request_stop("key")
        >>> controls.draining.is_set(), controls.forced.is_set(), controls.stop_reason
        (True, False, 'key')
    """

    def __init__(self, view: str = "overlay", alpha: float = 0.5, paused: bool = False) -> None:
        self._lock = threading.Lock()
        self._view = _check_view(view)
        self._alpha = _check_alpha(alpha)
        self._paused = paused
        self._hidden: frozenset[int] = frozenset()
        self.draining = threading.Event()  # stop reading, finish in-flight frames
        self.forced = threading.Event()  # every thread returns now
        self.stop_reason: str | None = None

    # -- what to draw -----------------------------------------------------------------------
    @property
    def view(self) -> str:
        return self._view

    def set_view(self, mode: str) -> None:
        """Show ``mode`` (one of :data:`VIEW_MODES`) from the next frame on."""
        self._view = _check_view(mode)

    def next_view(self) -> str:
        """Cycle to the next view mode and return it."""
        with self._lock:
            self._view = VIEW_MODES[(VIEW_MODES.index(self._view) + 1) % len(VIEW_MODES)]
            return self._view

    @property
    def alpha(self) -> float:
        return self._alpha

    def set_alpha(self, alpha: float) -> None:
        """Mask opacity for the overlay, 0..1."""
        self._alpha = _check_alpha(alpha)

    @property
    def hidden(self) -> frozenset[int]:
        """Class indices hidden live (on top of the run's ``--classes``/``--hide``)."""
        return self._hidden

    def set_hidden(self, indices) -> None:
        """Hide these class indices (0..255) from the next frame on; an empty set shows all."""
        hidden = frozenset(int(i) for i in indices)
        if any(not 0 <= i < 256 for i in hidden):
            raise ValueError(f"class indices must be 0..255, got {sorted(hidden)}")
        self._hidden = hidden

    # -- pause --------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool) -> None:
        self._paused = bool(paused)

    def toggle_pause(self) -> bool:
        """Pause or resume; returns the new state."""
        with self._lock:
            self._paused = not self._paused
            return self._paused

    # -- stop ---------------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Drain and finish: stop reading, complete the frames in flight, finalize outputs."""
        self._record(reason)
        self.draining.set()

    def force_stop(self, reason: str) -> None:
        """Stop every thread now (outputs are still closed and finalized)."""
        self._record(reason)
        self.draining.set()
        self.forced.set()

    @property
    def stopping(self) -> bool:
        """True once any stop was requested."""
        return self.draining.is_set()

    def _record(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason


def _check_view(mode: str) -> str:
    if mode not in VIEW_MODES:
        raise ValueError(f"view mode must be one of {', '.join(VIEW_MODES)}, got {mode!r}")
    return mode


def _check_alpha(alpha: float) -> float:
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    return float(alpha)
