"""People in bpy renders: worn vs held label rule, keypoint visibility behind a known occluder,
pycocotools' keypoint evaluation of the COCO files, operators' hands on their jack's grip."""
import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from blender.spec import CameraSpec, LightSpec, ObjectSpec, SceneSpec
from tests.conftest import REPO, load_frame, run_render, tiny_render_cfg

pytestmark = pytest.mark.slow


def person(pose: str, seed: int, **over) -> dict:
    from blender.pedestrian_spec import pedestrian_params

    rng = np.random.default_rng(seed)
    p = pedestrian_params(rng, tiny_render_cfg())
    while p["pose"] != pose:
        p = pedestrian_params(rng, tiny_render_cfg())
    p.update(over)
    return p


@pytest.fixture(scope="module")
def people_shard(tmp_path_factory):
    """Two frames at 200x150, each a person facing the camera (yaw 0: facing +y, camera on +y):
    f_carry carries a carton (helmet on); f_occluded stands behind a 0.9 m box that hides the legs."""
    light = [LightSpec("SUN", (0, 0, 10), (0.3, 0, 0), 3.0, (1, 1, 1))]
    carrier = ObjectSpec("inst_001", "pedestrian", "pedestrian", 1, (0.0, 0.0, 0.0), 0.0,
                         person("carrying", 1, height_m=1.75, helmet=(1.0, 1.0, 1.0), hivis=(0.9, 1.0, 0.0)))
    stander = ObjectSpec("inst_001", "pedestrian", "pedestrian", 1, (0.0, 0.0, 0.0), 0.0,
                         person("standing", 2, height_m=1.75, arms="sides"))
    occluder = ObjectSpec("ctx_000_box", "box", None, 0, (0.0, 1.2, 0.0), 0.0,
                          {"size_m": [1.4, 0.4, 0.9], "color": (0.5, 0.4, 0.3)})
    specs = [SceneSpec("f_carry", (200, 150), (0.4, 0.4, 0.4), 0.8, (0.6, 0.6, 0.6),
                       CameraSpec((0.0, 4.0, 1.3), (0.0, 0.0, 0.95), 35.0), light, [carrier]),
             SceneSpec("f_occluded", (200, 150), (0.4, 0.4, 0.4), 0.8, (0.6, 0.6, 0.6),
                       CameraSpec((0.0, 5.0, 1.3), (0.0, 0.0, 0.9), 35.0), copy.deepcopy(light), [stander, occluder])]
    out = tmp_path_factory.mktemp("people") / "shard_000"
    res = run_render(tiny_render_cfg(resolution_px=[200, 150], samples=8), out, specs=specs)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def pixel(meta, point):
    from blender.keypoints import project

    uv, _ = project(np.array([point], float), meta["camera"])
    return int(uv[0, 1]), int(uv[0, 0])


def test_worn_items_are_the_person_and_a_carried_carton_is_not(people_shard):
    from blender.pedestrian_body import body_mesh
    from blender.pedestrian_build import carton_box

    meta, ids, _ = load_frame(people_shard, "f_carry")
    p = meta["scene"]["objects"][0]["params"]
    centre, size = carton_box(body_mesh(p), p["carried_box"]["depth_m"], p["carried_box"]["height_m"])
    front = centre + (0.0, size[1] / 2, 0.0)
    assert ids[pixel(meta, front)] == 0  # the carton's front face: background (held, not worn)
    top = body_mesh(p)["vertices"][:, 2].max()
    assert ids[pixel(meta, (0.0, 0.0, top - 0.05))] == 1  # the helmet: part of the person
    kps = meta["instances"][0]["keypoints"]
    shoulders = [kps[3 * 5:3 * 5 + 3], kps[3 * 6:3 * 6 + 3]]
    assert ids[int(shoulders[0][1]), int(shoulders[0][0])] == 1  # the hi-vis vest over the shoulders
    assert meta["instances"][0]["visibility"] < 0.97  # the carton hides part of the body


def _components(faces: np.ndarray) -> int:
    """Connected pieces of a triangle mesh (triangles sharing a vertex are connected)."""
    label = np.arange(faces.max() + 1)
    while True:
        low = label[faces].min(axis=1)
        new = label.copy()
        for k in range(3):
            np.minimum.at(new, faces[:, k], low)
        new = new[new]
        if (new == label).all():
            return len(np.unique(label[np.unique(faces)]))
        label = new


