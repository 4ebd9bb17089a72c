"""Audio, timestamps and damage in real containers (issue #11, sections 2, 3 and 7).

Inputs are made with the ``ffmpeg`` binary (PyAV cannot write every case: MOV timecode
data tracks, subtitles, MPEG-TS with ADTS AAC); the tests skip without it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from rtseg.errors import SourceError
from rtseg.realtime.frame import Frame
from rtseg.realtime.sinks import VideoFileSink
from rtseg.realtime.sinks import video as video_sink
from rtseg.realtime.sources import VideoSource

from factories import audio_summary, color_frame, make_video, read_video

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg binary is needed to make the inputs")
FRAMES = 50  # 2 s at 25 fps
SUBTITLES = "1\n00:00:00,000 --> 00:00:01,500\nhello\n\n2\n00:00:01,500 --> 00:00:02,000\nworld\n"


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True, capture_output=True, timeout=60)


def _clip(folder: Path, name: str, audio_codec: str, *, rate: int = 44100, extra_streams: bool = True,
          audio_offset: float = 0.0) -> Path:
    """A 2 s, 25 fps H.264 clip with a stereo sine in ``audio_codec``; MKV and MOV inputs also
    get a subtitle stream, MOV a timecode data stream."""
    path = folder / name
    args = ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=25:duration={FRAMES / 25}"]
    if audio_offset:
        args += ["-itsoffset", str(audio_offset)]
    args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={FRAMES / 25 - audio_offset}"]
    maps = ["-map", "0", "-map", "1"]
    if extra_streams and path.suffix in (".mkv", ".mov"):
        subs = folder / "subs.srt"
        subs.write_text(SUBTITLES)
        args += ["-i", str(subs)]
        maps += ["-map", "2", "-c:s", "srt" if path.suffix == ".mkv" else "mov_text"]
        if path.suffix == ".mov":
            maps += ["-timecode", "00:00:00:00"]  # a tmcd track: a data stream
    _ffmpeg(*args, *maps, "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25",
            "-c:a", audio_codec, "-ac", "2", str(path))
    return path


def _rtseg(source: Path, output: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtseg", "--source", str(source), "--output", str(output),
                           "--model", "otsu", "--no-display", "--quiet", *args],
                          capture_output=True, text=True, timeout=90, cwd=ROOT)


def _decode_all(path: Path) -> tuple[int, str | None, float]:
    """Demux and decode every video and audio packet to the end (any error fails): (video
    frames, audio codec, audio seconds decoded)."""
    frames, samples, rate, codec = 0, 0, 1, None
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        for packet in container.demux(*streams):
            assert not packet.is_corrupt, f"corrupt {packet.stream.type} packet at pts {packet.pts}"
            for frame in packet.decode():
                if packet.stream.type == "video":
                    frames += 1
                else:
                    samples, rate, codec = samples + frame.samples, frame.sample_rate, packet.stream.codec_context.name
    return frames, codec, samples / rate


def _starts(path: Path) -> dict[str, float]:
    """Seconds of the first packet of the first video and the first audio stream."""
    starts: dict[str, float] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            kind = packet.stream.type
            if kind in ("video", "audio") and packet.pts is not None and packet.stream.index in (
                    container.streams.video[0].index, container.streams.audio[0].index):
                seconds = float(packet.pts * packet.time_base)
                starts[kind] = min(starts.get(kind, seconds), seconds)
    return starts


INPUTS = [  # (file name, audio encoder): PCM, Opus, MP3, AC-3, in MKV and MOV (MOV cannot hold Opus)
    ("pcm.mkv", "pcm_s16le"), ("opus.mkv", "libopus"), ("mp3.mkv", "libmp3lame"), ("ac3.mkv", "ac3"),
    ("pcm.mov", "pcm_s24le"), ("mp3.mov", "libmp3lame"), ("ac3.mov", "ac3"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if FFMPEG is None:
        pytest.skip("the ffmpeg binary is needed to make the inputs")
    folder = tmp_path_factory.mktemp("audio_inputs")
    return {name: _clip(folder, name, codec, rate=48000 if codec == "libopus" else 44100) for name, codec in INPUTS}


@needs_ffmpeg
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("name", [name for name, _ in INPUTS])
def test_any_audio_in_mkv_or_mov_is_copied_or_transcoded_never_a_crash(
        inputs: dict[str, Path], name: str, suffix: str, tmp_path: Path) -> None:
    """Regression: stereo PCM or AC-3 into MP4 gave "Invalid argument" when the muxer wrote its
    header, then a segfault at the encoder flush. Now every frame comes out, the process exits
    0, the audio is there (copied, or transcoded to AAC) for as long as the input's, and the
    output decodes to the end; subtitle and data streams are left out without complaint."""
    source = inputs[name]
    out = tmp_path / f"out{suffix}"
    result = _rtseg(source, out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    frames, codec, seconds = _decode_all(out)
    _, in_codec, in_seconds = _decode_all(source)
    assert frames == FRAMES
    assert codec in (in_codec, "aac"), f"{in_codec} became {codec}"
    assert seconds == pytest.approx(in_seconds, abs=0.1)
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]


@needs_ffmpeg
@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_mpeg_ts_with_adts_aac_converts_with_its_audio(tmp_path: Path, suffix: str) -> None:
    """Regression: an MPEG-TS recording (ADTS AAC) into MP4 failed after 6 frames with
    "Operation not permitted". The AAC is copied through aac_adtstoasc, with the MP4's
    AudioSpecificConfig read from the first ADTS header, and stays in sync."""
    source = _clip(tmp_path, "rec.ts", "aac", rate=48000)
    out = tmp_path / f"out{suffix}"
    result = _rtseg(source, out)
    assert result.returncode == 0, result.stderr
    frames, codec, seconds = _decode_all(out)
    assert frames == FRAMES and codec == "aac"
    assert seconds == pytest.approx(_decode_all(source)[2], abs=0.05)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.extradata  # a real AudioSpecificConfig
    start_in, start_out = _starts(source), _starts(out)
    assert start_out["audio"] - start_out["video"] == pytest.approx(start_in["audio"] - start_in["video"], abs=0.03)


@needs_ffmpeg
@pytest.mark.parametrize("codec", ["aac", "ac3"], ids=["copied", "transcoded"])
def test_audio_that_starts_late_stays_in_sync_in_mp4(tmp_path: Path, codec: str) -> None:
    """Regression: with ``empty_moov`` FFmpeg moved every track of the fragmented MP4 to start
    at zero, so audio that starts 1 s after the video played 1 s early."""
    source = _clip(tmp_path, "late.mkv", codec, rate=48000, extra_streams=False, audio_offset=1.0)
    out = tmp_path / "out.mp4"
    assert _rtseg(source, out).returncode == 0
    starts = _starts(out)
    assert starts["audio"] - starts["video"] == pytest.approx(1.0, abs=0.03)  # AAC priming: 21 ms


def test_live_mode_keeps_all_audio_when_frames_are_dropped(tmp_path: Path) -> None:
    """Regression: ``--live`` on a file (and RTSP) dropped the audio without a word. In live
    mode frames share one packet list that the sink empties as it writes, so the audio of the
    frames dropped on the way (here every third) is written with the next frame."""
    clip = make_video(tmp_path / "a.mp4", n=50, audio=True)
    out = tmp_path / "out.mp4"
    with VideoSource(str(clip), live=True) as src:
        assert len(src.info.passthrough_streams) == 1
        with VideoFileSink(out, fps=25, passthrough_streams=src.info.passthrough_streams) as sink:
            for frame in src:
                if frame.index % 3 != 1:  # the others are "dropped" by a latest-frame queue
                    sink.write(frame, frame.image)
        assert sink.audio_report() == [("#1 (aac)", "copied")]
    assert audio_summary(out) == pytest.approx(audio_summary(clip))
    assert len(read_video(out)[0]) == 50 - len(range(1, 50, 3))


def test_audio_nobody_can_take_is_dropped_with_one_warning(tmp_path: Path, monkeypatch, caplog) -> None:
    """When neither a copy nor AAC fits the output, the stream is dropped with one warning line
    and reported; the video is written whole."""
    monkeypatch.setattr(video_sink, "_trial", lambda *args: "refused for the test")
    clip = make_video(tmp_path / "a.mp4", n=10, audio=True)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger=video_sink.__name__):
        with VideoSource(str(clip)) as src:
            with VideoFileSink(out, passthrough_streams=src.info.passthrough_streams) as sink:
                for frame in src:
                    sink.write(frame, frame.image)
    assert sink.audio_report() == [
        ("#1 (aac)", "dropped: cannot be copied (refused for the test) nor transcoded to AAC (refused for the test)")]
    assert len([r for r in caplog.records if "audio #1 (aac) dropped" in r.getMessage()]) == 1
    assert len(read_video(out)[0]) == 10 and audio_summary(out) is None


# -- timestamps: one time base per stream --------------------------------------------------
def _write(path: Path, frames: list[Frame]) -> list[float]:
    with VideoFileSink(path, fps=25) as sink:
        for frame in frames:
            sink.write(frame, frame.image)
    return [float(t) for t in read_video(path)[0]]


def test_sink_rescales_frames_in_another_time_base(tmp_path: Path) -> None:
    """Regression: the sink took its time base from the first frame and wrote later pts in it
    unchanged, whatever their own time base (1/90000 pts read as 1/25: hours of video)."""
    image = color_frame((0, 0, 255))
    frames = [Frame(image, 0, pts=0, time_base=Fraction(1, 1000)),
              Frame(image, 1, pts=3600, time_base=Fraction(1, 90000)),
              Frame(image, 2, pts=80, time_base=Fraction(1, 1000))]
    assert _write(tmp_path / "o.mp4", frames) == pytest.approx([0.0, 0.04, 0.08])


def test_sink_places_frames_without_pts_by_the_capture_clock(tmp_path: Path) -> None:
    """A first frame without pts makes the whole stream clock-stamped (never two time bases);
    a frame without pts inside a timed stream is placed after the previous one by the clock."""
    image, tb = color_frame((0, 0, 255)), Fraction(1, 90000)
    first_missing = [Frame(image, 0, capture_time=10.0),
                     Frame(image, 1, pts=93600, time_base=tb, capture_time=10.04),
                     Frame(image, 2, pts=97200, time_base=tb, capture_time=10.08)]
    assert _write(tmp_path / "a.mp4", first_missing) == pytest.approx([0.0, 0.04, 0.08], abs=1e-3)
    middle_missing = [Frame(image, 0, pts=90000, time_base=tb, capture_time=5.0),
                      Frame(image, 1, capture_time=5.04),
                      Frame(image, 2, pts=97200, time_base=tb, capture_time=5.08)]
    assert _write(tmp_path / "b.mp4", middle_missing) == pytest.approx([1.0, 1.04, 1.08], abs=1e-3)


@needs_ffmpeg
def test_source_stamps_every_frame_in_the_stream_time_base(tmp_path: Path) -> None:
    """A raw H.264 stream has no timestamps: frames are stamped one period apart in one time base."""
    raw = tmp_path / "raw.h264"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1", "-c:v", "libx264", "-bf", "0", str(raw))
    with VideoSource(str(raw)) as src:
        frames = list(src)
    assert len(frames) == 25 and len({f.time_base for f in frames}) == 1
    seconds = [f.seconds for f in frames]
    assert np.diff(seconds) == pytest.approx([0.04] * 24, abs=1e-3)


# -- damage --------------------------------------------------------------------------------
def _corrupt_from(path: Path, fraction: float) -> Path:
    """A copy with every byte from ``fraction`` of the file up to the index (moov) scrambled."""
    data = bytearray(path.read_bytes())
    end = data.rfind(b"moov") - 4
    for i in range(int(len(data) * fraction), end):
        data[i] = (data[i] * 7 + 13) & 255
    out = path.with_name("damaged" + path.suffix)
    out.write_bytes(bytes(data))
    return out


def test_every_undecodable_packet_is_counted(tmp_path: Path) -> None:
    """Regression: with FFmpeg's frame threads the last undecodable packet raised no error
    (its frame just never came), so damage was under-counted: 49 of 50 lost frames counted."""
    clip = _corrupt_from(make_video(tmp_path / "c.mp4", n=100, width=160, height=96, noise=True), 0.5)
    with VideoSource(str(clip), max_consecutive_errors=1000) as src:
        frames = list(src)
        assert 20 < len(frames) < 80
        assert src.skipped == 100 - len(frames)


def test_a_file_damaged_to_the_end_stops_with_where_the_damage_starts(tmp_path: Path) -> None:
    """About 2 s of undecodable video in a row (50 packets at 25 fps) ends the run with a
    clear error instead of grinding on through the rest of the file."""
    clip = _corrupt_from(make_video(tmp_path / "c.mp4", n=200, width=160, height=96, noise=True), 0.3)
    frames = []
    with VideoSource(str(clip)) as src:
        assert src.max_consecutive_errors == 50
        with pytest.raises(SourceError, match=r"5\d consecutive undecodable packets; the file is damaged "
                                              r"from 0:0\d\.\d\d on") as error:
            for frame in src:
                frames.append(frame)
    damaged_from = float(str(error.value).split("damaged from 0:")[1].split(" ")[0])
    assert damaged_from == pytest.approx(frames[-1].seconds + 0.04 * 2, abs=0.05)  # the held-back frame


@needs_ffmpeg
def test_a_stream_joined_mid_gop_is_not_damage(tmp_path: Path) -> None:
    """A recording cut in the middle of a GOP (a stream joined mid-GOP) starts with packets that
    cannot be decoded before the next keyframe: more than the damage limit here, but neither
    an error nor counted as damaged."""
    ts = tmp_path / "long_gop.ts"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=10", "-c:v", "libx264", "-preset",
            "ultrafast", "-bf", "0", "-g", "150", str(ts))
    data = ts.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[len(data) // 10 // 188 * 188:])  # about 1 s in; the next keyframe is at 6 s
    with VideoSource(str(cut)) as src:
        frames = list(src)
        assert src.skipped == 0
    assert len(frames) == 100


@needs_ffmpeg
def test_packets_before_an_edit_list_start_are_not_damage(tmp_path: Path) -> None:
    """An MP4 trimmed without re-encoding starts its edit list mid-GOP: the packets before it
    are decoded but not shown (the demuxer marks them discard). They are no damage."""
    full = tmp_path / "full.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=4", "-c:v", "libx264", "-preset",
            "ultrafast", "-g", "50", str(full))
    trimmed = tmp_path / "trimmed.mp4"
    _ffmpeg("-ss", "0.5", "-i", str(full), "-c", "copy", str(trimmed))
    with VideoSource(str(trimmed)) as src:
        frames = list(src)
        assert src.skipped == 0
    assert 80 <= len(frames) < 100  # from about 0.5 s: the keyframe at 0 s is decoded, not shown
