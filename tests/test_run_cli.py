"""End-to-end runs of the ``rtseg`` command, in-process and as a subprocess."""

import json
import resource
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from rtseg.cli import main

from factories import (
    BLUE,
    GREEN,
    MASK_BGR,
    RED,
    ROAD_CLIP,
    audio_summary,
    color_frame,
    corrupt_middle,
    make_video,
    read_video,
)

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, preexec=None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtseg", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, preexec_fn=preexec)


def test_vfr_clip_with_audio_end_to_end(tmp_path: Path, channel_model: Path) -> None:
    pts = [0, 33, 66, 150, 160, 170, 400, 433, 466, 900, 933, 966]
    clip = make_video(tmp_path / "in.mp4", pts_ms=pts, audio=True)
    out = tmp_path / "out.mp4"
    assert main(["--source", str(clip), "--output", str(out), "--model", str(channel_model),
                 "--view", "mask", "--quiet"]) == 0
    times, images = read_video(out)
    assert times == [Fraction(p, 1000) for p in pts]
    for i, image in enumerate(images):
        assert np.abs(image[20, 20].astype(int) - MASK_BGR[(RED, GREEN, BLUE)[i % 3]]).max() <= 12
    assert audio_summary(out) == pytest.approx(audio_summary(clip))


def test_odd_size_clip_without_audio_is_padded_to_even(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "odd.mkv", n=7, width=65, height=49)
    out = tmp_path / "out.mp4"
    assert main(["--source", str(clip), "--output", str(out), "--model", str(channel_model), "--quiet"]) == 0
    times, images = read_video(out)
    assert len(images) == 7 and images[0].shape == (50, 66, 3)
    assert audio_summary(out) is None


def test_masks_and_stats_outputs(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=6)
    assert main(["--source", str(clip), "--model", str(channel_model), "--save-masks", str(tmp_path / "m"),
                 "--stats", str(tmp_path / "s.jsonl"), "--quiet"]) == 0
    labels = cv2.imread(str(tmp_path / "m" / "000004.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (48, 64) and (labels == 1).all()  # frame 4 is green -> class 1
    colour = cv2.imread(str(tmp_path / "m" / "000004_color.png"))
    assert colour[5, 5].tolist() == list(MASK_BGR[GREEN])
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(6))
    assert lines[4]["class_share"] == {"red": 0.0, "green": 1.0, "blue": 0.0}
    assert {"capture", "infer", "render"} <= set(lines[0]["timings_ms"])


def test_image_folder_to_folder(tmp_path: Path, channel_model: Path) -> None:
    (tmp_path / "in").mkdir()
    for name, color in (("one", RED), ("two", BLUE)):
        cv2.imwrite(str(tmp_path / "in" / f"{name}.png"), color_frame(color))
    assert main(["--source", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--model",
                 str(channel_model), "--view", "mask", "--quiet"]) == 0
    assert cv2.imread(str(tmp_path / "out" / "two.png"))[3, 3].tolist() == list(MASK_BGR[BLUE])


@pytest.mark.parametrize("args, message", [
    (["--source", "missing.mp4", "--output", "o.mp4"], "no such file: missing.mp4"),
    (["--output", "o.mp4"], "give exactly one input"),
    (["--source", "x.mp4", "--camera", "0"], "give exactly one input"),
    (["--source", "{clip}", "--output", "o.mp4", "--model", "{bad_model}"], "cannot load model"),
    (["--source", "{clip}", "--output", "o.mp4", "--hide", "tree"], "unknown class 'tree'"),
    (["--source", "{clip}", "--output", "o.mp4", "--max-pixels", "100"], "over the cap"),
    (["--source", "{truncated}", "--output", "o.mp4"], "cannot open video"),
    (["--source", "{clip}", "--output", "{blocked}/o.mp4"], "cannot create output folder"),
    (["--source", "{clip}"], "nothing to produce"),
    (["--camera", "0", "--no-display"], "nothing to produce"),
    (["--source", "http://127.0.0.1:9/live.ts"], "nothing to produce"),  # regression: ran, produced nothing
    (["{clip}", "--output", "o.webm"], "unsupported output extension '.webm'"),
    (["{clip}", "--output", "o.mp4", "--source", "{clip}"], "give exactly one input"),
])
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[:300])
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"not onnx")
    (tmp_path / "blocked").write_text("a file, not a folder")
    args = [a.format(clip=clip, truncated=truncated, bad_model=bad_model, blocked=tmp_path / "blocked")
            for a in args]
    extra = ["--quiet"] if "--model" in args else ["--model", "otsu"]
    result = run_cli(*args, *extra)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("rtseg: error:") and message in last, result.stderr


