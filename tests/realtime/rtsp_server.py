"""A local RTSP server for the tests: GStreamer's rtsp-server serving a live H.264 test pattern.

Run with a Python that has PyGObject and GstRtspServer (the system ``/usr/bin/python3`` with
``python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly}``)::

    /usr/bin/python3 tests/realtime/rtsp_server.py --lifetime 120

It binds 127.0.0.1 on a free port, prints that port on one line once it listens, serves
``rtsp://127.0.0.1:PORT/test`` and quits after ``--lifetime`` seconds whatever happens.
Exit code 3: GStreamer, PyGObject or an element is missing (the reason goes to stderr).
"""

from __future__ import annotations

import argparse
import sys

PIPELINE = ("( videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate={fps}/1 "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bframes=0 "
            "! rtph264pay name=pay0 pt=96 config-interval=1{audio} )")
AUDIO = (" audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=1 ! voaacenc "
         "! rtpmp4gpay name=pay1 pt=97")  # --audio: an AAC track beside the video


def main(argv: list[str] | None = None) -> int:
    """Serve until ``--lifetime`` seconds have passed; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifetime", type=float, default=120.0, help="quit after this many seconds")
    parser.add_argument("--size", default="320x240", help="WxH of the test pattern")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--audio", action="store_true", help="add a 48 kHz AAC sine track")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    args = parser.parse_args(argv)
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        print(f"rtsp_server: GStreamer RTSP server unavailable: {exc}", file=sys.stderr)
        return 3
    Gst.init(None)
    elements = ["videotestsrc", "x264enc", "rtph264pay"]
    elements += ["audiotestsrc", "voaacenc", "rtpmp4gpay"] if args.audio else []
    missing = [e for e in elements if Gst.ElementFactory.find(e) is None]
    if missing:
        print(f"rtsp_server: GStreamer elements missing: {', '.join(missing)}", file=sys.stderr)
        return 3
    width, height = args.size.split("x")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE.format(w=width, h=height, fps=args.fps, audio=AUDIO if args.audio else ""))
    factory.set_shared(True)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))  # 0: the kernel picks a free port, no race with other tests
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print("rtsp_server: cannot listen on 127.0.0.1", file=sys.stderr)
        return 3
    loop = GLib.MainLoop()
    GLib.timeout_add(int(args.lifetime * 1000), loop.quit)
    print(server.get_bound_port(), flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
