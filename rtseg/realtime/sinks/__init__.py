"""Where rendered frames go: a video file, mask PNGs, a stats JSONL, a window."""

from rtseg.realtime.sinks.base import Sink
from rtseg.realtime.sinks.images import ImageFileSink
from rtseg.realtime.sinks.masks import MaskSink
from rtseg.realtime.sinks.stats import StatsSink
from rtseg.realtime.sinks.video import VideoFileSink
from rtseg.realtime.sinks.window import WindowSink

__all__ = ["ImageFileSink", "MaskSink", "Sink", "StatsSink", "VideoFileSink", "WindowSink"]
