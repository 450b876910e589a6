"""A whole ``simreal render colon`` run as one frozen dataclass: what a rendered dataset depends on.

:class:`RenderJob` holds the frame count, image size, seed, anatomies and the :class:`ColonoscopyConfig`;
how the work is spread (workers, progress bar) is not part of it, because the bytes do not depend on it.
Every rendered ``dataset.json`` records the resolved job under ``generator.job``, so a dataset documents
how to make it again, and :func:`read_render_job` accepts such a ``dataset.json`` back as a config file::

    simreal render colon --config OLD/dataset.json --out NEW        # NEW == OLD, byte for byte
    simreal render colon --n 500 --colons 4 --write-config job.yaml # a file to start from
    simreal render colon --config job.yaml --out renders/colon      # YAML, TOML or JSON
    simreal render colon --config job.yaml --look realistic --out renders/real   # same frames, real look

A job file holds the job's fields (any subset; the rest take their defaults), e.g. in YAML::

    n: 500
    size: 256
    seed: 0
    colons: [11, 12, 13]        # procedural colons make_colon(s); or anatomy: [colon.ply, ...]
    config:
      lens: {fov_deg: [110, 140], fisheye: true}
      polyp_view: {prob: 0.6, distance_mm: [5, 30]}
      appearance: {gamma: [2.2, 2.2]}
      field_stop: octagon
      look: realistic             # or training (the default); realism: {jpeg_quality: [40, 85], ...}

Relative anatomy paths in a job file are relative to the file's folder.

Example:
    >>> job = RenderJob(n=8, size=64, seed=1, colons=(3, 4))
    >>> job.config.lens.fov_deg
    (100.0, 140.0)
    >>> RenderJob(n=8).resolved().colons          # no anatomy given: the procedural colon of the seed
    (0,)
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from simreal.errors import SimrealError
from simreal.render.config import ColonoscopyConfig, RenderConfigError, plain_config
from simreal.render.raycast import VISIBILITIES, Visibility

#: ``generator.name`` of datasets written by :func:`~simreal.render.run.render_job`.
GENERATOR_NAME = "colonoscopy-forward-model"


@dataclass(frozen=True)
class RenderJob:
    """Everything a rendered colonoscopy dataset depends on.

    Args:
        n: number of frames (>= 1).
        size: square image size in pixels (8..4096).
        seed: dataset seed (>= 0): frame i draws from ``np.random.SeedSequence([seed, i])``.
        anatomy: simreal anatomy PLY files (``simreal anatomy ...``).
        colons: seeds of procedural colons ``make_colon(s)`` (distinct, >= 0). With neither ``anatomy``
            nor ``colons`` the job renders ``make_colon(seed)`` (:meth:`resolved` says so explicitly).
            Frame i renders anatomy ``i % K`` of the K anatomies, PLYs first, then colons.
        config: the ranges every frame is drawn from.
        visibility: how each pixel's first hit is found: ``"raster"`` (the default: the mesh rasterised
            with an exact test of each pixel's ray, pinhole cameras; fisheye ones are cast by Embree) or
            ``"embree"`` (every ray cast by Embree, as before the rasteriser existed). The same labels but
            at exact ties, depth equal to float32 rounding (:func:`~simreal.render.raycast.cast_camera`);
            part of the job because the last bits of depth and normals depend on it. A ``dataset.json``
            without it was cast by Embree, and :func:`read_render_job` says so.

    Raises:
        SimrealError: a value out of range, naming the field.
    """

    n: int = 100
    size: int = 256
    seed: int = 0
    anatomy: tuple[str, ...] = ()
    colons: tuple[int, ...] = ()
    config: ColonoscopyConfig = field(default_factory=ColonoscopyConfig)
    # A plain default: a job pickled before the field existed unpickles with it.
    visibility: Visibility = "raster"

    def __post_init__(self) -> None:
        anatomy = (self.anatomy,) if isinstance(self.anatomy, (str, Path)) else self.anatomy
        object.__setattr__(self, "anatomy", tuple(str(p) for p in anatomy))
        problems = []
        try:
            object.__setattr__(self, "colons", tuple(int(c) for c in self.colons))
        except (TypeError, ValueError):
            problems.append(f"colons: expected integer seeds, got {self.colons!r}")
        for name, lo, hi in (("n", 1, None), ("size", 8, 4096), ("seed", 0, None)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                problems.append(f"{name}: expected an integer, got {v!r}")
            elif v < lo or (hi is not None and v > hi):
                problems.append(f"{name}: must be {f'in {lo}..{hi}' if hi else f'at least {lo}'}, got {v}")
        if not problems and (min(self.colons, default=0) < 0 or len(set(self.colons)) != len(self.colons)):
            problems.append(f"colons: colon seeds must be distinct and >= 0, got {list(self.colons)}")
        if any(not p for p in self.anatomy):
            problems.append("anatomy: empty file name")
        if self.visibility not in VISIBILITIES:
            problems.append(f"visibility: must be one of {', '.join(VISIBILITIES)}, got {self.visibility!r}")
        if not isinstance(self.config, ColonoscopyConfig):
            problems.append(f"config: expected a ColonoscopyConfig, got {type(self.config).__name__}")
        if problems:
            raise SimrealError("; ".join(problems))

    def resolved(self) -> "RenderJob":
        """The same job said explicitly: anatomy paths absolute, and the default procedural colon of
        ``seed`` named in ``colons`` when no anatomy is given. This is what ``dataset.json`` records."""
        colons = self.colons if (self.anatomy or self.colons) else (self.seed,)
        return dataclasses.replace(self, anatomy=tuple(str(Path(p).resolve()) for p in self.anatomy), colons=colons)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (what ``generator.job`` holds); a training-look config leaves out ``look`` and
        ``realism`` (:meth:`~simreal.render.config.ColonoscopyConfig.to_dict`). ``visibility`` is always
        written: its absence means Embree, in datasets rendered before it existed."""
        from simreal.configs import to_plain

        plain = to_plain(self)
        plain["config"] = plain_config(plain["config"])
        return plain

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, source: str | Path | None = None) -> "RenderJob":
        """A job from plain values (missing fields default), strictly: unknown fields, wrong types and
        values out of range raise one error naming ``source`` and the dotted field."""
        from simreal.configs import build

        try:
            return build(cls, mapping)
        except RenderConfigError as exc:  # raised inside the ColonoscopyConfig tree: name it from the job
            raise exc.under("config", source) from None
        except SimrealError as exc:
            raise SimrealError(str(exc), source) from None


