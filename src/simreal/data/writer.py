"""Atomic, resumable dataset writer.

A dataset is assembled in ``DIR.partial/`` and renamed to ``DIR`` only when every sample is there, so a
reader never sees half a dataset. Each sample's pixel files are written first and its record
(``records/<id>.json``) last, so a sample whose record exists is complete: an interrupted run resumes by
skipping those ids. Samples may be written from several processes at once (each writes its own files).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from simreal import __version__
from simreal.data import images
from simreal.data.format import FILE_KINDS, DatasetInfo, SampleRecord, file_name
from simreal.errors import SimrealError

_PENDING_INFO = "dataset.pending.json"
_LOCK = ".lock"


def partial_dir(out_dir: Path) -> Path:
    """Where a dataset bound for ``out_dir`` is assembled."""
    return out_dir.with_name(out_dir.name + ".partial")


def write_json(path: Path, obj: Any, default: Callable[[Any], Any] | None = None) -> None:
    """Write JSON atomically with sorted keys (same object, same bytes); ``default`` as in ``json.dumps``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=default) + "\n")
    os.replace(tmp, path)


def write_sample_files(root: Path, sample_id: str, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Write one sample's pixel files under ``root``; returns kind -> relative path."""
    files = {}
    for kind, array in arrays.items():
        rel = file_name(kind, sample_id)
        path = root / rel
        if FILE_KINDS[kind]["ext"] == ".png":
            images.write_png(path, array)
        else:
            images.write_tiff(path, array)
        files[kind] = rel
    return files


class DatasetWriter:
    """Writes a dataset folder atomically and resumably.

    Args:
        out_dir: the final dataset folder; must not exist yet.
        info: what ``dataset.json`` will say (``n_samples`` and version are filled in at the end).
        resume: if a ``.partial`` folder from the same generator config exists, keep its finished samples;
            if it holds a different config, fail rather than mix two datasets.

    Example:
        >>> w = DatasetWriter(Path("out"), info)              # doctest: +SKIP
        >>> for i in range(n):
        ...     if w.has(f"{i:06d}"): continue
        ...     w.write(record, {"image": rgb, "depth": depth})
        >>> w.finish()
    """

    def __init__(self, out_dir: str | Path, info: DatasetInfo, resume: bool = True):
        self.out_dir = Path(out_dir)
        self.info = info
        self.root = partial_dir(self.out_dir)
        if self.out_dir.exists():
            raise SimrealError("output folder already exists; choose a new one or remove it", self.out_dir)
        parent = self.out_dir.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimrealError(f"cannot create the output folder's parent ({exc.strerror})", parent) from None
        if not os.access(parent, os.W_OK):
            raise SimrealError("output location is not writable", parent)
        pending = self.root / _PENDING_INFO
        wanted = self._identity(info)
        if self.root.exists():
            previous = None
            if pending.is_file():
                try:
                    previous = json.loads(pending.read_text())
                except json.JSONDecodeError:
                    previous = None
            if not resume or previous != wanted:
                raise SimrealError(
                    "an unfinished dataset with different settings is here; rerun with the same arguments "
                    "to resume it, or delete it",
                    self.root,
                )
        else:
            (self.root / "records").mkdir(parents=True)
            write_json(pending, wanted)
        self._lock = self._take_lock()
        self._done = {p.stem for p in (self.root / "records").glob("*.json")}

    def _take_lock(self):
        """Hold an exclusive lock on the ``.partial`` folder: two runs must never write one dataset."""
        import fcntl

        handle = open(self.root / _LOCK, "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise SimrealError("another run is writing this dataset right now", self.root) from None
        return handle

    def close(self) -> None:
        """Stop writing without finishing: finished samples stay in ``.partial`` for a later resume."""
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None and not self._lock.closed:
            (self.root / _LOCK).unlink(missing_ok=True)
            self._lock.close()

    @staticmethod
    def _identity(info: DatasetInfo) -> dict[str, Any]:
        d = info.to_dict()
        d.pop("n_samples")
        return d

    @property
    def done_ids(self) -> set[str]:
        """Ids of samples already complete (from an earlier, interrupted run too)."""
        return set(self._done)

    def has(self, sample_id: str) -> bool:
        return sample_id in self._done

    def write(self, record: SampleRecord, arrays: dict[str, np.ndarray]) -> SampleRecord:
        """Write one sample: pixel files first, then its record. Returns the record with its file names."""
        unknown = set(arrays) - set(FILE_KINDS)
        if unknown:
            raise SimrealError(f"unknown file kinds {sorted(unknown)}")
        record = write_sample_record(self.root, record, arrays)
        self._done.add(record.id)
        return record

    def mark_done(self, sample_id: str) -> None:
        """Note a sample written by another process through :func:`write_sample_record`."""
        self._done.add(sample_id)

    def finish(self, expected_ids: list[str] | None = None) -> Path:
        """Write ``samples.jsonl`` and ``dataset.json`` and rename the folder into place."""
        records_dir = self.root / "records"
        ids = sorted(p.stem for p in records_dir.glob("*.json"))
        if expected_ids is not None:
            missing = sorted(set(expected_ids) - set(ids))
            if missing:
                raise SimrealError(f"{len(missing)} samples missing (first: {missing[0]}); cannot finish", self.root)
        if not ids:
            raise SimrealError("no samples were written; refusing to create an empty dataset", self.out_dir)
        lines = [json.dumps(json.loads((records_dir / f"{i}.json").read_text()), sort_keys=True) for i in ids]
        (self.root / "samples.jsonl").write_text("\n".join(lines) + "\n")
        info = DatasetInfo(**{**self.info.__dict__, "n_samples": len(ids), "simreal_version": __version__})
        write_json(self.root / "dataset.json", info.to_dict())
        shutil.rmtree(records_dir)
        (self.root / _PENDING_INFO).unlink()
        self._release_lock()
        os.replace(self.root, self.out_dir)
        return self.out_dir

    def abort(self) -> None:
        """Remove everything written (used on bad input: no half-written dataset is left behind)."""
        self._release_lock()
        shutil.rmtree(self.root, ignore_errors=True)


def write_sample_record(partial_root: Path, record: SampleRecord, arrays: dict[str, np.ndarray]) -> SampleRecord:
    """Write one sample into a writer's ``.partial`` folder: pixel files, then the record that marks it
    complete. Needs no writer object, so worker processes call it directly."""
    files = write_sample_files(partial_root, record.id, arrays)
    record = SampleRecord(**{**record.__dict__, "files": {**record.files, **files}})
    write_json(partial_root / "records" / f"{record.id}.json", record.to_dict())
    return record
