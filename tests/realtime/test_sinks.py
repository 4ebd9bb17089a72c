import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.errors import SinkError
from rtseg.realtime.frame import Frame
from rtseg.realtime.sinks import ImageFileSink, MaskSink, StatsSink, VideoFileSink

from factories import RED, color_frame, read_video


def _frames(n: int, width: int, height: int, pts: list[int], tb: Fraction) -> list[Frame]:
    frames = []
    for i in range(n):
        image = np.full((height, width, 3), (i * 20) % 256, np.uint8)
        frames.append(Frame(image, i, pts=pts[i], time_base=tb, labels=np.zeros((height, width), np.uint8)))
    return frames


def test_video_sink_keeps_pts_and_pads_odd_sizes(tmp_path: Path) -> None:
    tb = Fraction(1, 90000)
    pts = [0, 3000, 9000, 9900, 30000]
    with VideoFileSink(tmp_path / "o.mp4", fps=30) as sink:
        for frame in _frames(5, 63, 47, pts, tb):
            sink.write(frame, frame.image)
    times, images = read_video(tmp_path / "o.mp4")
    assert times == [p * tb for p in pts]
    assert images[0].shape == (48, 64, 3)
    assert abs(int(images[3][10, 10, 0]) - 60) <= 8  # content survives encoding


def test_video_sink_without_timestamps_uses_capture_clock(tmp_path: Path) -> None:
    with VideoFileSink(tmp_path / "cam.mp4", fps=10) as sink:
        for i in range(4):
            frame = Frame(color_frame(RED), i, capture_time=100.0 + i * 0.1)
            sink.write(frame, frame.image)
    times, _ = read_video(tmp_path / "cam.mp4")
    assert [float(t) for t in times] == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-3)


def test_output_folder_not_writable_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot create output folder"):
        VideoFileSink(blocker / "sub" / "o.mp4")
    with pytest.raises(SinkError, match="cannot create mask folder"):
        MaskSink(blocker / "masks", np.zeros((256, 3), np.uint8))


def test_mask_sink_writes_label_and_colour_pngs(tmp_path: Path) -> None:
    lut = np.zeros((256, 3), np.uint8)
    lut[2] = (10, 20, 30)
    labels = np.array([[0, 2], [2, 2]], np.uint8)
    with MaskSink(tmp_path / "m", lut) as sink:
        sink.write(Frame(np.zeros((2, 2, 3), np.uint8), 7, labels=labels), np.zeros((2, 2, 3), np.uint8))
    assert cv2.imread(str(tmp_path / "m" / "000007.png"), cv2.IMREAD_UNCHANGED).tolist() == labels.tolist()
    assert cv2.imread(str(tmp_path / "m" / "000007_color.png"))[1, 1].tolist() == [10, 20, 30]


def test_stats_sink_writes_one_json_line_per_frame(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 1, 1]], np.uint8)
    with StatsSink(tmp_path / "s.jsonl", ("a", "b", "c")) as sink:
        for i in range(3):
            frame = Frame(np.zeros((1, 4, 3), np.uint8), i, pts=i * 2, time_base=Fraction(1, 4), labels=labels)
            frame.timings["infer"] = 0.0125
            sink.write(frame, frame.image)
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    assert lines[2]["time"] == 1.0 and lines[2]["timings_ms"] == {"infer": 12.5}
    assert lines[0]["class_share"] == {"a": 0.25, "b": 0.75, "c": 0.0}


def test_image_sink_single_file_and_folder(tmp_path: Path) -> None:
    frame = Frame(color_frame(RED), 0, name="x")
    with ImageFileSink(tmp_path / "one.png", single=True) as sink:
        sink.write(frame, frame.image)
        with pytest.raises(SinkError, match="single image"):
            sink.write(frame, frame.image)
    with ImageFileSink(tmp_path / "dir", single=False) as sink:
        sink.write(frame, frame.image)
    assert (tmp_path / "one.png").exists() and (tmp_path / "dir" / "x.png").exists()


