"""Pure-Python scene description: what a warehouse image contains, drawn from a seeded RNG.

No bpy here: a SceneSpec is plain data, saved as JSON next to every image so
any frame can be rebuilt exactly, and testable in milliseconds.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blender.camera_image import draw as draw_camera_image
from blender.lens import lens_model
from blender.draw import pick as _pick, rgb as _rgb, uniform as _u
from blender.distractor_spec import DISTRACTOR_KINDS, LOOKALIKE_KINDS, STEEL, distractor_params  # noqa: F401 (re-exported)
from blender.pallet_jack_spec import pallet_jack_params
from blender.pedestrian_spec import operator_params, pedestrian_params

# Category names used by the procedural generators; config `classes` must contain them.
PEDESTRIAN = "pedestrian"
PALLET_JACK = "pallet_jack"

# Footprint radius (m) per kind, used to place objects without interpenetration.
FOOTPRINT_M = {  # >= the largest horizontal reach of the built mesh (tests/test_render.py checks)
    "pedestrian": 0.85,   # anny body: widest stride, deepest bend, a raised arm (0.78 m measured)
    "pallet_jack": 1.6,   # forks up to 1.5 m from the origin, a pallet beside them, the tiller or platform behind
    "box": 0.6,
    "cone": 0.26,
    "barrel": 0.3,
    "pallet": 0.86,
    "rack": 1.6,
    "forklift": 1.75,
    "post": 0.3,
    "clutter": 1.1,       # flat marks reaching 0.6 m from a centre up to 0.42 m off the origin
    "stacker": 1.6,       # forks or straddle legs 1.26 m ahead, the tiller up to 1.5 m behind
    "hand_truck": 0.7,    # wheels 0.3 m to the side, handles 0.55 m back when tilted
    "roll_cage": 0.6,
    "vest_hooks": 0.9,    # a rail up to 1.6 m wide, vests hanging 0.1 m in front of it
    "mannequin": 0.3,
}
# Floor finishes: (colour choices, roughness range, noise scale (0: plain), noise contrast)
FLOORS = {
    "concrete": ([(0.45, 0.45, 0.44), (0.35, 0.35, 0.36), (0.55, 0.53, 0.5)], (0.6, 0.9), 6.0, 0.3),
    "epoxy": ([(0.25, 0.4, 0.3), (0.5, 0.5, 0.52), (0.3, 0.35, 0.45), (0.6, 0.2, 0.15)], (0.1, 0.3), 0.0, 0.0),
    "worn": ([(0.4, 0.38, 0.35), (0.3, 0.38, 0.3), (0.5, 0.45, 0.4)], (0.4, 0.8), 2.5, 0.6),
    "asphalt": ([(0.07, 0.07, 0.075), (0.1, 0.1, 0.1), (0.13, 0.12, 0.11)], (0.75, 0.95), 18.0, 0.45),
    "painted": ([(0.62, 0.63, 0.6), (0.42, 0.5, 0.55), (0.55, 0.52, 0.35)], (0.3, 0.5), 4.0, 0.15),
}
AE_TARGET = 0.12  # mean linear luminance of a metered frame (the median of 30 default renders before AE: 0.116)
CAMERA_CLEARANCE_M = 0.5  # the camera stays this far outside every footprint disc
HALL_M = 30.0  # the hall is HALL_M x HALL_M, centred on the origin



@dataclass
class ObjectSpec:
    """One object: a labelled instance (instance_id > 0) or context/distractor (0)."""

    name: str
    kind: str
    category: str | None
    instance_id: int
    location: tuple[float, float, float]
    yaw_rad: float
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CameraSpec:
    location: tuple[float, float, float]
    look_at: tuple[float, float, float]
    focal_mm: float
    sensor_width_mm: float = 36.0
    # The rig it was drawn from (render.camera_rigs; "" = camera_height_m/camera_distance_m/focal_mm) and its
    # lens (blender/lens.py: a wide lens with barrel distortion; empty = the pinhole of focal_mm).
    rig: str = ""
    lens: dict[str, Any] = field(default_factory=dict)


@dataclass
class LightSpec:
    kind: str  # SUN, AREA, POINT or SPOT
    location: tuple[float, float, float]
    rotation_euler: tuple[float, float, float]
    strength: float
    color: tuple[float, float, float]
    size_m: float = 1.0


@dataclass
class SceneSpec:
    frame: str
    resolution_px: tuple[int, int]
    floor_color: tuple[float, float, float]
    floor_roughness: float
    wall_color: tuple[float, float, float]
    camera: CameraSpec
    lights: list[LightSpec]
    objects: list[ObjectSpec]
    # Ceiling and openings: {"height_m", "skylights": [[x, y, sx, sy]], "windows": [[wall, u, width]],
    # "window_sill_m", "window_height_m"}; empty = open-topped hall (walls 8 m, no ceiling).
    shell: dict[str, Any] = field(default_factory=dict)
    # Shutter time for motion blur (0 = none); objects move by params["velocity_mps"] * exposure_s.
    exposure_s: float = 0.0
    # Rolling shutter: seconds from the top row's exposure to the bottom row's (0 = a global shutter).
    readout_s: float = 0.0
    # Floor finish (FLOORS): concrete, painted epoxy or worn; noise scale/contrast of its texture.
    floor: dict[str, Any] = field(default_factory=dict)
    # Sensor noise added to the 8-bit RGB after rendering: {"sigma": grey levels, "seed": int}; empty = none.
    sensor_noise: dict[str, Any] = field(default_factory=dict)
    # Camera auto-exposure: mean linear luminance the image is scaled to (0 = off, the render as is).
    exposure_target: float = 0.0
    # How the camera forms and compresses the image after the render (blender/camera_image.py): step -> settings.
    camera_image: dict[str, Any] = field(default_factory=dict)
    # Lamps (area, point, spot lights) seen by the camera where they are in view (render.lamps_visible);
    # False in specs saved before it existed, which re-render as they were.
    lamps_visible: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneSpec":
        """Inverse of to_dict (e.g. the `scene` saved in a frame's metadata): re-render exactly."""
        return cls(**{**d, "camera": CameraSpec(**d["camera"]),
                      "lights": [LightSpec(**x) for x in d["lights"]],
                      "objects": [ObjectSpec(**o) for o in d["objects"]]})


def kelvin_to_rgb(kelvin: float) -> tuple[float, float, float]:
    """Approximate blackbody colour (Tanner Helland's fit), normalised to max 1."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    g = 99.47 * math.log(t) - 161.1 if t <= 66 else 288.1 * (t - 60) ** -0.0755
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5 * math.log(t - 10) - 305.0)
    rgb = np.clip([r, g, b], 0, 255) / 255.0
    return _rgb(rgb / rgb.max())


def _place(rng: np.random.Generator, radius: float, placed: list[tuple[float, float, float]],
           area_m: float, tries: int = 60) -> tuple[float, float] | None:
    """Rejection-sample a floor position whose footprint disc overlaps no placed disc."""
    for _ in range(tries):
        x, y = rng.uniform(-area_m, area_m, size=2)
        if all(math.hypot(x - px, y - py) >= radius + pr for px, py, pr in placed):
            return float(x), float(y)
    return None


RACK_DEPTH_M = 1.2  # a rack bay with its pallets, front face to back face (blender/build.py _rack: posts at +-0.5 m)
RACK_DISC_M = 0.65  # rack rows are placed as chains of discs of this radius, 0.4 m apart (a rectangle to +-6 cm)


def rack_rows(rng: np.random.Generator, area_m: float) -> tuple[list[ObjectSpec], list[tuple[float, float, float]],
                                                                list[tuple[float, float, float, float]]]:
    """Rows of pallet racking with aisles between them, along x: 2-4 rows of 3-5 bays (2.0-2.8 m
    each), aisles 2.8-4.0 m between rack faces. Returns the rack objects, their footprint discs and the
    aisles as (x0, x1, y_centre, half width between the faces)."""
    n_rows, n_bays = int(rng.integers(2, 5)), int(rng.integers(3, 6))
    aisle = float(rng.uniform(2.8, 4.0))
    pitch = aisle + RACK_DEPTH_M
    bays = [distractor_params(rng, "rack") for _ in range(n_rows * n_bays)]
    length = max(sum(b["width_m"] for b in bays[r * n_bays:(r + 1) * n_bays]) for r in range(n_rows))
    x_off = float(rng.uniform(-1.0, 1.0)) * max(0.0, area_m - length / 2)
    y0 = -pitch * (n_rows - 1) / 2 + float(rng.uniform(-1.0, 1.0))
    racks, discs, aisles = [], [], []
    for r in range(n_rows):
        y = y0 + r * pitch
        row = bays[r * n_bays:(r + 1) * n_bays]
        x = x_off - sum(b["width_m"] for b in row) / 2
        x_start = x
        for k, bay in enumerate(row):
            racks.append(ObjectSpec(f"ctx_row{r}_bay{k}_rack", "rack", None, 0,
                                    (round(x + bay["width_m"] / 2, 4), round(y, 4), 0.0), 0.0, bay))
            x += bay["width_m"]
        discs += [(float(u), y, RACK_DISC_M) for u in np.arange(x_start, x + 1e-9, 0.4)]
        if r:
            aisles.append((x_start, x, y - pitch / 2, aisle / 2))
    return racks, discs, aisles


def _place_layout(rng: np.random.Generator, radius: float, placed: list[tuple[float, float, float]], area_m: float,
                  aisles: list[tuple[float, float, float, float]], aisle_share: float) -> tuple[float, float, bool] | None:
    """A floor position (and whether it is in an aisle): in an aisle wide enough for the footprint with
    probability aisle_share, else anywhere in the area (_place's rule)."""
    fits = [a for a in aisles if a[3] - radius > 0.05]
    if fits and rng.random() < aisle_share:
        for _ in range(60):
            x0, x1, yc, half = fits[int(rng.integers(len(fits)))]
            x, y = float(rng.uniform(x0, x1)), yc + float(rng.uniform(-1, 1)) * (half - radius)
            if all(math.hypot(x - px, y - py) >= radius + pr for px, py, pr in placed):
                return x, y, True
    pos = _place(rng, radius, placed, area_m)
    return None if pos is None else (*pos, False)


ASSET_SUFFIXES = (".blend", ".glb", ".gltf", ".obj")


def asset_files(folder: str) -> list[str]:
    """The model files of an asset folder, sorted (so the same seed picks the same file); hidden files
    (editor and OS leftovers such as macOS `._x.glb`) are not models, as blender.frame_key agrees."""
    if not folder:
        return []
    return sorted(str(p) for p in Path(folder).iterdir()
                  if p.suffix.lower() in ASSET_SUFFIXES and p.is_file() and not p.name.startswith("."))


def solid_spans(length: float, holes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Pieces of [-length/2, length/2] left after cutting out (centre, width) holes."""
    spans, start = [], -length / 2
    for c, w in sorted(holes):
        if c - w / 2 > start:
            spans.append((start, c - w / 2))
        start = max(start, c + w / 2)
    if start < length / 2:
        spans.append((start, length / 2))
    return spans


def sample_shell(rng: np.random.Generator, render_cfg: dict[str, Any]) -> dict[str, Any]:
    """Ceiling height, skylight rows and wall windows of the hall."""
    height = round(_u(rng, render_cfg["ceiling_height_m"]), 3)
    skylights = []
    if rng.random() < render_cfg["skylight_prob"]:
        n_rows = int(rng.integers(1, 4))
        sky_w = round(_u(rng, (1.0, 2.5)), 3)
        for y in np.linspace(-HALL_M / 4, HALL_M / 4, n_rows) if n_rows > 1 else [0.0]:
            y += float(rng.uniform(-1.5, 1.5))
            for x in np.arange(-HALL_M / 2 + 3.0, HALL_M / 2 - 2.0, float(rng.uniform(3.5, 6.0))):
                skylights.append([round(float(x), 3), round(float(y), 3), sky_w * 1.5, sky_w])
    windows = []
    lo, hi = render_cfg["windows_per_wall"]
    for wall in ("N", "S", "E", "W"):
        n = int(rng.integers(lo, hi + 1))
        if n:
            width = round(_u(rng, (1.5, 3.5)), 3)
            for u in np.linspace(-HALL_M / 2 + 3, HALL_M / 2 - 3, n + 2)[1:-1]:
                windows.append([wall, round(float(u), 3), width])
    sill = round(_u(rng, (1.0, 2.5)), 3)
    shell = {"height_m": height, "skylights": skylights, "windows": windows,
             "window_sill_m": sill, "window_height_m": round(min(_u(rng, (1.2, 2.5)), height - sill - 0.5), 3)}
    if render_cfg["doors_prob"] > 0 and rng.random() < render_cfg["doors_prob"]:  # drawn only when set
        from blender.site_spec import sample_doors

        shell["doors"] = sample_doors(rng, windows, height)
    return shell


def _add_companions(rng: np.random.Generator, render_cfg: dict[str, Any], objects: list[ObjectSpec],
                    placed: list[tuple[float, float, float]], left: int) -> int:
    """With render.group_prob, one or two people walking beside the person just placed (if walking):
    0.65-0.9 m to the side, up to 0.3 m ahead or behind, the same heading (+-0.1 rad), walking, moving
    with the leader under motion blur. Placed only where their footprint is free of everything but the
    group's own discs (footprints touch on purpose: side by side). `left`: people still to place;
    returns how many were added."""
    leader = objects[-1]
    if leader.params.get("pose") != "walking" or left < 1 or rng.random() >= render_cfg["group_prob"]:
        return 0
    group = [len(placed) - 1]
    added = 0
    for side in [1.0, -1.0][: 1 + int(rng.random() < 0.35)]:
        if added >= left:
            break
        side *= 1.0 if rng.random() < 0.5 else -1.0
        lateral, ahead = float(rng.uniform(0.65, 0.9)) * side, float(rng.uniform(-0.3, 0.3))
        c, s = math.cos(leader.yaw_rad), math.sin(leader.yaw_rad)  # local +x (side), +y (facing) turned by yaw
        x = leader.location[0] + lateral * c - ahead * s
        y = leader.location[1] + lateral * s + ahead * c
        params = pedestrian_params(rng, render_cfg)
        params.update(pose="walking", swing_deg=round(_u(rng, (15, 30)), 2), arms="sides", walks_with=leader.name)
        params.pop("carried_box", None)
        params.pop("grip_m", None)
        r = FOOTPRINT_M[PEDESTRIAN]
        if not all(math.hypot(x - px, y - py) >= r + pr for k, (px, py, pr) in enumerate(placed) if k not in group):
            continue
        placed.append((x, y, r))
        group.append(len(placed) - 1)
        added += 1
        objects.append(ObjectSpec(f"inst_{len(objects) + 1:03d}", PEDESTRIAN, PEDESTRIAN, len(objects) + 1,
                                  (round(x, 4), round(y, 4), 0.0),
                                  round(leader.yaw_rad + float(rng.uniform(-0.1, 0.1)), 4), params))
    return added


def sample_rig_camera(rng: np.random.Generator, render_cfg: dict[str, Any], objects: list[ObjectSpec],
                      placed: list[tuple[float, float, float]], frame: str, width: int, height: int) -> CameraSpec:
    """A camera of one of render.camera_rigs (drawn by weight): placed by place_rig, then its horizontal
    field of view and lens distortion drawn from the rig's ranges."""
    rigs = render_cfg["camera_rigs"]
    names = sorted(n for n in rigs if rigs[n]["weight"] > 0)
    weights = np.array([rigs[n]["weight"] for n in names], float)
    name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    rig = rigs[name]
    location, look_at = place_rig(rng, rig, name, objects, placed, frame)
    lens = lens_model(_u(rng, rig["hfov_deg"]), _u(rng, rig["distortion"]), width, height)
    return CameraSpec(location=location, look_at=look_at, focal_mm=lens["focal_mm"],
                      sensor_width_mm=lens["sensor_width_mm"], rig=name, lens=lens)


def place_rig(rng: np.random.Generator, rig: dict[str, Any], name: str, objects: list[ObjectSpec],
              placed: list[tuple[float, float, float]], frame: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(location, look_at) of a camera of `rig`: its height and pitch below the horizon (or distance)
    drawn from the rig's ranges, aimed at a labelled object (aim: objects; jittered by 1.5 m, at 0.3-1.3 m
    above the floor) or near the hall centre, placed inside the hall and clear of every object; no roll,
    as a mounted camera. mount: wall puts it on the wall behind the aim point (0.5 m off it), looking
    across the hall: its pitch follows from the height and that distance, and pitch_deg, if given, bounds it."""
    labelled = [o for o in objects if o.instance_id > 0 and not o.params.get("crowd")]
    for _ in range(200):
        if rig["aim"] == "objects" and labelled:
            tx, ty = labelled[int(rng.integers(len(labelled)))].location[:2]
            tx, ty = tx + float(rng.uniform(-1.5, 1.5)), ty + float(rng.uniform(-1.5, 1.5))
        else:
            tx, ty = (float(v) for v in rng.uniform(-1, 1, size=2))
        tz = float(rng.uniform(0.3, 1.3))
        cam_h = _u(rng, rig["height_m"])
        if rig["pitch_deg"]:
            pitch = math.radians(_u(rng, rig["pitch_deg"]))
            dist = (cam_h - tz) / math.tan(pitch) if cam_h > tz else -1.0
        else:
            dist = _u(rng, rig["distance_m"])
        azimuth = float(rng.uniform(-math.pi, math.pi))
        if rig["mount"] == "wall":  # on the wall behind the aim point, looking across the hall
            ux, uy = -math.cos(azimuth), -math.sin(azimuth)
            lim = HALL_M / 2 - 0.5
            dist = min((lim - (tx if ux > 0 else -tx)) / abs(ux) if abs(ux) > 1e-9 else math.inf,
                       (lim - (ty if uy > 0 else -ty)) / abs(uy) if abs(uy) > 1e-9 else math.inf)
            pitch = math.degrees(math.atan2(cam_h - tz, dist))
            if rig["pitch_deg"] and not rig["pitch_deg"][0] <= pitch <= rig["pitch_deg"][1]:
                continue
        cx, cy = tx - dist * math.cos(azimuth), ty - dist * math.sin(azimuth)
        if (dist > 0.3 and max(abs(cx), abs(cy)) <= HALL_M / 2 - 0.5 + 1e-9
                and all(math.hypot(cx - px, cy - py) >= pr + CAMERA_CLEARANCE_M for px, py, pr in placed)):
            break
    else:
        advice = ("on a wall, the pitch follows from height and distance: widen pitch_deg (or set it to []) or "
                  "raise height_m" if rig["mount"] == "wall" else "lower height_m or raise pitch_deg (the camera "
                  "lands outside the hall)" if rig["pitch_deg"] else "shorten distance_m")
        raise ValueError(f"{frame}: no position for a camera of render.camera_rigs.{name} inside the hall and clear "
                         f"of the objects (height {rig['height_m']}, pitch {rig['pitch_deg']}, distance "
                         f"{rig['distance_m']}, mount {rig['mount']}): {advice}")
    return (round(cx, 4), round(cy, 4), round(cam_h, 4)), (round(tx, 4), round(ty, 4), round(tz, 4))


def sample_scene(rng: np.random.Generator, render_cfg: dict[str, Any], frame: str) -> SceneSpec:
    """Draw one warehouse scene from `rng` following the `render` config section."""
    from blender.site_spec import add_picker, driver  # a working site's people (imports this module)

    width, height = render_cfg["resolution_px"]
    area = render_cfg["object_area_m"]
    placed: list[tuple[float, float, float]] = []
    objects: list[ObjectSpec] = []
    # Pedestrians first at the jacks' tillers (operators, jack_operator_prob), the rest free-standing:
    # pedestrians_per_image counts both.
    budget = {PEDESTRIAN: int(rng.integers(render_cfg["pedestrians_per_image"][0],
                                           render_cfg["pedestrians_per_image"][1] + 1)),
              PALLET_JACK: int(rng.integers(render_cfg["pallet_jacks_per_image"][0],
                                            render_cfg["pallet_jacks_per_image"][1] + 1))}
    n_distract = int(rng.integers(render_cfg["distractors_per_image"][0],
                                  render_cfg["distractors_per_image"][1] + 1))
    # A working warehouse's layout (render.aisles_prob): rack rows first, people and jacks mostly in the
    # aisles between them, facing along them. Drawn only when the share is set: other configs' scenes stay.
    racks: list[ObjectSpec] = []
    aisles: list[tuple[float, float, float, float]] = []
    if render_cfg["aisles_prob"] > 0 and rng.random() < render_cfg["aisles_prob"]:
        racks, discs, aisles = rack_rows(rng, area)
        placed += discs
    n_rack_discs = len(placed)
    for category in (PALLET_JACK, PEDESTRIAN):
        files = asset_files(render_cfg.get("assets", {}).get(category, ""))
        left = budget[category]
        while left > 0:
            left -= 1
            if aisles:
                got = _place_layout(rng, FOOTPRINT_M[category], placed, area, aisles, 0.75)
                pos, in_aisle = (None, False) if got is None else (got[:2], got[2])
            else:
                pos, in_aisle = _place(rng, FOOTPRINT_M[category], placed, area), False
            if pos is None:
                continue
            params = (pedestrian_params(rng, render_cfg) if category == PEDESTRIAN else pallet_jack_params(rng, render_cfg))
            picker = None  # drawn only when set: other configs' scenes stay
            if (category == PEDESTRIAN and racks and render_cfg["picking_prob"] > 0
                    and (rng.random() < render_cfg["picking_prob"] or params["pose"] == "reaching")):
                picker = add_picker(rng, params, racks, aisles, placed, n_rack_discs)
                if picker is not None:
                    pos, in_aisle = picker[0], False
            if category == PEDESTRIAN and picker is None and params["pose"] == "reaching" and render_cfg["picking_prob"] > 0:
                params.update(pose="standing", arms="sides")  # with picking on, a raised arm always reaches a slot
            placed.append((*pos, FOOTPRINT_M[category]))
            # Drawn only when a folder is configured: procedural-only datasets stay as they were.
            if files and picker is None and rng.uniform() < render_cfg["asset_fraction"]:  # an asset cannot pick
                params["asset"] = files[int(rng.integers(len(files)))]
                params["asset_size_m"] = params["height_m"] if category == PEDESTRIAN else params["fork_length_m"] + 0.35
                # Colour variation of the asset's own materials: hue shift, saturation and value factors.
                params["asset_hsv"] = [round(_u(rng, (-0.06, 0.06)), 3), round(_u(rng, (0.75, 1.25)), 3),
                                       round(_u(rng, (0.7, 1.3)), 3)]
            yaw = round(float(rng.uniform(-math.pi, math.pi)), 4) if picker is None else picker[1]
            if picker is not None:
                params["in_aisle"] = True
            elif in_aisle:  # along the aisle, one way or the other
                yaw = round(math.copysign(math.pi / 2, yaw) + float(rng.uniform(-0.25, 0.25)), 4)
                params["in_aisle"] = True
            objects.append(ObjectSpec(f"inst_{len(objects) + 1:03d}", category, category, len(objects) + 1,
                                      (round(pos[0], 4), round(pos[1], 4), 0.0), yaw, params))
            if category == PEDESTRIAN and render_cfg["group_prob"] > 0:
                left -= _add_companions(rng, render_cfg, objects, placed, left)
            if (category == PALLET_JACK and budget[PEDESTRIAN] and "asset" not in params
                    and rng.random() < render_cfg["jack_operator_prob"]):
                person, ahead = operator_params(rng, render_cfg, params, objects[-1].name)
                ox, oy = pos[0] - ahead * math.sin(yaw), pos[1] + ahead * math.cos(yaw)  # the jack's +y, turned by yaw
                r = FOOTPRINT_M[PEDESTRIAN]
                if all(math.hypot(ox - px, oy - py) >= r + pr for px, py, pr in placed[:-1]):
                    placed.append((ox, oy, r))  # touches its jack's disc on purpose: hands on the grip
                    budget[PEDESTRIAN] -= 1
                    objects.append(ObjectSpec(f"inst_{len(objects) + 1:03d}", PEDESTRIAN, PEDESTRIAN, len(objects) + 1,
                                              (round(ox, 4), round(oy, 4), 0.0),
                                              round(math.remainder(yaw + math.pi, 2 * math.pi), 4), person))
    for k in range(n_distract):
        kind = _pick(rng, DISTRACTOR_KINDS)
        if render_cfg["lookalike_prob"] > 0 and rng.random() < render_cfg["lookalike_prob"]:
            kind = _pick(rng, LOOKALIKE_KINDS)  # drawn only when set: other configs' scenes stay
        pos = _place(rng, FOOTPRINT_M[kind], placed, area + 1.5)
        if pos is None:
            continue
        placed.append((*pos, FOOTPRINT_M[kind]))
        objects.append(ObjectSpec(f"ctx_{k:03d}_{kind}", kind, None, 0,
                                  (round(pos[0], 4), round(pos[1], 4), 0.0),
                                  round(float(rng.uniform(-math.pi, math.pi)), 4),
                                  distractor_params(rng, kind)))
        if kind == "forklift" and render_cfg["forklift_driver_prob"] > 0 and rng.random() < render_cfg["forklift_driver_prob"]:
            objects.append(driver(rng, render_cfg, objects[-1], max(o.instance_id for o in objects) + 1))

    objects += racks
    if render_cfg["camera_rigs"]:
        camera = sample_rig_camera(rng, render_cfg, objects, placed, frame, width, height)
    else:
        for _ in range(100):  # never inside or against an object (a camera inside a rack renders black)
            azimuth = float(rng.uniform(-math.pi, math.pi))
            dist = _u(rng, render_cfg["camera_distance_m"])
            cx, cy = dist * math.cos(azimuth), dist * math.sin(azimuth)
            if all(math.hypot(cx - px, cy - py) >= pr + CAMERA_CLEARANCE_M for px, py, pr in placed):
                break
        else:
            raise ValueError(f"{frame}: no camera position clear of the objects within render.camera_distance_m "
                             f"{render_cfg['camera_distance_m']}; widen it or lower the object counts")
        cam_h = _u(rng, render_cfg["camera_height_m"])
        camera = CameraSpec(
            location=(round(cx, 4), round(cy, 4), round(cam_h, 4)),
            look_at=(round(float(rng.uniform(-1, 1)), 4), round(float(rng.uniform(-1, 1)), 4),
                     round(float(rng.uniform(0.3, 1.0)), 4)),
            focal_mm=round(_u(rng, render_cfg["focal_mm"]), 3))

    shell = sample_shell(rng, render_cfg)
    lamp_z = round(shell["height_m"] - 0.3, 3)
    sun_k = float(rng.uniform(4500, 7000))
    lights = [LightSpec("SUN", (0.0, 0.0, 10.0),
                        (round(float(rng.uniform(0.1, 0.8)), 4), 0.0, round(float(rng.uniform(0, 2 * math.pi)), 4)),
                        round(_u(rng, render_cfg["sun_strength"]), 3), kelvin_to_rgb(sun_k))]
    for _ in range(int(rng.integers(1, 4))):
        kind = _pick(rng, ["AREA", "AREA", "POINT", "SPOT"])  # panels, bare bulbs, high-bay spots
        watts = _u(rng, render_cfg["area_light_w"]) * (0.6 if kind == "POINT" else 1.0)
        lights.append(LightSpec(kind, (round(float(rng.uniform(-6, 6)), 3), round(float(rng.uniform(-6, 6)), 3),
                                       min(lamp_z, round(float(rng.uniform(5, 8)), 3))), (0.0, 0.0, 0.0),
                                round(watts, 1), kelvin_to_rgb(_u(rng, render_cfg["light_kelvin"])),
                                size_m=2.0 if kind == "AREA" else 0.3))
    floor_kind = _pick(rng, sorted(render_cfg["floor_kinds"]))
    colors, rough, noise_scale, contrast = FLOORS[floor_kind]
    tint = rng.uniform(-0.05, 0.05, size=3)
    floor_color = _rgb(np.clip(np.array(_pick(rng, colors)) * rng.uniform(0.7, 1.2) + tint, 0, 1))
    exposure_s = readout_s = 0.0
    if rng.random() < render_cfg["motion_blur_prob"]:
        exposure_s = round(_u(rng, render_cfg["exposure_s"]), 4)
        if render_cfg["rolling_shutter_prob"] > 0 and rng.random() < render_cfg["rolling_shutter_prob"]:  # only when set
            readout_s = round(_u(rng, render_cfg["readout_ms"]) / 1000, 4)
        for o in objects:  # people walk, jacks are pushed; both along their facing (+y before yaw)
            speed_range = {"pedestrian": render_cfg["pedestrian_speed_mps"],
                           "pallet_jack": render_cfg["pallet_jack_speed_mps"]}.get(o.kind)
            if speed_range and (o.kind != "pedestrian" or o.params.get("pose") in ("walking", "carrying")):
                speed = _u(rng, speed_range)
                o.params["velocity_mps"] = [round(-speed * math.sin(o.yaw_rad), 4),
                                            round(speed * math.cos(o.yaw_rad), 4)]
        by_name = {o.name: o for o in objects}
        for o in objects:  # an operator moves with the jack it pushes or pulls, a companion with its leader
            lead = by_name.get(o.params.get("operates", "")) or by_name.get(o.params.get("walks_with", ""))
            if lead is not None and lead.params.get("velocity_mps"):
                o.params["velocity_mps"] = list(lead.params["velocity_mps"])
    noise: dict[str, Any] = {}
    if rng.random() < render_cfg["sensor_noise_prob"]:
        noise = {"sigma": round(_u(rng, render_cfg["sensor_noise_sigma"]), 3),
                 "seed": int(rng.integers(2**31 - 1))}
    exposure_target = 0.0
    if render_cfg["auto_exposure"]:  # a camera's metering target, off by an exposure bias like a real AE's
        exposure_target = round(AE_TARGET * 2 ** _u(rng, render_cfg["exposure_bias_ev"]), 4)
    # drawn last, from a generator of its own: changing a share of camera_image changes nothing else of the scene
    camera_image = draw_camera_image(np.random.default_rng(int(rng.integers(2**31 - 1))), render_cfg["camera_image"])
    return SceneSpec(
        frame=frame,
        resolution_px=(int(width), int(height)),
        floor_color=floor_color,
        floor_roughness=round(_u(rng, rough), 3),
        wall_color=_rgb(_pick(rng, render_cfg["wall_colors"])),
        camera=camera, lights=lights, objects=objects, shell=shell, exposure_s=exposure_s, readout_s=readout_s,
        sensor_noise=noise,
        exposure_target=exposure_target, camera_image=camera_image, lamps_visible=bool(render_cfg["lamps_visible"]),
        floor={"kind": floor_kind, "noise_scale": noise_scale, "noise_contrast": contrast})
