"""A working site's parts of a scene (pure data, no bpy): doors and docks cut into the walls, people
picking at rack slots, drivers seated in forklift cabs. Drawn by blender/spec.py sample_shell and
sample_scene when their render keys are set; built by blender/build.py and blender/fixtures_build.py."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from blender.draw import pick as _pick, rgb as _rgb, uniform as _u
from blender.pedestrian_spec import pedestrian_params
from blender.spec import FOOTPRINT_M, HALL_M, PEDESTRIAN, RACK_DEPTH_M, ObjectSpec, solid_spans


def wall_pieces(shell: dict[str, Any], wall: str, height: float) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Solid (along-wall span, z range) boxes of one wall (N, S, E, W) of height `height` around its
    openings: windows (sill to top of the window band) and doors (floor to their height), cut band by band."""
    sill = shell.get("window_sill_m", 0.0)
    top = sill + shell.get("window_height_m", 0.0)
    openings = [(u, w, sill, top) for side, u, w in shell.get("windows", []) if side == wall]
    openings += [(d["u"], d["width_m"], 0.0, d["height_m"]) for d in shell.get("doors", []) if d["wall"] == wall]
    cuts = sorted({0.0, height, *(z for o in openings for z in o[2:])})
    pieces = []
    for z0, z1 in zip(cuts, cuts[1:]):
        holes = [(u, w) for u, w, a, b in openings if a <= z0 and z1 <= b]
        pieces += [(span, (z0, z1)) for span in solid_spans(HALL_M, holes)]
    return pieces


DOOR_COLORS = [(0.55, 0.56, 0.58), (0.1, 0.25, 0.55), (0.85, 0.85, 0.82), (0.9, 0.7, 0.05), (0.6, 0.1, 0.08)]


def sample_doors(rng: np.random.Generator, windows: list[list[Any]], height: float) -> list[dict[str, Any]]:
    """Dock doors along one or two walls (2-5 per wall, 2.4-3.2 m wide, 4-5 m apart; shutters closed,
    part open or open, a trailer backed against an open one half the time) and perhaps a personnel
    door; a door that would cut into a window is left out."""
    doors: list[dict[str, Any]] = []
    walls = ["N", "S", "E", "W"]
    for wall in [walls[k] for k in rng.permutation(4)[: int(rng.integers(1, 3))]]:
        n, pitch = int(rng.integers(2, 6)), float(rng.uniform(4.0, 5.0))
        start = float(rng.uniform(-HALL_M / 2 + 2.5, HALL_M / 2 - 2.5 - (n - 1) * pitch)) if (n - 1) * pitch < HALL_M - 5 else -HALL_M / 2 + 2.5
        for k in range(n):
            state = rng.random()
            doors.append({"wall": wall, "u": round(start + k * pitch, 3), "width_m": round(_u(rng, (2.4, 3.2)), 3),
                          "height_m": round(min(_u(rng, (2.8, 3.6)), height - 1.2), 3), "kind": "dock",
                          "open_frac": 0.0 if state < 0.45 else round(_u(rng, (0.3, 0.8)), 3) if state < 0.7 else 1.0,
                          "trailer": bool(rng.random() < 0.5), "color": _rgb(_pick(rng, DOOR_COLORS)),
                          "trailer_color": _rgb(_pick(rng, [(0.75, 0.75, 0.73), (0.45, 0.35, 0.25), (0.3, 0.32, 0.35)]))})
    if rng.random() < 0.5:
        doors.append({"wall": walls[int(rng.integers(4))], "u": round(float(rng.uniform(-12, 12)), 3), "width_m": 1.0,
                      "height_m": 2.1, "kind": "personnel", "open_frac": 0.0, "trailer": False,
                      "color": _rgb(_pick(rng, DOOR_COLORS))})
    keep = []
    for d in doors:
        lo, hi = d["u"] - d["width_m"] / 2 - 0.6, d["u"] + d["width_m"] / 2 + 0.6
        if hi > HALL_M / 2 - 2.5 or lo < -HALL_M / 2 + 2.5:  # clear of the corner: levellers reach 2.4 m in
            continue
        if any(side == d["wall"] and u + w / 2 > lo and u - w / 2 < hi for side, u, w in windows):
            continue
        if any(o["wall"] == d["wall"] and o["u"] + o["width_m"] / 2 > lo and o["u"] - o["width_m"] / 2 < hi for o in keep):
            continue
        keep.append(d)
    return keep


PICK_LEVEL = 1  # the beam level picked from: its pallets' cartons from 1.644 m up (levels at 0.15 + 1.3 k m)
PICK_Z_M = (1.69, 1.84)  # the hands' height on the cartons' front: 4.5-20 cm above the deck (blender/pallet_build.py);
# a person of h metres reaches up to 1.69 + 0.5 (h - 1.55) (both arms forward and up, measured with reach())


