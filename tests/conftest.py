"""Shared test fixtures: tiny datasets made in code."""

from __future__ import annotations

from pathlib import Path

import pytest

from simreal_testing import write_tiny_dataset


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "tiny")
