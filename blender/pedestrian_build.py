"""Build a pedestrian (bpy): the anny body of its params (blender.pedestrian_body), clothed region
by region (shirt or hi-vis vest with reflective stripes, sleeves, trousers or shorts, shoes,
gloves), with hair or a helmet. Everything worn is part of the one labelled object; a carried
carton is a separate, unlabelled object held between the palms (parented, so it moves with them)."""
from __future__ import annotations

import math

import bpy
import numpy as np

from blender.materials import banded_fabric, fabric, material, skin
from blender.mesh import MeshBuilder, place_object
from blender.pedestrian_body import REGIONS, body_mesh
from blender.spec import ObjectSpec


HAIR_SLOT = 4  # material slot of hair (see _clothing)


def _cap(center: np.ndarray, radii, closed: bool, segments: int, rings: int):
    """Vertices and triangles of a UV-sphere surface from its top pole down: a hemisphere open at the
    bottom (a helmet shell) or, `closed`, a whole ellipsoid (tied or long hair)."""
    radii = np.asarray(radii, float)
    lowest = math.pi if closed else math.pi / 2
    count = rings - 1 if closed else rings  # rings of vertices between the poles
    verts = [center + radii * (0.0, 0.0, 1.0)]
    for k in range(1, count + 1):
        polar = lowest * k / rings
        for j in range(segments):
            az = 2 * math.pi * j / segments
            verts.append(center + radii * np.array([math.sin(polar) * math.cos(az), math.sin(polar) * math.sin(az),
                                                    math.cos(polar)]))
    faces = [(0, 1 + j, 1 + (j + 1) % segments) for j in range(segments)]
    for k in range(count - 1):
        a, b = 1 + k * segments, 1 + (k + 1) * segments
        for j in range(segments):
            j2 = (j + 1) % segments
            faces += [(a + j, b + j, b + j2), (a + j, b + j2, a + j2)]
    if closed:
        verts.append(center - radii * (0.0, 0.0, 1.0))
        a = 1 + (count - 1) * segments
        faces += [(a + j, len(verts) - 1, a + (j + 1) % segments) for j in range(segments)]
    return np.array(verts, np.float32), np.array(faces, np.int32)


def _rigid_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation that best map points `src` onto `dst` (Kabsch)."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rot, cd - rot @ cs


