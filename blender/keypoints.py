"""COCO person keypoints of a rendered pedestrian: the body's 17 points (blender.pedestrian_body)
projected with the frame's camera, each with COCO's visibility flag decided by a ray cast."""
from __future__ import annotations

from typing import Any

import numpy as np

from blender.lens import project_camera

# A joint lies inside the body: a ray from the camera meets the person's own skin up to this far in
# front of it (elbow, knee: ~5 cm, hip seen from the side: ~12 cm). A surface met earlier than that
# hides the point: another object, or the body itself (the far wrist behind the torso, the eyes of a
# person facing away: 15-35 cm).
SKIN_DEPTH_M = 0.15
# COCO person keypoints in COCO's order (scene code: the body's keypoints are labelled with them)
KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
             "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
             "right_knee", "left_ankle", "right_ankle")


def project(points: np.ndarray, cam_mats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) -> pixel coordinates (N, 2) and whether each lies in front of the camera."""
    cam = (np.array(cam_mats["world_to_camera"]) @ np.c_[points, np.ones(len(points))].T)[:3]
    return project_camera(cam, cam_mats.get("lens"), np.array(cam_mats["K"]))


def coco_keypoints(bpy, obj, camera, cam_mats: dict[str, Any], width: int, height: int,
                   velocity: tuple[float, float] | None = None, readout_s: float = 0.0) -> list[float] | None:
    """[x, y, v] * 17 for the pedestrian object `obj` (None when it carries no keypoints, e.g. an
    external asset): v = 0 outside the image (x = y = 0, COCO's convention), 1 hidden, 2 visible.
    Under a rolling shutter (readout_s, rows from the top, the middle row at the frame's time) a moving
    body's point is where it was when its row was exposed: moved by velocity * (row / height - 0.5) * readout_s."""
    local = obj.get("keypoints")
    if local is None:
        return None
    from mathutils import Vector

    world = (np.array(obj.matrix_world) @ np.c_[np.reshape(local, (-1, 3)), np.ones(len(local) // 3)].T)[:3].T
    uv, front = project(world, cam_mats)
    still = world  # occlusion is tested on the scene as built (the frame's time)
    if readout_s > 0 and velocity:
        for _ in range(3):  # the row depends on the point, the point on its row's time: a few fixed-point steps
            dt = (uv[:, 1] / height - 0.5) * readout_s
            world = still + np.c_[np.outer(dt, velocity), np.zeros(len(dt))]
            uv, front = project(world, cam_mats)
    scene = bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    origin = Vector(camera.matrix_world.translation)
    out: list[float] = []
    for (x, y), ok, point in zip(uv, front, still):
        if not (ok and 0 <= x < width and 0 <= y < height):
            out += [0.0, 0.0, 0]
            continue
        ray = Vector(point) - origin
        hit = scene.ray_cast(depsgraph, origin, ray.normalized(), distance=max(ray.length - SKIN_DEPTH_M, 1e-3))[0]
        out += [round(float(x), 2), round(float(y), 2), 1 if hit else 2]
    return out