def test_hivis_vest_is_a_shell_over_the_shirt_cut_along_its_outline():
    """The vest is its own surface: one piece over both shoulders, standing off the body by
    VEST_OFFSET_M in every pose, its hem cut straight across the triangles at the hem height,
    open at the neck and armholes (the shoulder keypoints and the neck base stay uncovered)."""
    from blender.pedestrian_body import REGIONS, body_mesh
    from blender.pedestrian_build import VEST_OFFSET_M, _vest, _vest_cut

    for pose in ("standing", "walking", "bending", "crouching"):
        p = person(pose, 3, hivis=(0.9, 1.0, 0.0))
        body = body_mesh(p)
        v, f, t = _vest(p, body)
        assert _components(f) == 1, pose
        trunk = np.isin(body["region"], [REGIONS.index("torso"), REGIONS.index("hips")])
        skin = body["vertices"][trunk]  # the nearest trunk vertex of each vest vertex (arms may lie against the vest)
        nearest = np.concatenate([np.sqrt(((skin[None] - chunk[:, None]) ** 2).sum(-1)).argmin(axis=1)
                                  for chunk in np.array_split(v, 20)])
        near = np.linalg.norm(v - skin[nearest], axis=1)
        assert near.min() > 0.6 * VEST_OFFSET_M and 0.9 * VEST_OFFSET_M < np.median(near) < 2 * VEST_OFFSET_M, pose
        centre = skin.mean(axis=0)  # outside the body, not inside it: farther from the trunk's centre
        assert np.mean(np.linalg.norm(v - centre, axis=1) > np.linalg.norm(skin[nearest] - centre, axis=1)) > 0.95, pose
        _, _, hem, _ = _vest_cut(p, body["rest"], body["region"])
        assert t.min() * p["height_m"] > hem - 1e-4 and np.sum(np.abs(t * p["height_m"] - hem) < 1e-4) > 20, pose
        assert len(v) < trunk.sum()  # the trunk's vertices minus the neck, the armholes and below the hem
        for name in (5, 6):  # left/right shoulder keypoints: in the armholes, >= 3 cm from the vest
            assert np.linalg.norm(v - body["keypoints"][name], axis=1).min() > 0.03, pose


def test_keypoints_behind_a_known_occluder_are_hidden_and_the_rest_visible(people_shard):
    from pipeline.coco import KEYPOINTS

    meta, ids, _ = load_frame(people_shard, "f_occluded")
    kps = np.reshape(meta["instances"][0]["keypoints"], (17, 3))
    v = dict(zip(KEYPOINTS, kps[:, 2].astype(int)))
    for name in ("left_knee", "right_knee", "left_ankle", "right_ankle"):
        assert v[name] == 1, (name, v)  # behind the box, inside the image
    for name in ("nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder"):
        assert v[name] == 2, (name, v)  # above the box, facing the camera
    for name, (x, y, vis) in zip(KEYPOINTS, kps):
        if vis == 2:  # a visible point lands on the person's own mask (or its anti-aliased edge)
            patch = ids[max(0, int(y) - 1):int(y) + 2, max(0, int(x) - 1):int(x) + 2]
            assert (patch == 1).any(), name


def test_pycocotools_keypoint_evaluation_accepts_the_files(people_shard):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from pipeline.coco import KEYPOINTS, SKELETON, annotate_shard

    coco = annotate_shard(people_shard, ["pedestrian", "pallet_jack"], 1)
    ped = next(c for c in coco["categories"] if c["name"] == "pedestrian")
    assert ped["keypoints"] == list(KEYPOINTS) and ped["skeleton"] == SKELETON
    anns = coco["annotations"]
    assert all(len(a["keypoints"]) == 51 and a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])
               for a in anns)
    assert all(a["num_keypoints"] >= 13 for a in anns)

    def oks_ap(shift_px: float) -> float:
        gt = COCO()
        gt.dataset = copy.deepcopy(coco)
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
                     "keypoints": [c + (shift_px if k % 3 == 0 else 0) for k, c in enumerate(a["keypoints"])]}
                    for a in anns]
            ev = COCOeval(gt, gt.loadRes(dets), iouType="keypoints")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return ev.stats[0]

    assert oks_ap(0.0) == pytest.approx(1.0)
    assert oks_ap(8.0) < 0.5  # keypoints 8 px off (people ~100 px tall) score low: the evaluation is real


