"""The 8 classes of a laparoscopic liver scene, and the grey-value encodings of other data sets' label files.

simreal's laparoscopy masks store the class id itself (0..7), in the order of Pfeiffer et al. (MICCAI
2019, config ``num_classes: 8``; ``shared/papers/methods.md`` section 2.6):

======  ============================  ==================================================================
id      name                          what it is in the simulation
======  ============================  ==================================================================
0       ``background``                nothing seen: outside the circular field stop of the laparoscope
1       ``liver``                     the CT-derived liver surface (deformed per scene)
2       ``fat``                       lumpy yellow fat / omentum below the liver's inferior edge
3       ``abdominal_wall``            the diaphragm / abdominal wall: the surface enclosing the scene
4       ``ligament``                  the falciform ligament: a thin band from the liver to the wall
5       ``tool_shaft``                the instrument's shaft (a cylinder entering from the image border)
6       ``tool_tip``                  the instrument's tip (joint and grasper jaws)
7       ``gallbladder``               the gallbladder, under the liver, its fundus past the inferior edge
======  ============================  ==================================================================

Pfeiffer's own label images store grey values instead of ids, and which grey is which class is
**disputed** (methods.md 2.6, tagged [secondary, code]): the GitLab ``data.py`` of
``nct_tso_public/laparoscopic-image-2-image-translation`` lists the greys
``{0, 89, 170, 149, 188, 218, 203, 124}``, while the DKFZ ``mml`` maintainers observed
``{26, 51, 77, 102, 128, 153, 179}`` in the label files after loading (seven values for eight classes).
methods.md gives these as value lists; it does not say which grey belongs to which class, and neither does
this module. :data:`PFEIFFER_GITLAB_GREYS` and :data:`MML_OBSERVED_GREYS` are the lists as recorded;
:func:`grey_encoding` pairs a list with the classes only when the caller says how (``order``), and the
pairing read "in the order the classes are listed" is a reading, not a verified fact. Check a label file
of the released data (``labels.7z``) before trusting any pairing.

Example:
    >>> enc = grey_encoding(PFEIFFER_GITLAB_GREYS, name="gitlab-positional")  # unverified pairing
    >>> enc.grey_of(LIVER)
    89
    >>> mask = np.array([[0, 1], [7, 5]], np.uint8)
    >>> (decode_classes(encode_classes(mask, enc), enc) == mask).all()
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from simreal.errors import SimrealError

#: Class ids of the laparoscopy scene (the values in a laparoscopy dataset's mask files).
BACKGROUND, LIVER, FAT, WALL, LIGAMENT, TOOL_SHAFT, TOOL_TIP, GALLBLADDER = range(8)

#: Class id -> name, Pfeiffer et al.'s 8 classes in their order (id 3 is "diaphragm / abdominal wall").
LAPAROSCOPY_CLASSES: dict[int, str] = {
    BACKGROUND: "background",
    LIVER: "liver",
    FAT: "fat",
    WALL: "abdominal_wall",
    LIGAMENT: "ligament",
    TOOL_SHAFT: "tool_shaft",
    TOOL_TIP: "tool_tip",
    GALLBLADDER: "gallbladder",
}

#: Pfeiffer et al.'s class names as methods.md 2.6 lists them, for each simreal class id.
PFEIFFER_CLASS_NAMES: dict[int, str] = {
    BACKGROUND: "Background",
    LIVER: "Liver",
    FAT: "Fat",
    WALL: "Diaphragm/abdominal wall",
    LIGAMENT: "Ligament",
    TOOL_SHAFT: "Tool shaft",
    TOOL_TIP: "Tool tip",
    GALLBLADDER: "Gallbladder",
}

#: Grey values listed by the GitLab ``data.py`` (methods.md 2.6), in the order methods.md writes them.
#: Which grey is which class is not established (see the module docstring).
PFEIFFER_GITLAB_GREYS: tuple[int, ...] = (0, 89, 170, 149, 188, 218, 203, 124)

#: Grey values the DKFZ ``mml`` maintainers observed in the label files (methods.md 2.6): seven values for
#: eight classes. They equal ``round(k * 25.5)`` for k = 1..7 (an arithmetic observation, not a pairing
#: with classes); no class assignment is known.
MML_OBSERVED_GREYS: tuple[int, ...] = (26, 51, 77, 102, 128, 153, 179)


@dataclass(frozen=True)
class GreyEncoding:
    """A label-file encoding: which grey value stands for which simreal class id.

    Args:
        greys: class id -> grey value (0..255), injective (two classes may not share a grey). Classes
            left out cannot be encoded, and their pixels raise in :func:`encode_classes`.
        name: a name for messages and records.
        verified: whether the pairing was checked against real label files (False for every encoding
            this module builds from the methods.md lists).

    Raises:
        SimrealError: an id outside 0..7, a grey outside 0..255, or two classes with one grey.
    """

    greys: Mapping[int, int]
    name: str = "custom"
    verified: bool = False

    def __post_init__(self) -> None:
        greys = {}
        for k, v in dict(self.greys).items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) not in LAPAROSCOPY_CLASSES:
                raise SimrealError(f"grey encoding {self.name!r}: class id {k!r} is not one of 0..7")
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) <= 255:
                raise SimrealError(f"grey encoding {self.name!r}: grey {v!r} of class {k} is not in 0..255")
            greys[int(k)] = int(v)
        if len(set(greys.values())) != len(greys):
            raise SimrealError(f"grey encoding {self.name!r}: two classes share a grey value ({greys})")
        object.__setattr__(self, "greys", dict(sorted(greys.items())))

    def grey_of(self, class_id: int) -> int:
        """The grey value of one class id."""
        if class_id not in self.greys:
            raise SimrealError(f"grey encoding {self.name!r} has no grey for class {class_id}")
        return self.greys[class_id]

    def to_dict(self) -> dict[str, object]:
        """JSON form: ``{"name", "verified", "greys": {"<id>": grey}}``."""
        return {"name": self.name, "verified": self.verified, "greys": {str(k): v for k, v in self.greys.items()}}


def grey_encoding(
    values: Sequence[int], *, order: Sequence[int] | None = None, name: str = "custom", verified: bool = False
) -> GreyEncoding:
    """Pair a list of grey values with class ids.

    Args:
        values: grey values, e.g. :data:`PFEIFFER_GITLAB_GREYS`.
        order: the class id each value belongs to (same length as ``values``). None pairs them by position
            with ids 0, 1, 2, ... : the reading "the list is in class order", which for the methods.md
            lists is **not verified**.
        name: the encoding's name.
        verified: say True only after checking the pairing on real label files.

    Returns:
        The :class:`GreyEncoding`.

    Raises:
        SimrealError: lengths differ, more than 8 values, or the pairs are invalid (see GreyEncoding).
    """
    values = [int(v) for v in values]
    order = list(range(len(values))) if order is None else [int(k) for k in order]
    if len(order) != len(values):
        raise SimrealError(f"grey encoding {name!r}: {len(values)} grey values but {len(order)} class ids")
    if len(set(order)) != len(order):
        raise SimrealError(f"grey encoding {name!r}: a class id appears twice in {order}")
    return GreyEncoding(dict(zip(order, values)), name=name, verified=verified)


def encode_classes(mask: np.ndarray, encoding: GreyEncoding) -> np.ndarray:
    """simreal class ids -> grey values of ``encoding``.

    Args:
        mask: (H, W) integer class ids (0..7).
        encoding: the target encoding.

    Returns:
        (H, W) uint8 grey image.

    Raises:
        SimrealError: a pixel's class has no grey in ``encoding`` (or is not a class at all).
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "iu":
        raise SimrealError(f"a class mask must hold integers, got {mask.dtype}")
    lut = np.full(256, -1, np.int16)
    for k, g in encoding.greys.items():
        lut[k] = g
    present = np.unique(mask)
    bad = [int(v) for v in present if not 0 <= int(v) <= 255 or lut[int(v)] < 0]
    if bad:
        raise SimrealError(f"classes {bad} have no grey value in encoding {encoding.name!r}")
    return lut[mask.astype(np.int64)].astype(np.uint8)


