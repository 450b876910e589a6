"""The image history buffer really fills, stays bounded, samples what it holds, and round-trips."""

from __future__ import annotations

import pytest
import torch

from simreal.adapt.history import HistoryBuffer
from simreal.errors import SimrealError


def _images(n: int, value: float) -> torch.Tensor:
    return torch.full((n, 1, 2, 3), value)


def test_it_fills_until_capacity_then_stays_bounded():
    buf = HistoryBuffer(capacity=7)
    sizes = []
    for k in range(5):
        buf.push(_images(3, float(k)))
        sizes.append(len(buf))
    # the trap of a public port: np.append without assignment leaves the buffer empty forever
    assert sizes == [3, 6, 7, 7, 7]
    assert buf.full and buf.images().shape == (7, 1, 2, 3)


def test_new_images_replace_old_ones_once_full():
    buf = HistoryBuffer(capacity=4)
    buf.push(_images(4, 0.0))
    buf.push(_images(2, 1.0), generator=torch.Generator().manual_seed(0))
    values = buf.images()[:, 0, 0, 0].tolist()
    assert len(buf) == 4 and sorted(values) == [0.0, 0.0, 1.0, 1.0]
    buf.push(_images(9, 2.0))  # more than the capacity at once: only the newest stay
    assert buf.images()[:, 0, 0, 0].tolist() == [2.0] * 4


def test_sample_draws_distinct_stored_images():
    buf = HistoryBuffer(capacity=10)
    buf.push(torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 1, 2, 2))
    g = torch.Generator().manual_seed(3)
    s = buf.sample(3, generator=g)
    values = s[:, 0, 0, 0].tolist()
    assert s.shape == (3, 1, 2, 2) and s.dtype == torch.float16
    assert len(set(values)) == 3 and set(values) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert buf.sample(50).shape[0] == 5  # never more than it holds
    with pytest.raises(SimrealError, match="empty"):
        HistoryBuffer(3).sample(1)


def test_contents_travel_in_the_state_dict():
    buf = HistoryBuffer(capacity=5)
    buf.push(torch.rand(4, 3, 4, 4))
    state = buf.state_dict()
    assert set(state) == {"_extra_state"} and state["_extra_state"]["count"] == 4
    # saved rows are only the filled ones, not the allocation
    assert state["_extra_state"]["images"].shape == (4, 3, 4, 4)
    other = HistoryBuffer(capacity=5)
    other.load_state_dict(state)
    assert len(other) == 4 and torch.equal(other.images(), buf.images())
    with pytest.raises(SimrealError, match="capacity"):
        HistoryBuffer(capacity=6).load_state_dict(state)
    empty = HistoryBuffer(capacity=5)
    empty.load_state_dict(HistoryBuffer(capacity=5).state_dict())
    assert len(empty) == 0


def test_shape_checks_and_a_disabled_buffer():
    buf = HistoryBuffer(capacity=4)
    buf.push(torch.zeros(1, 3, 4, 4))
    with pytest.raises(SimrealError, match="cannot add"):
        buf.push(torch.zeros(1, 3, 5, 4))
    off = HistoryBuffer(capacity=0)
    off.push(torch.zeros(2, 3, 4, 4))
    assert len(off) == 0
    with pytest.raises(SimrealError):
        HistoryBuffer(capacity=-1)
