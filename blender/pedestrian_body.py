"""A pedestrian's body from pure-data params: anny's parametric MakeHuman body (CC0 assets,
Apache-2.0 code), shaped by phenotype and posed through its 104-bone rig. No bpy here: the
builder only wraps the returned arrays in a Blender object.

The body model needs a cache that anny builds on first use (about 3 minutes on 2 cores,
~800 MB); it lives in `$HANGAR_ANNY_CACHE` (default ~/.cache/hangar-synth/anny), built once per
machine under a file lock, so parallel render shards wait for one build instead of racing.
"""
from __future__ import annotations

import fcntl
import functools
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from blender.keypoints import KEYPOINTS

log = logging.getLogger(__name__)
CACHE_ENV = "HANGAR_ANNY_CACHE"
REGIONS = ("head", "torso", "hips", "upper_arm", "forearm", "hand", "thigh", "shin", "foot")
# Joint keypoints are bone heads of the rig (".L" is the person's left); the face points are vertices.
KEYPOINT_BONES = {"left_eye": "eye.L", "right_eye": "eye.R", "left_shoulder": "upperarm01.L",
                  "right_shoulder": "upperarm01.R", "left_elbow": "lowerarm01.L", "right_elbow": "lowerarm01.R",
                  "left_wrist": "wrist.L", "right_wrist": "wrist.R", "left_hip": "upperleg01.L",
                  "right_hip": "upperleg01.R", "left_knee": "lowerleg01.L", "right_knee": "lowerleg01.R",
                  "left_ankle": "foot.L", "right_ankle": "foot.R"}


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hangar-synth" / "anny")


def _region_of_bone(label: str) -> str:
    for prefix, region in (("upperarm", "upper_arm"), ("lowerarm", "forearm"), ("wrist", "hand"),
                           ("finger", "hand"), ("metacarpal", "hand"), ("upperleg", "thigh"),
                           ("lowerleg", "shin"), ("foot", "foot"), ("toe", "foot"), ("head", "head"),
                           ("eye", "head"), ("neck", "head"), ("pelvis", "hips"), ("root", "hips")):
        if label.startswith(prefix):
            return region
    return "torso"  # spine, clavicle, shoulder


@functools.lru_cache(maxsize=1)
def body_model():
    """(anny model, per-vertex region index into REGIONS); built once per process, cache once per machine."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["ANNY_CACHE_DIR"] = str(folder)
    with open(folder / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per machine; the others wait, then read its cache
        if not any(p.suffix for p in folder.rglob("*") if p.is_file() and p.name != ".build.lock"):
            log.info("building the anny body model cache in %s (first run on this machine: about 3 minutes, "
                     "~800 MB; set %s to move it)", folder, CACHE_ENV)
        import warp

        warp.config.quiet = True  # no banner in every render log
        import anny
        import anny.paths

        anny.paths.set_anny_cache_path(folder)
        model = anny.Anny()
    import torch

    weights, bones = model.vertex_bone_weights, model.vertex_bone_indices
    dominant = bones[torch.arange(bones.shape[0]), weights.argmax(1)].numpy()
    by_bone = np.array([REGIONS.index(_region_of_bone(b)) for b in model.bone_labels])
    with torch.no_grad():
        rest = model(pose_parameters={"root": torch.eye(4, dtype=torch.float64)[None]},
                     phenotype_kwargs={})["bone_poses"][0][:, :3, 3].numpy()
    heads = dict(zip(model.bone_labels, rest))
    # Elbow flexion axis of each forearm: perpendicular to its rest direction and to the body's forward
    # axis, so bending moves the hand forward whatever the arm's A-pose tilt.
    flex_axes = {}
    for side in ("L", "R"):
        d = heads[f"wrist.{side}"] - heads[f"lowerarm01.{side}"]
        axis = np.array([-d[2], 0.0, d[0]])
        flex_axes[f"lowerarm01.{side}"] = axis / np.linalg.norm(axis) * np.sign(axis[0] or 1.0)
    region = by_bone[dominant]
    with torch.no_grad():
        verts = model(pose_parameters={"root": torch.eye(4, dtype=torch.float64)[None]},
                      phenotype_kwargs={})["rest_vertices"][0].numpy()
    # Face keypoints as vertex indices (one topology for every phenotype): the nose tip is the most
    # forward head vertex on the centre line below the eyes (the rig faces -y), the ears the most
    # lateral head vertices just below eye height.
    head = np.flatnonzero(region == REGIONS.index("head"))
    eye_z = heads["eye.L"][2]
    centre = head[(np.abs(verts[head, 0]) < 0.01) & (verts[head, 2] < eye_z) & (verts[head, 2] > eye_z - 0.06)]
    ear_band = head[np.abs(verts[head, 2] - (eye_z - 0.01)) < 0.015]
    face = {"nose": int(centre[np.argmin(verts[centre, 1])]),
            "left_ear": int(ear_band[np.argmax(verts[ear_band, 0])]),
            "right_ear": int(ear_band[np.argmin(verts[ear_band, 0])])}
    return model, region, flex_axes, face


def _rot(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> np.ndarray:
    """4x4 rotation (degrees) about the rig's world-aligned axes: applied y (raise/lower), then x, then z."""
    rx, ry, rz = (math.radians(a) for a in (x, y, z))
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = mz @ mx @ my
    return out


