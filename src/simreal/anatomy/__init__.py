"""Anatomy: surface meshes (procedural or from CT) with labels, a mucosa texture pattern and a centerline."""

from simreal.anatomy.colon import (
    ColonParams,
    PolypParams,
    build_colon,
    colon_params_from_dict,
    make_colon,
    sample_colon_params,
)
from simreal.anatomy.abdomen_classes import LAPAROSCOPY_CLASSES, decode_classes, encode_classes, grey_encoding
from simreal.anatomy.from_ct import lumen_mesh, mesh_from_ct, mesh_from_label_volume
from simreal.anatomy.liver import liver_phantom, read_liver
from simreal.anatomy.lumen import HOLLOW_ORGANS, segment_lumen
from simreal.anatomy.mesh import AnatomyMesh, load_mesh, save_mesh
from simreal.anatomy.texture import bake_mucosa_texture

#: The procedural colon generator under its pipeline name (``simreal.procedural_colon(seed=3)``).
procedural_colon = make_colon

__all__ = [
    "HOLLOW_ORGANS",
    "LAPAROSCOPY_CLASSES",
    "AnatomyMesh",
    "ColonParams",
    "PolypParams",
    "bake_mucosa_texture",
    "build_colon",
    "colon_params_from_dict",
    "decode_classes",
    "encode_classes",
    "grey_encoding",
    "liver_phantom",
    "load_mesh",
    "lumen_mesh",
    "make_colon",
    "mesh_from_ct",
    "mesh_from_label_volume",
    "procedural_colon",
    "read_liver",
    "sample_colon_params",
    "save_mesh",
    "segment_lumen",
]
