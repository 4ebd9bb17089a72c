"""The preview's HTTP server: its four routes, the Host and token checks, the stream loop.

Safe by default, unlike most MJPEG demos: it binds 127.0.0.1 unless told otherwise, every
request needs the run's token (compared in constant time), the Host header must name this
machine (the DNS-rebinding guard, as Jupyter Server's ``check_host``), only GET and HEAD on
its own routes are answered (no file is ever served from disk), nothing is cached, viewers
are capped, and a viewer that does not read is dropped after ``client_timeout`` seconds.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import queue
import re
import secrets
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from rtseg.errors import SinkError
from rtseg.realtime.controls import VIEW_MODES, Controls
from rtseg.realtime.options import parse_address
from rtseg.realtime.preview.hub import FrameHub, Jpeg

log = logging.getLogger(__name__)

BOUNDARY = "rtsegframe"
RESEND_INTERVAL = 1.0  # browsers show an MJPEG part only when the next one arrives
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
PAGE_POLICY = ("default-src 'none'; img-src 'self'; connect-src 'self'; script-src 'unsafe-inline'; "
               "style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
ROUTES = {"/": "_page", "/stream.mjpg": "_stream", "/status.json": "_status", "/control": "_control"}


def host_allowed(header: str | None, bind_host: str) -> bool:
    """True when a request's Host header names this server: ``localhost``, a loopback
    address, or the bind host; when bound to every interface, also any IP address and this
    machine's own names. Any other name may be DNS rebinding: refused.

    Example:
        >>> host_allowed("localhost:8080", "127.0.0.1"), host_allowed("evil.example:8080", "127.0.0.1")
        (True, False)
    """
    if not header:
        return False
    host = re.match(r"^(.*?)(:\d+)?$", header.strip()).group(1).strip("[]").lower()  # Jupyter's regex
    if host == "localhost" or host == bind_host.lower():
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        return True
    if bind_host in WILDCARD_HOSTS:
        return address is not None or host in _own_names()
    return False


def _own_names() -> set[str]:
    name = socket.gethostname().lower()
    return {name, f"{name}.local", socket.getfqdn().lower()}


class PreviewServer:
    """Serve the page, the MJPEG stream, the run's status and its controls, on a thread.

    Args:
        address: ``[HOST:]PORT``; HOST defaults to 127.0.0.1, PORT 0 picks a free port.
        hub: where the frames come from.
        controls: what ``/control`` changes.
        status: called for each ``/status.json``; returns the run's figures.
        class_names: the model's classes (for the hidden-classes controls).
        max_streams: viewers at once; more get 503.
        client_timeout: seconds a viewer may take to read (or send) before it is dropped.

    Raises:
        SinkError: the address cannot be bound (in use, not this machine's).
    """

    def __init__(self, address: str, hub: FrameHub, controls: Controls, status: Callable[[], dict],
                 class_names: tuple[str, ...], *, max_streams: int = 8, client_timeout: float = 5.0,
                 max_connections: int = 32) -> None:
        host, port = parse_address(address)
        self.bind_host, self.hub, self.controls, self.status = host, hub, controls, status
        self.class_names = tuple(class_names)
        self.token = secrets.token_urlsafe(24)
        self.client_timeout = client_timeout
        self.stream_slots = threading.BoundedSemaphore(max_streams)
        self.connection_slots = threading.BoundedSemaphore(max_connections)
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        server_class = _Server6 if ":" in host else _Server
        try:
            self.httpd = server_class((host, port), _Handler)
        except OSError as exc:
            raise SinkError(f"cannot serve the preview on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.preview = self
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="rtseg-preview", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def url(self) -> str:
        """The address to open, token included."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.bind_host, self.bind_host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/?token={self.token}"

    def token_ok(self, given: str) -> bool:
        """Constant-time comparison with the run's token."""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def state(self) -> dict:
        """What ``/status.json`` answers: the run's figures, the controls, classes and views."""
        c = self.controls
        return {"status": self.status(), "classes": list(self.class_names), "views": list(VIEW_MODES),
                "controls": {"view": c.view, "alpha": c.alpha, "hidden": sorted(c.hidden), "paused": c.paused}}

    def apply(self, query: dict[str, list[str]]) -> None:
        """Apply ``/control`` parameters to the controls; ValueError (nothing applied) when one is bad."""
        changes: list[Callable[[], object]] = []
        for key, values in query.items():
            value = values[-1]
            if key == "token":
                continue
            if key == "view":
                if value not in VIEW_MODES:
                    raise ValueError(f"view must be one of {', '.join(VIEW_MODES)}")
                changes.append(lambda v=value: self.controls.set_view(v))
            elif key == "alpha":
                alpha = float(value)
                if not 0.0 <= alpha <= 1.0:
                    raise ValueError("alpha must be between 0 and 1")
                changes.append(lambda a=alpha: self.controls.set_alpha(a))
            elif key == "hidden":
                hidden = {int(i) for i in value.split(",") if i.strip()}
                if any(not 0 <= i < len(self.class_names) for i in hidden):
                    raise ValueError(f"hidden classes must be indices 0..{len(self.class_names) - 1}")
                changes.append(lambda h=hidden: self.controls.set_hidden(h))
            elif key == "paused":
                changes.append(_pause_change(self.controls, value))
            else:
                raise ValueError(f"unknown control {key!r}")
        for change in changes:
            change()

    def track(self, connection: socket.socket, add: bool) -> None:
        """Remember open connections, so that :meth:`close` can end them at once."""
        with self._lock:
            (self._connections.add if add else self._connections.discard)(connection)

    def close(self) -> None:
        """Stop serving and end every open connection (a blocked send returns at once)."""
        if self._closed:
            return
        self._closed = True
        self.hub.close()
        self.httpd.shutdown()  # serve_forever returns within its poll interval
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.httpd.server_close()
        self._thread.join(timeout=2.0)


def _pause_change(controls: Controls, value: str) -> Callable[[], object]:
    value = value.lower()
    if value == "toggle":
        return controls.toggle_pause
    if value in ("1", "true", "on", "0", "false", "off"):
        return lambda: controls.set_paused(value in ("1", "true", "on"))
    raise ValueError("paused must be 1, 0 or toggle")


class _Server(ThreadingHTTPServer):
    """One thread per connection (daemon), at most ``max_connections`` at once."""

    daemon_threads = True
    preview: PreviewServer

    def process_request(self, request, client_address) -> None:
        if not self.preview.connection_slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the cap: closed without an answer
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        self.preview.track(request, True)
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.preview.track(request, False)
            self.preview.connection_slots.release()

    def handle_error(self, request, client_address) -> None:
        log.debug("preview: error serving %s", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """GET and HEAD on the four routes; everything else is refused."""

    server: _Server
    server_version = "rtseg-preview"
    _extra_headers: dict[str, str] = {}

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        self.timeout = self.server.preview.client_timeout  # applied to the socket by setup()
        super().setup()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        log.debug("preview: %s %s", self.address_string(), format % args)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in self._extra_headers.items():
            self.send_header(name, value)
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._route(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(body=False)

    def _not_allowed(self) -> None:
        self._extra_headers = {"Allow": "GET, HEAD"}
        self.send_error(405, "Method Not Allowed")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_CONNECT = do_TRACE = _not_allowed  # noqa: N815

    def _route(self, body: bool) -> None:
        preview = self.server.preview
        if not host_allowed(self.headers.get("Host"), preview.bind_host):
            self.send_error(403, "Host not allowed")
            return
        url = urlsplit(self.path)
        handler = ROUTES.get(url.path)
        if handler is None:
            self.send_error(404)
            return
        query = parse_qs(url.query, keep_blank_values=True)
        if not preview.token_ok(query.get("token", [""])[-1]):
            self.send_error(403, "Missing or wrong token")
            return
        getattr(self, handler)(query, body)

    def _send(self, content_type: str, data: bytes, body: bool, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _page(self, query: dict, body: bool) -> None:
        self._send("text/html; charset=utf-8", _page_html(), body, {"Content-Security-Policy": PAGE_POLICY})

    def _status(self, query: dict, body: bool) -> None:
        try:
            data = json.dumps(self.server.preview.state()).encode()
        except Exception:  # noqa: BLE001 - a failing status callable is a 500, not a dead thread
            log.debug("preview: status failed", exc_info=True)
            self.send_error(500, "Status unavailable")
            return
        self._send("application/json", data, body)

    def _control(self, query: dict, body: bool) -> None:
        if body:  # HEAD changes nothing
            try:
                self.server.preview.apply(query)
            except ValueError as exc:
                self.send_error(400, "Bad control", str(exc))  # the status line never echoes input
                return
        self._status(query, body)

    def _stream(self, query: dict, body: bool) -> None:
        preview = self.server.preview
        if not preview.stream_slots.acquire(blocking=False):
            self.send_error(503, "Too many viewers")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self._stream_parts(preview.hub)
        except OSError:  # the viewer left, or did not read within client_timeout, or we closed
            log.debug("preview: viewer %s dropped", self.address_string())
        finally:
            preview.stream_slots.release()

    def _stream_parts(self, hub: FrameHub) -> None:
        with hub.subscribe() as inbox:
            jpeg = hub.latest()
            while not hub.closed.is_set():
                if jpeg is not None:
                    self._write_part(jpeg)
                try:
                    jpeg = inbox.get(timeout=RESEND_INTERVAL)
                except queue.Empty:  # paused or idle: re-send the newest so the browser shows it
                    jpeg = hub.latest()

    def _write_part(self, jpeg: Jpeg) -> None:
        head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg.data)}\r\n"
                f"X-Frame-Index: {jpeg.index}\r\n\r\n").encode()
        self.wfile.write(head + jpeg.data + b"\r\n")


_PAGE: bytes | None = None


def _page_html() -> bytes:
    global _PAGE
    if _PAGE is None:
        _PAGE = resources.files("rtseg.realtime.preview").joinpath("page.html").read_bytes()
    return _PAGE
