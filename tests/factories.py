"""Factories shared by the tests: small real videos (PyAV) and small real ONNX models."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ROAD_CLIP = SHARED / "media" / "road_solidWhiteRight.mp4"
CAMVID = SHARED / "data" / "camvid"

# Frames of pure colour: with the "channel argmax" model below, each is one known class.
RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)  # BGR
# The channel model's palette is rotated so a mask never equals its frame:
# red frames are drawn blue, green frames red, blue frames green.
PALETTE_RGB = [[0, 0, 255], [255, 0, 0], [0, 255, 0]]
MASK_BGR = {RED: (255, 0, 0), GREEN: (0, 0, 255), BLUE: (0, 255, 0)}


def color_frame(bgr: tuple[int, int, int], width: int = 64, height: int = 48) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = bgr
    return image


def make_video(path: Path, *, n: int = 12, width: int = 64, height: int = 48, fps: int = 25,
               pts_ms: list[int] | None = None, audio: bool = False, codec: str | None = None,
               noise: bool = False) -> Path:
    """Encode a clip of cycling red/green/blue frames.

    ``pts_ms`` gives explicit (variable) timestamps in milliseconds; odd sizes use FFV1 in MKV
    (H.264 in yuv420p needs even sizes); ``audio`` adds a 440 Hz AAC track as long as the video;
    ``noise`` adds grain so the clip costs real work to decode and encode.
    """
    rng = np.random.default_rng(0)
    grain = rng.integers(0, 60, (8, height, width, 3), dtype=np.uint8) if noise else None
    odd = width % 2 or height % 2
    codec = codec or ("ffv1" if odd else "libx264")
    time_base = Fraction(1, 1000) if pts_ms is not None else Fraction(1, fps)
    pts_list = pts_ms if pts_ms is not None else list(range(n))
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if codec == "ffv1" else "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if codec == "libx264":
            stream.options = {"bf": "0", "preset": "ultrafast"}
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=48000, layout="mono")
        colors = (RED, GREEN, BLUE)
        for i, pts in enumerate(pts_list):
            image = color_frame(colors[i % 3], width, height)
            if grain is not None:
                image = cv2.subtract(image, grain[i % 8])
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = pts
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if astream is not None:
            seconds = float((pts_list[-1] + (40 if pts_ms is not None else 1)) * time_base)
            samples = int(seconds * 48000)
            t = np.arange(samples) / 48000
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = wave[start:start + 1024][None, :]
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                aframe.sample_rate = 48000
                aframe.pts = start
                aframe.time_base = Fraction(1, 48000)
                for packet in astream.encode(aframe):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    return path


def read_video(path: Path) -> tuple[list[Fraction], list[np.ndarray]]:
    """Timestamps (seconds) and BGR images of every frame."""
    with av.open(str(path)) as container:
        times, images = [], []
        for frame in container.decode(video=0):
            times.append(frame.pts * frame.time_base)
            images.append(frame.to_ndarray(format="bgr24"))
    return times, images


def audio_summary(path: Path) -> tuple[int, float] | None:
    """(packet count, seconds covered) of the first audio stream, or None without audio."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.dts is not None]
        end = max(p.pts + p.duration for p in packets)
        start = min(p.pts for p in packets)
        return len(packets), float((end - start) * stream.time_base)


def make_channel_argmax_model(path: Path, *, output: str = "logits", metadata: dict | None = None,
                              fixed_size: tuple[int, int] | None = None, channels: int = 3) -> Path:
    """A real ONNX model whose class is the index of the largest input channel (R=0, G=1, B=2).

    ``output="labels"`` puts ArgMax + Cast(uint8) in the graph. Metadata defaults to the
    rtseg contract with mean 0 / std 1 so the channel values pass through unchanged.
    """
    import onnx
    from onnx import TensorProto, helper

    h, w = fixed_size or ("H", "W")
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", channels, h, w])
    nodes = [helper.make_node("Identity", ["images"], ["logits"])]
    if output == "labels":
        nodes += [helper.make_node("ArgMax", ["logits"], ["idx"], axis=1, keepdims=0),
                  helper.make_node("Cast", ["idx"], ["labels"], to=TensorProto.UINT8)]
        out = helper.make_tensor_value_info("labels", TensorProto.UINT8, ["N", h, w])
    else:
        out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", channels, h, w])
    graph = helper.make_graph(nodes, "channel_argmax", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    if metadata is None:
        metadata = {"rtseg_contract": "1", "name": "channels", "classes": json.dumps(["red", "green", "blue"]),
                    "palette": json.dumps(PALETTE_RGB),
                    "mean": "[0, 0, 0]", "std": "[1, 1, 1]", "channel_order": "RGB", "output": output}
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


class FakeCapture:
    """cv2.VideoCapture look-alike: paced frames with a counter drawn in, then optional stall."""

    def __init__(self, n: int = 1000, fps: float = 100.0, stall: str | None = None, size=(32, 24)) -> None:
        self.n, self.period, self.stall, self.size = n, 1.0 / fps, stall, size
        self.sent = 0
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802
        return True

    def read(self):
        if self.sent >= self.n:
            if self.stall == "fail":
                time.sleep(0.01)
                return False, None
            if self.stall == "repeat":
                time.sleep(self.period)
                return True, self._image(self.n - 1)
            if self.stall == "block":
                time.sleep(3600)
            return False, None
        time.sleep(self.period)
        self.sent += 1
        return True, self._image(self.sent - 1)

    def _image(self, i: int) -> np.ndarray:
        image = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        image[0, 0] = [i & 255, (i >> 8) & 255, 7]  # frame number in the pixels
        return image

    def release(self) -> None:
        self.released = True


def corrupt_middle(path: Path, span: int = 3000) -> Path:
    """A copy of ``path`` with bytes in the middle scrambled (packet payloads in an MP4)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + span):
        data[i] = (data[i] * 7 + 13) & 255
    out = path.with_name("corrupt" + path.suffix)
    out.write_bytes(bytes(data))
    return out