def _is_dataset_info(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get("schema"), str) and data["schema"].startswith("simreal-dataset/") and "generator" in data


def read_render_job(path: str | Path) -> RenderJob:
    """Read a job file (YAML, TOML or JSON), or the ``dataset.json`` of a rendered colonoscopy set.

    Args:
        path: a job file (fields of :class:`RenderJob`; relative anatomy paths are relative to its
            folder), or a dataset's ``dataset.json`` (its ``generator.job``; the anatomy files it names
            must still have the recorded sha256; one without ``visibility`` was cast by Embree, and
            its job says ``"embree"``).

    Returns:
        The job, validated (not resolved).

    Raises:
        SimrealError: unreadable file, unknown fields or wrong types (naming the dotted field), values out
            of range, a dataset not rendered by ``simreal render colon``, or an anatomy file that changed.
    """
    from simreal.configs import read_config_file

    path = Path(path)
    data = read_config_file(path)
    if _is_dataset_info(data):
        generator = data.get("generator") or {}
        if not isinstance(generator, Mapping) or generator.get("name") != GENERATOR_NAME:
            name = generator.get("name") if isinstance(generator, Mapping) else None
            raise SimrealError(f"a dataset made by {name!r}, not by `simreal render colon`: it holds no render job",
                               path)
        if not isinstance(generator.get("job"), Mapping):
            raise SimrealError("this dataset records no render job (generator.job); it was rendered by an "
                               "older simreal", path)
        # Sets rendered before the rasteriser record no visibility: Embree cast them, and casts them again.
        job = RenderJob.from_dict({"visibility": "embree", **generator["job"]}, source=path)
        _check_anatomy_hashes(generator.get("anatomies") or [], path)
        return job
    job = RenderJob.from_dict(data, source=path)
    base = path.resolve().parent
    return dataclasses.replace(job, anatomy=tuple(str(base / p) for p in job.anatomy))


def _check_anatomy_hashes(anatomies: list[Any], source: Path) -> None:
    """Every anatomy file a dataset.json lists still exists with the recorded sha256."""
    for entry in anatomies:
        if not isinstance(entry, Mapping) or "path" not in entry or "sha256" not in entry:
            continue
        file = Path(str(entry["path"]))
        if not file.is_file():
            raise SimrealError(f"the anatomy file this dataset was rendered from is missing: {file}", source)
        if hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
            raise SimrealError(f"the anatomy file {file} changed since this dataset was rendered (sha256 differs)",
                               source)
