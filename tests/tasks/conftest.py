"""Fixtures for task tests (helpers live in tasks_blobs.py, a unique module name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tasks_blobs import write_blob_dataset


@pytest.fixture(scope="session")
def blob_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_blob_dataset(tmp_path_factory.mktemp("blobs") / "ds")
