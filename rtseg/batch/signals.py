"""Ctrl-C, SIGTERM and SIGHUP on the batch driver: the first stops submitting and lets the
running inputs finish (within the drain deadline), the second stops the workers at once."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopFlags:
    """What the signals asked for: ``requested`` (drain), then ``forced`` (now).

    Example:
        >>> flags = StopFlags()
        >>> flags.ask(2); flags.requested.is_set(), flags.forced.is_set(), flags.signum
        (True, False, 2)
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.forced = threading.Event()
        self.signum: int | None = None

    def ask(self, signum: int) -> None:
        self.signum = self.signum or signum
        (self.forced if self.requested.is_set() else self.requested).set()


@contextlib.contextmanager
def stop_on_signals(flags: StopFlags, drain_timeout: float) -> Iterator[StopFlags]:
    """Route the stop signals to ``flags`` while inside (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield flags
        return

    def on_signal(signum: int, _frame: object) -> None:
        again = flags.requested.is_set()
        flags.ask(signum)
        name = signal.Signals(signum).name
        if again:
            log.warning("%s again: stopping the workers now", name)
        else:
            log.warning("%s: no new inputs; waiting up to %g s for the running ones (again to stop now)",
                        name, drain_timeout)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield flags
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
