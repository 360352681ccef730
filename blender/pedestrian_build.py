"""Build a pedestrian (bpy): the anny body of its params (blender.pedestrian_body), clothed region
by region (shirt, sleeves, trousers or shorts, shoes, gloves), a hi-vis vest as a shell over the
shirt (reflective stripes, V neck, open armholes), hair, a helmet, cap or beanie, shoes or boots.
Everything worn is part of the one labelled object; a carried carton is a separate, unlabelled
object held between the palms (parented, so it moves with them)."""
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


def _brim(rim: np.ndarray, radii: tuple[float, float], length: float, segments: int = 12):
    """A cap's peak: a strip from the front half of the crown's elliptic rim (the face looks along +y),
    reaching `length` forward at its middle and tilted a little down."""
    az = np.linspace(math.radians(15), math.radians(165), segments)
    inner = rim + np.stack([radii[0] * np.cos(az), radii[1] * np.sin(az), np.zeros_like(az)], axis=1)
    reach = length * np.sin(az)
    outer = inner + np.stack([0.15 * reach * np.cos(az), reach, -0.2 * reach], axis=1)
    verts = np.concatenate([inner, outer]).astype(np.float32)
    faces = [f for j in range(segments - 1) for f in ((j, segments + j, segments + j + 1), (j, segments + j + 1, j + 1))]
    return verts, np.array(faces, np.int32)


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
    then the shirt up to the neckline (a hi-vis vest is a shell over it: _vest)."""
    hips = z[regions == REGIONS.index("hips")]
    hem = np.percentile(hips, 97)
    return [(0.0, tuple(p["trousers"]), 0.85, 0.0), (hem / p["height_m"], tuple(p["shirt"]), 0.85, 0.0),
            (_collar(z, regions) / p["height_m"], tuple(p["skin"]), 0.5, 0.0)]


BOOT_TOP = 0.1  # a boot's top above the sole, as a share of the body's height (17.5 cm at 1.75 m)
VEST_OFFSET_M = 0.012  # how far the vest stands off the shirt


def _vest_cut(p: dict, rest: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Where a hi-vis vest lies, decided on the unposed body (so it stays a vest however the person
    bends): the trunk from just above the waistband up over the shoulders, open where the arms begin
    (the armholes), with a V at the front of the neck and a round neckline at the back. Returns the
    trunk vertices, a field over the vertices that is >= 0 on the vest (its zero line is the vest's
    edge: hem, V and neckline, cut across triangles by _clip), and the rest heights of the hem and
    of the shoulders (which place the stripes)."""
    z, x = rest[:, 2].astype(np.float64), np.abs(rest[:, 0]).astype(np.float64)
    trunk = np.isin(regions, [REGIONS.index("torso"), REGIONS.index("hips")])
    hem = float(np.percentile(z[regions == REGIONS.index("hips")], 97)) + 0.01 * p["height_m"]
    collar = _collar(z, regions)
    neck = 0.36 * x[trunk].max()  # half-width of the neck opening
    v_bottom = hem + 0.55 * (collar - hem)
    lo, hi = rest[trunk, 1].min(), rest[trunk, 1].max()
    front = np.clip((rest[:, 1] - (lo + hi) / 2) / (0.25 * (hi - lo)), 0.0, 1.0)  # 0 behind, 1 in front
    v_neck = x - front * neck * np.clip((z - v_bottom) / (collar - v_bottom), 0.0, 1.0)
    back_neck = np.maximum(x - neck, collar - 0.03 * p["height_m"] - z)
    top = collar - 0.01 * p["height_m"] - z  # over the shoulders, below where the neck begins
    shoulders = float(z[regions == REGIONS.index("torso")].max()) - 0.035 * p["height_m"]
    # armholes: an ellipse (front view) around each shoulder joint, wider than where the arms begin
    ax, az = 0.42 * x[trunk].max(), 0.36 * (shoulders - hem)
    armhole = ax * (np.hypot((x - x[trunk].max()) / ax, (z - hem - 0.72 * (shoulders - hem)) / az) - 1.0)
    return trunk, np.minimum.reduce([z - hem, v_neck, back_neck, top, armhole]), hem, shoulders


