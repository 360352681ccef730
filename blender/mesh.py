"""Mesh and material helpers every builder uses (bpy): one Principled material per part, a bmesh
accumulator of primitive parts, and placing an object like its spec. No builder imports another."""
from __future__ import annotations

import bmesh
import bpy
from mathutils import Euler, Matrix, Vector

from blender.spec import ObjectSpec

BLACK = (0.02, 0.02, 0.02)


def material(name: str, color, roughness: float = 0.6, metallic: float = 0.0,
             noise_scale: float | None = None, contrast: float = 0.3) -> bpy.types.Material:
    """Principled BSDF material; with `noise_scale`, colour varies with procedural noise (worn look)
    by +-`contrast` of the base colour."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    if noise_scale:
        noise = nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = noise_scale
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].color = (*[c * (1 - contrast) for c in color], 1.0)
        ramp.color_ramp.elements[1].color = (*[min(1.0, c * (1 + contrast * 0.8)) for c in color], 1.0)
        links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def skin(name: str, color) -> bpy.types.Material:
    """Skin: subsurface scattering, roughness varying with fine noise (pores, sheen)."""
    mat = material(name, color, 0.45)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    bsdf.inputs["Subsurface Weight"].default_value = 0.25
    bsdf.inputs["Subsurface Radius"].default_value = (1.0, 0.35, 0.2)
    bsdf.inputs["Subsurface Scale"].default_value = 0.01
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 300.0
    ramp = nodes.new("ShaderNodeMapRange")
    ramp.inputs["To Min"].default_value, ramp.inputs["To Max"].default_value = 0.35, 0.6
    links.new(noise.outputs["Fac"], ramp.inputs["Value"])
    links.new(ramp.outputs["Result"], bsdf.inputs["Roughness"])
    return mat


def fabric(name: str, color, roughness: float = 0.85) -> bpy.types.Material:
    """Cloth: colour mottled by noise (dirt, wear) and wrinkles as a bump from stretched noise."""
    mat = material(name, color, roughness, noise_scale=40.0, contrast=0.15)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    wrinkles = nodes.new("ShaderNodeTexNoise")
    wrinkles.inputs["Scale"].default_value = 18.0
    wrinkles.inputs["Detail"].default_value = 4.0
    bump = nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = 0.25
    links.new(wrinkles.outputs["Fac"], bump.inputs["Height"])
    links.new(bump.outputs["Normal"], nodes.get("Principled BSDF").inputs["Normal"])
    return mat


def banded_fabric(name: str, attribute: str, bands: list[tuple[float, tuple, float, float]]) -> bpy.types.Material:
    """Cloth whose colour, roughness and metalness change at crisp lines of a per-vertex float
    `attribute` in [0, 1]: bands = [(from, rgb, roughness, metallic)], the first from 0. Interpolated
    across each triangle, the lines run straight through the mesh instead of along its edges (a vest's
    hem and stripes). Mottling and wrinkles as fabric()."""
    mat = fabric(name, (1.0, 1.0, 1.0), bands[0][2])
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    mottle = bsdf.inputs["Base Color"].links[0].from_node  # white mottled by noise: multiplied in below
    attr = nodes.new("ShaderNodeAttribute")
    attr.attribute_name = attribute
    ramps = []
    for values in ([(*b[1], 1.0) for b in bands], [(b[2],) * 3 + (1.0,) for b in bands],
                   [(b[3],) * 3 + (1.0,) for b in bands]):
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.interpolation = "CONSTANT"
        elements = ramp.color_ramp.elements
        elements.remove(elements[1])
        elements[0].position, elements[0].color = 0.0, values[0]
        for (start, *_), value in zip(bands[1:], values[1:]):
            elements.new(start).color = value
        links.new(attr.outputs["Fac"], ramp.inputs["Fac"])
        ramps.append(ramp)
    mix = nodes.new("ShaderNodeMix")
    mix.data_type, mix.blend_type = "RGBA", "MULTIPLY"
    mix.inputs["Factor"].default_value = 1.0
    links.new(ramps[0].outputs["Color"], mix.inputs["A"])
    links.new(mottle.outputs["Color"], mix.inputs["B"])
    links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])
    links.new(ramps[1].outputs["Color"], bsdf.inputs["Roughness"])
    links.new(ramps[2].outputs["Color"], bsdf.inputs["Metallic"])
    return mat


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
