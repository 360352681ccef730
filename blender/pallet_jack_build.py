"""Build a pallet jack (bpy) from its params (blender.pallet_jack_spec): a manual hand pallet truck
(tapered fork tines with entry rollers, single or tandem load rollers on push rods, chassis, pump
with chrome ram and rubber boot, steering wheels with tyres and rims, tiller with loop handle and
lever) or an electric walkie (battery hood, drive wheel and casters, control head with grips and
buttons, optional platform). A load on the forks (pallet with cartons or stretch wrap) is a separate,
unlabelled object parented to the jack: the jack's mask is the jack."""
from __future__ import annotations

import math

import bpy
from mathutils import Matrix, Vector

from blender.materials import BLACK, chrome, material, painted_metal, rubber
from blender.mesh import MeshBuilder
from blender.pallet_build import add_cargo, add_pallet
from blender.pallet_jack_spec import GRIP_WIDTH_M, PALLET_ENTRY_TOP_M, PALLETS, TILLER, grip_point
from blender.spec import ObjectSpec

TINE_W, TINE_H = 0.16, 0.05
ALONG_X, ALONG_Y = (0, math.pi / 2, 0), (math.pi / 2, 0, 0)  # cylinder axis (default z) turned to x / y


def _finish(spec: ObjectSpec) -> bpy.types.Material:
    p = spec.params
    if p["finish"] == "galvanised":
        return material(f"{spec.name}_zinc", (0.62, 0.63, 0.62), 0.45, metallic=0.8, noise_scale=12.0, contrast=0.15)
    if p["finish"] == "stainless":
        return material(f"{spec.name}_stainless", (0.7, 0.7, 0.72), 0.25, metallic=1.0)
    return painted_metal(f"{spec.name}_paint", p["color"], p["wear"], p["grime"])


def _wheel(mb: MeshBuilder, centre, radius: float, width: float, tyre, rim) -> None:
    mb.cylinder(centre, radius, width, tyre, rot=ALONG_X, segments=20)
    mb.cylinder(centre, radius * 0.62, width + 0.006, rim, rot=ALONG_X, segments=16)


def _forks(mb: MeshBuilder, p: dict, paint, steel, roller) -> None:
    """Two channel tines with tapered tips, entry rollers, load rollers on brackets and push rods."""
    fl, ft = p["fork_length_m"], p["fork_height_m"]
    for side in (-1, 1):
        x = side * (p["fork_spread_m"] / 2 - TINE_W / 2)
        mb.box((x, -(fl - 0.14) / 2, ft - TINE_H / 2), (TINE_W, fl - 0.14, TINE_H), paint)
        y0, y1, zb = -(fl - 0.14), -fl, ft - TINE_H
        mb.hull([(x + sx * TINE_W / 2, y0, zb + sz * TINE_H) for sx in (-1, 1) for sz in (0, 1)]
                + [(x + sx * 0.055, y1, zb + sz * 0.022) for sx in (-1, 1) for sz in (0, 1)], paint)
        mb.cylinder((x, y1 + 0.03, max(0.018, zb - 0.004)), 0.018, 0.09, roller, rot=ALONG_X)  # entry roller
        ys = (-fl + 0.16, -fl + 0.28) if p["tandem_rollers"] else (-fl + 0.2,)
        for y in ys:  # load rollers stand on the floor; brackets reach up to the tine
            mb.cylinder((x, y, 0.04), 0.04, 0.07, roller, rot=ALONG_X, segments=16)
            mb.box((x, y, (0.04 + zb) / 2), (0.085, 0.05, max(0.01, zb - 0.04)), steel)
        mb.cylinder((x, (ys[-1] - 0.02) / 2, zb - 0.012), 0.012, abs(ys[-1]) - 0.04, steel, rot=ALONG_Y)  # push rod


