"""Anatomy: surface meshes (procedural or from CT) with labels, a mucosa texture pattern and a centerline."""

from simreal.anatomy.mesh import AnatomyMesh, load_mesh, save_mesh

__all__ = ["AnatomyMesh", "load_mesh", "save_mesh"]
