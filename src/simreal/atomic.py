"""Atomic file writes: a file appears under its final name complete, or not at all.

Every file simreal writes goes through this module. The data go to a temporary file in the same folder
(so the final ``os.replace`` is a rename within one file system, which POSIX makes atomic), named

    .<final name>.<8 random characters>.tmp

and only a complete file is renamed into place; on any error the temporary is removed. A process that is
killed outright (SIGKILL, out of memory) cannot clean up, so it may leave such a temporary behind: the
one naming pattern lets :func:`is_temporary` and :func:`sweep_temporaries` recognise exactly those files
(the dataset writer sweeps them when it resumes an unfinished dataset).

Durability: there is no ``fsync``, so a write survives a crashed or killed process but not a power
failure (an fsync per file costs milliseconds, more than rendering a small frame).

Example:
    >>> from simreal.atomic import atomic_path, write_json
    >>> write_json(Path("out/summary.json"), {"b": 1, "a": 2})        # doctest: +SKIP
    >>> with atomic_path(Path("out/plot.png")) as tmp:                 # doctest: +SKIP
    ...     fig.savefig(tmp, format="png")
"""

from __future__ import annotations

import json
import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Literal

from simreal.errors import SimrealError

#: What every temporary's name matches: ``.<final name>.<tag>.tmp``. The tag is 8 characters of
#: ``[a-z0-9_]``, which covers this module's hex tags and ``tempfile.mkstemp``'s, used before.
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<tag>[a-z0-9_]{8})\.tmp$")

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def is_temporary(path: str | Path) -> bool:
    """True when ``path``'s file name is one of this module's temporaries (``.<name>.<tag>.tmp``)."""
    return TEMP_PATTERN.match(Path(path).name) is not None


def reserve_temporary(path: str | Path) -> Path:
    """Create an empty, uniquely named temporary beside ``path`` and return its path.

    The file is created with ``O_EXCL`` (two writers never share one) and mode 0666 less the umask, so
    the renamed file gets the same permissions as any other new file (``tempfile.mkstemp`` would make it
    0600, unreadable to other users).

    Raises:
        SimrealError: the folder does not exist or is not writable.
    """
    path = Path(path)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, _CREATE_FLAGS, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise SimrealError(f"cannot write the file ({exc.strerror or exc})", path) from None
    raise SimrealError("cannot create a temporary file beside it (100 names taken)", path)


@contextmanager
def atomic_path(path: str | Path, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    Write the whole file to the yielded path (any library that takes a file name). If the block raises,
    the temporary is removed and ``path`` is left as it was (absent, or its previous content).

    Args:
        path: the final file.
        make_parents: create ``path``'s folder (and its parents) first.

    Raises:
        SimrealError: the folder cannot be created or written, or the rename fails.
    """
    path = Path(path)
    if make_parents:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimrealError(f"cannot create the folder ({exc.strerror or exc})", path.parent) from None
    tmp = reserve_temporary(path)
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise SimrealError(f"cannot write the file ({exc.strerror or exc})", path) from None
    finally:
        # After a successful rename the temporary no longer exists; otherwise it must not stay behind.
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(
    path: str | Path, mode: Literal["w", "wb"] = "w", *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """``open(path, mode)`` whose file appears under ``path`` only when the block succeeds.

    Args:
        path: the final file.
        mode: "w" (text, ``encoding``, ``newline`` as in :func:`open`) or "wb".

    Example:
        >>> with atomic_open(Path("rows.csv"), newline="") as f:     # doctest: +SKIP
        ...     csv.writer(f).writerows(rows)
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        if mode == "wb":
            with open(tmp, "wb") as f:
                yield f
        else:
            with open(tmp, "w", encoding=encoding, newline=newline) as f:
                yield f


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the folder is created if needed)."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically, encoded as ``encoding``, newlines untranslated."""
    write_bytes(path, text.encode(encoding))


def write_json(
    path: str | Path, obj: Any, default: Callable[[Any], Any] | None = None, *, indent: int | None = 2
) -> None:
    """Write ``obj`` as JSON atomically: sorted keys and a final newline, so the same object gives the
    same bytes.

    Args:
        path: the final file.
        obj: anything ``json.dumps`` takes.
        default: called for objects JSON cannot encode (as in ``json.dumps``), e.g. numpy scalars.
        indent: as in ``json.dumps`` (None: one line).

    Raises:
        TypeError: ``obj`` holds something neither JSON nor ``default`` can encode (nothing is written).
        SimrealError: the file cannot be written.
    """
    text = json.dumps(obj, indent=indent, sort_keys=True, default=default) + "\n"
    write_text(path, text)


def sweep_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporaries (:func:`is_temporary`) directly in ``folder``; returns what was removed.

    Only call this on a folder no other process is writing to (e.g. one you hold a lock on): a live
    writer's temporary would be removed from under it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        if is_temporary(p) and (p.is_file() or p.is_symlink()):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