OPERATOR_SCRIPT = """
import json
import numpy as np
import bpy  # noqa: F401
from mathutils import Vector
from blender.build import build_scene
from blender.pallet_jack_spec import GRIP_WIDTH_M, grip_point
from blender.pedestrian_body import REGIONS, body_mesh
from blender.spec import sample_scene
from tests.conftest import tiny_render_cfg

cfg = tiny_render_cfg(pedestrians_per_image=[1, 1], pallet_jacks_per_image=[1, 1], jack_operator_prob=1.0)
gaps = []
for i in range(4):
    spec = sample_scene(np.random.default_rng([9, i]), cfg, "f")
    build_scene(spec)
    for o in spec.objects:
        if o.params.get("pose") != "operating":
            continue
        jack = next(j for j in spec.objects if j.name == o.params["operates"])
        m = bpy.data.objects[jack.name].matrix_world
        centre = np.array(grip_point(jack.params))
        ends = [np.array(m @ Vector(centre + (s * GRIP_WIDTH_M / 2, 0, 0))) for s in (-1, 1)]
        obj = bpy.data.objects[o.name]
        region = body_mesh(o.params)["region"]
        co = np.array([obj.matrix_world @ v.co for v in obj.data.vertices])[:len(region)]
        hand = co[region == REGIONS.index("hand")]
        local_x = np.array([(obj.matrix_world.inverted() @ Vector(p)).x for p in hand])
        for side in (local_x < 0, local_x > 0):
            c = hand[side].mean(axis=0)
            t = np.clip(np.dot(c - ends[0], ends[1] - ends[0]) / np.sum((ends[1] - ends[0]) ** 2), 0, 1)
            gaps.append(float(np.linalg.norm(c - (ends[0] + t * (ends[1] - ends[0])))))
print("GAPS" + json.dumps(gaps))
"""


