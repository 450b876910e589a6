"""Where the real data sets live (CVC-ClinicDB, CT volumes, ...): one rule for every command and test.

The folder holds one sub-folder per data set (``cvc-clinicdb_256/``, ``totalsegmentator_ct/``, ...),
each with its SOURCE.txt and licence. :func:`real_data_root` looks in this order and takes the first that
exists:

1. the path given explicitly (a command's ``--real-data`` option);
2. the environment variable ``SIMREAL_DATA``;
3. ``../shared/data`` relative to the current folder (running from a checkout beside ``shared/``);
4. ``shared/data`` beside the source checkout this module was imported from (an editable install run
   from elsewhere). An installed (non-editable) package is not inside a checkout, so it never looks
   there.

An explicit path or ``SIMREAL_DATA`` that does not exist is an error, not a reason to look further: a
typo must not silently pick up other data.
"""

from __future__ import annotations

import os
from pathlib import Path

from simreal.errors import SimrealError

#: Environment variable naming the real-data folder.
ENV_VAR = "SIMREAL_DATA"


def _checkout_candidate() -> Path | None:
    """``<checkout>/../shared/data`` when this file is ``<checkout>/src/simreal/data/real_data.py``."""
    here = Path(__file__).resolve()
    src = here.parents[2]
    checkout = src.parent
    if src.name != "src" or not (checkout / "pyproject.toml").is_file():
        return None  # an installed package: no checkout to stand beside
    return checkout.parent / "shared" / "data"


def real_data_root(explicit: str | Path | None = None) -> Path:
    """The folder holding the real data sets (see the module docstring for the search order).

    Args:
        explicit: a path that wins over everything else (a command's ``--real-data``), or None.

    Returns:
        The folder, resolved to an absolute path.

    Raises:
        SimrealError: ``explicit`` or ``SIMREAL_DATA`` names a missing folder, or no candidate exists;
            the message lists what was tried and how to set the location.

    Example:
        >>> real_data_root("/data/simreal")                # doctest: +SKIP
        PosixPath('/data/simreal')
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise SimrealError("real-data folder not found (given with --real-data)", path)
        return path.resolve()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise SimrealError(f"real-data folder not found (named by the environment variable {ENV_VAR})", path)
        return path.resolve()
    tried = [Path.cwd() / ".." / "shared" / "data"]
    beside_checkout = _checkout_candidate()
    if beside_checkout is not None:
        tried.append(beside_checkout)
    for path in tried:
        if path.is_dir():
            return path.resolve()
    raise SimrealError(
        f"no real-data folder found; tried {', '.join(str(p) for p in tried)}. Pass --real-data DIR or set "
        f"the environment variable {ENV_VAR}=DIR (DIR holds cvc-clinicdb_256/, totalsegmentator_ct/, ...)"
    )


def real_data_folder(name: str, explicit: str | Path | None = None) -> Path:
    """One data set's folder, e.g. ``real_data_folder("cvc-clinicdb_256")``.

    Raises:
        SimrealError: the root cannot be found (see :func:`real_data_root`) or lacks ``name``.
    """
    root = real_data_root(explicit)
    path = root / name
    if not path.is_dir():
        raise SimrealError(f"the real-data folder has no {name}/", root)
    return path