def _face_regions(region: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Majority region of each triangle's corners (the first corner's on a three-way tie)."""
    r = region[faces]
    return np.where(r[:, 1] == r[:, 2], r[:, 1], r[:, 0])


REST_T = "rest_t"  # per-vertex height on the unposed body / height_m: garment lines are level sets of it


def _trunk_bands(p: dict, z: np.ndarray, regions: np.ndarray) -> list[tuple[float, tuple, float, float]]:
    """Bands of the trunk (torso and hips) in rest height / height_m: trousers up to the waistband,
    then the shirt, or a hi-vis vest from the waist to below the shoulders with two reflective stripes."""
    h = p["height_m"]
    hips, torso = z[regions == REGIONS.index("hips")], z[regions == REGIONS.index("torso")]
    hem = np.percentile(hips, 97)
    shirt, trousers = (tuple(p["shirt"]), 0.85, 0.0), (tuple(p["trousers"]), 0.85, 0.0)
    bands = [(0.0, *trousers), (hem / h, *shirt)]
    if p["hivis"]:
        waist, shoulders = hem + 0.03 * h, torso.max() - 0.035 * h
        vest, stripe = (tuple(p["hivis"]), 0.6, 0.0), ((0.8, 0.8, 0.82), 0.25, 0.6)
        at = lambda rel: (waist + rel * (shoulders - waist)) / h  # noqa: E731
        bands += [(waist / h, *vest), (at(0.14), *stripe), (at(0.26), *vest), (at(0.49), *stripe),
                  (at(0.61), *vest), (shoulders / h, *shirt)]
    return bands + [(_collar(z, regions) / h, tuple(p["skin"]), 0.5, 0.0)]


def _collar(z: np.ndarray, regions: np.ndarray) -> float:
    """Rest height of the neckline: a little below where the torso region meets the neck."""
    return float(np.percentile(z[regions == REGIONS.index("torso")], 99.0))


def _clothing(p: dict, name: str, centroids: np.ndarray, regions: np.ndarray, rest_z: np.ndarray,
              vertex_regions: np.ndarray):
    """Materials and each face's material slot: clothes by body region, laid out on the unposed body;
    the trunk in one banded material (crisp hem, vest and stripe lines across triangles)."""
    mats = [skin(f"{name}_skin", p["skin"]), fabric(f"{name}_shirt", p["shirt"]),
            fabric(f"{name}_trousers", p["trousers"]), material(f"{name}_shoes", p["shoes"], 0.55),
            fabric(f"{name}_hair", p["hair"], 0.5),
            banded_fabric(f"{name}_trunk", REST_T, _trunk_bands(p, rest_z, vertex_regions))]
    slot = {"skin": 0, "shirt": 1, "trousers": 2, "shoes": 3, "hair": HAIR_SLOT, "trunk": 5}
    by_region = {"head": "skin", "torso": "trunk", "hips": "trunk", "upper_arm": "shirt",
                 "forearm": "shirt" if p["long_sleeves"] else "skin", "hand": "skin", "thigh": "trousers",
                 "shin": "skin" if p["shorts"] else "trousers", "foot": "shoes"}
    if p["gloves"]:
        mats.append(fabric(f"{name}_gloves", p["gloves"], 0.7))
        slot["gloves"], by_region["hand"] = len(mats) - 1, "gloves"
    index = np.array([slot[by_region[r]] for r in REGIONS])[regions]
    z = centroids[:, 2]
    head = regions == REGIONS.index("head")
    index[head & (z < _collar(rest_z, vertex_regions) + 0.03)] = slot["trunk"]  # the neckline: a band line too
    lo, hi = z[head].min(), z[head].max()
    front_y = np.percentile(centroids[head, 1], 85)  # the face looks along +y
    rel = (z - lo) / (hi - lo)
    index[head & ((rel > 0.8) | ((rel > 0.42) & (centroids[:, 1] < front_y - 0.06)))] = slot["hair"]
    return mats, index


def _head_parts(p: dict, body: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Helmet shell and tied or long hair, fitted to the unposed head, then moved with the head
    (rigid fit of its vertices): (vertices, triangles, material) each."""
    on_head = body["region"] == REGIONS.index("head")
    cap = body["rest"][on_head]
    top, height = cap[:, 2].max(), np.ptp(cap[:, 2])
    skull = cap[cap[:, 2] > top - 0.4 * height]
    center = np.array([skull[:, 0].mean(), skull[:, 1].mean(), top - 0.3 * height], np.float32)
    radius = 0.56 * max(np.ptp(skull[:, 0]), np.ptp(skull[:, 1]))
    back = skull[:, 1].min()
    parts = []
    if p["helmet"]:
        depth = (top - center[2]) / radius + 0.12
        parts.append((*_cap(center, (radius, radius, radius * depth), False, 20, 6), "helmet"))
    hair = {"bun": ((0.0, -0.03, top - 0.07 - center[2]), (0.05, 0.045, 0.045)),
            "ponytail": ((0.0, -0.03, -0.1), (0.035, 0.035, 0.12)),
            "long": ((0.0, 0.01, -0.1), (0.09, 0.045, 0.16))}  # long: falls over the nape to the shoulders
    style = p.get("hair_style", "short")
    if style in hair:  # offsets from the skull's centre and back (the face looks along +y)
        (dx, dy, dz), radii = hair[style]
        parts.append((*_cap(np.array([center[0] + dx, back + dy, center[2] + dz]), radii, True, 14, 8), "hair"))
    if not parts:
        return []
    rot, shift = _rigid_fit(cap, body["vertices"][on_head])
    return [((v @ rot.T + shift).astype(np.float32), f, m) for v, f, m in parts]


