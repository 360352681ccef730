"""Materials every builder uses (bpy): one Principled BSDF per part, plus skin, cloth, painted
metal with worn edges and grime, chrome, rubber, wood, cardboard and stretch film."""
from __future__ import annotations

import bpy

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


def _noise(nodes, scale: float, detail: float = 2.0, stretch=None):
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = detail
    if stretch:  # anisotropic noise (scratches, wood grain): scale the texture coordinates per axis
        coords, mapping = nodes.new("ShaderNodeTexCoord"), nodes.new("ShaderNodeMapping")
        mapping.inputs["Scale"].default_value = stretch
        nodes.id_data.links.new(coords.outputs["Object"], mapping.inputs["Vector"])
        nodes.id_data.links.new(mapping.outputs["Vector"], noise.inputs["Vector"])
    return noise


def _threshold(nodes, links, source, lo: float, hi: float):
    """Smooth 0 -> 1 step of `source` between lo and hi (Map Range, clamped)."""
    step = nodes.new("ShaderNodeMapRange")
    step.inputs["From Min"].default_value, step.inputs["From Max"].default_value = lo, hi
    links.new(source, step.inputs["Value"])
    return step.outputs["Result"]


def painted_metal(name: str, color, wear: float, grime: float, metal=(0.55, 0.55, 0.57)) -> bpy.types.Material:
    """Paint over steel: chipped to bare metal on convex edges (Cycles' bevel normal) and along stretched
    scratch noise, more with `wear` in [0, 1]; darkened by low-frequency grime and dust by `grime`."""
    mat = material(name, color, 0.45)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    # Convex edges of low-poly parts: where Cycles' bevel normal (rounded over 1 cm) leaves the face normal.
    geometry, bevel, dot = nodes.new("ShaderNodeNewGeometry"), nodes.new("ShaderNodeBevel"), nodes.new("ShaderNodeVectorMath")
    bevel.samples, bevel.inputs["Radius"].default_value = 4, 0.01
    dot.operation = "DOT_PRODUCT"
    links.new(bevel.outputs["Normal"], dot.inputs[0])
    links.new(geometry.outputs["Normal"], dot.inputs[1])
    edge = _threshold(nodes, links, dot.outputs["Value"], 0.995, 0.9 + 0.05 * (1 - wear))
    scratches = _threshold(nodes, links, _noise(nodes, 30.0, 6.0, (1.0, 12.0, 1.0)).outputs["Fac"],
                           0.72 - 0.12 * wear, 0.76 - 0.12 * wear)
    chips = nodes.new("ShaderNodeMath")
    chips.operation, chips.use_clamp = "MAXIMUM", True
    links.new(edge, chips.inputs[0])
    links.new(scratches, chips.inputs[1])
    amount = nodes.new("ShaderNodeMath")
    amount.operation = "MULTIPLY"
    amount.inputs[1].default_value = min(1.0, 0.2 + wear)
    links.new(chips.outputs["Value"], amount.inputs[0])
    paint = nodes.new("ShaderNodeMix")
    paint.data_type = "RGBA"
    paint.inputs["A"].default_value, paint.inputs["B"].default_value = (*color, 1.0), (*metal, 1.0)
    links.new(amount.outputs["Value"], paint.inputs["Factor"])
    dirt = nodes.new("ShaderNodeMix")
    dirt.data_type, dirt.blend_type = "RGBA", "MULTIPLY"
    dirt.inputs["B"].default_value = (0.35, 0.3, 0.25, 1.0)
    patches = nodes.new("ShaderNodeMath")
    patches.operation = "MULTIPLY"
    patches.inputs[1].default_value = grime
    links.new(_threshold(nodes, links, _noise(nodes, 3.0, 4.0).outputs["Fac"], 0.35, 0.75), patches.inputs[0])
    links.new(patches.outputs["Value"], dirt.inputs["Factor"])
    links.new(paint.outputs["Result"], dirt.inputs["A"])
    links.new(dirt.outputs["Result"], bsdf.inputs["Base Color"])
    links.new(amount.outputs["Value"], bsdf.inputs["Metallic"])
    return mat


def chrome(name: str) -> bpy.types.Material:
    return material(name, (0.8, 0.8, 0.82), 0.08, metallic=1.0)


def rubber(name: str, color=BLACK) -> bpy.types.Material:
    return material(name, color, 0.85, noise_scale=60.0, contrast=0.2)


def wood(name: str, color, worn: float = 0.3) -> bpy.types.Material:
    """Sawn pallet wood: grain as noise stretched along the board (object x), greyed by wear."""
    mat = material(name, color, 0.85)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    grain = nodes.new("ShaderNodeValToRGB")
    grain.color_ramp.elements[0].color = (*[c * (0.7 - 0.2 * worn) for c in color], 1.0)
    grain.color_ramp.elements[1].color = (*[min(1.0, c * 1.15) for c in color], 1.0)
    links.new(_noise(nodes, 8.0, 6.0, (0.08, 1.0, 1.0)).outputs["Fac"], grain.inputs["Fac"])
    links.new(grain.outputs["Color"], nodes.get("Principled BSDF").inputs["Base Color"])
    return mat


def cardboard(name: str, color) -> bpy.types.Material:
    return material(name, color, 0.9, noise_scale=25.0, contrast=0.12)


def film(name: str) -> bpy.types.Material:
    """Stretch wrap: thin, glossy, mostly transparent (alpha; transmission would slow Cycles down)."""
    mat = material(name, (0.85, 0.88, 0.9), 0.15)
    mat.node_tree.nodes.get("Principled BSDF").inputs["Alpha"].default_value = 0.35
    return mat