def _clip(faces: np.ndarray, field: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The part of a triangle mesh where `field` (per vertex, linear across each triangle) is >= 0,
    its edge cut straight across the triangles. Returns triangles indexing [the mesh's vertices, then
    one new vertex per cut edge], and the new vertices as (a, b, t): at a + t (b - a), shared by the
    two triangles of an edge so the surface stays closed."""
    inside = field[faces] >= 0
    kept = [faces[inside.all(axis=1)]]
    cuts: dict[tuple[int, int], int] = {}
    n = int(field.shape[0])

    def cut(a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in cuts:
            cuts[key] = n + len(cuts)
        return cuts[key]

    mixed = inside.any(axis=1) & ~inside.all(axis=1)
    for tri, ins in zip(faces[mixed], inside[mixed]):
        odd = int(np.flatnonzero(ins != (ins.sum() == 2))[0])  # the one vertex on its own side
        i, j, k = (int(tri[(odd + m) % 3]) for m in range(3))  # same winding, odd vertex first
        if ins[odd]:  # one corner inside: a smaller triangle
            kept.append(np.array([[i, cut(i, j), cut(i, k)]]))
        else:  # two inside: the quad j, k, cut(k, i), cut(i, j)
            kept.append(np.array([[j, k, cut(k, i)], [j, cut(k, i), cut(i, j)]]))
    pairs = np.array(list(cuts), np.int64).reshape(-1, 2)
    fa, fb = field[pairs[:, 0]], field[pairs[:, 1]]
    return np.concatenate(kept).astype(np.int64), pairs[:, 0], pairs[:, 1], fa / (fa - fb)


def _vertex_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals, area-weighted over the adjacent triangles."""
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    n = np.zeros_like(v, dtype=np.float64)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _vest(p: dict, body: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hi-vis vest: the trunk's triangles clipped to the vest's outline, pushed VEST_OFFSET_M out
    along the posed body's normals (so it moves with the person, limb blur included); vertices,
    triangles, and each vertex's rest height / height_m (the stripes are level lines of it)."""
    trunk, field, _, _ = _vest_cut(p, body["rest"], body["region"])
    faces, a, b, t = _clip(body["faces"][trunk[body["faces"]].all(axis=1)], field)
    normals = _vertex_normals(body["vertices"].astype(np.float64), body["faces"])
    lerp = lambda values: np.concatenate([values, values[a] + t[:, None] * (values[b] - values[a])])  # noqa: E731
    n = lerp(normals)
    verts = lerp(body["vertices"].astype(np.float64)) + VEST_OFFSET_M * n / np.linalg.norm(n, axis=1, keepdims=True)
    used = np.unique(faces)
    rest_t = lerp(body["rest"][:, 2:].astype(np.float64))[:, 0] / p["height_m"]
    return verts[used].astype(np.float32), np.searchsorted(used, faces).astype(np.int32), \
        rest_t[used].astype(np.float32)


def _vest_bands(p: dict, rest: np.ndarray, regions: np.ndarray) -> list[tuple[float, tuple, float, float]]:
    """Fluorescent cloth with two silver retro-reflective stripes around the trunk (rest height / height_m)."""
    _, _, hem, shoulders = _vest_cut(p, rest, regions)
    h = p["height_m"]
    vest, stripe = (tuple(p["hivis"]), 0.6, 0.0), ((0.8, 0.8, 0.82), 0.25, 0.6)
    at = lambda rel: (hem + rel * (shoulders - hem)) / h  # noqa: E731
    return [(0.0, *vest), (at(0.16), *stripe), (at(0.28), *vest), (at(0.5), *stripe), (at(0.62), *vest)]


def _collar(z: np.ndarray, regions: np.ndarray) -> float:
    """Rest height of the neckline: a little below where the torso region meets the neck."""
    return float(np.percentile(z[regions == REGIONS.index("torso")], 99.0))


def _clothing(p: dict, name: str, centroids: np.ndarray, regions: np.ndarray, rest_z: np.ndarray,
              vertex_regions: np.ndarray):
    """Materials and each face's material slot: clothes by body region, laid out on the unposed body;
    the trunk in one banded material (crisp waistband and neckline across triangles)."""
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
    if p.get("boots"):  # safety boots to mid-shin, trousers tucked in
        index[(regions == REGIONS.index("shin")) & (z < rest_z.min() + BOOT_TOP * p["height_m"])] = slot["shoes"]
    head = regions == REGIONS.index("head")
    index[head & (z < _collar(rest_z, vertex_regions) + 0.03)] = slot["trunk"]  # the neckline: a band line too
    lo, hi = z[head].min(), z[head].max()
    front_y = np.percentile(centroids[head, 1], 85)  # the face looks along +y
    rel = (z - lo) / (hi - lo)
    index[head & ((rel > 0.8) | ((rel > 0.42) & (centroids[:, 1] < front_y - 0.06)))] = slot["hair"]
    return mats, index


def _head_parts(p: dict, body: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Helmet shell, cap (crown and brim) or beanie, tied or long hair, fitted to the unposed head,
    then moved with the head (rigid fit of its vertices): (vertices, triangles, material) each."""
    on_head = body["region"] == REGIONS.index("head")
    cap = body["rest"][on_head]
    top, height = cap[:, 2].max(), np.ptp(cap[:, 2])
    skull = cap[cap[:, 2] > top - 0.4 * height]
    # The middle of the skull's extent, not its vertex mean: the face's dense vertices (eyes, lids) pull
    # a mean ~5 cm forward, and a shell centred there left the back of the head poking out.
    mid = (skull.min(axis=0) + skull.max(axis=0)) / 2
    center = np.array([mid[0], mid[1], top - 0.3 * height], np.float32)
    radius = 0.56 * max(np.ptp(skull[:, 0]), np.ptp(skull[:, 1]))
    back = skull[:, 1].min()
    parts = []
    if p["helmet"]:
        depth = (top - center[2]) / radius + 0.12
        parts.append((*_cap(center, (radius, radius, radius * depth), False, 20, 6), "helmet"))
    wear = p.get("headwear")
    if wear:  # snug fabric crowns: a beanie down to the ears' tops, a cap's band higher with a brim in front
        rim = center + np.array([0.0, 0.0, 0.25 * (top - center[2]) if wear["kind"] == "cap" else 0.0], np.float32)
        rx, ry = 0.58 * np.ptp(skull[:, 0]), 0.56 * np.ptp(skull[:, 1])  # snug: 1-2 cm off the skull
        parts.append((*_cap(rim, (rx, ry, top + 0.012 - rim[2]), False, 20, 6), "headwear"))
        if wear["kind"] == "cap":
            parts.append((*_brim(rim, (rx, ry), 0.075), "headwear"))
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


def _worn_parts(p: dict, body: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, str, np.ndarray]]:
    """Everything worn over the body that is its own surface (helmet, cap, beanie, tied or long hair, the vest):
    (vertices, triangles, kind, each vertex's rest height / height_m: 0 where no garment line needs it)."""
    parts = [(v, f, kind, np.zeros(len(v), np.float32)) for v, f, kind in _head_parts(p, body)]
    if p["hivis"]:
        v, f, t = _vest(p, body)
        parts.append((v, f, "vest", t))
    return parts


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


LEG_M = 0.48  # hip joint to ankle, as a share of height
MIN_SWING_DEG = 10.0  # below this a shuffle would have to whirl its legs: the stance foot slides instead


def gait_phase_step(p: dict, speed_mps: float, dt_s: float) -> float:
    """How far the walking pose's phase moves in `dt_s` at `speed_mps`: at the rate that keeps the
    stance foot planted at mid-stance (the leg pivots backwards under the hip as fast as the body
    moves forward: hip angular speed x leg length = speed). In this rig's gait (bone_rotations) the
    legs go forwards through the cycle as phase_rad *decreases*, so the step is negative."""
    swing = math.radians(max(p.get("swing_deg", 0.0), MIN_SWING_DEG))
    return -speed_mps * dt_s / (LEG_M * p["height_m"] * swing)


def _vertices(p: dict, body: dict[str, np.ndarray]) -> np.ndarray:
    """Every vertex of the built mesh: the body, then what is worn over it (_worn_parts)."""
    return np.concatenate([body["vertices"], *(part[0] for part in _worn_parts(p, body))])


def animate_gait(obj: bpy.types.Object, p: dict, speed_mps: float, dt_s: float) -> None:
    """Limb motion blur of a walking (or carrying) person: shape keys of the body `dt_s` earlier and
    later in its gait cycle (gait_phase_step: the stance foot stays on the floor while the body passes
    over it), keyed at frames 0 and 2 around the spec's pose at frame 1, so Cycles blurs the swinging
    arms and legs, not only the translation."""
    d_phase = gait_phase_step(p, speed_mps, dt_s)
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
    parts = _worn_parts(p, body)
    verts, faces, uv = np.concatenate([body["vertices"], *(part[0] for part in parts)]), body["faces"], body["uv"]
    mats, index = _clothing(p, spec.name, body["rest"][faces].mean(axis=1), _face_regions(body["region"], faces),
                            body["rest"][:, 2], body["region"])
    slot = {"hair": HAIR_SLOT}
    if p.get("headwear"):
        mats.append(fabric(f"{spec.name}_headwear", p["headwear"]["color"], 0.8))
        slot["headwear"] = len(mats) - 1
    if p["helmet"]:
        mats.append(material(f"{spec.name}_helmet", p["helmet"], 0.35))
        slot["helmet"] = len(mats) - 1
    if p["hivis"]:
        mats.append(banded_fabric(f"{spec.name}_vest", REST_T, _vest_bands(p, body["rest"], body["region"])))
        slot["vest"] = len(mats) - 1
    rest_t, offset = [body["rest"][:, 2] / p["height_m"]], len(body["vertices"])
    for v, f, kind, t in parts:
        faces = np.concatenate([faces, f + offset])
        offset += len(v)
        uv = np.concatenate([uv, np.zeros((len(f), 3, 2), np.float32)])
        index = np.concatenate([index, np.full(len(f), slot[kind])])
        rest_t.append(t)
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
    mesh.attributes.new(REST_T, "FLOAT", "POINT").data.foreach_set("value", np.concatenate(rest_t).astype(np.float32))
    mesh.update()
    obj = place_object(spec, mesh)
    obj["keypoints"] = body["keypoints"].ravel().tolist()  # COCO order, object frame (render projects them)
    if len(body["reach_deg"]):
        obj["reach_deg"] = body["reach_deg"].tolist()
    if p.get("carried_box"):
        _carton(spec, obj, body)
    return obj
