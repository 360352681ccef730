"""Turn a SceneSpec into Blender objects (bpy). Geometry only; rendering lives in render.py."""
from __future__ import annotations

import json
import math

import bpy
import numpy as np
from mathutils import Matrix, Vector

from blender.fixtures_build import add_doors, mannequin, vest_hooks
from blender.materials import BLACK, film, material
from blender.mesh import MeshBuilder
from blender.pallet_build import add_cargo, add_pallet
from blender.pallet_jack_build import build_pallet_jack
from blender.pedestrian_build import animate_gait, build_pedestrian
from blender.site_spec import FORKLIFT_FLOOR_Z, FORKLIFT_ROOF_Z, FORKLIFT_WHEEL, wall_pieces
from blender.spec import HALL_M, STEEL, CameraSpec, ObjectSpec, SceneSpec, solid_spans

def clear_scene() -> None:
    """Remove every object and data block from the previous frame so memory stays flat."""
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.lights,
                 bpy.data.cameras, bpy.data.worlds, bpy.data.node_groups, bpy.data.images,
                 bpy.data.textures, bpy.data.actions, bpy.data.armatures, bpy.data.collections):
        for block in list(coll):
            coll.remove(block)
    bpy.data.orphans_purge(do_recursive=True)


def build_distractor(spec: ObjectSpec) -> bpy.types.Object:
    """Context objects and occluders: box, cone, barrel, pallet stack, racking."""
    p = spec.params
    mb = MeshBuilder()
    mat = material(f"{spec.name}_mat", p.get("color", (0.5, 0.5, 0.5)), 0.7)
    if spec.kind == "box":
        sx, sy, sz = p["size_m"]
        mb.box((0, 0, sz / 2), (sx, sy, sz), mat)
    elif spec.kind == "cone":
        h = p["height_m"]
        mb.box((0, 0, 0.015), (0.36, 0.36, 0.03), material(f"{spec.name}_base", BLACK, 0.8))
        mb.cylinder((0, 0, h / 2), 0.15, h, mat, radius_top=0.02)
    elif spec.kind == "barrel":
        mb.cylinder((0, 0, 0.45), 0.29, 0.9, mat, segments=24)
    elif spec.kind == "pallet":
        deck = 0.0
        for _ in range(p["stack"]):
            deck = add_pallet(mb, spec.name, p["load"], (0.0, 0.0), deck)
        add_cargo(mb, spec.name, p["load"], (0.0, 0.0), deck)
    elif spec.kind == "clutter":
        _clutter(mb, spec)
    elif spec.kind == "post":
        h = p["height_m"]
        mb.box((0, 0, h / 2), (0.25, 0.25, h), mat)  # steel column
        if p["guard"]:  # yellow/black impact guard around its foot
            stripes = [material(f"{spec.name}_guard_yellow", (0.95, 0.75, 0.02), 0.5),
                       material(f"{spec.name}_guard_black", BLACK, 0.5)]
            for k in range(4):
                mb.cylinder((0, 0, 0.15 + 0.25 * k), 0.26, 0.25, stripes[k % 2], segments=20)
    elif spec.kind == "forklift":
        _forklift(mb, spec, mat)
    elif spec.kind == "rack":
        _rack(mb, spec, mat)
    elif spec.kind == "stacker":
        _stacker(mb, spec, mat)
    elif spec.kind == "hand_truck":
        _hand_truck(mb, spec, mat)
    elif spec.kind == "roll_cage":
        _roll_cage(mb, spec, mat)
    elif spec.kind == "vest_hooks":
        vest_hooks(mb, spec, mat)
    elif spec.kind == "mannequin":
        mannequin(mb, spec, material(f"{spec.name}_form", p["color"], 0.45))
    else:
        raise ValueError(f"unknown object kind {spec.kind!r}")
    return mb.to_object(spec)


