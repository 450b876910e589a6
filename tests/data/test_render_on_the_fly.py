"""Rendering on the fly: frame i of a job, rendered in memory, is sample i of the dataset that job writes
(decoded files equal the arrays; the torch samples and batches equal SimrealDataset's), and a stream
split over DataLoader workers and training processes draws every frame once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from simreal.anatomy.mesh import save_mesh
from simreal.data.reader import DatasetReader
from simreal.data.render_dataset import ColonFrames, RenderedColonDataset, RenderedColonStream, stream_indices
from simreal.data.torch_dataset import SimrealDataset, collate_samples
from simreal.errors import SimrealError
from simreal.render.job import RenderJob
from simreal.render.run import render_job
from simreal.render.tube import tube_mesh

N, SIZE = 4, 24


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> RenderJob:
    folder = tmp_path_factory.mktemp("anatomy")
    a = save_mesh(tube_mesh(radius=12.0, length=150.0, segments=48, rings=20, polyps=((75.0, 0.0, 5.0),)), folder / "a.ply")
    b = save_mesh(tube_mesh(radius=10.0, length=120.0, segments=40, rings=16, polyps=((60.0, 1.0, 4.0),)), folder / "b.ply")
    return RenderJob(n=N, size=SIZE, seed=5, anatomy=(str(a), str(b)))  # two anatomies: frame i uses i % 2


@pytest.fixture(scope="module")
def written(tmp_path_factory, job) -> Path:
    return render_job(tmp_path_factory.mktemp("ds") / "ds", job, workers=1, progress=False)


def test_arrays_and_records_equal_the_written_files(job, written):
    frames, reader = ColonFrames(job), DatasetReader(written)
    for i in range(N):
        arrays = frames.arrays(i)
        assert set(arrays) == set(reader.records[i].files)
        for kind, array in arrays.items():
            stored = reader.read(i, kind)
            assert stored.dtype == array.dtype and np.array_equal(stored, array), (i, kind)
        rec = frames.record(i)
        assert (rec.id, rec.group, rec.params, rec.camera) == (reader.records[i].id, reader.records[i].group,
                                                                reader.records[i].params, reader.records[i].camera)


@pytest.mark.parametrize("kw", [dict(kinds=("depth", "mask")), dict(kinds=("mask",), size=(16, 16), mask_map={1: 3})])
def test_samples_and_batches_equal_simreal_dataset(job, written, kw):
    disk = SimrealDataset(written, **kw)
    fly = RenderedColonDataset(written / "dataset.json", **kw)  # the job read back from the set itself
    assert len(fly) == len(disk) == N
    a, b = collate_samples([disk[i] for i in range(N)]), collate_samples([fly[i] for i in range(N)])
    assert a.ids == b.ids and a.cameras == b.cameras
    for name in ("image", "depth", "mask"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or torch.equal(x, y), name


def test_indices_past_n_continue_the_sequence(job):
    longer = RenderedColonDataset(dataclasses.replace(job, n=N + 2), kinds=("depth",))
    tail = RenderedColonDataset(job, kinds=("depth",), indices=[N + 1, 1])
    assert tail[0].id == f"{N + 1:06d}" and torch.equal(tail[0].depth, longer[N + 1].depth)
    assert torch.equal(tail[1].image, longer[1].image)


def test_stream_shards_draw_each_frame_once():
    shares = [list(stream_indices(3, 20, w, 2, r, 2)) for r in range(2) for w in range(2)]
    assert sorted(i for share in shares for i in share) == list(range(3, 20))
    endless = stream_indices(0, None, 1, 2)
    assert [next(endless) for _ in range(3)] == [1, 3, 5]


def test_stream_worker_share_is_the_dataset(job, monkeypatch):
    from types import SimpleNamespace

    import simreal.data.render_dataset as module

    # What a DataLoader worker sees: worker 1 of 2 (a real spawn-worker loader costs minutes on 2 shared cores).
    monkeypatch.setattr(module, "get_worker_info", lambda: SimpleNamespace(id=1, num_workers=2))
    got = list(RenderedColonStream(job, kinds=("mask",), start=0, stop=N))
    ds = RenderedColonDataset(job, kinds=("mask",))
    assert [s.id for s in got] == [f"{i:06d}" for i in range(1, N, 2)]
    for s in got:
        assert torch.equal(s.image, ds[int(s.id)].image) and torch.equal(s.mask, ds[int(s.id)].mask)


def test_bad_input_is_one_clear_error(job, tmp_path):
    with pytest.raises(SimrealError, match="kinds must be"):
        RenderedColonDataset(job, kinds=("normals",))
    with pytest.raises(SimrealError, match="nope.ply"):
        RenderedColonDataset(dataclasses.replace(job, anatomy=(str(tmp_path / "nope.ply"),)))
    with pytest.raises(SimrealError, match="start <= stop"):
        RenderedColonStream(job, start=5, stop=2)
