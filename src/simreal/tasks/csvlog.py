"""A CSV logger that keeps ``RUN/metrics.csv`` across resumes.

Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts, so a resumed run would lose
its history. This writer appends instead, starting from the existing header; :func:`trim_metrics` first
drops the rows of epochs after the checkpoint being resumed (an interrupted epoch is logged once, by
its rerun).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from simreal.atomic import atomic_open

METRICS_FILE = "metrics.csv"


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with open(path, newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(header)


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` writing ``save_dir/metrics.csv`` (and ``hparams.yaml``) and appending on resume."""

    def __init__(self, save_dir: str | Path):
        super().__init__(save_dir=save_dir, name="", version="")

    @property
    def experiment(self) -> ExperimentWriter:  # type: ignore[override]
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def trim_metrics(run: Path, last_epoch: int) -> None:
    """Keep only the rows of epochs <= ``last_epoch`` in ``run/metrics.csv`` (atomic rewrite)."""
    path = run / METRICS_FILE
    if not path.is_file():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows = [r for r in reader if not r.get("epoch") or int(float(r["epoch"])) <= last_epoch]
    with atomic_open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
