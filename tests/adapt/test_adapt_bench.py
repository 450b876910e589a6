"""The adversarial benchmark reports both loops (speed itself is not asserted)."""

from __future__ import annotations

import pytest

from simreal.bench.adapt import bench_adapt
from simreal.errors import SimrealError


def test_bench_adapt_tiny_reports_engine_and_plain_figures():
    r = bench_adapt(size=16, batch_size=2, ngf=4, n_blocks=1, steps=2, warmup=1, repeats=1)
    assert r.plain_steps_per_s > 0 and r.engine_steps_per_s > 0 and r.params > 0
    assert r.overhead == pytest.approx(r.plain_steps_per_s / r.engine_steps_per_s - 1)
    with pytest.raises(SimrealError):
        bench_adapt(size=4)
