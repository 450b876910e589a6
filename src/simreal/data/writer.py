"""Atomic, resumable dataset writer (the folder layout and the resume mechanism: ``docs/dataset_format.md``).

A dataset is assembled in ``DIR.partial/`` and renamed to ``DIR`` only when every sample is there, so a
reader never sees half a dataset. Each sample's pixel files are written first and its record
(``records/<id>.json``) last, so a sample whose record exists is complete: an interrupted run resumes by
skipping those ids. Samples may be written from several processes at once (each writes its own files).

Every file is written atomically (:mod:`simreal.atomic`). A run killed outright can still leave two kinds
of debris in ``DIR.partial``: temporaries (``.<name>.<tag>.tmp``) of the files it was writing, and pixel
files of samples whose record it never wrote. A resumed run removes the first when it starts and
overwrites the second when it renders those samples again; :meth:`DatasetWriter.finish` removes whatever
of either is left, so the finished dataset holds exactly the files its records name.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from simreal import __version__
from simreal.atomic import atomic_open, is_temporary, sweep_temporaries, write_json
from simreal.data import images
from simreal.data.format import FILE_KINDS, DatasetInfo, SampleRecord, file_name
from simreal.errors import SimrealError

__all__ = ["DatasetWriter", "partial_dir", "write_json", "write_sample_files", "write_sample_record"]

_PENDING_INFO = "dataset.pending.json"
_LOCK = ".lock"
_RECORDS = "records"
# Files that may sit at the top of a .partial folder besides records/ and the kind folders: the writer's
# bookkeeping and the two files finish() writes (a crash during finish leaves them; finish rewrites them).
_TOP_LEVEL_FILES = {_PENDING_INFO, _LOCK, "dataset.json", "samples.jsonl"}


def partial_dir(out_dir: Path) -> Path:
    """Where a dataset bound for ``out_dir`` is assembled."""
    return out_dir.with_name(out_dir.name + ".partial")


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
        resume: if a ``.partial`` folder from the same generator config exists, keep its finished samples
            (and remove the temporaries a killed run left in it); if it holds a different config, fail
            rather than mix two datasets.

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
        resuming = self.root.exists()
        if resuming:
            previous = None
            if pending.is_file():
                try:
                    previous = json.loads(pending.read_bytes().decode("utf-8"))
                except (ValueError, OSError):  # damaged: treat as "not ours" (ValueError covers bad UTF-8)
                    previous = None
            if not resume or previous != wanted:
                raise SimrealError(
                    "an unfinished dataset with different settings is here; rerun with the same arguments "
                    "to resume it, or delete it",
                    self.root,
                )
        else:
            (self.root / _RECORDS).mkdir(parents=True)
            write_json(pending, wanted)
        self._lock = self._take_lock()
        if resuming:
            # Only now, holding the lock: no other run can be writing these temporaries.
            (self.root / _RECORDS).mkdir(exist_ok=True)
            self._sweep()
        self._done = {p.stem for p in (self.root / _RECORDS).glob("*.json")}

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

    def _sweep(self) -> list[Path]:
        """Remove the writer's temporaries from the partial folder, its kind folders and records/."""
        removed = sweep_temporaries(self.root)
        for sub in (_RECORDS, *FILE_KINDS):
            removed += sweep_temporaries(self.root / sub)
        return removed

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
        """Write ``samples.jsonl`` and ``dataset.json`` and rename the folder into place.

        Args:
            expected_ids: the samples the dataset must hold, exactly: finishing fails if one is missing,
                and complete samples of other ids (left by an earlier run) are left out. None: every
                complete sample.

        Raises:
            SimrealError: a sample is missing, none was written, a record is damaged, or the folder holds
                something the writer did not put there (nothing is removed or renamed then).
        """
        records_dir = self.root / _RECORDS
        complete = sorted(p.stem for p in records_dir.glob("*.json"))
        if expected_ids is not None:
            missing = sorted(set(expected_ids) - set(complete))
            if missing:
                raise SimrealError(f"{len(missing)} samples missing (first: {missing[0]}); cannot finish", self.root)
            ids = sorted(set(expected_ids))
        else:
            ids = complete
        if not ids:
            raise SimrealError("no samples were written; refusing to create an empty dataset", self.out_dir)
        # Two passes over the records, one in memory at a time: memory stays flat in the sample count
        # (100k records held at once took 1.4 GB). The first checks them all before anything is written.
        named = {rel for i in ids for rel in self._load_record(records_dir / f"{i}.json")["files"].values()}
        leftovers = self._leftovers(named)
        with atomic_open(self.root / "samples.jsonl", newline="\n") as f:
            for i in ids:
                f.write(json.dumps(self._load_record(records_dir / f"{i}.json"), sort_keys=True) + "\n")
        info = DatasetInfo(**{**self.info.__dict__, "n_samples": len(ids), "simreal_version": __version__})
        write_json(self.root / "dataset.json", info.to_dict())
        for path in leftovers:
            path.unlink(missing_ok=True)
        self._remove_empty_folders()
        # Records go before the pending description: a crash in between leaves a .partial that resumes
        # (it re-renders the samples whose records are gone, overwriting their files with the same bytes).
        shutil.rmtree(records_dir)
        self._release_lock()
        (self.root / _PENDING_INFO).unlink()
        os.replace(self.root, self.out_dir)
        return self.out_dir

    def _load_record(self, path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_bytes().decode("utf-8"))
            SampleRecord.from_dict(record)
            return record
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, OSError) as exc:
            raise SimrealError(
                f"damaged sample record ({exc.__class__.__name__}: {exc}); delete it to render that sample again", path
            ) from None

    def _leftovers(self, named: set[str]) -> list[Path]:
        """Files that must not reach the finished dataset: temporaries, and files in the sample folders
        (the kind folders, and any folder a record names a file in) that no chosen record names: samples
        a killed run never completed, or left out by ``expected_ids``.

        Raises:
            SimrealError: something else the writer never makes (a file or folder at the top): the person
                who put it there should decide, so nothing is deleted.
        """
        sample_dirs = set(FILE_KINDS) | {rel.split("/", 1)[0] for rel in named if "/" in rel}
        leftovers = []
        for entry in sorted(self.root.iterdir()):
            if entry.name == _RECORDS and entry.is_dir():
                continue  # removed whole
            if entry.name in sample_dirs and entry.is_dir() and not entry.is_symlink():
                for f in entry.rglob("*"):  # not sorted: the walk need not be held in memory
                    if not f.is_dir() and f.relative_to(self.root).as_posix() not in named:
                        leftovers.append(f)
            elif entry.is_file() and (entry.name in _TOP_LEVEL_FILES or entry.name in named):
                continue  # bookkeeping (or rewritten by finish), or a file a record names
            elif entry.is_file() and is_temporary(entry):
                leftovers.append(entry)
            else:
                raise SimrealError("unexpected file in an unfinished dataset; remove it and rerun", entry)
        return leftovers

    def _remove_empty_folders(self) -> None:
        for folder in sorted((p for p in self.root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if folder.name != _RECORDS and not any(folder.iterdir()):
                folder.rmdir()

    def abort(self) -> None:
        """Remove everything written (used on bad input: no half-written dataset is left behind)."""
        self._release_lock()
        shutil.rmtree(self.root, ignore_errors=True)


def write_sample_record(partial_root: Path, record: SampleRecord, arrays: dict[str, np.ndarray]) -> SampleRecord:
    """Write one sample into a writer's ``.partial`` folder: pixel files, then the record that marks it
    complete. Needs no writer object, so worker processes call it directly."""
    files = write_sample_files(partial_root, record.id, arrays)
    record = SampleRecord(**{**record.__dict__, "files": {**record.files, **files}})
    write_json(partial_root / _RECORDS / f"{record.id}.json", record.to_dict())
    return record


#: An importer's progress callback: (samples written, total), after each sample.
Progress = Callable[[int, int], None]


def write_dataset(
    out_dir: str | Path,
    info: DatasetInfo,
    items: Iterable[tuple[SampleRecord, dict[str, np.ndarray] | Callable[[], dict[str, np.ndarray]]]],
    *,
    total: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write a whole dataset from (record, arrays) pairs; on any error remove the partial folder and re-raise.

    The simplest way to turn frames made by your own code into a simreal dataset (importers use it too).

    Args:
        out_dir: the new dataset folder (must not exist).
        info: its description (what ``dataset.json`` says).
        items: (record, arrays) pairs: ``arrays`` maps file kinds ("image", "depth", "mask", ...) to
            numpy arrays, or is a function returning them (called only for samples not yet written, so an
            import that resumes does not decode what it keeps).
        total: the number of items, for ``progress`` (None: unknown, passed as 0).
        progress: called with (samples done, total) after each sample (samples kept from an
            interrupted import count as done).
    """
    writer = DatasetWriter(Path(out_dir), info)  # importers are deterministic: a killed import resumes
    try:
        ids = []
        for record, load in items:
            ids.append(record.id)
            if not writer.has(record.id):
                writer.write(record, load() if callable(load) else load)
            if progress is not None:
                progress(len(ids), total or 0)
        return writer.finish(expected_ids=ids)
    except BaseException:
        writer.abort()
        raise
