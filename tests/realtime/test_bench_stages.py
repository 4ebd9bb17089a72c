"""The CPU-limit arithmetic of ``rtseg bench`` and a real measurement on a tiny clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtseg.realtime.bench_stages import Cost, StageCosts, format_stage_table, measure_pipeline, measure_stages
from rtseg.realtime.engine import load_model
from tests.factories import make_video


def _costs(**stages: tuple[float, float]) -> dict[str, Cost]:
    return {name: Cost(cpu, wall) for name, (cpu, wall) in stages.items()}


def test_limit_is_the_smaller_of_the_cpu_bound_and_the_slowest_thread() -> None:
    # 40 CPU ms per frame on 2 cores: 50 fps; the inference thread alone takes 15 ms: 66.7 fps
    costs = StageCosts(_costs(decode=(3, 3), preprocess=(1, 1), inference=(26, 14), render=(2, 2), encode=(8, 8)),
                       cores=2, pipeline_fps=45.0, pipeline_cpu_ms=42.0)
    assert costs.cpu_ms == pytest.approx(40.0)
    assert costs.cpu_bound_fps == pytest.approx(50.0)
    assert costs.thread_wall_ms("render") == pytest.approx(10.0)
    assert costs.thread_bound_fps == pytest.approx(1000 / 15)
    assert costs.limit_fps == pytest.approx(50.0)
    assert costs.ratio == pytest.approx(0.9)
    # on 8 cores the same stages are bound by the inference thread instead
    wide = StageCosts(costs.stages, cores=8)
    assert wide.limit_fps == pytest.approx(1000 / 15) and wide.ratio is None
    table = format_stage_table(costs)
    assert "CPU limit on 2 cores: 50.0 fps" in table and "0.90 x the limit" in table


def test_measured_stages_cover_every_stage_and_the_pipeline_spends_cpu(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=10, width=160, height=120, noise=True)
    engine = load_model(channel_model, threads=1)
    costs = measure_stages(engine, str(clip), frames=10, cores=2)
    assert list(costs.stages) == ["decode", "preprocess", "inference", "render", "encode"]
    assert costs.stages["decode"].cpu_ms > 0 and costs.stages["encode"].cpu_ms > 0
    assert costs.cores == 2 and costs.limit_fps > 0
    fps, cpu_ms, threads = measure_pipeline(engine, str(clip), 10, tmp_path / "out.mp4")
    assert fps > 0 and cpu_ms > 0
    keyframes = measure_stages(engine, str(clip), frames=10, infer_every=3, cores=2)
    assert set(keyframes.stages) == set(costs.stages)