def _rack(mb: MeshBuilder, spec: ObjectSpec, upright) -> None:
    """Pallet racking bay: two upright frames (posts, horizontal and diagonal bracing), a pair of beams
    per level with location labels, optional wire decks, EUR pallets with cartons in the slots."""
    p = spec.params
    w, levels = p["width_m"], p["levels"]
    height = 1.3 * levels + 0.3
    for x in (-w / 2, w / 2):
        for y in (-0.5, 0.5):
            mb.box((x, y, height / 2), (0.08, 0.08, height), upright)
        for k in range(int(height / 0.6)):  # frame bracing: horizontals and zigzag diagonals
            z = 0.3 + 0.6 * k
            mb.cylinder((x, 0, z), 0.015, 1.0, upright, rot=(math.pi / 2, 0, 0))
            mb.cylinder((x, 0, z + 0.3), 0.012, math.hypot(1.0, 0.6), upright,
                        rot=(math.pi / 2 - math.atan2(0.6, 1.0) * (1 if k % 2 else -1), 0, 0))
    beam = material(f"{spec.name}_beam", p["beam_color"], 0.5)
    label = material(f"{spec.name}_label", (0.92, 0.92, 0.9), 0.5)
    deck_mat = material(f"{spec.name}_deck", (0.6, 0.6, 0.62), 0.4, metallic=0.8)
    for level in range(levels):
        z = 0.15 + 1.3 * level
        for y in (-0.47, 0.47):
            mb.box((0, y, z), (w, 0.05, 0.1), beam)
            for x in (-w / 4, w / 4):
                mb.box((x, y + 0.026 * (1 if y > 0 else -1), z), (0.12, 0.002, 0.06), label)
        if p["wire_deck"]:  # wire mesh panels: channels across, wires along
            for x in np.linspace(-w / 2 + 0.1, w / 2 - 0.1, 6):
                mb.box((x, 0, z + 0.055), (0.03, 0.94, 0.01), deck_mat)
            for y in np.linspace(-0.42, 0.42, 9):
                mb.cylinder((0, y, z + 0.062), 0.003, w - 0.1, deck_mat, rot=(0, math.pi / 2, 0), segments=6)
        for k, x in enumerate((-w / 4, w / 4)):
            load = p["slots"][2 * level + k]
            if load:
                deck = add_pallet(mb, f"{spec.name}_{level}{k}", load, (x, 0.0), z + 0.05)
                add_cargo(mb, f"{spec.name}_{level}{k}", load, (x, 0.0), deck, max_height_m=1.3 - 0.35)


def _clutter(mb: MeshBuilder, spec: ObjectSpec) -> None:
    """Flat things on the floor: tyre marks (a pair of dark strips), stains, dropped straps or wrap."""
    for k, m in enumerate(spec.params["marks"]):
        frame = Matrix.Translation((*m["xy"], 0.0)) @ Matrix.Rotation(m["yaw"], 4, "Z")
        color = m["color"] if m["kind"] in ("strap", "wrap") else (0.04, 0.04, 0.04) if m["kind"] == "tyre" else (0.12, 0.1, 0.08)
        mat = material(f"{spec.name}_{k}", color, 0.3 if m["kind"] == "stain" else 0.7)
        if m["kind"] == "tyre":
            for side in (-1, 1):
                mb.box((side * 0.1, 0, 0.0005), (0.08, m["length_m"], 0.001), mat, pre=frame)
        elif m["kind"] == "stain":
            mb.cylinder((0, 0, 0.0005), m["size_m"], 0.001, mat, pre=frame, segments=12)
        elif m["kind"] == "strap":
            mb.box((0, 0, 0.002), (0.03, m["length_m"], 0.004), mat, pre=frame)
        else:  # a crumpled piece of stretch wrap
            mb.hull([(m["size_m"] * math.cos(a) * (0.6 + 0.4 * (j % 2)), m["size_m"] * math.sin(a) * 0.6, 0.04 * (j % 3) / 2)
                     for j, a in enumerate(np.linspace(0, 2 * math.pi, 9)[:-1])], film(f"{spec.name}_{k}_film"), pre=frame)


