"""Site fixtures (bpy): hi-vis vests on a hook rail and dress-form mannequins (look-alike hard
negatives of a person: unlabelled), and the hall's doors: dock doors with roller shutters, levellers,
guard posts and a trailer or the yard behind, and personnel doors. Params come from
blender/distractor_spec.py and blender/spec.py sample_doors."""
from __future__ import annotations

import math

import numpy as np

from blender.materials import fabric, material
from blender.mesh import MeshBuilder
from blender.spec import HALL_M, STEEL, ObjectSpec

REFLECTIVE = (0.75, 0.75, 0.72)  # retro-reflective tape seen without a flash: light grey, fairly glossy


def _ring(cx: float, cy: float, z: float, rx: float, ry: float, n: int = 12) -> list[tuple[float, float, float]]:
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a), z) for a in np.linspace(0, 2 * math.pi, n, endpoint=False)]


def _vest(mb: MeshBuilder, name: str, color, x: float, top_z: float, y: float = 0.0, width: float = 0.55,
          length: float = 0.62, depth: float = 0.05, stripes: bool = True) -> None:
    """A vest hanging flat (front to -y): a tapered panel, shoulders narrower than the hem, two tape bands."""
    cloth = fabric(f"{name}_cloth", color, 0.8)
    tape = material(f"{name}_tape", REFLECTIVE, 0.35)
    z0 = top_z - length
    pts = [(x + sx * w, y + sy * depth / 2, z) for z, w in ((top_z, 0.36 * width), (top_z - 0.18, 0.5 * width), (z0, 0.5 * width))
           for sx in (-1, 1) for sy in (-1, 1)]
    mb.hull(pts, cloth)
    if stripes:
        for frac in (0.45, 0.75):
            z = top_z - frac * length
            mb.box((x, y, z), (width * 1.0 + 0.004, depth + 0.006, 0.05), tape)


def vest_hooks(mb: MeshBuilder, spec: ObjectSpec, paint) -> None:
    """A free-standing hook rail (two posts on feet, a bar at rail_height_m) with hi-vis vests and
    perhaps a helmet hanging from its hooks: hi-vis colour at a person's chest height, no person."""
    p = spec.params
    h, w = p["rail_height_m"], p["width_m"]
    for x in (-w / 2, w / 2):
        mb.box((x, 0, h / 2), (0.04, 0.04, h), paint)
        mb.box((x, 0, 0.02), (0.06, 0.5, 0.04), paint)
    mb.box((0, 0, h - 0.03), (w, 0.04, 0.04), paint)
    for k, v in enumerate(p["vests"]):
        x = -w / 2 + (k + 0.5) * w / len(p["vests"])
        mb.box((x, -0.04, h - 0.06), (0.015, 0.06, 0.015), paint)  # hook
        if v["kind"] == "vest":
            # neighbours overlap where the rail is short: each hangs a little in front of the last (no coplanar faces)
            _vest(mb, f"{spec.name}_{k}", v["color"], x, h - 0.08, y=-0.07 - 0.012 * k, stripes=v["stripes"])
        else:  # a helmet on the hook
            shell = material(f"{spec.name}_{k}_helmet", v["color"], 0.35)
            mb.hull(_ring(x, -0.15, h - 0.1, 0.14, 0.12) + _ring(x, -0.15, h - 0.02, 0.1, 0.09, 8)
                    + _ring(x, -0.15, h + 0.04, 0.04, 0.04, 6), shell)


def mannequin(mb: MeshBuilder, spec: ObjectSpec, paint) -> None:
    """A dress form on a stand: round base, pole, torso (shoulders, chest, waist, hips), neck and a
    knob; sometimes wearing a hi-vis vest and a helmet, as in a safety display."""
    p = spec.params
    s = p["scale"]
    steel = material(f"{spec.name}_steel", STEEL, 0.35, metallic=1.0)
    mb.cylinder((0, 0, 0.02), 0.22 * s, 0.04, steel, segments=20)
    mb.cylinder((0, 0, 0.5 * s), 0.015, 1.0 * s, steel)
    body = [(1.0, 0.17, 0.12), (1.12, 0.15, 0.1), (1.22, 0.15, 0.11), (1.33, 0.17, 0.12), (1.43, 0.2, 0.12),
            (1.48, 0.14, 0.1)]  # (z, half width, half depth): hips, waist, chest, shoulders
    for (z0, wx0, wy0), (z1, wx1, wy1) in zip(body, body[1:]):
        mb.hull(_ring(0, 0, z0 * s, wx0 * s, wy0 * s) + _ring(0, 0, z1 * s, wx1 * s, wy1 * s), paint)
    mb.cylinder((0, 0, 1.53 * s), 0.05 * s, 0.1 * s, paint)
    mb.cylinder((0, 0, 1.6 * s), 0.03 * s, 0.04 * s, material(f"{spec.name}_knob", (0.3, 0.2, 0.1), 0.5))
    if p["vest"]:
        cloth = fabric(f"{spec.name}_vest", p["vest"], 0.8)
        for (z0, wx0, wy0), (z1, wx1, wy1) in zip(body[1:4], body[2:5]):
            mb.hull(_ring(0, 0, z0 * s, wx0 * s + 0.015, wy0 * s + 0.015) + _ring(0, 0, z1 * s, wx1 * s + 0.015, wy1 * s + 0.015), cloth)
        tape = material(f"{spec.name}_tape", REFLECTIVE, 0.35)
        mb.cylinder((0, 0, 1.2 * s), 0.165 * s, 0.045, tape, segments=16)
    if p["helmet"]:
        shell = material(f"{spec.name}_helmet", p["helmet"], 0.35)
        mb.hull(_ring(0, 0, 1.62 * s, 0.13, 0.15) + _ring(0, 0, 1.72 * s, 0.09, 0.1, 8), shell)


