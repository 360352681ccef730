"""User assets (.blend/.glb/.gltf/.obj) as labelled instances: import, merge into one mesh, normalise size."""
from __future__ import annotations

from pathlib import Path

import bmesh
import bpy
from mathutils import Matrix, Vector

from blender.materials import material
from blender.mesh import place_object
from blender.spec import ObjectSpec


class AssetError(ValueError):
    """An asset file that cannot be used; the message names the file."""


def import_asset(path: Path) -> list[bpy.types.Object]:
    """Import every object of `path` into the scene; return the new mesh objects (others are removed)."""
    if not path.is_file():
        raise AssetError(f"{path}: asset file not found")
    if path.stat().st_size == 0:
        raise AssetError(f"{path}: asset file is empty")
    before = set(bpy.data.objects)
    suffix = path.suffix.lower()
    try:
        if suffix == ".obj":
            bpy.ops.wm.obj_import(filepath=str(path))
        elif suffix in (".glb", ".gltf"):
            bpy.ops.import_scene.gltf(filepath=str(path))
        elif suffix == ".blend":
            with bpy.data.libraries.load(str(path), link=False) as (src, dst):
                dst.objects = list(src.objects)
            for obj in dst.objects:
                if obj is not None:
                    bpy.context.scene.collection.objects.link(obj)
        else:
            raise AssetError(f"{path}: unsupported asset type {suffix!r} (use .blend, .glb, .gltf or .obj)")
    except AssetError:
        raise
    except Exception as exc:  # importers raise RuntimeError/OSError/ValueError with their own text
        raise AssetError(f"{path}: cannot import ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]})") from None
    new = [o for o in bpy.data.objects if o not in before]
    meshes = [o for o in new if o.type == "MESH" and len(o.data.polygons) > 0]
    if not meshes:
        for o in new:
            bpy.data.objects.remove(o)
        raise AssetError(f"{path}: no mesh with faces in the asset")
    for o in new:
        if o not in meshes:
            bpy.data.objects.remove(o)
    return meshes


def build_asset(spec: ObjectSpec, fallback_color=(0.5, 0.5, 0.5)) -> bpy.types.Object:
    """One object named like the spec (Cryptomatte labels by name), standing on the floor, scaled to
    `asset_size_m`: height for pedestrians, longest horizontal side for pallet jacks."""
    parts = import_asset(Path(spec.params["asset"]))
    bpy.context.view_layer.update()
    bm = bmesh.new()
    materials: list = []
    for o in parts:
        mesh = o.data.copy()
        mesh.transform(o.matrix_world)
        offset = len(materials)
        materials += list(mesh.materials) or [None]
        for poly in mesh.polygons:
            poly.material_index += offset
        bm.from_mesh(mesh)  # appends: several calls join meshes
        bpy.data.meshes.remove(mesh)
    for o in parts:
        bpy.data.objects.remove(o)
    xs, ys, zs = zip(*(v.co for v in bm.verts))
    size = spec.params["asset_size_m"]
    extent = (max(zs) - min(zs)) if spec.category == "pedestrian" else max(max(xs) - min(xs), max(ys) - min(ys))
    if extent <= 0:
        bm.free()
        raise AssetError(f"{spec.params['asset']}: the mesh is flat (zero extent), cannot scale it")
    scale = size / extent
    centre = Vector(((max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2, min(zs)))
    bmesh.ops.transform(bm, matrix=Matrix.Diagonal((scale, scale, scale, 1.0)) @ Matrix.Translation(-centre),
                        verts=bm.verts)
    mesh = bpy.data.meshes.new(spec.name)
    bm.to_mesh(mesh)
    bm.free()
    default = None
    hsv = spec.params.get("asset_hsv")
    varied: dict = {}
    for mat in materials:
        if mat is None:
            if default is None:
                default = material(f"{spec.name}_default", fallback_color, 0.7)
            mat = default
        elif hsv:
            if mat not in varied:  # a copy per instance: the same asset twice can differ in colour
                varied[mat] = mat.copy()
            mat = varied[mat]
        if hsv:
            vary_colour(mat, hsv)
        mesh.materials.append(mat)
    return place_object(spec, mesh)


def vary_colour(mat, hsv) -> None:
    """Put a Hue/Saturation/Value node in front of every Principled BSDF's Base Color
    (linked texture or plain colour), shifting hue by hsv[0] and scaling saturation and value."""
    if mat.get("hangar_hsv") or mat.node_tree is None:
        return  # already varied (a material used by several slots)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    for bsdf in [n for n in nodes if n.type == "BSDF_PRINCIPLED"]:
        base = bsdf.inputs["Base Color"]
        node = nodes.new("ShaderNodeHueSaturation")
        node.inputs["Hue"].default_value = 0.5 + hsv[0]
        node.inputs["Saturation"].default_value = hsv[1]
        node.inputs["Value"].default_value = hsv[2]
        if base.is_linked:
            links.new(base.links[0].from_socket, node.inputs["Color"])
        else:
            node.inputs["Color"].default_value = base.default_value
        links.new(node.outputs["Color"], base)
    mat["hangar_hsv"] = list(hsv)