def _forklift(mb: MeshBuilder, spec: ObjectSpec, paint) -> None:
    """Counterbalance forklift facing -y (forks first): body, counterweight, overhead guard, mast, forks."""
    p = spec.params
    rubber = material(f"{spec.name}_rubber", BLACK, 0.8)
    steel = material(f"{spec.name}_steel", STEEL, 0.35, metallic=1.0)
    dark = material(f"{spec.name}_dark", (0.08, 0.08, 0.09), 0.6)
    floor, roof = FORKLIFT_FLOOR_Z, FORKLIFT_ROOF_Z
    mb.box((0, 0.725, 0.65), (1.05, 0.85, 0.8), paint)                # body under the seat (to the counterweight)
    mb.box((0, -0.075, (0.25 + floor) / 2), (1.05, 0.75, floor - 0.25), paint)  # front: the footwell's floor plate
    mb.box((0, -0.34, 1.08), (1.05, 0.22, 0.44), paint)               # cowl in front of the driver's feet
    mb.box((0, 1.2, 0.7), (1.05, 0.35, 0.9), dark)                   # counterweight
    mb.box((0, 0.55, 1.2), (0.5, 0.4, 0.3), dark)                    # seat
    wx, wy, wz = FORKLIFT_WHEEL
    mb.cylinder((wx, wy, wz), 0.16, 0.04, rubber, rot=(-0.6, 0, 0))  # steering wheel, its face to the driver
    base = np.array([wx, -0.3, 1.3])                                 # column from the cowl up to the wheel's hub
    axis = np.array([wx, wy, wz]) - base
    mb.cylinder(tuple(base + axis / 2), 0.035, float(np.linalg.norm(axis)), dark,
                rot=(-math.atan2(axis[1], axis[2]), 0, 0))
    for x in (-0.45, 0.45):
        for y in (-0.2, 0.95):
            mb.cylinder((x, y, 0.28), 0.28, 0.2, rubber, rot=(0, math.pi / 2, 0))
        for y in (-0.25, 0.9):  # overhead guard posts
            mb.box((x, y, (0.95 + roof) / 2), (0.06, 0.06, roof - 0.95), dark)
    mb.box((0, 0.33, roof + 0.03), (0.96, 1.25, 0.06), dark)         # guard roof
    mast_h = p["mast_height_m"]
    for x in (-0.33, 0.33):
        mb.box((x, -0.55, mast_h / 2), (0.09, 0.12, mast_h), steel)
    fh = p["fork_height_m"]
    mb.box((0, -0.65, fh + 0.3), (0.8, 0.06, 0.55), steel)          # carriage
    for x in (-0.25, 0.25):
        mb.box((x, -1.15, fh + 0.03), (0.1, 1.0, 0.05), steel)
    if p["load"]:
        wood = material(f"{spec.name}_pallet", (0.55, 0.42, 0.28), 0.8)
        mb.box((0, -1.15, fh + 0.13), (1.0, 1.0, 0.14), wood)
        mb.box((0, -1.15, fh + 0.6), (0.95, 0.95, 0.8), material(f"{spec.name}_cargo", (0.55, 0.4, 0.25), 0.85))


