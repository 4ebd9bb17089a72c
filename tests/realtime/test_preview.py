"""The browser preview (--serve): HTTP checks on 127.0.0.1, the frame fan-out, and a real
headless Chromium watching a real run (issue #13, section 1)."""

from __future__ import annotations

import http.client
import json
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import rtseg
from rtseg.errors import SinkError
from rtseg.realtime.controls import Controls
from rtseg.realtime.frame import Frame
from rtseg.realtime.preview import PreviewSink, preview_status
from rtseg.realtime.preview import sink as sink_module
from rtseg.realtime.preview.server import BOUNDARY, host_allowed
from rtseg.realtime.stats import PipelineStats

from factories import make_video

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("road", "sky", "car")
URL_LINE = re.compile(r"rtseg: preview at (http://127\.0\.0\.1:(\d+)/\?token=([\w-]+))")


@pytest.fixture
def controls() -> Controls:
    return Controls()


@pytest.fixture
def preview(controls: Controls) -> Iterator[PreviewSink]:
    sink = PreviewSink("0", controls, lambda: {"model": "test", "written": 7}, CLASSES,
                       max_fps=0, max_streams=3, client_timeout=1.0)
    try:
        yield sink
    finally:
        sink.close()


def request(sink: PreviewSink, path: str, *, token: str | None = "", method: str = "GET",
            host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; ``token=""`` means the sink's own token."""
    if token is not None:
        token = token or sink.server.token
        path += ("&" if "?" in path else "?") + f"token={token}"
    conn = http.client.HTTPConnection("127.0.0.1", sink.server.port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def open_stream(sink: PreviewSink) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", sink.server.port, timeout=5)
    conn.request("GET", f"/stream.mjpg?token={sink.server.token}")
    return conn.getresponse()


def read_part(response: http.client.HTTPResponse) -> tuple[int, bytes]:
    """(frame index, JPEG bytes) of the next multipart part."""
    line = response.fp.readline()
    while line in (b"\r\n", b"\n"):
        line = response.fp.readline()
    assert line.strip() == f"--{BOUNDARY}".encode(), line
    headers = {}
    while (line := response.fp.readline().strip()):
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    data = response.fp.read(int(headers["content-length"]))
    assert headers["content-type"] == "image/jpeg" and data[:2] == b"\xff\xd8"
    return int(headers["x-frame-index"]), data


def frame(index: int, image: np.ndarray | None = None) -> tuple[Frame, np.ndarray]:
    image = image if image is not None else np.full((48, 64, 3), index % 256, np.uint8)
    return Frame(image, index), image


def wait_for(condition, timeout: float = 5.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}")
        time.sleep(0.02)


# -- access checks ----------------------------------------------------------------------------
def test_binds_loopback_by_default_and_prints_the_url(controls: Controls, capsys) -> None:
    sink = PreviewSink("0", controls, dict, CLASSES)
    try:
        assert sink.server.httpd.server_address[0] == "127.0.0.1" and sink.server.port > 0
        match = URL_LINE.search(capsys.readouterr().err)
        assert match and match.group(1) == sink.url and int(match.group(2)) == sink.server.port
        assert len(match.group(3)) >= 32  # 24 random bytes, URL-safe base64
    finally:
        sink.close()


def test_token_is_required(preview: PreviewSink) -> None:
    status, _, body = request(preview, "/")
    assert status == 200 and b'<img id="stream"' in body
    for path in ("/", "/stream.mjpg", "/status.json", "/control?view=mask"):
        assert request(preview, path, token=None)[0] == 403, path
        assert request(preview, path, token="x" * 32)[0] == 403, path
    assert preview.server.controls.view == "overlay"


@pytest.mark.parametrize("host, allowed", [
    ("evil.example.com", False), ("evil.example.com:{port}", False), ("127.0.0.1.nip.io:{port}", False),
    ("localhost:{port}", True), ("127.0.0.1:{port}", True), ("[::1]:{port}", True), ("", False),
])
def test_host_header_must_name_this_machine(preview: PreviewSink, host: str, allowed: bool) -> None:
    """A page on another site whose DNS name is rebound to 127.0.0.1 sends its own Host: 403."""
    status, _, _ = request(preview, "/status.json", host=host.format(port=preview.server.port))
    assert status == (200 if allowed else 403)


def test_host_check_on_other_bind_addresses() -> None:
    assert host_allowed("192.168.1.5:8080", "192.168.1.5")
    assert not host_allowed("attacker.example:8080", "192.168.1.5")
    assert host_allowed("10.0.0.7:8080", "0.0.0.0")  # an IP literal cannot be rebound
    assert not host_allowed("attacker.example:8080", "0.0.0.0")
    assert host_allowed(f"{socket.gethostname()}:8080", "0.0.0.0")


@pytest.mark.parametrize("method, code", [("POST", 405), ("PUT", 405), ("DELETE", 405), ("BREW", 501)])
def test_only_get_and_head(preview: PreviewSink, method: str, code: int) -> None:
    status, headers, _ = request(preview, "/control?view=mask", method=method)
    assert status == code
    if code == 405:
        assert headers["Allow"] == "GET, HEAD"
    assert preview.server.controls.view == "overlay"


def test_head_sends_no_body_and_changes_nothing(preview: PreviewSink) -> None:
    status, headers, body = request(preview, "/control?view=mask", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Type"] == "application/json"
    assert preview.server.controls.view == "overlay"


@pytest.mark.parametrize("path", ["/etc/passwd", "/../rtseg/__init__.py", "/page.html", "/index.html",
                                  "/favicon.ico", "/stream.mjpg/", "/status.json/x"])
def test_only_its_own_routes(preview: PreviewSink, path: str) -> None:
    assert request(preview, path)[0] == 404


def test_nothing_is_cached(preview: PreviewSink) -> None:
    for path, token in (("/", ""), ("/status.json", ""), ("/nope", ""), ("/", None)):
        _, headers, _ = request(preview, path, token=token)
        assert headers["Cache-Control"] == "no-store", path
    _, headers, _ = request(preview, "/")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


# -- status and controls ----------------------------------------------------------------------
def test_status_json(preview: PreviewSink) -> None:
    status, headers, body = request(preview, "/status.json")
    state = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert state["status"] == {"model": "test", "written": 7}
    assert state["classes"] == list(CLASSES) and "mask" in state["views"]
    assert state["controls"] == {"view": "overlay", "alpha": 0.5, "hidden": [], "paused": False}


def test_controls_change_the_runs_controls(preview: PreviewSink, controls: Controls) -> None:
    status, _, body = request(preview, "/control?view=mask&alpha=0.25&hidden=0,2&paused=1")
    assert status == 200
    assert (controls.view, controls.alpha, controls.hidden, controls.paused) == ("mask", 0.25, {0, 2}, True)
    assert json.loads(body)["controls"] == {"view": "mask", "alpha": 0.25, "hidden": [0, 2], "paused": True}
    request(preview, "/control?paused=toggle&hidden=")
    assert not controls.paused and controls.hidden == frozenset()


@pytest.mark.parametrize("query", ["view=mask&alpha=7", "view=nope", "alpha=nan", "hidden=3", "hidden=a",
                                   "paused=maybe", "view=mask&colour=1", "view=bad%0d%0aX-Injected:%201"])
def test_bad_controls_are_400_and_change_nothing(preview: PreviewSink, controls: Controls, query: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", preview.server.port, timeout=5)
    try:
        conn.request("GET", f"/control?{query}&token={preview.server.token}")
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 400 and response.reason == "Bad control"
    assert response.getheader("X-Injected") is None
    assert (controls.view, controls.alpha, controls.hidden) == ("overlay", 0.5, frozenset())


def test_preview_status_reads_the_run() -> None:
    from types import SimpleNamespace

    stats, controls = PipelineStats(), Controls()
    engine = SimpleNamespace(info=SimpleNamespace(name="camvid-road"), provider="CPUExecutionProvider")
    status = preview_status(stats, engine, controls)
    stats.captured_frame(now=time.perf_counter())
    stats.dropped_frame()
    controls.request_stop("signal SIGINT")
    state = status()
    assert state["model"] == "camvid-road" and state["provider"] == "CPU"
    assert (state["captured"], state["dropped"], state["written"]) == (1, 1, 0)
    assert set(state["fps"]) == {"capture", "infer", "output"} and state["stopping"] == "signal SIGINT"
    json.dumps(state)


# -- the stream -------------------------------------------------------------------------------
def test_two_viewers_get_the_same_frames_encoded_once(preview: PreviewSink, monkeypatch) -> None:
    encodes = []
    real_imencode = cv2.imencode
    monkeypatch.setattr(sink_module.cv2, "imencode", lambda *a: encodes.append(1) or real_imencode(*a))
    streams = [open_stream(preview), open_stream(preview)]
    received: list[list[tuple[int, bytes]]] = [[], []]

    def reader(i: int) -> None:
        while len(received[i]) < 10:
            received[i].append(read_part(streams[i]))

    try:
        wait_for(lambda: preview.hub.viewers == 2, message="two viewers")
        threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(2)]
        for t in threads:
            t.start()
        for i in range(10):
            preview.write(*frame(i))
            time.sleep(0.03)
        for t in threads:
            t.join(timeout=10)
    finally:
        for s in streams:
            s.close()
    assert [i for i, _ in received[0]] == list(range(10))
    assert received[0] == received[1]
    assert len(encodes) == 10  # once per frame, not once per viewer


def test_no_viewers_no_encoding_and_pause_shows_the_newest(preview: PreviewSink, monkeypatch) -> None:
    """Without viewers nothing is encoded; a viewer of a paused run gets the newest frame
    (sent from poll()) and it is re-sent about once a second, since browsers show an MJPEG
    part only when the next one arrives."""
    encodes = []
    real_imencode = cv2.imencode
    monkeypatch.setattr(sink_module.cv2, "imencode", lambda *a: encodes.append(1) or real_imencode(*a))
    for i in range(5):
        preview.write(*frame(i))
    assert encodes == []
    stream = open_stream(preview)
    try:
        wait_for(lambda: preview.hub.viewers == 1, message="a viewer")
        preview.poll()  # the render thread polls sinks while paused
        t0 = time.monotonic()
        parts = [read_part(stream) for _ in range(3)]
        elapsed = time.monotonic() - t0
    finally:
        stream.close()
    assert [i for i, _ in parts] == [4, 4, 4] and len(encodes) == 1
    assert 1.5 < elapsed < 3.5, elapsed


def test_viewers_are_capped(preview: PreviewSink) -> None:
    streams = [open_stream(preview) for _ in range(3)]
    try:
        assert all(s.status == 200 for s in streams)
        wait_for(lambda: preview.hub.viewers == 3, message="three viewers")
        assert request(preview, "/stream.mjpg")[0] == 503
        assert request(preview, "/status.json")[0] == 200  # the page still answers
        preview.write(*frame(0))
        streams.pop().close()
        # the server notices a closed viewer when it writes to it: a frame, or the 1 s re-send
        wait_for(lambda: preview.hub.viewers == 2, timeout=5, message="a slot freed")
        later = open_stream(preview)
        streams.append(later)
        assert later.status == 200
    finally:
        for s in streams:
            s.close()


def test_a_viewer_that_never_reads_blocks_neither_write_nor_close(preview: PreviewSink) -> None:
    """The render thread must never wait for a viewer: a client that connects and stops
    reading fills its socket buffers, its server thread times out, and it is dropped."""
    rng = np.random.default_rng(0)
    noisy = [rng.integers(0, 255, (480, 640, 3), np.uint8) for _ in range(4)]  # ~300 kB JPEGs
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", preview.server.port))
    client.sendall(f"GET /stream.mjpg?token={preview.server.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    try:
        wait_for(lambda: preview.hub.viewers == 1, message="the viewer")
        slowest, index = 0.0, 0
        deadline = time.monotonic() + 15
        while preview.hub.viewers and time.monotonic() < deadline:
            t0 = time.perf_counter()
            preview.write(*frame(index, noisy[index % 4]))
            slowest = max(slowest, time.perf_counter() - t0)
            index += 1
            time.sleep(0.01)
        assert preview.hub.viewers == 0, "the viewer that never reads was not dropped"
        assert index > 20 and slowest < 0.5, (index, slowest)
    finally:
        client.close()


def test_close_ends_open_streams_promptly(controls: Controls) -> None:
    sink = PreviewSink("0", controls, dict, CLASSES, client_timeout=30)
    reading, stalled = open_stream(sink), socket.socket()
    try:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", sink.server.port))
        stalled.sendall(f"GET /stream.mjpg?token={sink.server.token} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        wait_for(lambda: sink.hub.viewers == 2, message="two viewers")
        noisy = np.random.default_rng(1).integers(0, 255, (480, 640, 3), np.uint8)
        for i in range(20):  # fill the stalled viewer's buffers: its thread now waits in send()
            sink.write(*frame(i, noisy))
        read_part(reading)
        ended = threading.Event()

        def drain() -> None:
            try:
                while reading.read(65536):
                    pass
            except OSError:
                pass
            ended.set()

        threading.Thread(target=drain, daemon=True).start()
        t0 = time.monotonic()
        sink.close()
        closed_in = time.monotonic() - t0
        assert ended.wait(1.5), "the stream did not end after close()"
        assert closed_in < 1.5, closed_in
        assert not sink.server._thread.is_alive()
        wait_for(lambda: sink.hub.viewers == 0, timeout=1.5, message="every stream loop to end")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", sink.server.port), timeout=1).close()
    finally:
        sink.close()
        reading.close()
        stalled.close()


def test_an_address_in_use_is_one_clear_error(preview: PreviewSink, controls: Controls) -> None:
    with pytest.raises(SinkError, match=f"cannot serve the preview on 127.0.0.1:{preview.server.port}"):
        PreviewSink(str(preview.server.port), controls, dict, CLASSES)


def test_a_file_run_with_serve_ends_at_the_end_of_the_file(tmp_path: Path, capsys) -> None:
    """--serve on a file: the run ends with the file and the server is gone afterwards."""
    clip = make_video(tmp_path / "clip.mp4", n=20)
    result = rtseg.process(clip, model="otsu", serve="0", progress=False, stats=tmp_path / "s.jsonl")
    assert result.stats.written == 20
    port = int(URL_LINE.search(capsys.readouterr().err).group(2))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 20


# -- a real browser ---------------------------------------------------------------------------
def _chromium() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                   None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("headless browser test needs chromium and chromedriver (apt-get install -y chromium "
                    "chromium-driver)")
    return browser, driver


def _moving_square_clip(path: Path, n: int, fps: int = 25) -> Path:
    """A white square moving over green: Otsu splits it cleanly, and every frame differs."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0"}
        for i in range(n):
            image = np.zeros((240, 320, 3), np.uint8)
            image[:] = (0, 160, 0)
            x = (i * 8) % 240
            image[60:180, x:x + 80] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _mask_share(png: bytes) -> float:
    """Share of pixels that are one of the Otsu model's two mask colours (BGR)."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
    palette = np.array([(0, 0, 0), (64, 64, 255)], np.int16)
    near = np.zeros(image.shape[:2], bool)
    for colour in palette:
        near |= np.abs(image - colour).max(axis=2) < 30
    return float(near.mean())


@pytest.mark.slow
def test_headless_chromium_sees_live_frames_and_a_working_control(tmp_path: Path) -> None:
    """The acceptance test of issue #13: a real browser loads the page of a real run, sees
    frames change, switches the view to the mask and sees it, pauses the run, then Ctrl-C
    ends it (exit 130) within a few seconds although the tab still holds the stream open."""
    browser, chromedriver = _chromium()
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    clip = _moving_square_clip(tmp_path / "clip.mp4", n=500)  # 20 s at 25 fps
    help_text = subprocess.run([sys.executable, "-m", "rtseg", "--help"], capture_output=True, text=True,
                               cwd=ROOT, timeout=30).stdout
    pacing = ["--realtime"] if "--realtime" in help_text else ["--live"]
    proc = subprocess.Popen([sys.executable, "-m", "rtseg", str(clip), "--serve", "0", "--no-display",
                             "--model", "otsu", "--quiet", *pacing], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    driver = None
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            try:
                match = URL_LINE.search(lines.get(timeout=1))
            except queue.Empty:
                assert proc.poll() is None, "rtseg exited before serving"
                continue
            url = match.group(1) if match else None
        assert url, "rtseg printed no preview URL"

        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1100,800"):
            options.add_argument(arg)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
        driver.set_page_load_timeout(30)
        driver.get(url)
        wait = WebDriverWait(driver, 20, poll_frequency=0.2)
        img = driver.find_element(By.ID, "stream")
        wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", img) == 320)
        written = lambda d: int(d.find_element(By.ID, "written").text or 0)  # noqa: E731
        wait.until(lambda d: written(d) > 0)
        first_count, first = written(driver), img.screenshot_as_png
        wait.until(lambda d: img.screenshot_as_png != first and written(d) > first_count)  # live frames
        assert driver.find_element(By.ID, "model").text == "otsu"
        assert _mask_share(img.screenshot_as_png) < 0.9  # the overlay blends the frame

        Select(driver.find_element(By.ID, "view")).select_by_value("mask")
        wait.until(lambda d: _mask_share(img.screenshot_as_png) > 0.97)  # only mask colours now
        assert len(driver.find_elements(By.CSS_SELECTOR, "#classes input[type=checkbox]")) == 2

        driver.find_element(By.ID, "pause").click()
        wait.until(lambda d: d.find_element(By.ID, "state").text == "paused")
        paused_at = written(driver)
        time.sleep(0.6)
        assert written(driver) <= paused_at + 1  # a frame in flight may still land

        proc.send_signal(signal.SIGINT)  # paused, and the tab still holds the stream open
        t0 = time.monotonic()
        proc.wait(timeout=10)
        assert time.monotonic() - t0 < 5
        assert proc.returncode == 130
    finally:
        if driver is not None:
            driver.quit()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

