"""Bounded hand-over between pipeline threads: every get and put has a timeout.

Two policies, chosen per source: ``latest`` (live sources: a full queue drops its oldest
item, so the consumer always gets the newest frame) and ``block`` (files: the producer
waits, nothing is dropped). Waits wake every ``POLL`` seconds to honour the stop event.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

POLL = 0.05
END = object()  # end-of-stream marker, always delivered last
POLICIES = ("latest", "block")


def put(q: queue.Queue, item: Any, stop: threading.Event, policy: str = "block",
        on_drop: Callable[[Any], None] | None = None) -> bool:
    """Put ``item``; returns False if ``stop`` was set first. ``latest`` evicts the oldest."""
    if policy not in POLICIES:
        raise ValueError(f"queue policy must be one of {POLICIES}, got {policy!r}")
    while not stop.is_set():
        if policy == "latest":
            try:
                q.put_nowait(item)
                return True
            except queue.Full:
                try:
                    dropped = q.get_nowait()
                except queue.Empty:
                    continue
                if dropped is END:  # never lose the end marker: put it back and stop here
                    q.put_nowait(dropped)
                    return False
                if on_drop is not None:
                    on_drop(dropped)
                continue
        try:
            q.put(item, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False


def get(q: queue.Queue, stop: threading.Event) -> Any:
    """Next item, or END once ``stop`` is set."""
    while not stop.is_set():
        try:
            return q.get(timeout=POLL)
        except queue.Empty:
            continue
    return END