def _stacker(mb: MeshBuilder, spec: ObjectSpec, paint) -> None:
    """Walkie (forks over wheeled legs) or straddle stacker (legs outside the pallet) facing +y: drive
    unit with tiller behind, mast, carriage and forks at fork_height_m, optionally a loaded pallet."""
    p = spec.params
    rubber = material(f"{spec.name}_rubber", BLACK, 0.8)
    steel = material(f"{spec.name}_steel", STEEL, 0.35, metallic=1.0)
    dark = material(f"{spec.name}_dark", (0.08, 0.08, 0.09), 0.6)
    mb.box((0, -0.35, 0.6), (0.75, 0.55, 1.05), paint)                 # drive and battery unit
    mb.box((0, -0.35, 1.15), (0.6, 0.4, 0.08), dark)                   # cover
    for x in (-0.3, 0.3):
        mb.box((x, 0.0, p["mast_height_m"] / 2), (0.08, 0.12, p["mast_height_m"]), steel)
    mb.box((0, 0.0, p["mast_height_m"] - 0.04), (0.68, 0.1, 0.08), steel)  # mast head
    leg_x = 0.5 if p["straddle"] else 0.28
    for x in (-leg_x, leg_x):                                          # base legs with load wheels
        mb.box((x, 0.55, 0.05), (0.12, 1.1, 0.1), paint)
        mb.cylinder((x, 1.0, 0.05), 0.05, 0.08, rubber, rot=(0, math.pi / 2, 0))
    mb.cylinder((0, -0.55, 0.1), 0.1, 0.12, rubber, rot=(0, math.pi / 2, 0))  # drive wheel
    fh = p["fork_height_m"]
    mb.box((0, 0.09, fh + 0.3), (0.7, 0.05, 0.55), steel)             # carriage
    for x in (-0.27, 0.27):
        mb.box((x, 0.68, fh + 0.03), (0.16, 1.15, 0.06), steel)
    t = p["tiller_angle_rad"]  # tiller: from a pivot at the unit's back, t from upright towards the back
    base = np.array([0.0, -0.63, 0.5])
    tip = base + np.array([0.0, -math.sin(t), math.cos(t)])
    mid = (base + tip) / 2
    mb.cylinder(tuple(mid), 0.025, 1.0, dark, rot=(math.atan2(-(tip[1] - base[1]), tip[2] - base[2]), 0, 0))
    mb.box((0, tip[1], tip[2]), (0.36, 0.08, 0.1), dark)               # control head
    if p["load"]:
        wood = material(f"{spec.name}_pallet", (0.55, 0.42, 0.28), 0.8)
        mb.box((0, 0.7, fh + 0.13), (0.8, 1.2, 0.14), wood)
        mb.box((0, 0.7, fh + 0.5), (0.75, 1.1, 0.6), material(f"{spec.name}_cargo", (0.55, 0.4, 0.25), 0.85))


def _hand_truck(mb: MeshBuilder, spec: ObjectSpec, paint) -> None:
    """Two-wheel sack truck: nose plate on the floor in front, frame and handles up from the axle,
    tilted back about the axle by tilt_rad (handles back, its nose lifts), cartons on the nose plate."""
    p = spec.params
    rubber = material(f"{spec.name}_rubber", BLACK, 0.8)
    steel = material(f"{spec.name}_steel", STEEL, 0.35, metallic=1.0)
    h, tilt = p["height_m"], p["tilt_rad"]
    # built upright about the axle (y = 0, z = 0.13), then turned back (about x) by tilt
    pre = Matrix.Translation((0, 0, 0.13)) @ Matrix.Rotation(tilt, 4, "X") @ Matrix.Translation((0, 0, -0.13))
    for x in (-0.2, 0.2):
        mb.box((x, 0.0, h / 2 + 0.02), (0.03, 0.03, h - 0.04), paint, pre=pre)   # rails
    for z in (0.45, 0.85):
        mb.box((0, 0.0, z), (0.43, 0.025, 0.025), paint, pre=pre)
    mb.box((0, 0.0, h - 0.02), (0.5, 0.035, 0.035), paint, pre=pre)           # handle bar
    mb.box((0, 0.14, 0.005), (0.42, 0.26, 0.01), steel, pre=pre)              # nose plate
    for x in (-0.26, 0.26):
        mb.cylinder((x, -0.05, 0.13), 0.13, 0.07, rubber, rot=(0, math.pi / 2, 0))  # wheels stay on the floor
    carton = material(f"{spec.name}_carton", (0.6, 0.45, 0.28), 0.85)
    z = 0.01
    for k in range(p["cartons"]):
        size = 0.3 - 0.04 * k
        mb.box((0, 0.15, z + size / 2), (0.38, 0.26, size), carton, pre=pre)
        z += size


