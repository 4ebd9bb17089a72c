"""Issue #16: the parts of ``rtseg batch`` that need no Ray: which inputs, which outputs,
how many workers, what a stopped input leaves, and the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path, PurePosixPath

import pytest

from rtseg.batch.cli import EXIT_FAILED, build_parser, exit_code, run_options
from rtseg.batch.inputs import expand_inputs, redact, stream_name
from rtseg.batch.leftovers import remove_leftovers, remove_stale_partials
from rtseg.batch.manifest import Manifest, Outcome, read_manifest
from rtseg.batch.model import materialize, model_payload
from rtseg.batch.plan import Job, plan_jobs
from rtseg.batch.resources import WorkerPlan, plan_workers
from rtseg.batch.worker import Worker
from rtseg.errors import OptionError, SinkError, SourceError
from rtseg.realtime.options import RunOptions, SourceOptions

from factories import make_channel_argmax_model, make_video, read_video

pytestmark = pytest.mark.timeout(60)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def rels(inputs) -> list[str]:
    return [i.rel.as_posix() for i in inputs]


def test_same_stem_in_two_folders_gets_two_outputs_mirroring_the_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for rel in ("videos/a/clip.mp4", "videos/b/clip.mp4", "videos/b/deep/x.mkv", "videos/notes.txt"):
        touch(Path(rel))
    jobs = plan_jobs(expand_inputs(["videos/**/*.mp4", "videos/b/deep/x.mkv"]), Path("out"))
    assert [str(j.output) for j in jobs] == ["out/a/clip.mp4", "out/b/clip.mp4", "out/x.mkv"]
    assert rels(expand_inputs(["videos"])) == ["a/clip", "b/clip", "b/deep/x"], "a folder: videos only, recursive"


def test_a_folder_scan_skips_hidden_temp_files_and_the_output_folder(tmp_path):
    touch(tmp_path / "v" / "clip.mp4")
    touch(tmp_path / "v" / ".clip.mp4.x1y2.tmp.mp4")  # a temp file of an earlier, killed run
    touch(tmp_path / "v" / "out" / "clip.mp4")  # the previous run's output, inside the input folder
    assert rels(expand_inputs([str(tmp_path / "v")], exclude=tmp_path / "v" / "out")) == ["clip"]


def test_a_list_file_takes_paths_relative_to_itself_globs_and_urls(tmp_path):
    touch(tmp_path / "lists" / "one.mp4")
    touch(tmp_path / "other" / "two.mov")
    (tmp_path / "lists" / "inputs.txt").write_text(
        f"# my cameras\none.mp4\n\n{tmp_path}/other/*.mov\nrtsp://admin:s3cret@cam1:554/live/ch0?token=abc\n")
    inputs = expand_inputs([str(tmp_path / "lists" / "inputs.txt")])
    assert [(i.rel.as_posix(), i.stream) for i in inputs] == [
        ("two", False), ("one", False), ("cam1_554/live/ch0", True)]
    assert inputs[2].shown == "rtsp://admin:***@cam1:554/live/ch0?token=abc"
    assert "s3cret" not in str(plan_jobs(inputs, tmp_path / "out")[2].output)


def test_stream_names_and_redaction():
    assert stream_name("rtsp://cam/") == PurePosixPath("cam/stream")
    assert stream_name("http://h:8080/a/../b/c.mkv") == PurePosixPath("h_8080/a/b/c")
    assert redact("rtsp://u@h/x") == "rtsp://u@h/x"


@pytest.mark.parametrize("specs, context, message", [
    (["missing.mp4"], pytest.raises(SourceError), "input not found: missing.mp4"),
    (["nothing/*.mp4"], pytest.raises(SourceError), "no files match 'nothing/*.mp4'"),
    (["empty"], pytest.raises(SourceError), "no videos"),
    (["same/a.avi", "same/a.mp4"], pytest.raises(SinkError), "would both write"),
    (["same/a.mp4", "same/a.mkv"], ExitStack(), None),  # different suffixes: different outputs
])
def test_bad_input_lists_stop_before_anything_starts(tmp_path, monkeypatch, specs, context, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    for name in ("same/a.avi", "same/a.mp4", "same/a.mkv"):
        touch(Path(name))
    with context as caught:
        plan_jobs(expand_inputs(specs), Path("out"))
    if message:
        assert message in str(caught.value)


def test_an_output_that_is_an_input_or_the_model_is_refused(tmp_path):
    clip = touch(tmp_path / "v" / "clip.mp4")
    with pytest.raises(SinkError, match="same file as an input"):
        plan_jobs(expand_inputs([str(clip)]), tmp_path / "v")  # --out-dir is the input's own folder
    model = touch(tmp_path / "m" / "clip.mp4")
    with pytest.raises(SinkError, match="same file as an input or the model"):
        plan_jobs(expand_inputs([str(clip)]), tmp_path / "m", model_path=model)


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path):
    for name in ("a.mp4", "b.mp4"):
        touch(tmp_path / "v" / name)
    touch(tmp_path / "out" / "a.mp4")
    inputs = expand_inputs([str(tmp_path / "v")])
    assert [j.skip for j in plan_jobs(inputs, tmp_path / "out")] == [True, False]
    assert [j.skip for j in plan_jobs(inputs, tmp_path / "out", overwrite=True)] == [False, False]
    stats = plan_jobs(inputs, tmp_path / "out", stats_dir=tmp_path / "stats")
    assert [j.skip for j in stats] == [False, False], "done means every file output exists"
    assert stats[0].stats == tmp_path / "stats" / "a.jsonl"


@pytest.mark.parametrize("resources, kwargs, expected", [
    ({"CPU": 2.0}, {"device": "auto", "n_jobs": 5}, WorkerPlan(2, "cpu", 1, 0.0)),
    ({"CPU": 2.0}, {"device": "auto", "n_jobs": 5, "cpus_per_worker": 2}, WorkerPlan(1, "cpu", 2, 0.0)),
    ({"CPU": 16.0}, {"device": "auto", "n_jobs": 3}, WorkerPlan(3, "cpu", 1, 0.0)),
    ({"CPU": 16.0, "GPU": 1.0}, {"device": "auto", "n_jobs": 9, "gpus_per_worker": 0.25},
     WorkerPlan(4, "cuda", 1, 0.25)),
    ({"CPU": 16.0, "GPU": 2.0}, {"device": "cpu", "n_jobs": 9, "workers": 3}, WorkerPlan(3, "cpu", 1, 0.0)),
])
def test_worker_pool_follows_the_cluster(resources, kwargs, expected):
    assert plan_workers(resources, **kwargs) == expected


def test_cuda_without_a_gpu_is_one_line():
    with pytest.raises(OptionError, match="--device cuda: the Ray cluster has no GPU"):
        plan_workers({"CPU": 4.0}, device="cuda", n_jobs=1)
    with pytest.raises(OptionError, match="--gpus-per-worker needs GPUs"):
        plan_workers({"CPU": 4.0}, device="cpu", n_jobs=1, gpus_per_worker=0.5)


def test_the_same_flags_as_the_single_file_command_build_the_options():
    args = build_parser().parse_args(["v/", "--out-dir", "o", "--alpha", "0.3", "--view", "mask", "--crf", "30",
                                      "--max-pixels", "1000", "--cpus-per-worker", "2", "--instances"])
    options = run_options(args)
    assert (options.render.alpha, options.render.view, options.output.crf, options.source.max_pixels) == (
        0.3, "mask", 30, 1000)
    assert options.render.instances is True
    assert (options.model.threads, options.output.display, options.output.progress) == (2, False, False)
    for flag in ("--camera", "--source", "--output", "--serve", "--show"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["v/", "--out-dir", "o", flag, "1"])


def test_exit_codes():
    job = Job("a.mp4", "a.mp4", Path("o/a.mp4"))
    statuses = lambda *s: [Outcome(job, status) for status in s]  # noqa: E731
    assert exit_code(statuses("done", "skipped")) == 0
    assert exit_code(statuses("done", "partial")) == 3
    assert exit_code(statuses("partial", "failed")) == EXIT_FAILED == 4
    assert exit_code(statuses("done", "stopped"), signum=2) == 130


def test_leftovers_of_a_dead_attempt_are_removed_the_final_name_is_kept(tmp_path):
    job = Job("in.mp4", "in.mp4", tmp_path / "clip.mp4", stats=tmp_path / "s" / "clip.jsonl", masks=tmp_path / "m")
    keep = [touch(tmp_path / "clip.mp4"), touch(tmp_path / ".other.mp4.ab12.tmp.mp4"), touch(tmp_path / "m" / "1.png")]
    gone = [touch(tmp_path / ".clip.mp4.k3j_x.tmp.mp4"), touch(tmp_path / "s" / ".clip.jsonl.q1.tmp.jsonl"),
            touch(tmp_path / "m" / ".000001.png.zz.tmp.png")]
    assert sorted(remove_leftovers(job)) == sorted(gone)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)
    partial = touch(tmp_path / "clip.partial.mp4")
    assert remove_stale_partials(job) == [partial] and not partial.exists()


def test_the_manifest_appears_only_when_closed(tmp_path):
    path = tmp_path / "o" / "manifest.jsonl"
    with Manifest(path) as manifest:
        manifest.write(Outcome(Job("a.mp4", "a.mp4", Path("o/a.mp4")), "done", 5, 5, 0.5))
        assert not path.exists() and len(list(path.parent.glob(".manifest.jsonl.*"))) == 1
    assert read_manifest(path) == [{"input": "a.mp4", "output": "o/a.mp4", "status": "done", "frames_in": 5,
                                    "frames_out": 5, "seconds": 0.5, "error": None, "attempts": 0, "warnings": []}]
    assert os.listdir(path.parent) == ["manifest.jsonl"]


def test_a_model_file_travels_as_bytes_and_loads_from_a_private_copy(tmp_path):
    model = make_channel_argmax_model(tmp_path / "channels.onnx")
    payload = model_payload(str(model))
    assert payload.name == "channels.onnx" and payload.files == {"channels.onnx": model.read_bytes()}
    path, folder = materialize(payload)
    assert Path(path).read_bytes() == model.read_bytes() and Path(path).parent != model.parent
    folder.cleanup()
    assert model_payload("otsu").files == {}


def test_a_stopped_stream_finishes_like_its_end_and_keeps_its_output(tmp_path):
    """Worker.stop() (what the driver sends a stream on Ctrl-C) ends the run now; the frames
    read so far are written and published."""
    clip = make_video(tmp_path / "clip.mp4", n=100)
    worker = Worker(model_payload(str(make_channel_argmax_model(tmp_path / "m.onnx"))), "cpu", 1)
    job = Job(str(clip), str(clip), tmp_path / "out" / "clip.mp4", stream=True)
    options = RunOptions(source=SourceOptions(realtime=True))  # 4 s at the clip's own pace
    timer = threading.Timer(1.0, worker.stop)
    timer.start()
    started = time.monotonic()
    outcome = worker.process(job, options)
    timer.join()
    assert time.monotonic() - started < 3
    assert outcome["status"] == "stopped" and 0 < outcome["frames_out"] < 100
    assert len(read_video(job.output)[0]) == outcome["frames_out"]


def test_without_ray_the_command_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from rtseg.cli import main; "
            "sys.exit(main(['batch', 'videos/', '--out-dir', 'out']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "rtseg: error: rtseg batch needs ray, not installed: pip install 'rtseg[ray]'"]


@pytest.mark.parametrize("flag, value", [("--workers", "0"), ("--cpus-per-worker", "0"), ("--gpus-per-worker", "-1"),
                                         ("--retries", "-1"), ("--drain-timeout", "nan"), ("--num-cpus", "0"),
                                         ("--suffix", ".webm"), ("--crf", "52")])
def test_out_of_range_batch_flags_are_one_argparse_error(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["v/", "--out-dir", "o", flag, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {flag}" in err
