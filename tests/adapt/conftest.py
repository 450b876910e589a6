"""Fixtures for adapt tests: one real image folder and one synthetic dataset, made in code once."""

from __future__ import annotations

from pathlib import Path

import pytest
from adapt_fixtures import write_images
from simreal_testing import write_tiny_dataset


@pytest.fixture(scope="session")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 20x24 RGB PNGs (a plain folder: the real frames to refine)."""
    return write_images(tmp_path_factory.mktemp("real") / "frames", n=5)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simreal dataset of four 16x16 samples with depth, normals and masks (the target look)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("syn") / "renders", n=4, size=(16, 16), seed=1)