def _start(tmp_path: Path, clip: Path, out: Path, preexec=None) -> subprocess.Popen:
    def child_setup() -> None:
        # Ctrl-C must reach Python's default handler even when the test runner ignores SIGINT
        # (a background job's children inherit SIG_IGN, and Python then never raises KeyboardInterrupt).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if preexec is not None:
            preexec()

    return subprocess.Popen([sys.executable, "-m", "rtseg", "--source", str(clip), "--output", str(out),
                             "--model", "otsu", "--view", "side-by-side"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=child_setup)


def _wait_for_bytes(path: Path, size: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until the output (or a temporary file named after it, if it is written to one
    and renamed at the end) holds more than ``size`` bytes."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        written = [f.stat().st_size for f in path.parent.iterdir() if path.name in f.name and f.is_file()]
        if max(written, default=0) > size:
            return
        time.sleep(0.05)
    pytest.fail(f"{path} did not grow past {size} bytes (process ended: {proc.poll()})")


def _decode_to_the_end(path: Path) -> tuple[list[Fraction], int]:
    """Demux and decode every packet of the video and audio streams to the end of the file, as
    a player does; any corrupt packet or decode error fails. Returns (video frame times in
    seconds, decoded audio frames)."""
    times, audio_frames = [], 0
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        for packet in container.demux(*streams):
            assert not packet.is_corrupt, f"corrupt {packet.stream.type} packet at pts {packet.pts}"
            for frame in packet.decode():
                if packet.stream.type == "video":
                    times.append(frame.pts * frame.time_base)
                else:
                    audio_frames += 1
    return times, audio_frames


def _count_decodable(path: Path) -> int:
    count = 0
    try:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                count += 1
    except av.FFmpegError:
        pass  # a cut-off last fragment may end in a partial packet
    return count


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", n=400, width=640, height=360, audio=True,
                      noise=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_ctrl_c_drains_and_finalizes_a_playable_file(tmp_path: Path, long_clip: Path, signum: int) -> None:
    """Ctrl-C (and SIGTERM, SIGHUP: issue #11 section 4) mid-file: exit code 128 + N within the
    README's 3 s, one summary line and no traceback, and an output that plays: every video
    and audio packet decodes to the end of the file, with the source's timestamps for every
    frame written."""
    out = tmp_path / "out.mp4"
    proc = _start(tmp_path, long_clip, out)
    try:
        _wait_for_bytes(out, 4_000_000, proc)
        proc.send_signal(signum)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=10)
        exit_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 128 + signum, stderr
    assert exit_s < 3.0, f"Ctrl-C took {exit_s:.2f} s to exit; the README promises 3 s"
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("rtseg: interrupted after "), stderr
    written = int(last.split("interrupted after ")[1].split()[0])
    times, audio_frames = _decode_to_the_end(out)
    assert 0 < written < 400 and len(times) == written
    assert times == [Fraction(i, 25) for i in range(written)]  # the clip's frames, in order, none lost
    assert audio_frames > 0 and audio_summary(out) is not None


def test_second_ctrl_c_exits_at_once(tmp_path: Path, long_clip: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = _start(tmp_path, long_clip, out)
    _wait_for_bytes(out, 4_000_000, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert time.time() - t0 < 1.5 and proc.returncode != 0


def test_sigkill_leaves_a_file_that_plays_up_to_the_last_fragment(tmp_path: Path, long_clip: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = _start(tmp_path, long_clip, out)
    _wait_for_bytes(out, 8_000_000, proc)
    proc.kill()
    proc.communicate(timeout=10)
    temps = list(tmp_path.glob(".out.mp4.*.tmp.mp4"))
    assert not out.exists() and len(temps) == 1, "a killed run never leaves a file at the final name"
    assert _count_decodable(temps[0]) >= 25  # at least one whole one-second fragment


def test_disk_full_is_one_line_and_keeps_what_was_written(tmp_path: Path, long_clip: Path) -> None:
    """A file-size limit makes writes fail the way a full disk does (EFBIG instead of ENOSPC)."""
    limit = 8_000_000

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier output")
    proc = _start(tmp_path, long_clip, out, preexec=limit_file_size)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    partial = tmp_path / "out.partial.mp4"
    assert last.startswith(f"rtseg: error: writing {out} failed") and f"kept in {partial}" in last
    assert out.read_bytes() == b"an earlier output", "a failed run leaves an earlier output intact"
    assert _count_decodable(partial) >= 25
    assert not list(tmp_path.glob(".out.mp4.*")), "no temp file left behind"


@pytest.mark.skipif(not ROAD_CLIP.exists(), reason=f"shared road clip not found at {ROAD_CLIP}")
def test_shared_road_clip_frames_timestamps_and_audio(tmp_path: Path) -> None:
    out = tmp_path / "road.mp4"
    assert main(["--source", str(ROAD_CLIP), "--output", str(out), "--quiet", "--legend"]) == 0
    times_in, _ = read_video(ROAD_CLIP)
    times_out, images = read_video(out)
    assert times_out == times_in and len(times_out) == 221
    assert images[0].shape == (540, 960, 3)
    n_in, sec_in = audio_summary(ROAD_CLIP)
    n_out, sec_out = audio_summary(out)
    assert n_out == n_in and sec_out == pytest.approx(sec_in, abs=1e-6)


def test_corrupt_packets_do_not_stop_the_run(tmp_path: Path, channel_model: Path) -> None:
    from rtseg.realtime.sources import VideoSource

    clip = corrupt_middle(make_video(tmp_path / "c.mp4", n=30, width=160, height=96, noise=True))
    with VideoSource(str(clip)) as src:
        decodable = len(list(src))
    result = run_cli("--source", str(clip), "--output", str(tmp_path / "o.mp4"), "--model", str(channel_model))
    assert result.returncode == 3, result.stderr  # partial output: written, but not called a success
    assert f"wrote {decodable} frames" in result.stderr and "corrupt packets skipped" in result.stderr
    assert len(read_video(tmp_path / "o.mp4")[0]) == decodable


def test_bench_measures_the_three_modes(tmp_path: Path, channel_model: Path, capsys) -> None:
    clip = make_video(tmp_path / "in.mp4", n=8, noise=True)
    assert main(["bench", "--model", str(channel_model), "--source", str(clip), "--frames", "6",
                 "--repeats", "1"]) == 0
    table = capsys.readouterr().out
    modes, stages = table.split("Each stage alone")
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in modes.splitlines()
            if line.startswith("| ") and "fps" not in line}
    assert len(rows) == 3 and all(fps > 0 for fps in rows.values())
    assert "pipeline / raw inference" in table
    cpu = {line.split("|")[1].strip(): float(line.split("|")[3]) for line in stages.splitlines()
           if line.startswith("| ") and "CPU" not in line and "all" not in line}
    assert set(cpu) == {"decode", "preprocess", "inference", "render", "encode"}
    assert all(ms >= 0 for ms in cpu.values()) and cpu["decode"] > 0 and cpu["encode"] > 0
    assert "CPU limit on" in stages and "x the limit (goal >= 0.90)" in stages


def test_hud_is_drawn_when_asked(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=4, width=320, height=240)
    for flag in ("--hud", "--no-hud"):
        assert main(["--source", str(clip), "--output", str(tmp_path / f"{flag}.mp4"), "--model",
                     str(channel_model), "--view", "mask", flag, "--quiet"]) == 0
    _, with_hud = read_video(tmp_path / "--hud.mp4")
    _, without = read_video(tmp_path / "--no-hud.mp4")
    corner = (slice(0, 60), slice(0, 200))
    assert np.abs(with_hud[3][corner].astype(int) - without[3][corner]).max() > 100  # white text
    assert np.abs(with_hud[3][200:, 250:].astype(int) - without[3][200:, 250:]).max() < 12


def test_camera_that_does_not_open_prints_exactly_one_line(tmp_path: Path) -> None:
    result = run_cli("--camera", "7", "--no-display", "--output", str(tmp_path / "o.mp4"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rtseg: error: camera 7 could not be opened (not connected, or in use by another program?)"]


def test_positional_source_and_version(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=4)
    assert main([str(clip), "--output", str(tmp_path / "o.mp4"), "--model", str(channel_model), "--quiet"]) == 0
    assert len(read_video(tmp_path / "o.mp4")[0]) == 4
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("rtseg ")


def test_positional_digit_is_a_camera_index(tmp_path: Path) -> None:
    result = run_cli("7", "--no-display", "--output", str(tmp_path / "o.mp4"))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "rtseg: error: camera 7 could not be opened (not connected, or in use by another program?)"]


@pytest.mark.parametrize("fps_args, step", [([], Fraction(1, 25)), (["--fps", "10"], Fraction(1, 10))])
def test_image_folder_to_a_video_at_the_given_rate(tmp_path: Path, channel_model: Path, fps_args: list[str],
                                                   step: Fraction) -> None:
    """Regression: a folder with --output out.mp4 silently made a folder named out.mp4."""
    (tmp_path / "frames").mkdir()
    for i, color in enumerate((RED, GREEN, BLUE, RED)):
        cv2.imwrite(str(tmp_path / "frames" / f"{i:03d}.png"), color_frame(color))
    out = tmp_path / "out.mp4"
    assert main(["--source", str(tmp_path / "frames"), "--output", str(out), "--model", str(channel_model),
                 "--view", "mask", "--quiet", *fps_args]) == 0
    assert out.is_file()
    times, images = read_video(out)
    assert times == [i * step for i in range(4)]
    assert np.abs(images[2][10, 10].astype(int) - MASK_BGR[BLUE]).max() <= 12


def test_output_that_is_the_input_through_a_hard_link_is_refused(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    before = clip.read_bytes()
    (tmp_path / "link.mp4").hardlink_to(clip)
    result = run_cli(str(clip), "--output", str(tmp_path / "link.mp4"), "--model", "otsu")
    assert result.returncode == 2 and "is the same file as an input" in result.stderr
    assert clip.read_bytes() == before


def test_no_display_is_one_line_suggesting_serve(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "rtseg", "--camera", "0"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--serve" in lines[0] and "--no-display" in lines[0], result.stderr


def test_bench_live_reports_latency_against_inference(tmp_path: Path, channel_model: Path, capsys) -> None:
    clip = make_video(tmp_path / "in.mp4", n=10, noise=True)
    assert main(["bench", "--live", "--model", str(channel_model), "--source", str(clip), "--frames", "8",
                 "--repeats", "1"]) == 0
    table = capsys.readouterr().out
    assert "capture -> display, median" in table and "capture -> file (+ H.264 encode), p99" in table
    assert "p99 latency to display / inference" in table
    median = float(table.split("capture -> display, median | ")[1].split("|")[0])
    assert median > 0


def test_stats_jsonl_has_latency_and_the_summary_its_percentiles(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=6)
    result = run_cli(str(clip), "--stats", str(tmp_path / "s.jsonl"), "--model", str(channel_model))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert all(line["latency_ms"] > 0 for line in lines)
    assert "latency median" in result.stderr and "p99" in result.stderr