def _manual_body(mb: MeshBuilder, spec: ObjectSpec, paint, steel, tyre, rim) -> None:
    p = spec.params
    ft, spread = p["fork_height_m"], p["fork_spread_m"]
    top = ft + 0.09
    mb.hull([(sx * spread / 2, y, z) for sx in (-1, 1) for y in (0.0, 0.24) for z in (ft - TINE_H, top)]
            + [(sx * (spread / 2 - 0.05), 0.26, top - 0.02) for sx in (-1, 1)], paint)  # chassis
    mb.box((0, 0.2, (0.09 + ft - TINE_H) / 2), (0.24, 0.1, max(0.02, ft - TINE_H - 0.09)), steel)  # wheel bracket
    for x in (-0.085, 0.085):
        _wheel(mb, (x, 0.2, 0.09), 0.09, 0.05, tyre, rim)
    boot_top = top + 0.07
    mb.cylinder((0, 0.18, top + 0.01), 0.03, 0.04, chrome(f"{spec.name}_ram"))  # chrome ram
    for k in range(4):  # corrugated rubber boot
        mb.cylinder((0, 0.18, top + 0.03 + k * 0.012), 0.044 if k % 2 else 0.038, 0.012, tyre)
    pivot_z = TILLER["manual"][0][2]
    mb.cylinder((0, 0.18, (boot_top + pivot_z - 0.04) / 2), 0.075, pivot_z - 0.04 - boot_top, paint)  # pump body
    mb.box((0, 0.18, pivot_z - 0.02), (0.17, 0.11, 0.07), paint)  # tiller clevis
    if p["decal"] == "stripe":
        mb.cylinder((0, 0.18, boot_top + 0.05), 0.077, 0.035, material(f"{spec.name}_decal", (0.9, 0.85, 0.1), 0.4))
    elif p["decal"] == "plate":
        mb.box((spread / 2 + 0.002, 0.12, top - 0.045), (0.004, 0.09, 0.05),
               material(f"{spec.name}_plate", (0.85, 0.85, 0.82), 0.35, metallic=0.5))


def _electric_body(mb: MeshBuilder, spec: ObjectSpec, paint, steel, tyre, rim) -> None:
    p = spec.params
    ft, spread = p["fork_height_m"], p["fork_spread_m"]
    dark = material(f"{spec.name}_chassis", (0.08, 0.08, 0.09), 0.5)
    mb.box((0, 0.12, (ft - TINE_H + ft + 0.06) / 2), (spread, 0.24, TINE_H + 0.06), dark)
    hood_z = TILLER["electric"][0][2] - 0.04
    mb.hull([(sx * spread / 2, y, 0.13) for sx in (-1, 1) for y in (0.02, 0.5)]
            + [(sx * (spread / 2 - 0.04), y, hood_z) for sx in (-1, 1) for y in (0.06, 0.46)], paint)  # battery hood
    _wheel(mb, (0, 0.3, 0.115), 0.115, 0.07, tyre, rim)  # drive wheel
    for x in (-0.2, 0.2):
        _wheel(mb, (x, 0.42, 0.05), 0.05, 0.04, tyre, rim)  # stabiliser casters
    mb.box((0, 0.3, hood_z + 0.02), (0.14, 0.12, 0.04), dark)  # tiller base
    if p["platform"]:
        mb.box((0, 0.66, 0.16), (0.5, 0.32, 0.03), material(f"{spec.name}_tread", (0.12, 0.12, 0.12), 0.7))
        mb.box((0, 0.51, 0.15), (0.3, 0.04, 0.06), dark)
    if p["decal"] != "none":
        mb.box((spread / 2 - 0.015, 0.26, hood_z - 0.15), (0.05, 0.3, 0.05),
               material(f"{spec.name}_decal", (0.9, 0.85, 0.1) if p["decal"] == "stripe" else (0.85, 0.85, 0.82), 0.4))


