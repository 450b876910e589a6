"""`simreal bench render`: the figures exist, are positive and labelled (tiny run; speed is not asserted)."""

from __future__ import annotations

import sys

import pytest

from simreal.bench.render import bench_render


def test_bench_render_reports_every_figure():
    scene, runs = bench_render(n=4, size=16, workers=(1, 2), seed=0)
    assert "triangles" in scene
    assert [r.workers for r in runs] == [1, 2]
    for r in runs:
        assert r.n == 4 and r.frames_per_s > 0 and r.steady_frames_per_s > 0 and r.peak_rss_mb > 0
        assert {"cast_ms", "rays_ms", "hit_ms", "surface_ms", "shade_ms", "write_ms", "sample_ms"} <= set(r.stage_ms)
        assert all(v > 0 for v in r.stage_ms.values())
        assert r.stage_ms["rays_ms"] + r.stage_ms["hit_ms"] + r.stage_ms["surface_ms"] <= r.stage_ms["cast_ms"]
        assert r.cpu_ms_per_frame >= 0  # clock ticks of 10 ms: a 4-frame run may see none
    assert len(runs[0].rss_mb) == 3
    assert runs[0].workers_rss_mb == () and len(runs[1].workers_rss_mb) == 3  # worker RSS sampled for > 1 worker
    assert all(x > 0 for x in runs[1].workers_rss_mb)
    assert all(r.visibility == "raster" for r in runs)  # the renderer's default


def test_bench_render_measures_each_visibility_side_by_side():
    _, runs = bench_render(n=3, size=16, workers=(1,), seed=0, visibility=("embree", "raster"))
    assert [(r.visibility, r.workers) for r in runs] == [("embree", 1), ("raster", 1)]
    assert all(r.stage_ms["hit_ms"] > 0 for r in runs)


def test_bench_render_cli(monkeypatch, capsys):
    from simreal.cli import main

    monkeypatch.setattr(sys, "argv", ["simreal", "bench", "render", "--n", "3", "--size", "16", "--workers", "1"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (None, 0)
    out = capsys.readouterr().out
    assert "render 16x16 embree workers=1:" in out and "render 16x16 raster workers=1:" in out and "frames/s" in out and "cast" in out and "peak RSS" in out
    assert "CPU" in out and "hit" in out