def add_doors(mb: MeshBuilder, shell: dict) -> None:
    """Doors in the walls (their openings are cut by spec.wall_pieces): a dock door's roller shutter
    down to its open fraction (slats, a drum box above), a steel leveller plate with a striped edge on
    the floor in front of it, yellow guard posts on both sides, and behind it a trailer's open box or
    the yard 1.2 m below the dock; a personnel door is a closed leaf with a push bar and a green sign."""
    half = HALL_M / 2
    frame = {"N": (0, 1, True), "S": (0, -1, True), "E": (1, 0, False), "W": (-1, 0, False)}
    yellow = material("door_guard", (0.95, 0.75, 0.02), 0.5)
    steel = material("door_steel", STEEL, 0.4, metallic=0.8)
    dark = material("door_dark", (0.05, 0.05, 0.055), 0.8)
    yard = material("yard", (0.08, 0.08, 0.085), 0.9, noise_scale=12.0, contrast=0.4)
    for k, d in enumerate(shell.get("doors", [])):
        side, u, w, h = d["wall"], d["u"], d["width_m"], d["height_m"]
        sx, sy, along_x = frame[side]
        out = sx + sy  # +1 on N/E walls, -1 on S/W: outward along the wall's normal

        def at(a: float, n: float, z: float) -> tuple[float, float, float]:
            """A point `a` along the wall from the door centre, `n` inward from the wall plane (outward < 0)."""
            return (u + a, out * (half - n), z) if along_x else (out * (half - n), u + a, z)

        def box(a: float, n: float, z: float, sa: float, sn: float, sz: float, mat) -> None:
            mb.box(at(a, n, z), (sa, sn, sz) if along_x else (sn, sa, sz), mat)

        if d["kind"] == "personnel":
            leaf = material(f"door_{k}_leaf", d["color"], 0.5)
            box(0, 0.0, h / 2, w, 0.06, h, leaf)
            box(0, 0.06, 1.0, 0.7 * w, 0.03, 0.04, steel)
            box(0, 0.1, h + 0.2, 0.4, 0.05, 0.16, material(f"door_{k}_sign", (0.05, 0.6, 0.2), 0.4))
            continue
        slat = material(f"door_{k}_slat", d["color"], 0.55, metallic=0.3)
        bottom = d["open_frac"] * h
        if bottom < h - 0.05:  # the shutter's closed part, in 0.2 m slats with dark joints
            box(0, 0.0, (bottom + h) / 2, w, 0.05, h - bottom, slat)
            for z in np.arange(bottom + 0.2, h, 0.2):
                box(0, 0.03, z, w, 0.01, 0.015, dark)
            box(0, 0.04, bottom + 0.03, w, 0.04, 0.06, dark)  # bottom rail
        box(0, 0.25, h + 0.25, w + 0.3, 0.45, 0.5, slat)  # drum box over the opening
        box(0, 1.2, 0.005, w - 0.2, 2.4, 0.012, steel)    # leveller plate
        for a in np.arange(-(w - 0.2) / 2 + 0.1, (w - 0.2) / 2, 0.2):  # its striped front edge
            box(a, 2.4, 0.007, 0.1, 0.1, 0.014, yellow if int(round(a * 10)) % 4 == 0 else dark)
        for a in (-w / 2 - 0.25, w / 2 + 0.25):
            box(a, 0.3, 0.6, 0.15, 0.15, 1.2, yellow)
        if d["open_frac"] > 0:
            if d["trailer"]:  # a trailer backed against the dock: floor at the dock level, sides, roof, end
                tw, th, tl = 2.45, 2.6, 6.0
                inside = material(f"door_{k}_trailer", d["trailer_color"], 0.8)
                box(0, -0.3 - tl / 2, -0.05, tw, tl, 0.1, inside)
                for a in (-tw / 2, tw / 2):
                    box(a, -0.3 - tl / 2, th / 2, 0.05, tl, th, inside)
                box(0, -0.3 - tl / 2, th, tw, tl, 0.05, inside)
                box(0, -0.3 - tl, th / 2, tw, 0.05, th, inside)
            box(0, -4.0, -1.25, w + 6.0, 7.8, 0.1, yard)  # the yard below the dock