def decode_classes(
    grey: np.ndarray, encoding: GreyEncoding, *, tolerance: int = 0, source: str | Path | None = None
) -> np.ndarray:
    """Grey values of ``encoding`` -> simreal class ids.

    Args:
        grey: (H, W) uint8 label image.
        encoding: the encoding the image was written with.
        tolerance: a grey within this many levels of an encoded grey counts as it (0 = exact); the
            windows of two classes must not overlap.
        source: the file the image came from, named in errors.

    Returns:
        (H, W) uint8 class ids.

    Raises:
        SimrealError: grey values that belong to no class (listed, with the file), or overlapping windows.
    """
    grey = np.asarray(grey)
    if grey.dtype.kind not in "iu":
        raise SimrealError(f"a label image must hold integers, got {grey.dtype}", source)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise SimrealError(f"tolerance must be an integer >= 0, got {tolerance!r}")
    lut = np.full(256, -1, np.int16)
    for k, g in encoding.greys.items():
        lo, hi = max(g - tolerance, 0), min(g + tolerance, 255)
        if (lut[lo : hi + 1] >= 0).any():
            raise SimrealError(f"tolerance {tolerance} makes two classes of {encoding.name!r} overlap")
        lut[lo : hi + 1] = k
    present = np.unique(grey)
    bad = [int(v) for v in present if not 0 <= int(v) <= 255 or lut[int(v)] < 0]
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise SimrealError(f"grey values {shown} are not classes of encoding {encoding.name!r}", source)
    return lut[grey.astype(np.int64)].astype(np.uint8)