def _tiller(mb: MeshBuilder, spec: ObjectSpec, paint, grip_mat) -> None:
    """Shaft from the pivot to a loop handle (manual: with release lever) or control head (electric)."""
    p = spec.params
    (_, py, pz), length = TILLER[p["variant"]]
    t = p["tiller_angle_rad"]
    frame = Matrix.Translation((0.0, py, pz)) @ Matrix.Rotation(-t, 4, "X")  # local +z along the tiller
    grip = Vector(grip_point(p))
    if p["variant"] == "manual":
        loop = 0.26
        mb.cylinder((0, 0, (length - loop) / 2), 0.022, length - loop, paint, pre=frame)
        mb.cylinder((0, 0, length - loop), 0.018, GRIP_WIDTH_M - 0.04, paint, rot=ALONG_X, pre=frame)
        for x in (-1, 1):
            mb.cylinder((x * (GRIP_WIDTH_M / 2 - 0.02), 0, length - loop / 2), 0.016, loop, paint, pre=frame)
        mb.cylinder(tuple(grip), 0.019, GRIP_WIDTH_M, grip_mat, rot=ALONG_X)
        mb.box((0.05, 0, length - 0.09), (0.02, 0.06, 0.1), material(f"{spec.name}_lever", BLACK, 0.5), pre=frame)
    else:
        mb.cylinder((0, 0, length / 2 - 0.05), 0.03, length - 0.1, material(f"{spec.name}_arm", BLACK, 0.5), pre=frame)
        mb.box((0, 0, length), (GRIP_WIDTH_M - 0.06, 0.08, 0.11), paint, pre=frame)  # control head
        for x in (-1, 1):
            mb.cylinder((x * (GRIP_WIDTH_M / 2 - 0.02), 0, length), 0.02, 0.1, grip_mat, pre=frame)
        for k, color in enumerate(((0.8, 0.05, 0.03), (0.05, 0.3, 0.8), (0.1, 0.6, 0.1))):
            mb.cylinder(((k - 1) * 0.05, 0.045, length + 0.02), 0.012, 0.012, material(f"{spec.name}_button{k}", color, 0.3),
                        rot=ALONG_Y, pre=frame)


def _load(spec: ObjectSpec, jack: bpy.types.Object) -> bpy.types.Object:
    """Pallet on the forks (forks in its entries, its deck on the forks when raised) with cartons,
    optionally stretch-wrapped: one unlabelled object moving with the jack."""
    p, load = spec.params, spec.params["load"]
    centre = (0.0, -0.02 - PALLETS[load["pallet"]][1] / 2)  # the near end just clear of the chassis
    entry_top = PALLET_ENTRY_TOP_M[load["pallet"]]
    mb = MeshBuilder()
    deck = add_pallet(mb, f"{spec.name}_load", load, centre, max(0.0, p["fork_height_m"] - entry_top))
    add_cargo(mb, f"{spec.name}_load", load, centre, deck)
    obj = mb.to_object(ObjectSpec(f"{spec.name}_load", "load", None, 0, (0.0, 0.0, 0.0), 0.0))
    obj.parent = jack  # moves (and blurs) with the jack; its own name keeps it out of the jack's mask
    return obj


def build_pallet_jack(spec: ObjectSpec) -> bpy.types.Object:
    """The jack as one labelled mesh facing +y (before yaw), wheels and rollers on the floor; its load
    (if any) as a separate child object."""
    p = spec.params
    mb = MeshBuilder()
    paint = _finish(spec)
    steel = material(f"{spec.name}_steel", (0.45, 0.45, 0.47), 0.35, metallic=1.0)
    tyre = (rubber(f"{spec.name}_tyre") if p["tyres"] == "rubber"
            else material(f"{spec.name}_tyre", (0.45, 0.1, 0.04), 0.55))
    rim = material(f"{spec.name}_rim", (0.5, 0.5, 0.52), 0.4, metallic=0.8)
    _forks(mb, p, paint, steel, material(f"{spec.name}_roller", (0.45, 0.1, 0.04) if p["tyres"] != "rubber" else BLACK, 0.6))
    (_manual_body if p["variant"] == "manual" else _electric_body)(mb, spec, paint, steel, tyre, rim)
    _tiller(mb, spec, paint, rubber(f"{spec.name}_grip"))
    obj = mb.to_object(spec)
    if p.get("load"):
        _load(spec, obj)
    return obj
