"""Readers and importers for real / public data sets, each turning its files into a simreal dataset.

| module | data | unit convention |
|---|---|---|
| ``folder`` | any image folder (+ optional binary masks by stem) | 8-bit RGB; masks > 127 -> 1 |
| ``cvc`` | CVC-ClinicDB, Kvasir-SEG (``images/``, ``masks/``) | masks > 127 -> polyp; CVC frame -> sequence |
| ``simcol`` | SimCol3D frames + 16-bit depth PNG | ``v / 255 / 256 * 20`` cm; 65535 (saturated) -> 0 |
| ``c3vd`` | C3VD frames + 16-bit depth PNG / TIFF | ``v / 65535 * 100`` mm |

Splits by sequence (never by frame) live in :mod:`simreal.data.splits`.
"""

from simreal.data.external.c3vd import c3vd_depth_mm, import_c3vd, read_c3vd_depth
from simreal.data.external.cvc import CVC_SEQUENCES, cvc_group, cvc_sequence, import_cvc, import_kvasir
from simreal.data.external.folder import import_folder, read_folder_sample
from simreal.data.external.simcol import import_simcol, read_simcol_depth, simcol_depth_mm

__all__ = [
    "CVC_SEQUENCES",
    "c3vd_depth_mm",
    "cvc_group",
    "cvc_sequence",
    "import_c3vd",
    "import_cvc",
    "import_folder",
    "import_kvasir",
    "import_simcol",
    "read_c3vd_depth",
    "read_folder_sample",
    "read_simcol_depth",
    "simcol_depth_mm",
]