def _axis_angle(axis: np.ndarray, deg: float) -> np.ndarray:
    """4x4 rotation by `deg` about a unit `axis` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = math.radians(deg)
    out = np.eye(4)
    out[:3, :3] = np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * k @ k
    return out


def bone_rotations(pose: str, p: dict[str, Any], flex_axes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bone -> local rotation for a pose. Rig conventions (measured): the body faces -y; about x,
    negative swings a thigh or upper arm forward, positive bends a knee or tips the spine forward;
    about y, +/- lowers the left/right arm from anny's A-pose to the body's side; elbows flex
    about their own axis."""
    swing, phase = p.get("swing_deg", 0.0), p.get("phase_rad", 0.0)
    arm_down = p.get("arm_down_deg", 42.0)
    r: dict[str, tuple[float, float, float]] = {}

    def arms(left_x: float, right_x: float, elbow_l: float, elbow_r: float, down: float = arm_down) -> None:
        r["upperarm01.L"], r["upperarm01.R"] = (left_x, down, 0.0), (right_x, -down, 0.0)
        r["lowerarm01.L"], r["lowerarm01.R"] = (-elbow_l, 0.0, 0.0), (-elbow_r, 0.0, 0.0)

    def legs(hip_l: float, hip_r: float, knee_l: float, knee_r: float) -> None:
        r["upperleg01.L"], r["upperleg01.R"] = (hip_l, 0.0, 0.0), (hip_r, 0.0, 0.0)
        r["lowerleg01.L"], r["lowerleg01.R"] = (knee_l, 0.0, 0.0), (knee_r, 0.0, 0.0)

    if pose == "walking":
        s = math.sin(phase)
        legs(-swing * s, swing * s, 5 + 30 * max(0.0, math.sin(phase - 1.2)),
             5 + 30 * max(0.0, math.sin(phase + math.pi - 1.2)))
        arms(0.8 * swing * s, -0.8 * swing * s, 15, 15)
    elif pose == "bending":
        bend = p.get("bend_deg", 60.0)
        for k in range(1, 6):
            r[f"spine0{k}"] = (bend / 5, 0.0, 0.0)  # positive x tips an upward bone forward
        legs(0, 0, 10, 10)
        arms(-bend, -bend, 10, 10)  # hanging towards the floor
    elif pose == "crouching":
        legs(-95, -95, 125, 125)
        r["foot.L"] = r["foot.R"] = (-25, 0.0, 0.0)
        r["spine03"] = (20, 0.0, 0.0)
        arms(-40, -40, 40, 40)
    elif pose == "carrying":  # hands on the sides of a carton in front of the waist (angles from reach())
        legs(-swing * math.sin(phase), swing * math.sin(phase), 8, 8)
        swing_c, elbow_c, down_c = p.get("reach_deg", (-20.0, 60.0, arm_down - 10))
        arms(swing_c, swing_c, elbow_c, elbow_c, down=down_c)
    elif pose == "operating":  # both hands on a jack's grip (angles from reach()); leaning into a push or a pull
        swing_o, elbow_o, down_o = p.get("reach_deg", (-45.0, 25.0, arm_down - 8))
        lean = p.get("lean_deg", 0.0)
        for k in range(2, 5):
            r[f"spine0{k}"] = (lean / 3, 0.0, 0.0)
        stride = p.get("swing_deg", 0.0)
        legs(-stride, stride * 0.6, 6 + stride * 0.3, 4)
        arms(swing_o, swing_o, elbow_o, elbow_o, down=down_o)
    elif pose == "picking":  # both hands on a carton on a rack shelf (angles from reach()); up on the toes a little
        swing_p, elbow_p, down_p = p.get("reach_deg", (-110.0, 20.0, arm_down - 20))
        legs(0, 0, 3, 3)
        r["spine05"] = (-4, 0.0, 0.0)
        arms(swing_p, swing_p, elbow_p, elbow_p, down=down_p)
    elif pose == "seated":  # in a forklift's cab: thighs level, shins down, hands forward on the wheel
        legs(-88, -84, 92, 86)
        r["spine01"] = (-6, 0.0, 0.0)
        swing_s, elbow_s, down_s = p.get("reach_deg", (-48.0, 55.0, arm_down - 12))
        arms(swing_s, swing_s, elbow_s, elbow_s, down=down_s)
    elif pose == "reaching":
        arms(-160, 0, 10, 10, down=arm_down - 30)  # one arm up to a shelf
        r["spine05"] = (-6, 0.0, 0.0)
    else:  # standing: weight shift and an arm variant
        shift = p.get("weight_shift_deg", 0.0)
        legs(-shift, shift * 0.5, 4 + abs(shift), 2)
        variant = p.get("arms", "sides")
        if variant == "phone":
            arms(-35, 0, 110, 8)
        elif variant == "hip":
            arms(0, 15, 10, 95, down=arm_down)
            r["upperarm01.R"] = (10, -arm_down + 35, 0.0)
        else:
            arms(0, 0, 8, 8)
    out = {bone: _rot(*angles) for bone, angles in r.items()}
    for bone, axis in flex_axes.items():  # elbows: flexion about their own axis (angle stored in x)
        if bone in r:
            out[bone] = _axis_angle(axis, r[bone][0])
    return out


