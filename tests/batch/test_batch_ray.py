"""Issue #16: ``rtseg batch`` on a real local Ray (two CPUs), with tiny clips and a tiny model.

One Ray session serves the module (started once, shut down at the end); each batch starts
its own workers in it and kills them when done.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from factories import audio_summary, make_channel_argmax_model, make_video, read_video

ray = pytest.importorskip("ray", reason="rtseg batch needs Ray: pip install 'rtseg[ray]'")

import rtseg  # noqa: E402
from rtseg.batch import cli as batch_cli  # noqa: E402
from rtseg.batch.manifest import read_manifest  # noqa: E402
from rtseg.batch.worker import Worker  # noqa: E402
from rtseg.cli import main  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_channel_argmax_model(tmp_path_factory.mktemp("model") / "channels.onnx")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """videos/a/clip.mp4, videos/b/clip.mp4 (same stem, different folders), videos/top.mp4."""
    root = tmp_path_factory.mktemp("clips") / "videos"
    for rel, n in (("a/clip.mp4", 12), ("b/clip.mp4", 15), ("top.mp4", 18)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        make_video(root / rel, n=n, audio=True)
    return root


def batch(*argv: str, worker_cls=None) -> int:
    args = batch_cli.build_parser().parse_args([*argv, "--threads", "1", "--quiet"])
    return batch_cli.run(args, worker_cls=worker_cls)


def files_below(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def first_run(clips, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "annotated"
    code = batch(f"{clips}/**/*.mp4", "--out-dir", str(out), "--model", str(model), "--workers", "2")
    return code, out


def test_one_output_per_input_same_frames_and_timestamps_as_single_runs(first_run, clips, model, tmp_path):
    code, out = first_run
    assert code == 0
    assert files_below(out) == ["a/clip.mp4", "b/clip.mp4", "manifest.jsonl", "top.mp4"]
    records = {r["input"]: r for r in read_manifest(out / "manifest.jsonl")}
    assert len(records) == 3
    for rel, n in (("a/clip.mp4", 12), ("b/clip.mp4", 15), ("top.mp4", 18)):
        record = records[str(clips / rel)]
        assert record["output"] == str(out / rel)
        assert (record["status"], record["frames_in"], record["frames_out"], record["error"], record["attempts"]) == (
            "done", n, n, None, 1)
        assert record["seconds"] > 0
        single = tmp_path / rel.replace("/", "_")
        rtseg.process(clips / rel, single, model=str(model), threads=1, progress=False)
        batch_times, batch_images = read_video(out / rel)
        single_times, single_images = read_video(single)
        assert batch_times == single_times and len(batch_times) == n
        assert all(np.array_equal(a, b) for a, b in zip(batch_images, single_images))
        assert (out / rel).read_bytes() == single.read_bytes(), "same encoder settings, same bytes"
        assert audio_summary(out / rel) == audio_summary(single) is not None


def test_a_second_run_skips_finished_files_and_resumes_the_rest(first_run, clips, model):
    code, out = first_run
    assert code == 0
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.mp4")}
    assert batch(f"{clips}/**/*.mp4", "--out-dir", str(out), "--model", str(model)) == 0
    assert {r["status"] for r in read_manifest(out / "manifest.jsonl")} == {"skipped"}
    assert before == {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.mp4")}
    (out / "b" / "clip.mp4").unlink()  # as if the batch had been stopped before this one
    assert batch(f"{clips}/**/*.mp4", "--out-dir", str(out), "--model", str(model)) == 0
    statuses = {Path(r["output"]).relative_to(out).as_posix(): r["status"]
                for r in read_manifest(out / "manifest.jsonl")}
    assert statuses == {"a/clip.mp4": "skipped", "b/clip.mp4": "done", "top.mp4": "skipped"}
    assert len(read_video(out / "b" / "clip.mp4")[0]) == 15


class CrashingWorker(Worker):
    """Dies (``os._exit``) on its first run of ``long.mp4``, five frames in, after noting the
    hidden temp output it leaves behind."""

    def process(self, job, options):
        marker = job.output.parent.parent / "crash-marker.txt"
        if job.output.name == "long.mp4" and not marker.exists():
            def crash() -> None:
                while self.engine.frames < 5:
                    time.sleep(0.001)
                temps = [p.name for p in job.output.parent.iterdir() if p.name.startswith(".long.mp4.")]
                marker.write_text("\n".join(temps))
                os._exit(1)

            threading.Thread(target=crash, daemon=True).start()
        return super().process(job, options)


def test_a_worker_killed_mid_file_is_retried_and_leaves_no_partial_file(clips, model, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "long.mp4", n=60, audio=True)
    shutil.copy(clips / "top.mp4", videos / "short.mp4")
    out = tmp_path / "annotated"
    code = batch(str(videos), "--out-dir", str(out), "--model", str(model), "--workers", "2",
                 worker_cls=CrashingWorker)
    assert code == 0
    left_behind = (tmp_path / "crash-marker.txt").read_text().split()
    assert len(left_behind) == 1 and left_behind[0].endswith(".tmp.mp4"), "it died mid-file, with a temp file open"
    records = {Path(r["input"]).name: r for r in read_manifest(out / "manifest.jsonl")}
    assert (records["long.mp4"]["status"], records["long.mp4"]["attempts"], records["long.mp4"]["frames_out"]) == (
        "done", 2, 60)
    assert (records["short.mp4"]["status"], records["short.mp4"]["attempts"]) == ("done", 1)
    assert files_below(out) == ["long.mp4", "manifest.jsonl", "short.mp4"], "no temp or partial file left"
    times, _ = read_video(out / "long.mp4")
    assert len(times) == 60 and times == sorted(times)


def test_a_corrupt_clip_is_reported_not_retried_and_the_exit_code_says_so(clips, model, tmp_path, caplog):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(clips / "top.mp4", videos / "good.mp4")
    (videos / "corrupt.mp4").write_bytes(os.urandom(4096))
    out = tmp_path / "annotated"
    with caplog.at_level(logging.WARNING, logger="rtseg"):
        code = main(["batch", str(videos), "--out-dir", str(out), "--model", str(model), "--threads", "1",
                     "--quiet"])
    assert code == batch_cli.EXIT_FAILED != 0
    records = {Path(r["input"]).name: r for r in read_manifest(out / "manifest.jsonl")}
    assert records["good.mp4"]["status"] == "done"
    bad = records["corrupt.mp4"]
    assert (bad["status"], bad["attempts"], bad["frames_out"]) == ("failed", 1, 0)
    assert bad["error"].startswith(f"cannot open video {videos / 'corrupt.mp4'}")
    assert any("corrupt.mp4" in message for message in caplog.messages)
    assert files_below(out) == ["good.mp4", "manifest.jsonl"]
