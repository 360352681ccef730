"""Build a pedestrian (bpy): the anny body of its params (blender.pedestrian_body), clothed region
by region (shirt or hi-vis vest with reflective stripes, sleeves, trousers or shorts, shoes,
gloves), with hair or a helmet. Everything worn is part of the one labelled object; a carried
carton is a separate, unlabelled object held between the palms (parented, so it moves with them)."""
from __future__ import annotations

import math

import bpy
import numpy as np

from blender.mesh import MeshBuilder, fabric, material, place_object, skin
from blender.pedestrian_body import REGIONS, body_mesh
from blender.spec import ObjectSpec


def _dome(center: np.ndarray, radius: float, depth: float, segments: int = 20, rings: int = 6):
    """Vertices and triangles of a hemispherical shell (helmet), open at the bottom."""
    verts = [center + np.array([0.0, 0.0, radius * depth])]
    for k in range(1, rings + 1):
        polar = (math.pi / 2) * k / rings
        for j in range(segments):
            az = 2 * math.pi * j / segments
            verts.append(center + radius * np.array([math.sin(polar) * math.cos(az), math.sin(polar) * math.sin(az),
                                                     depth * math.cos(polar)]))
    faces = [(0, 1 + j, 1 + (j + 1) % segments) for j in range(segments)]
    for k in range(rings - 1):
        a, b = 1 + k * segments, 1 + (k + 1) * segments
        for j in range(segments):
            j2 = (j + 1) % segments
            faces += [(a + j, b + j, b + j2), (a + j, b + j2, a + j2)]
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


def _clothing(p: dict, name: str, centroids: np.ndarray, regions: np.ndarray):
    """Materials and each face's material slot: clothes by body region, laid out on the unposed body."""
    mats = [skin(f"{name}_skin", p["skin"]), fabric(f"{name}_shirt", p["shirt"]),
            fabric(f"{name}_trousers", p["trousers"]), material(f"{name}_shoes", p["shoes"], 0.55),
            fabric(f"{name}_hair", p["hair"], 0.5)]
    slot = {"skin": 0, "shirt": 1, "trousers": 2, "shoes": 3, "hair": 4}
    by_region = {"head": "skin", "torso": "shirt", "hips": "trousers", "upper_arm": "shirt",
                 "forearm": "shirt" if p["long_sleeves"] else "skin", "hand": "skin", "thigh": "trousers",
                 "shin": "skin" if p["shorts"] else "trousers", "foot": "shoes"}
    if p["gloves"]:
        mats.append(fabric(f"{name}_gloves", p["gloves"], 0.7))
        slot["gloves"], by_region["hand"] = len(mats) - 1, "gloves"
    index = np.array([slot[by_region[r]] for r in REGIONS])[regions]
    z = centroids[:, 2]
    if p["hivis"]:  # from the waist (top of the hips) to below the shoulders, two reflective stripes
        mats += [fabric(f"{name}_vest", p["hivis"], 0.6), material(f"{name}_stripe", (0.8, 0.8, 0.82), 0.25, 0.6)]
        torso = regions == REGIONS.index("torso")
        waist = np.percentile(z[regions == REGIONS.index("hips")], 95) + 0.03 * p["height_m"]
        shoulders = z[torso].max() - 0.035 * p["height_m"]
        vest = torso & (z > waist) & (z < shoulders)
        rel = (z - waist) / (shoulders - waist)
        index[vest] = len(mats) - 2
        index[vest & ((np.abs(rel - 0.2) < 0.06) | (np.abs(rel - 0.55) < 0.06))] = len(mats) - 1
    head = regions == REGIONS.index("head")
    lo, hi = z[head].min(), z[head].max()
    front_y = np.percentile(centroids[head, 1], 85)  # the face looks along +y
    rel = (z - lo) / (hi - lo)
    index[head & ((rel > 0.8) | ((rel > 0.42) & (centroids[:, 1] < front_y - 0.06)))] = slot["hair"]
    return mats, index


def _helmet(body: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A helmet shell fitted to the unposed head, then moved with the head (rigid fit of its vertices)."""
    on_head = body["region"] == REGIONS.index("head")
    cap = body["rest"][on_head]
    top, height = cap[:, 2].max(), np.ptp(cap[:, 2])
    skull = cap[cap[:, 2] > top - 0.4 * height]
    center = np.array([skull[:, 0].mean(), skull[:, 1].mean(), top - 0.3 * height], np.float32)
    radius = 0.56 * max(np.ptp(skull[:, 0]), np.ptp(skull[:, 1]))
    dv, df = _dome(center, radius, (top - center[2]) / radius + 0.12)
    rot, shift = _rigid_fit(cap, body["vertices"][on_head])
    return (dv @ rot.T + shift).astype(np.float32), df


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


def build_pedestrian(spec: ObjectSpec) -> bpy.types.Object:
    """The posed, clothed body as one mesh object facing +y (before yaw), feet on the floor."""
    p = spec.params
    body = body_mesh(p)
    verts, faces, uv = body["vertices"], body["faces"], body["uv"]
    mats, index = _clothing(p, spec.name, body["rest"][faces].mean(axis=1), _face_regions(body["region"], faces))
    if p["helmet"]:
        mats.append(material(f"{spec.name}_helmet", p["helmet"], 0.35))
        dv, df = _helmet(body)
        faces = np.concatenate([faces, df + len(verts)])
        verts = np.concatenate([verts, dv])
        uv = np.concatenate([uv, np.zeros((len(df), 3, 2), np.float32)])
        index = np.concatenate([index, np.full(len(df), len(mats) - 1)])
    mesh = bpy.data.meshes.new(spec.name)
    mesh.from_pydata(verts.tolist(), [], faces.tolist())
    layer = mesh.uv_layers.new(name="UVMap")
    layer.data.foreach_set("uv", uv.reshape(-1))
    for mat in mats:
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", index.astype(np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), bool))
    mesh.update()
    obj = place_object(spec, mesh)
    obj["keypoints"] = body["keypoints"].ravel().tolist()  # COCO order, object frame (render projects them)
    if p.get("carried_box"):
        _carton(spec, obj, body)
    return obj