@functools.lru_cache(maxsize=1)
def _topology() -> tuple[np.ndarray, np.ndarray]:
    """Triangles and per-corner UVs: one topology for every body (computed once per process)."""
    model = body_model()[0]
    faces = model.get_triangular_faces().numpy()
    uv = model.texture_coordinates.double().numpy()[model.face_texture_coordinate_indices.numpy()]
    return faces, uv


def _posed_batch(p: dict[str, Any], rotations: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The body of `p` posed by each of `rotations` (one batched model call), in the output frame of
    body_mesh: vertices, rest vertices, keypoints (17, 3) and hand centres (2, 3: left, right;
    centroid of each hand's vertices)."""
    import torch

    model, region, _, face = body_model()
    n = len(rotations)
    pheno = {k: torch.full((n,), float(p["phenotype"][k]), dtype=torch.float64)
             for k in ("gender", "age", "muscle", "weight", "height", "proportions")}
    pose = {"root": torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)}
    for bone in sorted({b for r in rotations for b in r}):
        pose[bone] = torch.from_numpy(np.stack([r.get(bone, np.eye(4)) for r in rotations]))
    with torch.no_grad():
        out = model(pose_parameters=pose, phenotype_kwargs=pheno)
    hand = region == REGIONS.index("hand")
    bodies = []
    for i in range(n):
        rest = out["rest_vertices"][i].double().numpy()
        verts = out["vertices"][i].double().numpy()
        heads = dict(zip(model.bone_labels, out["bone_poses"][i][:, :3, 3].double().numpy()))
        keypoints = np.array([verts[face[k]] if k in face else heads[KEYPOINT_BONES[k]] for k in KEYPOINTS])
        palms = np.array([verts[hand & (verts[:, 0] * sign > 0)].mean(axis=0) for sign in (1, -1)])  # L is +x here
        # scaled to height_m and turned 180 degrees about z (face +y like every object here); feet on z=0
        flip = np.array([-1.0, -1.0, 1.0]) * (p["height_m"] / (rest[:, 2].max() - rest[:, 2].min()))
        verts, rest, keypoints, palms = verts * flip, rest * flip, keypoints * flip, palms * flip
        if p["pose"] == "seated":  # z = 0 at the seat: the underside of the thighs and buttocks (unposed 0.33-0.52 h)
            band = (rest[:, 2] - rest[:, 2].min()) / p["height_m"]
            floor = verts[(band > 0.33) & (band < 0.52), 2].min()
        else:
            floor = verts[:, 2].min()
        for a in (verts, keypoints, palms):
            a[:, 2] -= floor
        rest[:, 2] -= rest[:, 2].min()
        bodies.append({"vertices": verts, "rest": rest, "keypoints": keypoints, "palms": palms})
    return bodies


def reach(p: dict[str, Any], targets: np.ndarray, iterations: int = 12) -> tuple[dict[str, float], float]:
    """Arm angles (shoulder swing, elbow flexion, arm lowering, degrees) of the pose `p["pose"]`
    (operating, carrying, picking, seated) that put both hands on `targets` (2, 3: left, right, in body_mesh's frame;
    a hand's centre is the centroid of its vertices), by damped Gauss-Newton on the rig's forward
    kinematics (each step's point and finite differences in one batched call); returns them and the
    larger remaining palm distance (m)."""
    _, _, flex_axes, _ = body_model()
    lo, hi = np.array([-170.0 if p["pose"] == "picking" else -100.0, 0.0, 5.0]), np.array([10.0, 120.0, 60.0])

    def residuals(x: np.ndarray, jacobian: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Residual at x and, if asked, the Jacobian (per degree) by forward differences."""
        points = [x] + ([x + np.eye(3)[k] for k in range(3)] if jacobian else [])
        res = [(b["palms"] - targets).ravel() for b in _posed_batch(
            p, [bone_rotations(p["pose"], dict(p, reach_deg=[float(a) for a in v]), flex_axes) for v in points])]
        return res[0], np.stack([res[k + 1] - res[0] for k in range(3)], axis=1) if jacobian else None

    x = np.array([-110.0 if p["pose"] == "picking" else -45.0, 25.0, p.get("arm_down_deg", 42.0) - 8.0])
    r, jac = residuals(x, True)
    fresh = True  # the Jacobian is nearly constant: reuse it, re-estimate only when a step fails
    for _ in range(iterations):
        if np.abs(r).max() < 0.008:  # within 8 mm on every axis: a hand on a grip or a carton's side
            break
        step = np.linalg.solve(jac.T @ jac + 1e-4 * np.eye(3), -jac.T @ r)
        x_new = np.clip(x + np.clip(step, -25, 25), lo, hi)
        r_new, _ = residuals(x_new, False)
        if np.linalg.norm(r_new) >= np.linalg.norm(r) - 0.001:  # no real progress
            if fresh:
                break
            r, jac = residuals(x, True)
            fresh = True
            continue
        x, r, fresh = x_new, r_new, False
    return {"swing": float(x[0]), "elbow": float(x[1]), "down": float(x[2])}, float(
        np.linalg.norm(r.reshape(2, 3), axis=1).max())


def body_mesh(p: dict[str, Any]) -> dict[str, np.ndarray]:
    """vertices (V,3) in metres, body facing +y, feet on z=0, scaled to `height_m`; faces (F,3);
    uv (F,3,2) per face corner; region (V,) index into REGIONS; rest (V,3): the same body unposed
    (clothing is laid out on it, so a vest stays a vest when the person bends); keypoints (17,3) in
    COCO's order; palms (2,3): hand centres; reach_deg: the arm angles solved for grip_m (or empty). A person operating a jack or carrying a carton reaches
    with both hands to `p["grip_m"]`; an operator also steps to close what the arms cannot."""
    _, region, flex_axes, _ = body_model()
    solved = p["pose"] in ("operating", "carrying", "picking", "seated") and p.get("grip_m") and "reach_deg" not in p
    if solved:
        angles, _ = reach(p, np.array(p["grip_m"]))
        p = dict(p, reach_deg=[angles["swing"], angles["elbow"], angles["down"]])
    body = _posed_batch(p, [bone_rotations(p["pose"], p, flex_axes)])[0]
    faces, uv = _topology()
    if p["pose"] in ("operating", "picking") and p.get("grip_m"):  # the step the arms could not close: the body steps
        shift = (np.array(p["grip_m"]) - body["palms"]).mean(axis=0) * (1.0, 1.0, 0.0)
        if p["pose"] == "picking" and solved:  # a picker's arms reach again from where the body stands, then it steps
            angles, _ = reach(p, np.array(p["grip_m"]) - shift)
            p = dict(p, reach_deg=[angles["swing"], angles["elbow"], angles["down"]])
            body = _posed_batch(p, [bone_rotations(p["pose"], p, flex_axes)])[0]
            shift = (np.array(p["grip_m"]) - body["palms"]).mean(axis=0) * (1.0, 1.0, 0.0)
        for key in ("vertices", "keypoints", "palms"):
            body[key] = body[key] + shift
    return {"vertices": body["vertices"].astype(np.float32), "faces": faces.astype(np.int32),
            "uv": uv.astype(np.float32), "region": region.astype(np.int8), "rest": body["rest"].astype(np.float32),
            "keypoints": body["keypoints"].astype(np.float32), "palms": body["palms"].astype(np.float32),
            "reach_deg": np.array(p.get("reach_deg", []), np.float64)}