class FakeDisplay:
    """OpenCV's HighGUI functions the window sink calls, recorded; keys come from a script."""

    WINDOW_NORMAL, WINDOW_KEEPRATIO, WINDOW_GUI_NORMAL, WND_PROP_VISIBLE = 0, 16, 32, 4

    def __init__(self, keys: list[int]) -> None:
        self.keys, self.calls, self.shown, self.visible = list(keys), [], [], True

    def namedWindow(self, title, flags):  # noqa: N802
        self.calls.append(("namedWindow", title))

    def resizeWindow(self, title, width, height):  # noqa: N802
        self.calls.append(("resizeWindow", width, height))

    def imshow(self, title, image):
        self.shown.append(image.copy())

    def waitKey(self, delay):  # noqa: N802
        return self.keys.pop(0) if self.keys else -1

    def getWindowProperty(self, title, prop):  # noqa: N802
        return 1.0 if self.visible else 0.0

    def destroyWindow(self, title):  # noqa: N802
        self.calls.append(("destroyWindow", title))


def _write(window, n: int = 1, size: tuple[int, int] = (6, 4)) -> None:
    """The render thread writes, the main thread pumps: n times."""
    frame = Frame(np.zeros((size[1], size[0], 3), np.uint8), 0, labels=np.zeros((size[1], size[0]), np.uint8))
    for _ in range(n):
        window.write(frame, frame.image)
        window.pump()


def test_window_shows_frames_and_keys_act_through_controls() -> None:
    from rtseg.realtime.controls import Controls
    from rtseg.realtime.sinks import WindowSink

    controls = Controls()
    display = FakeDisplay([ord("m"), ord(" "), ord(" "), ord("x"), 27])
    with WindowSink("t", controls, display, screen=(1920, 1080)) as window:
        _write(window)
        assert controls.view == "mask" and display.calls == [("namedWindow", "t"), ("resizeWindow", 6, 4)]
        _write(window)
        assert controls.paused
        _write(window, 2)
        assert not controls.paused and not controls.stopping
        _write(window)
        assert controls.stopping and controls.stop_reason == "key" and not controls.forced.is_set()
    window.pump()  # the main thread's last turn after the render thread closed the sink
    assert len(display.shown) == 5 and display.calls[-1] == ("destroyWindow", "t")


def test_closing_the_window_ends_the_run_like_q() -> None:
    from rtseg.realtime.controls import Controls
    from rtseg.realtime.sinks import WindowSink

    controls, display = Controls(), FakeDisplay([])
    window = WindowSink("t", controls, display)
    _write(window)
    assert not controls.stopping
    display.visible = False
    _write(window)
    assert controls.stop_reason == "window closed"
    window.close()
    window.close()  # safe twice
    window.pump()
    window.pump()
    assert display.calls.count(("destroyWindow", "t")) == 0, "a window the user closed is gone already"


def test_a_big_frame_opens_a_window_scaled_to_fit_the_screen() -> None:
    from rtseg.realtime.controls import Controls
    from rtseg.realtime.sinks import WindowSink

    display = FakeDisplay([])
    window = WindowSink("t", Controls(), display, screen=(1280, 800))
    _write(window, size=(3840, 2160))
    assert ("resizeWindow", 1152, 648) in display.calls  # 90 % of the screen width, aspect kept


def test_only_the_main_thread_touches_the_window() -> None:
    """write() runs on the render thread and must not call into the GUI toolkit."""
    from rtseg.realtime.controls import Controls
    from rtseg.realtime.sinks import WindowSink

    display = FakeDisplay([])
    window = WindowSink("t", Controls(), display)
    frame = Frame(np.zeros((4, 6, 3), np.uint8), 0, labels=np.zeros((4, 6), np.uint8))
    window.write(frame, frame.image)
    window.close()
    assert display.calls == [] and display.shown == []
