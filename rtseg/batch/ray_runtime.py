"""Ray, imported and started only by ``rtseg batch``.

Locally it starts Ray on this machine with the cores it has and no dashboard (unless
asked); ``address`` joins an existing cluster instead. A session that is already running
(a notebook, the tests) is used as it is and left running.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import socket
from collections.abc import Iterator

from rtseg.errors import MissingExtraError, RtsegError, first_line
from rtseg.extras import require_extra


def import_ray():
    """The ``ray`` module, or one line naming what to install.

    Raises:
        MissingExtraError: ``rtseg batch needs ray, not installed: pip install 'rtseg[ray]'``.
    """
    require_extra("ray", "rtseg batch")
    import ray

    return ray


@contextlib.contextmanager
def ray_session(ray, *, address: str | None = None, num_cpus: int | None = None, dashboard: bool = False,
                debug: bool = False) -> Iterator[bool]:
    """Connect for the duration of the ``with`` block; yields True when this call started Ray.

    Raises:
        RtsegError: the cluster at ``address`` cannot be reached, or Ray does not start.
    """
    if ray.is_initialized():
        yield False
        return
    if dashboard and importlib.util.find_spec("aiohttp") is None:
        raise MissingExtraError("--dashboard needs Ray's dashboard, not installed: pip install 'ray[default]'")
    kwargs = {"logging_level": logging.INFO if debug else logging.ERROR, "log_to_driver": debug}
    if address:
        check_reachable(address)
        kwargs["address"] = address
    else:
        kwargs.update(num_cpus=num_cpus, include_dashboard=dashboard)
    try:
        ray.init(**kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError ...
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise RtsegError(f"cannot start or join {where}: {first_line(exc)}") from None
    try:
        yield True
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in one line when a ``HOST:PORT`` address does not answer (Ray itself retries for
    a minute or more); ``auto`` and ``ray://`` addresses are left to Ray.

    Raises:
        RtsegError: nothing listens there.
    """
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RtsegError(f"cannot reach the Ray cluster at {address}: {first_line(exc)}") from None