def _roll_cage(mb: MeshBuilder, spec: ObjectSpec, paint) -> None:
    """Roll container: a base on four castors, wire mesh on three sides (open at the front, -y), cartons inside."""
    p = spec.params
    rubber = material(f"{spec.name}_rubber", BLACK, 0.8)
    h, sx, sy = p["height_m"], 0.72, 0.8
    for x in (-0.3, 0.3):
        for y in (-0.33, 0.33):
            mb.cylinder((x, y, 0.05), 0.05, 0.04, rubber, rot=(0, math.pi / 2, 0))
    mb.box((0, 0, 0.14), (sx, sy, 0.06), paint)
    top = h
    for x in (-sx / 2, sx / 2):                                        # side meshes
        for y in np.linspace(-sy / 2, sy / 2, 8):
            mb.box((x, y, (0.17 + top) / 2), (0.012, 0.012, top - 0.17), paint)
        for z in np.linspace(0.3, top - 0.01, 7):
            mb.box((x, 0, z), (0.012, sy, 0.012), paint)
    for x in np.linspace(-sx / 2, sx / 2, 8):                          # back mesh
        mb.box((x, sy / 2, (0.17 + top) / 2), (0.012, 0.012, top - 0.17), paint)
    for z in np.linspace(0.3, top - 0.01, 7):
        mb.box((0, sy / 2, z), (sx, 0.012, 0.012), paint)
    carton = material(f"{spec.name}_carton", (0.6, 0.45, 0.28), 0.85)
    for k in range(p["cartons"]):
        mb.box((0.15 * (-1) ** k, 0.05, 0.17 + 0.2 + 0.4 * (k // 2)), (0.3, 0.5, 0.38), carton)


BUILDERS = {"pedestrian": build_pedestrian, "pallet_jack": build_pallet_jack}


def build_environment(spec: SceneSpec, portals: bool = False) -> None:
    """Floor with worn-concrete noise and markings; walls with window openings; ceiling with
    skylights and roof beams (spec.shell; an empty shell is an open-topped hall); world light."""
    scene = bpy.context.scene
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.6, 0.62, 0.65, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.35
    scene.world = world
    shell = spec.shell
    half, height = HALL_M / 2, shell.get("height_m", 8.0)
    mb = MeshBuilder()
    floor = spec.floor or {"noise_scale": 6.0, "noise_contrast": 0.3}
    mb.box((0, 0, -0.05), (HALL_M, HALL_M, 0.1),
           material("floor", spec.floor_color, spec.floor_roughness, noise_scale=floor["noise_scale"] or None,
                    contrast=floor["noise_contrast"]))
    marking = material("marking", (0.95, 0.75, 0.05), 0.5)
    for y in (-3.0, 3.0):
        mb.box((0, y, 0.001), (HALL_M - 6, 0.1, 0.002), marking)
    wall = material("wall", spec.wall_color, 0.9)
    sill = shell.get("window_sill_m", 0.0)
    top = sill + shell.get("window_height_m", 0.0)
    for name, (cx, cy, along_x) in {"N": (0, half, True), "S": (0, -half, True),
                                    "E": (half, 0, False), "W": (-half, 0, False)}.items():
        for (a, b), (z0, z1) in wall_pieces(shell, name, height):
            c, length = (a + b) / 2, b - a
            if along_x:
                mb.box((c, cy, (z0 + z1) / 2), (length, 0.2, z1 - z0), wall)
            else:
                mb.box((cx, c, (z0 + z1) / 2), (0.2, length, z1 - z0), wall)
    if shell:
        roof = material("ceiling", (0.55, 0.56, 0.58), 0.8)
        rows: dict[tuple[float, float], list[tuple[float, float]]] = {}
        for x, y, sx, sy in shell["skylights"]:
            rows.setdefault((y, sy), []).append((x, sx))
        z = height + 0.1
        for a, b in solid_spans(HALL_M, list(rows)):
            mb.box((0, (a + b) / 2, z), (HALL_M, b - a, 0.2), roof)
        for (y, sy), holes in rows.items():
            for a, b in solid_spans(HALL_M, holes):
                mb.box(((a + b) / 2, y, z), (b - a, sy, 0.2), roof)
        beam = material("beam", STEEL, 0.5, metallic=0.6)
        for x in range(-12, 13, 6):
            mb.box((x, 0, height - 0.2), (0.25, HALL_M, 0.4), beam)
    add_doors(mb, shell)
    mb.to_object(ObjectSpec("floor", "floor", None, 0, (0, 0, 0), 0.0))
    if shell and portals:
        add_portals(shell, half, height, sill, top)


def add_portals(shell: dict, half: float, height: float, sill: float, top: float) -> None:
    """Cycles light portals over the skylight and window openings, facing into the hall: the sky is
    then sampled through the openings rather than over the whole sphere, most of which the roof hides.
    One portal per skylight row and per wall with windows (spanning its openings: every portal is a
    light to sample, so fewer and larger ones cost less per sample). Sampling only: a portal emits
    nothing, so the image converges to the same picture."""
    openings = []
    rows: dict[tuple[float, float], list[tuple[float, float]]] = {}
    for x, y, sx, sy in shell["skylights"]:
        rows.setdefault((y, sy), []).append((x - sx / 2, x + sx / 2))
    for (y, sy), spans in rows.items():
        a, b = min(s[0] for s in spans), max(s[1] for s in spans)
        openings.append((((a + b) / 2, y, height), (b - a, sy), Vector((0, 0, -1))))
    walls: dict[str, list[tuple[float, float]]] = {}
    for side, u, w in shell.get("windows", []):
        walls.setdefault(side, []).append((u - w / 2, u + w / 2))
    inward = {"N": Vector((0, -1, 0)), "S": Vector((0, 1, 0)), "E": Vector((-1, 0, 0)), "W": Vector((1, 0, 0))}
    for side, spans in walls.items():
        n, (a, b) = inward[side], (min(s[0] for s in spans), max(s[1] for s in spans))
        u, z = (a + b) / 2, (sill + top) / 2
        openings.append(((u, half * -n.y, z) if n.y else (half * -n.x, u, z), (b - a, top - sill), n))
    for i, (centre, (sx, sy), n) in enumerate(openings):
        data = bpy.data.lights.new(f"portal_{i}", "AREA")
        data.shape = "RECTANGLE"
        data.size, data.size_y = sx, sy
        data.cycles.is_portal = True
        obj = bpy.data.objects.new(f"portal_{i}", data)
        obj.location = centre
        # an area light faces its local -Z; a window portal's local Y points up (world Z), so size spans
        # the wall along the floor and size_y the window band (sill to top)
        obj.rotation_euler = (0.0, 0.0, 0.0) if n.z else n.to_track_quat("-Z", "Y").to_euler()
        bpy.context.scene.collection.objects.link(obj)


def animate_motion(spec: SceneSpec, fps: int = 10) -> None:
    """Motion blur: each moving object travels linearly through its spec position at frame 1
    (keys at frames 0 and 2); the shutter of spec.exposure_s is centred on frame 1."""
    scene = bpy.context.scene
    prefs = bpy.context.preferences.edit
    old_interp = prefs.keyframe_new_interpolation_type
    prefs.keyframe_new_interpolation_type = "LINEAR"
    try:
        for o in spec.objects:
            v = o.params.get("velocity_mps")
            if not v:
                continue
            obj = bpy.data.objects[o.name]
            for frame, sign in ((0, -1.0), (2, 1.0)):
                obj.location = (o.location[0] + sign * v[0] / fps, o.location[1] + sign * v[1] / fps, o.location[2])
                obj.keyframe_insert("location", frame=frame)
            if o.kind == "pedestrian" and o.params.get("pose") in ("walking", "carrying") and not o.params.get("asset"):
                animate_gait(obj, o.params, math.hypot(*v), 1.0 / fps)
    finally:
        prefs.keyframe_new_interpolation_type = old_interp
    scene.render.fps = fps
    scene.render.use_motion_blur = True
    scene.render.motion_blur_position = "CENTER"
    # A rolling shutter (Cycles: rows from the top, each exposed `rolling_shutter_duration` of the shutter):
    # the shutter spans exposure + readout, a row's share of it is the exposure.
    total = spec.exposure_s + spec.readout_s
    scene.render.motion_blur_shutter = min(2.0, total * fps)
    scene.cycles.rolling_shutter_type = "TOP" if spec.readout_s > 0 else "NONE"
    scene.cycles.rolling_shutter_duration = spec.exposure_s / total
    scene.frame_set(1)


def build_camera(cam: CameraSpec) -> bpy.types.Object:
    """Camera at `location` aimed at `look_at` (Blender cameras look down their local -Z)."""
    data = bpy.data.cameras.new("camera")
    data.lens = cam.focal_mm
    data.sensor_width = cam.sensor_width_mm
    data.sensor_fit = "HORIZONTAL"
    if cam.lens.get("model") == "fisheye_polynomial":  # a wide lens with barrel distortion (blender/lens.py)
        data.type = "PANO"
        data.panorama_type = "FISHEYE_LENS_POLYNOMIAL"
        for i, k in enumerate(cam.lens["k"]):
            setattr(data, f"fisheye_polynomial_k{i}", k)
        data.fisheye_fov = cam.lens["fov_rad"]
    obj = bpy.data.objects.new("camera", data)
    obj["lens_model"] = json.dumps(cam.lens or {"model": "pinhole"})  # read back by render.camera_matrices
    obj.location = cam.location
    direction = Vector(cam.look_at) - Vector(cam.location)
    obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.scene.camera = obj
    return obj


def build_lights(spec: SceneSpec) -> None:
    for i, ls in enumerate(spec.lights):
        data = bpy.data.lights.new(f"light_{i}", ls.kind)
        data.color = ls.color
        data.energy = ls.strength
        if ls.kind == "AREA":
            data.size = ls.size_m
        elif ls.kind in ("POINT", "SPOT"):
            data.shadow_soft_size = ls.size_m
        if ls.kind == "SPOT":
            data.spot_size = 1.4  # wide high-bay cone (80 degrees), pointing down
        obj = bpy.data.objects.new(f"light_{i}", data)
        if ls.kind != "SUN":  # the lamp's emitting surface in view, as bright as it is (it clips)
            obj.visible_camera = spec.lamps_visible
        obj.location = ls.location
        obj.rotation_euler = ls.rotation_euler
        bpy.context.scene.collection.objects.link(obj)


def build_scene(spec: SceneSpec, light_portals: bool = False) -> bpy.types.Object:
    """Clear the scene and build `spec` (with light portals in its openings if asked); return the camera."""
    clear_scene()
    build_environment(spec, light_portals)
    for obj in spec.objects:
        if obj.params.get("asset"):
            from blender.assets import build_asset

            build_asset(obj, obj.params.get("color") or obj.params.get("shirt") or (0.5, 0.5, 0.5))
        else:
            BUILDERS.get(obj.kind, build_distractor)(obj)
    build_lights(spec)
    cam = build_camera(spec.camera)
    bpy.context.scene.render.use_motion_blur = False
    if spec.exposure_s > 0:
        animate_motion(spec)
    else:
        bpy.context.scene.frame_set(1)
    bpy.context.view_layer.update()
    return cam