def add_picker(rng: np.random.Generator, person: dict[str, Any], racks: list[ObjectSpec],
                aisles: list[tuple[float, float, float, float]], placed: list[tuple[float, float, float]],
                n_rack_discs: int) -> tuple[tuple[float, float], float] | None:
    """Turn `person` into a picker at a rack slot (render.picking_prob): in an aisle, 0.3-0.45 m from a
    rack face, facing it, both hands on the front of the load of a loaded slot of the beam level PICK_LEVEL,
    0.3-0.45 m apart at PICK_Z_M (pedestrian_body.reach solves the arms, the body steps to close the
    horizontal rest, the arms solve again).
    Returns the position and yaw, or None where no loaded slot has room (the person stays as drawn).
    The picker's footprint may touch the racks' discs (hands on the load) but no other disc."""
    for _ in range(12):
        if not aisles:
            return None
        x0, x1, yc, half = aisles[int(rng.integers(len(aisles)))]
        side = 1.0 if rng.random() < 0.5 else -1.0
        row_y = yc + side * (half + RACK_DEPTH_M / 2)
        bays = [r for r in racks if abs(r.location[1] - row_y) < 1e-3 and r.params["levels"] > PICK_LEVEL]
        if not bays:
            continue
        bay = bays[int(rng.integers(len(bays)))]
        k = int(rng.integers(2))
        if bay.params["slots"][2 * PICK_LEVEL + k] is None:
            continue
        slot_x = bay.location[0] + (-0.25 if k == 0 else 0.25) * bay.params["width_m"]
        gap = float(rng.uniform(0.3, 0.45))  # body origin to the rack face
        x, y = slot_x + float(rng.uniform(-0.15, 0.15)), yc + side * (half - gap)
        r = FOOTPRINT_M[PEDESTRIAN]
        if not all(math.hypot(x - px, y - py) >= r + pr for px, py, pr in placed[n_rack_discs:]):
            continue
        yaw = (0.0 if side > 0 else math.pi) + float(rng.uniform(-0.12, 0.12))
        # the carton's sides 2 cm into the rack face, turned into the body's frame (facing +y, left hand at -x)
        z = float(rng.uniform(PICK_Z_M[0], min(PICK_Z_M[1], PICK_Z_M[0] + 0.5 * (person["height_m"] - 1.55))))  # in reach
        width = float(rng.uniform(0.3, 0.45))
        c, s = math.cos(-yaw), math.sin(-yaw)
        grip = []
        for u in (-side * width / 2, side * width / 2):  # the body's left first: -x of the hall when facing +y
            dx, dy = slot_x + u - x, row_y - side * (RACK_DEPTH_M / 2 - 0.02) - y
            grip.append([round(dx * c - dy * s, 4), round(dx * s + dy * c, 4), round(z, 4)])
        person.update(pose="picking", arms="grip", picks=bay.name, swing_deg=0.0, grip_m=grip)
        person.pop("carried_box", None)
        return (x, y), round(math.remainder(yaw, 2 * math.pi), 4)
    return None


# In a forklift's frame (blender/build.py _forklift, forks to -y): where a driver's thighs rest, the
# steering wheel's centre (radius 0.16 m, its face tilted towards the seat), the floor plate of the footwell
# and the underside of the overhead guard's roof.
FORKLIFT_SEAT = (0.0, 0.62, 1.35)
FORKLIFT_WHEEL = (0.0, 0.17, 1.62)
FORKLIFT_FLOOR_Z = 0.92
FORKLIFT_ROOF_Z = 2.5


def driver(rng: np.random.Generator, render_cfg: dict[str, Any], forklift: ObjectSpec,
            instance_id: int) -> ObjectSpec:
    """A driver seated in `forklift`'s cab, facing its forks, hands on the steering wheel. Labelled by
    render.forklift_driver_label: ignore (a pedestrian marked as a crowd region: COCOeval ignores a
    detection there), pedestrian (a person like any other) or none (unlabelled)."""
    params = pedestrian_params(rng, render_cfg)
    for key in ("carried_box", "grip_m"):
        params.pop(key, None)
    sx, sy, sz = FORKLIFT_SEAT
    wy, wz = sy - FORKLIFT_WHEEL[1], FORKLIFT_WHEEL[2] - sz  # ahead of and above the seat: the driver faces the forklift's -y
    params.update(pose="seated", arms="wheel", drives=forklift.name, swing_deg=0.0,
                  grip_m=[[-0.15, round(wy, 4), round(wz, 4)], [0.15, round(wy, 4), round(wz, 4)]])  # rim at 9 and 3
    label = render_cfg["forklift_driver_label"]
    if label == "ignore":
        params["crowd"] = True
    c, s = math.cos(forklift.yaw_rad), math.sin(forklift.yaw_rad)
    x, y = forklift.location[0] + sx * c - sy * s, forklift.location[1] + sx * s + sy * c
    labelled = label != "none"
    return ObjectSpec(f"inst_{instance_id:03d}_driver" if labelled else f"{forklift.name}_driver", PEDESTRIAN,
                      PEDESTRIAN if labelled else None, instance_id if labelled else 0,
                      (round(x, 4), round(y, 4), sz), round(math.remainder(forklift.yaw_rad + math.pi, 2 * math.pi), 4),
                      params)