def test_operators_hands_are_on_their_jacks_grip():
    """Built scenes (bpy): each hand's centre within 5 cm of the grip bar of the jack it operates."""
    res = subprocess.run([sys.executable, "-c", OPERATOR_SCRIPT], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    gaps = json.loads(res.stdout.split("GAPS")[-1])
    assert len(gaps) >= 6 and max(gaps) < 0.05, gaps


def test_people_sheet_crops_pedestrians_with_their_keypoints(people_shard, tmp_path):
    from pipeline.coco import annotate_shard
    from pipeline.contact_sheet import crop_sheet, main

    coco = annotate_shard(people_shard, ["pedestrian", "pallet_jack"], 1, image_prefix="shard_000/")
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    sheet = np.asarray(crop_sheet([path], people_shard.parent, "pedestrian", count=24, tile_px=120))
    assert sheet.shape == (120, 2 * 124 - 4, 3)  # both people (fewer than 24 in the data: all of them)
    green = (sheet[..., 1] > 200) & (sheet[..., 0] < 80) & (sheet[..., 2] < 80)
    red = (sheet[..., 0] > 200) & (sheet[..., 1] < 60) & (sheet[..., 2] < 60)
    assert green[:, :120].sum() > 20 and green[:, 124:].sum() > 20  # visible keypoints drawn on each crop
    assert red.sum() > 10  # the occluded legs' keypoints
    out = tmp_path / "people.png"
    assert main([str(path), "--image-root", str(people_shard.parent), "--crops", "pedestrian", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


GAIT_SCRIPT = """
import json
import numpy as np
import bpy
from blender.build import build_scene
from blender.pedestrian_body import REGIONS, body_mesh
from blender.spec import CameraSpec, LightSpec, ObjectSpec, SceneSpec
from tests.test_people_render import person

p = person("walking", 3, swing_deg=25.0, velocity_mps=[0.0, 1.5])
walker = ObjectSpec("inst_001", "pedestrian", "pedestrian", 1, (0.0, 0.0, 0.0), 0.0, p)
spec = SceneSpec("f", (64, 48), (0.4, 0.4, 0.4), 0.8, (0.6, 0.6, 0.6), CameraSpec((0.0, 5.0, 1.3), (0.0, 0.0, 0.9), 35.0),
                 [LightSpec("SUN", (0, 0, 10), (0.3, 0, 0), 3.0, (1, 1, 1))], [walker], exposure_s=0.05)
build_scene(spec)
region = body_mesh(p)["region"]
obj = bpy.data.objects["inst_001"]
out = {}
for frame in (0, 1, 2):
    bpy.context.scene.frame_set(frame)
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.array([v.co for v in ev.data.vertices])[:len(region)]  # object frame: translation removed
    out[frame] = {r + s: co[(region == REGIONS.index(r)) & (co[:, 0] * sign >= 0)].mean(axis=0).tolist()
                  for r in ("head", "hand", "foot") for s, sign in (("_l", -1), ("_r", 1))}
basis = body_mesh(p)["vertices"]
out["basis"] = basis[(region == REGIONS.index("hand")) & (basis[:, 0] <= 0)].mean(axis=0).tolist()
print("GAIT" + json.dumps(out))
"""


def test_walkers_swing_their_limbs_during_the_exposure():
    """Motion blur follows the limbs: between the shutter's keyframes a walker's hands and feet move
    in the body's own frame (the gait advances), the head barely; mid-exposure is the spec's pose."""
    res = subprocess.run([sys.executable, "-c", GAIT_SCRIPT], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    g = json.loads(res.stdout.split("GAIT")[-1])
    moved = {r: np.linalg.norm(np.subtract(g["2"][r], g["0"][r])) for r in g["0"]}
    limbs = min(moved[k] for k in ("hand_l", "hand_r", "foot_l", "foot_r"))
    assert limbs > 0.02 and max(moved["head_l"], moved["head_r"]) < 0.5 * limbs, moved
    assert np.allclose(g["1"]["hand_l"], g["basis"], atol=1e-4)


def test_a_blurred_walkers_stance_foot_stays_on_the_floor():
    """The gait the blur keys advance through walks forwards: at mid-stance (phase 0 and pi, the other
    knee bent) the standing foot stays put in the world while the body passes over it, and the
    swinging foot travels faster than the body (keys dt before and after, body moving along +y)."""
    from blender.pedestrian_body import body_mesh
    from blender.pedestrian_build import gait_phase_step

    speed, exposure = 1.4, 0.06
    body = speed * exposure
    for swing in (15.0, 25.0):
        for phase in (0.0, np.pi):
            p = person("walking", 5, height_m=1.75, swing_deg=swing, phase_rad=phase)
            step = gait_phase_step(p, speed, exposure / 2)
            ankles = [body_mesh(dict(p, phase_rad=phase + k * step))["keypoints"][[15, 16]] for k in (-1, 0, 1)]
            travel = np.linalg.norm((ankles[2] - ankles[0])[:, :2] + (0.0, body), axis=1)  # in the world
            stance = int(np.argmin(ankles[1][:, 2]))
            assert travel[stance] < 0.1 * body and travel[1 - stance] > 1.5 * body, (swing, phase, travel)


def test_headwear_sits_on_the_head_and_boots_cover_the_shins():
    """Helmet, cap and beanie are worn (surfaces of the person's mesh): a crown over the whole top of
    the skull (none of the head above its rim pokes out: a crown centred on the mean of the skull's
    vertices left the back of the head out, the face's dense vertices pull that mean forward), just
    above it, the eyes and nose clear; a cap's brim reaches out over the face, a beanie has none and
    comes lower. Boots put the shoes' material on the shins."""
    from blender.pedestrian_body import REGIONS, body_mesh
    from blender.pedestrian_build import BOOT_TOP, _clothing, _face_regions, _worn_parts

    rims = {}
    for kind in ("helmet", "cap", "beanie"):
        for seed in (4, 11):
            soft = None if kind == "helmet" else {"kind": kind, "color": (0.6, 0.1, 0.1)}
            p = person("standing", seed, height_m=1.75, hair_style="short", headwear=soft,
                       helmet=(1.0, 1.0, 1.0) if kind == "helmet" else None)
            body = body_mesh(p)
            parts = [v for v, f, what, _ in _worn_parts(p, body) if what in ("helmet", "headwear")]
            assert len(parts) == (2 if kind == "cap" else 1), kind
            crown = parts[0]
            ring, pole = crown[-20:], crown[0]  # the dome's lowest ring of vertices (its rim) and its top
            c = ring.mean(axis=0)
            up = (pole - c) / np.linalg.norm(pole - c)
            flat = (ring - c) - np.outer((ring - c) @ up, up)
            _, sd, axes = np.linalg.svd(flat, full_matrices=False)  # the rim ellipse's axes
            semi = sd[:2] * np.sqrt(2 / len(ring))
            head = body["vertices"][body["region"] == REGIONS.index("head")]
            d = head - c
            h = d @ up
            inside = ((d @ axes[0]) / semi[0]) ** 2 + ((d @ axes[1]) / semi[1]) ** 2 + (h / float((pole - c) @ up)) ** 2
            assert inside[h > 0.005].max() < 1.0, (kind, seed, inside[h > 0.005].max())
            assert 0.0 < pole[2] - head[:, 2].max() < 0.03, kind
            rims[kind] = c[2]
            for k in (0, 1, 2):  # nose and eyes below the rim: the face stays clear
                assert body["keypoints"][k][2] < c[2], (kind, k)
            if kind == "cap":
                assert parts[1][:, 1].max() > head[:, 1].max() + 0.04  # the brim, in front of the face (+y)
    assert rims["beanie"] < rims["cap"] - 0.01

    for boots in (False, True):
        p = person("standing", 4, height_m=1.75, shorts=True, boots=boots)
        body = body_mesh(p)
        centroids = body["rest"][body["faces"]].mean(axis=1)
        regions = _face_regions(body["region"], body["faces"])
        name = f"boots_{boots}"
        mats, index = _clothing(p, name, centroids, regions, body["rest"][:, 2], body["region"])
        shoes = [m.name for m in mats].index(f"{name}_shoes")
        shin = regions == REGIONS.index("shin")
        low = centroids[:, 2] < body["rest"][:, 2].min() + BOOT_TOP * p["height_m"]
        assert np.all(index[shin & low] == shoes) == boots and not np.any(index[shin & ~low] == shoes)
