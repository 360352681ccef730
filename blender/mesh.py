"""Mesh helpers every builder uses (bpy): a bmesh accumulator of primitive parts and placing an
object like its spec. Materials live in blender/materials.py. No builder imports another."""
from __future__ import annotations

import bmesh
import bpy
from mathutils import Euler, Matrix, Vector

from blender.spec import ObjectSpec


class MeshBuilder:
    """Accumulates primitive parts (each with a material slot) into one bmesh."""

    def __init__(self) -> None:
        self.bm = bmesh.new()
        self.materials: list[bpy.types.Material] = []

    def _slot(self, mat: bpy.types.Material) -> int:
        if mat not in self.materials:
            self.materials.append(mat)
        return self.materials.index(mat)

    def _tag(self, verts, mat) -> None:
        idx = self._slot(mat)
        for face in {f for v in verts for f in v.link_faces}:
            face.material_index = idx

    def box(self, center, size, mat, rot=(0, 0, 0), pre: Matrix | None = None) -> None:
        m = Matrix.LocRotScale(Vector(center), Euler(rot), Vector(size))
        out = bmesh.ops.create_cube(self.bm, size=1.0, matrix=(pre or Matrix()) @ m)
        self._tag(out["verts"], mat)

    def cylinder(self, center, radius, depth, mat, rot=(0, 0, 0), radius_top=None,
                 pre: Matrix | None = None, segments: int = 16) -> None:
        m = Matrix.LocRotScale(Vector(center), Euler(rot), None)
        out = bmesh.ops.create_cone(self.bm, cap_ends=True, segments=segments, radius1=radius,
                                    radius2=radius if radius_top is None else radius_top,
                                    depth=depth, matrix=(pre or Matrix()) @ m)
        self._tag(out["verts"], mat)

    def hull(self, points, mat, pre: Matrix | None = None) -> None:
        """Convex hull of `points` (wedges, tapered fork tips, bevelled plates)."""
        m = pre or Matrix()
        verts = [self.bm.verts.new(m @ Vector(p)) for p in points]
        out = bmesh.ops.convex_hull(self.bm, input=verts)
        for v in {v for v in out.get("geom_interior", []) + out.get("geom_unused", [])
                  if isinstance(v, bmesh.types.BMVert)}:
            if v.is_valid:
                self.bm.verts.remove(v)
        self._tag([v for v in verts if v.is_valid], mat)

    def to_object(self, spec: ObjectSpec) -> bpy.types.Object:
        mesh = bpy.data.meshes.new(spec.name)
        self.bm.to_mesh(mesh)
        self.bm.free()
        for mat in self.materials:
            mesh.materials.append(mat)
        return place_object(spec, mesh)


def place_object(spec: ObjectSpec, mesh: bpy.types.Mesh) -> bpy.types.Object:
    """An object named like the spec (Cryptomatte labels by name) at its floor position and yaw."""
    obj = bpy.data.objects.new(spec.name, mesh)
    obj.location = spec.location
    obj.rotation_euler = (0.0, 0.0, spec.yaw_rad)
    obj.pass_index = spec.instance_id
    bpy.context.scene.collection.objects.link(obj)
    return obj
