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

log = logging.getLogger(__name__)
CACHE_ENV = "HANGAR_ANNY_CACHE"
REGIONS = ("head", "torso", "hips", "upper_arm", "forearm", "hand", "thigh", "shin", "foot")
POSES = ("standing", "walking", "bending", "crouching", "carrying", "reaching")


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
    return model, by_bone[dominant], flex_axes


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
    elif pose == "carrying":
        legs(-swing * math.sin(phase), swing * math.sin(phase), 8, 8)
        arms(-25, -25, 70, 70, down=arm_down - 6)  # forearms forward, hands in front of the waist
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


def body_mesh(p: dict[str, Any]) -> dict[str, np.ndarray]:
    """vertices (V,3) in metres, body facing +y, feet on z=0, scaled to `height_m`; faces (F,3);
    uv (F,3,2) per face corner; region (V,) index into REGIONS; rest (V,3): the same body unposed
    (clothing is laid out on it, so a vest stays a vest when the person bends)."""
    import torch

    model, region, flex_axes = body_model()
    pheno = {k: float(p["phenotype"][k]) for k in ("gender", "age", "muscle", "weight", "height", "proportions")}
    pose = {"root": torch.eye(4, dtype=torch.float64)[None]}
    for bone, mat in bone_rotations(p["pose"], p, flex_axes).items():
        pose[bone] = torch.from_numpy(mat)[None]
    with torch.no_grad():
        out = model(pose_parameters=pose, phenotype_kwargs=pheno)
    rest = out["rest_vertices"][0].double().numpy()
    verts = out["vertices"][0].double().numpy()
    # scaled to height_m and turned 180 degrees about z (face +y like every object here); feet on z=0
    flip = np.array([-1.0, -1.0, 1.0]) * (p["height_m"] / (rest[:, 2].max() - rest[:, 2].min()))
    verts, rest = verts * flip, rest * flip
    verts[:, 2] -= verts[:, 2].min()
    rest[:, 2] -= rest[:, 2].min()
    faces = model.get_triangular_faces().numpy()
    uv = model.texture_coordinates.double().numpy()[model.face_texture_coordinate_indices.numpy()]
    return {"vertices": verts.astype(np.float32), "faces": faces.astype(np.int32), "uv": uv.astype(np.float32),
            "region": region.astype(np.int8), "rest": rest.astype(np.float32)}
