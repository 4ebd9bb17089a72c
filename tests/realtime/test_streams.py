"""URL sources against servers on 127.0.0.1 that the tests start and stop themselves."""

import functools
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

from rtseg.cli import main
from rtseg.errors import SourceStalledError
from rtseg.realtime.options import SourceOptions
from rtseg.realtime.sources import VideoSource, open_source

from factories import audio_summary, make_video, read_video

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def http_server(tmp_path: Path):
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def silent_server():
    """Accepts connections and never answers: a stream that stalls."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    stop = threading.Event()
    conns = []

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/stream.mp4"
    finally:
        stop.set()
        thread.join(5)
        for conn in conns:
            conn.close()
        sock.close()


def test_http_url_is_decoded_like_a_file(tmp_path: Path, http_server: str, channel_model: Path) -> None:
    make_video(tmp_path / "clip.mp4", n=15, audio=True)
    source = open_source(f"{http_server}/clip.mp4")
    assert isinstance(source, VideoSource) and not source.live
    source.close()
    out = tmp_path / "out.mp4"
    assert main(["--source", f"{http_server}/clip.mp4", "--output", str(out), "--model", str(channel_model),
                 "--quiet"]) == 0
    assert read_video(out)[0] == read_video(tmp_path / "clip.mp4")[0]
    assert audio_summary(out) == pytest.approx(audio_summary(tmp_path / "clip.mp4"))


def test_live_flag_and_rtsp_urls_use_latest_frame_semantics(tmp_path: Path, http_server: str) -> None:
    make_video(tmp_path / "clip.mp4", n=3)
    with open_source(f"{http_server}/clip.mp4", SourceOptions(live=True)) as source:
        assert source.live and source.info.passthrough_streams == []


def test_stream_that_never_answers_is_a_clear_error_within_the_timeout(silent_server: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(SourceStalledError, match="no answer within 1 s"):
        open_source(silent_server, SourceOptions(timeout=1.0))
    assert time.perf_counter() - t0 < 4.0