def carton_box(body: dict[str, np.ndarray], depth: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size of a carton held between the palms (body frame), kept clear of the torso."""
    palms = body["palms"]
    width = abs(palms[0, 0] - palms[1, 0]) - 0.03  # the palm centre sits ~1.5 cm inside the hand
    centre = palms.mean(axis=0) + (0.0, 0.02, 0.02)
    v, region = body["vertices"], body["region"]
    trunk = np.isin(region, [REGIONS.index("torso"), REGIONS.index("hips")])
    band = trunk & (np.abs(v[:, 2] - centre[2]) < height / 2) & (np.abs(v[:, 0] - centre[0]) < width / 2)
    front = v[band, 1].max() if band.any() else centre[1] - depth
    depth = max(0.08, min(depth, 2 * (centre[1] - front - 0.01)))
    return centre, np.array([width, depth, height])


def _carton(spec: ObjectSpec, person: bpy.types.Object, body: dict[str, np.ndarray]) -> bpy.types.Object:
    box = spec.params["carried_box"]
    centre, size = carton_box(body, box["depth_m"], box["height_m"])
    mb = MeshBuilder()
    mb.box(tuple(centre), tuple(size), material(f"{spec.name}_carton", box["color"], 0.85, noise_scale=30.0,
                                                contrast=0.1))
    mb.box((centre[0], centre[1], centre[2] + size[2] / 2), (0.06, size[1] + 0.004, 0.004),
           material(f"{spec.name}_tape", (0.6, 0.45, 0.25), 0.3))
    obj = mb.to_object(ObjectSpec(f"{spec.name}_carton", "carton", None, 0, (0.0, 0.0, 0.0), 0.0))
    obj.parent = person  # moves (and blurs) with the person; its own name keeps it out of the labels
    return obj


GAIT_CYCLE_M = 1.4  # distance of one gait cycle (two steps) of a 1.75 m adult; scales with height


def _vertices(p: dict, body: dict[str, np.ndarray]) -> np.ndarray:
    """Every vertex of the built mesh: the body, then the helmet and hair fitted to its head."""
    return np.concatenate([body["vertices"], *(v for v, _, _ in _head_parts(p, body))])


def animate_gait(obj: bpy.types.Object, p: dict, speed_mps: float, dt_s: float) -> None:
    """Limb motion blur of a walking (or carrying) person: shape keys of the body `dt_s` earlier and
    later in its gait cycle (phase advancing with speed / cycle length), keyed at frames 0 and 2 around
    the spec's pose at frame 1, so Cycles blurs the swinging arms and legs, not only the translation."""
    d_phase = 2 * math.pi * speed_mps / (GAIT_CYCLE_M * p["height_m"] / 1.75) * dt_s
    solved = obj.get("reach_deg")  # keep the carried carton's grip: the arms do not re-solve
    obj.shape_key_add(name="Basis", from_mix=False)
    for name, sign in (("before", -1.0), ("after", 1.0)):
        q = dict(p, phase_rad=p["phase_rad"] + sign * d_phase)
        if solved:
            q["reach_deg"] = list(solved)
        key = obj.shape_key_add(name=name, from_mix=False)
        key.data.foreach_set("co", _vertices(q, body_mesh(q)).ravel())
        for frame, value in ((0, float(sign < 0)), (1, 0.0), (2, float(sign > 0))):
            key.value = value
            key.keyframe_insert("value", frame=frame)


def build_pedestrian(spec: ObjectSpec) -> bpy.types.Object:
    """The posed, clothed body as one mesh object facing +y (before yaw), feet on the floor."""
    p = spec.params
    body = body_mesh(p)
    parts = _head_parts(p, body)
    verts, faces, uv = np.concatenate([body["vertices"], *(v for v, _, _ in parts)]), body["faces"], body["uv"]
    mats, index = _clothing(p, spec.name, body["rest"][faces].mean(axis=1), _face_regions(body["region"], faces),
                            body["rest"][:, 2], body["region"])
    if p["helmet"]:
        mats.append(material(f"{spec.name}_helmet", p["helmet"], 0.35))
    offset = len(body["vertices"])
    for v, f, kind in parts:
        faces = np.concatenate([faces, f + offset])
        offset += len(v)
        uv = np.concatenate([uv, np.zeros((len(f), 3, 2), np.float32)])
        index = np.concatenate([index, np.full(len(f), len(mats) - 1 if kind == "helmet" else HAIR_SLOT)])
    mesh = bpy.data.meshes.new(spec.name)
    mesh.vertices.add(len(verts))  # from arrays: from_pydata's lists cost ~0.2 s per body
    mesh.vertices.foreach_set("co", verts.astype(np.float32).ravel())
    mesh.loops.add(3 * len(faces))
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * len(faces), 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    layer = mesh.uv_layers.new(name="UVMap")
    layer.data.foreach_set("uv", uv.reshape(-1))
    for mat in mats:
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", index.astype(np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), bool))
    rest_t = np.zeros(len(verts), np.float32)
    rest_t[:len(body["rest"])] = body["rest"][:, 2] / p["height_m"]
    mesh.attributes.new(REST_T, "FLOAT", "POINT").data.foreach_set("value", rest_t)
    mesh.update()
    obj = place_object(spec, mesh)
    obj["keypoints"] = body["keypoints"].ravel().tolist()  # COCO order, object frame (render projects them)
    if len(body["reach_deg"]):
        obj["reach_deg"] = body["reach_deg"].tolist()
    if p.get("carried_box"):
        _carton(spec, obj, body)
    return obj
