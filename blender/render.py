"""Render one shard of the synthetic dataset with Cycles (one Blender session per shard).

Usage: python -m blender.render --render-json '{...}' --seed 0 --shard 0 --out results/x/render/shard_000

Each frame writes rgb/<frame>.png, ids/<frame>.png (uint16 instance ids) and
meta/<frame>.json, each atomically; meta is written last, so a frame whose meta
exists is complete. Every frame's meta records its input key (blender.frame_key:
render settings, seed, shard, index, asset contents, scene code, bpy/anny versions).
A rerun keeps a frame only when its key matches what the current inputs would draw,
re-renders the others and removes frames that no longer belong to the shard (fewer
images_per_shard). After a crash (same inputs) only missing frames render, and since
every frame draws from its own RNG ([seed, shard, frame]) the result is the same as an
uninterrupted run. manifest.json, written when the shard is done, lists exactly the
frames present and the key each was drawn with.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from blender import camera_image
from blender.frame_key import describe, frame_key, frames_on_disk, part_digests, plan_frames, shard_inputs
from blender.keypoints import coco_keypoints, project
from blender.labels import instance_map_from_exr
from blender.spec import SceneSpec, sample_scene
from pipeline.io import atomic_path, provenance, remove_stale_temps, write_json

log = logging.getLogger("blender.render")


def _import_bpy():
    try:
        import bpy  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            "blender.render needs the Blender Python module: pip install bpy==5.0.1 "
            f"(Python 3.11, numpy<2); import failed: {exc}") from exc
    return bpy


GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


def gpu_devices(bpy) -> tuple[str, list[str]] | None:
    """Enable the devices of the first Cycles GPU backend that has one (OptiX, then CUDA, HIP, oneAPI,
    Metal) and only those; (backend, device names), or None if no backend has a device.

    Devices are listed per backend (get_devices_for_type): `prefs.devices` holds the entries of every
    backend (a CUDA card appears under CUDA and OPTIX), so a check over all of them can say GPU
    while the chosen backend has none and Cycles falls back to the CPU."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in GPU_BACKENDS:
        try:
            prefs.compute_device_type = backend
        except TypeError:  # backend not compiled into this build
            continue
        mine = [d for d in prefs.get_devices_for_type(backend) if d.type == backend]
        if not mine:
            continue
        ids = {d.id for d in mine}
        for d in prefs.devices:
            d.use = d.id in ids and d.type == backend
        return backend, [d.name for d in mine]
    return None


def used_devices(bpy) -> list[str]:
    """Names of the devices Cycles renders on: the enabled devices of the chosen backend, or the CPU."""
    if bpy.context.scene.cycles.device != "GPU":
        return ["CPU"]
    prefs = bpy.context.preferences.addons["cycles"].preferences
    backend = prefs.compute_device_type
    return [d.name for d in prefs.devices if d.use and d.type == backend]


def set_kernel_cache(folder: str) -> dict[str, str]:
    """Point the GPU kernel caches at `folder` (CUDA's JIT cache, for cards whose kernels the bpy wheel
    ships only as PTX, e.g. sm_80/sm_90; OptiX's pipeline cache), unless the environment already sets
    them; call before Cycles initialises a GPU. Returns the variables set."""
    if not folder:
        return {}
    root = Path(os.path.expandvars(folder)).expanduser()
    wanted = {"CUDA_CACHE_PATH": str(root / "cuda"), "OPTIX_CACHE_PATH": str(root / "optix"),
              "CUDA_CACHE_MAXSIZE": str(4 * 2**30)}  # Cycles' kernels are ~20 MB each; 4 GiB is CUDA's maximum
    chosen = {k: v for k, v in wanted.items() if not os.environ.get(k)}
    for key, value in chosen.items():
        if key.endswith("_PATH"):
            Path(value).mkdir(parents=True, exist_ok=True)
        os.environ[key] = value
    return chosen


def configure_render(bpy, cfg: dict[str, Any], threads: int = 0) -> str:
    """Cycles settings from the `render` config section, plus the passes the labels need; returns the
    device Cycles renders on ("CPU" or "GPU (<backend>)"). `threads` (the job's CPUs) applies when
    render.threads is 0; with neither, Cycles takes every core it sees."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    width, height = cfg["resolution_px"]
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    cycles = scene.cycles
    cycles.samples = cfg["samples"]
    cycles.use_denoising = cfg["denoise"]
    cycles.denoiser = "OPENIMAGEDENOISE"
    cycles.denoising_prefilter = cfg["denoise_prefilter"]
    cycles.denoising_quality = cfg["denoise_quality"]
    cycles.adaptive_threshold = cfg["adaptive_threshold"]
    cycles.sample_clamp_indirect = cfg["clamp_indirect"]
    cycles.caustics_reflective = cycles.caustics_refractive = cfg["caustics"]
    cycles.use_light_tree = cfg["light_tree"]
    cycles.max_bounces = cfg["max_bounces"]
    cycles.device = "CPU"
    found = gpu_devices(bpy) if cfg["device"] in ("auto", "GPU") else None
    if found:
        cycles.device = "GPU"
        log.info("rendering on %s: %s", found[0], ", ".join(found[1]))
    elif cfg["device"] in ("auto", "GPU"):
        log.log(logging.WARNING if cfg["device"] == "GPU" else logging.INFO,
                "render.device=%s: no GPU backend found (tried %s): rendering on CPU", cfg["device"],
                ", ".join(GPU_BACKENDS))
    device = f"GPU ({found[0]})" if found else "CPU"
    # OpenImageDenoise on the render device: on a GPU render a CPU denoiser would cost more than the samples
    cycles.denoising_use_gpu = bool(found)
    threads = cfg["threads"] or threads
    if threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
    else:
        scene.render.threads_mode = "AUTO"
    # Persistent data keeps Cycles' device, kernels and (OptiX) pipelines between renders, which a GPU
    # would otherwise rebuild every frame. On the CPU there is nothing to keep and, with the scene
    # rebuilt every frame, memory only grows (benchmarks/results/render_rss_*persistent*.json): off there.
    scene.render.use_persistent_data = bool(found)
    layer = scene.view_layers[0]
    layer.use_pass_object_index = True
    layer.use_pass_cryptomatte_object = True
    layer.pass_cryptomatte_depth = 4
    img = scene.render.image_settings
    img.media_type = "MULTI_LAYER_IMAGE"
    img.color_depth = "32"  # cryptomatte ids are float32 bit patterns: half floats would corrupt them
    img.exr_codec = "ZIP"
    return device


def camera_matrices(cam, width: int, height: int) -> dict[str, Any]:
    """Intrinsics K (for a wide lens: its focal length and centre, the radial mapping in `lens`, see
    blender/lens.py) and OpenCV-convention world->camera extrinsics."""
    data = cam.data
    fx = data.lens / data.sensor_width * width
    K = [[fx, 0.0, width / 2.0], [0.0, fx, height / 2.0], [0.0, 0.0, 1.0]]
    world_to_blender_cam = np.array(cam.matrix_world.inverted())
    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # Blender camera looks down -Z with +Y up; OpenCV: +Z, +Y down
    w2c = flip @ world_to_blender_cam
    return {"K": np.round(K, 6).tolist(), "world_to_camera": np.round(w2c, 6).tolist(),
            "focal_mm": round(data.lens, 4), "sensor_width_mm": data.sensor_width,
            "lens": json.loads(cam.get("lens_model", '{"model": "pinhole"}'))}


def _projected_mesh(bpy, obj, cam_mats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uv (V, 2) pixels, in_front (V,), triangles (T, 3)) of `obj`'s evaluated mesh through the frame's camera."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    eval_obj = obj.evaluated_get(depsgraph)
    mesh = eval_obj.to_mesh()
    try:
        mesh.calc_loop_triangles()
        verts = np.empty(3 * len(mesh.vertices), np.float32)  # foreach_get: a Python loop over 14k body
        mesh.vertices.foreach_get("co", verts)                # vertices took most of amodal_pixels
        verts = verts.reshape(-1, 3).astype(float)
        tris = np.empty(3 * len(mesh.loop_triangles), np.int32)
        mesh.loop_triangles.foreach_get("vertices", tris)
        tris = tris.reshape(-1, 3).astype(int)
    finally:
        eval_obj.to_mesh_clear()
    uv, in_front = project((np.array(obj.matrix_world) @ np.c_[verts, np.ones(len(verts))].T)[:3].T, cam_mats)
    return uv, in_front, tris  # pixel (x, y) spans [x, x + 1)


def amodal_box(bpy, obj, cam_mats: dict[str, Any], width: int, height: int) -> list[float] | None:
    """[x0, y0, x1, y1] in pixels of the object's whole projected mesh, occluded parts included, clipped to
    the image (None when nothing of it is in front of the camera): a crowd region's extent."""
    uv, in_front, _ = _projected_mesh(bpy, obj, cam_mats)
    if not in_front.any():
        return None
    lo = np.clip(uv[in_front].min(axis=0), 0, (width, height))
    hi = np.clip(uv[in_front].max(axis=0), 0, (width, height))
    return [round(float(v), 2) for v in (*lo, *hi)]


def amodal_pixels(bpy, obj, cam_mats: dict[str, Any], width: int, height: int, supersample: int = 8) -> tuple[int, int]:
    """(pixels of the unoccluded silhouette inside the image, of the whole silhouette) for `obj`.

    The evaluated mesh is projected with the frame's K and extrinsics and its triangles
    filled at `supersample` x resolution over the object's box (clipped to one image size
    beyond each border, so the part cut off by the image border is counted too:
    truncation); a pixel counts when the silhouette covers at least half of it, the same
    majority rule as the rendered masks. Occlusion is ignored on purpose: this is the
    amodal extent that the rendered (visible) mask is compared against.
    """
    import cv2

    uv, in_front, tris = _projected_mesh(bpy, obj, cam_mats)
    if len(tris) == 0:
        return 0, 0
    tris = tris[in_front[tris].all(axis=1)]
    if len(tris) == 0:
        return 0, 0
    used = uv[np.unique(tris)]
    x0 = int(np.clip(np.floor(used[:, 0].min()), -width, 2 * width))
    x1 = int(np.clip(np.ceil(used[:, 0].max()), -width, 2 * width))
    y0 = int(np.clip(np.floor(used[:, 1].min()), -height, 2 * height))
    y1 = int(np.clip(np.ceil(used[:, 1].max()), -height, 2 * height))
    if x1 <= x0 or y1 <= y0:
        return 0, 0
    s = supersample
    canvas = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.uint8)
    # cv2 puts integer coordinates at sub-pixel centres; 4 fractional bits (shift=4)
    fixed = np.round(((uv - (x0, y0)) * s - 0.5) * 16)
    fixed = np.clip(fixed, -2**24, 2**24).astype(np.int32)
    for tri in tris:
        cv2.fillConvexPoly(canvas, fixed[tri].reshape(-1, 1, 2), 1, lineType=cv2.LINE_8, shift=4)
    cover = canvas.reshape(y1 - y0, s, x1 - x0, s).sum(axis=(1, 3))
    full = cover * 2 >= s * s
    inside = full[max(0, -y0):max(0, height - y0), max(0, -x0):max(0, width - x0)]
    return int(inside.sum()), int(full.sum())


def auto_expose(rgb16: np.ndarray, target: float) -> np.ndarray:
    """16-bit display-referred render -> 8-bit image whose mean linear luminance is `target` (gain
    0.5-8, applied in linear light, clipped at white); target 0: only the conversion to 8 bits."""
    x = rgb16.astype(np.float32) / 65535.0
    if target > 0:
        lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
        mean = float((lin @ np.array([0.0722, 0.7152, 0.2126], np.float32)).mean())  # BGR (cv2) luminance
        lin = np.clip(lin * np.clip(target / max(mean, 1e-6), 0.5, 8.0), 0.0, 1.0)
        x = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.rint(x * 255.0).astype(np.uint8)


def add_sensor_noise(rgb: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Signal-dependent Gaussian noise (shot + read noise) on an 8-bit image: std `sigma` grey levels
    at mid-grey, sqrt(0.2 + 0.8 * I / 127.5) times that elsewhere; seeded, so re-renders match."""
    level = rgb.astype(np.float32)
    std = sigma * np.sqrt(0.2 + 0.8 * level / 127.5)
    noisy = level + std * np.random.default_rng(seed).standard_normal(rgb.shape, dtype=np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def render_frame(bpy, spec: SceneSpec, shard_dir: Path, seed_key: list[int], keep_exr: bool = False,
                 input_key: str | None = None, input_parts: dict[str, str] | None = None,
                 light_portals: bool = False) -> dict[str, Any]:
    """Build, render and label one frame; returns its metadata (also written to meta/, with the
    frame's input key and the digest of each of its parts: blender.frame_key)."""
    import cv2

    from blender.build import build_scene

    cam = build_scene(spec, light_portals)
    scene = bpy.context.scene
    scene.cycles.seed = int(np.random.default_rng(seed_key).integers(2**31 - 1))
    frame = spec.frame
    exr_tmp = shard_dir / "tmp" / f"{frame}.exr"
    exr_tmp.parent.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(exr_tmp)
    t0 = time.perf_counter()
    bpy.ops.render.render(write_still=True)
    render_s = time.perf_counter() - t0

    img = scene.render.image_settings
    with atomic_path(shard_dir / "rgb" / f"{frame}.png") as tmp:
        img.media_type = "IMAGE"
        img.file_format = "PNG"
        img.color_mode = "RGB"
        img.color_depth = "16"  # auto-exposure gains up to 8x: 8 bits would band in dark halls
        bpy.data.images["Render Result"].save_render(str(tmp), scene=scene)
        img.media_type = "MULTI_LAYER_IMAGE"
        img.color_depth = "32"
        # Re-encoded as 8 bits without Blender's metadata (render date and times), so the same scene
        # gives the same bytes; the lens, auto-exposure, sensor noise (after it, like a sensor's) and the
        # camera's processing and encoding are applied here.
        # The camera (blender/camera_image.py; labels never pass through it): the lens on the 16-bit render,
        # then metering, sensor noise, and the camera's processing and encoding.
        rgb = cv2.imread(str(tmp), cv2.IMREAD_UNCHANGED)
        if rgb is not None:
            rgb = auto_expose(camera_image.optics(rgb, spec.camera_image), spec.exposure_target)
        if spec.sensor_noise and rgb is not None:
            rgb = add_sensor_noise(rgb, **spec.sensor_noise)
        if rgb is not None:
            rgb = camera_image.process(rgb, spec.camera_image)
        if rgb is None or not cv2.imwrite(str(tmp), rgb):
            raise OSError(f"{tmp}: could not re-encode the rendered image")

    instances = [o for o in spec.objects if o.instance_id > 0]
    ids, coverage = instance_map_from_exr(exr_tmp, {o.name: o.instance_id for o in instances})
    if keep_exr:  # all passes (Object Index, CryptoObject, Combined) for inspection
        (shard_dir / "exr").mkdir(exist_ok=True)
        exr_tmp.replace(shard_dir / "exr" / f"{frame}.exr")
    else:
        exr_tmp.unlink()
    with atomic_path(shard_dir / "ids" / f"{frame}.png") as tmp:
        if not cv2.imwrite(str(tmp), ids):
            raise OSError(f"{tmp}: could not write instance map")
    width, height = spec.resolution_px
    cam_mats = camera_matrices(cam, width, height)
    records = []
    for o in instances:
        visible = int((ids == o.instance_id).sum())
        in_frame, total = amodal_pixels(bpy, bpy.data.objects[o.name], cam_mats, width, height)
        records.append({"id": o.instance_id, "name": o.name, "category": o.category, "visible_pixels": visible,
                        "coverage": round(coverage[o.instance_id], 3),
                        "amodal_pixels": in_frame,
                        # visible / unoccluded-in-frame; the rasterised silhouette and the pixel-majority
                        # mask differ by a fraction of a pixel along the edge, hence the cap.
                        "visibility": round(min(1.0, visible / in_frame), 3) if in_frame else 0.0,
                        "truncation": round(1.0 - in_frame / total, 3) if total else 1.0})
        if o.params.get("crowd"):  # an ignore region (a seated forklift driver): COCO iscrowd over its whole extent
            records[-1]["crowd"] = True
            records[-1]["crowd_box"] = amodal_box(bpy, bpy.data.objects[o.name], cam_mats, width, height)
        keypoints = coco_keypoints(bpy, bpy.data.objects[o.name], cam, cam_mats, width, height,
                                   o.params.get("velocity_mps"), spec.readout_s if spec.exposure_s > 0 else 0.0)
        if keypoints is not None:
            records[-1]["keypoints"] = keypoints
    meta = {
        "frame": frame,
        "file_name": f"rgb/{frame}.png",
        "ids_file": f"ids/{frame}.png",
        "width": width,
        "height": height,
        "seed_key": seed_key,
        "input_key": input_key,
        "input_parts": input_parts,
        "camera": cam_mats,
        "instances": records,
        "scene": spec.to_dict(),
    }
    write_json(shard_dir / "meta" / f"{frame}.json", meta)
    meta["_render_s"] = render_s
    return meta


def render_shard(render_cfg: dict[str, Any], seed: int, shard: int, out: Path,
                 specs: list[SceneSpec] | None = None, keep_exr: bool = False,
                 seed_keys: list[list[int] | None] | None = None, threads: int = 0) -> dict[str, Any]:
    """Render every frame of `shard` into `out` that is missing or was drawn from other inputs, remove
    frames that no longer belong; write manifest.json at the end.

    With `specs`, render exactly those scenes (e.g. re-render frames from their metadata, with the
    frames' own `seed_keys` where given) into a folder that holds no other frames.
    """
    from tqdm import tqdm

    n = render_cfg["images_per_shard"]
    frames = [s.frame for s in specs] if specs is not None else [f"s{shard:03d}_{i:05d}" for i in range(n)]
    seed_keys = [(seed_keys[i] if seed_keys and seed_keys[i] else [seed, shard, i]) for i in range(len(frames))]
    if specs is not None and out.is_dir():  # never over a shard the workflow rendered: its manifest is its record
        others = sorted(frames_on_disk(out) - set(frames))
        manifest = out / "manifest.json"
        if others or (manifest.exists() and not json.loads(manifest.read_text()).get("from_specs")):
            raise ValueError(f"{out}: holds " + (f"frames that are not in --specs ({', '.join(others[:3])}"
                                                 f"{', ...' if len(others) > 3 else ''})" if others else
                                                 "a shard rendered from the config") +
                             "; render the specs into an empty folder")
    set_kernel_cache(render_cfg["kernel_cache_dir"])  # before Cycles meets a GPU
    bpy = _import_bpy()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    device = configure_render(bpy, render_cfg, threads)
    log.info("Cycles: %s, %d threads (%s)", device, bpy.context.scene.render.threads,
             "fixed" if bpy.context.scene.render.threads_mode == "FIXED" else "every core it sees")
    inputs = shard_inputs(render_cfg, seed, shard, device)
    parts = part_digests(inputs)
    keys = {frame: frame_key(inputs, i, None if specs is None else {"scene": specs[i].to_dict(),
                                                                     "seed_key": seed_keys[i]})
            for i, frame in enumerate(frames)}
    out.mkdir(parents=True, exist_ok=True)
    # The manifest says the shard is done and lists its frames: gone until this run has finished.
    (out / "manifest.json").unlink(missing_ok=True)
    # A run killed mid-write (kill -9, node failure) leaves hidden temp files of atomic writes: drop them.
    for sub in ("rgb", "ids", "meta"):
        remove_stale_temps(out / sub)
    todo, counts = plan_frames(out, keys, parts, keep_exr)
    log.info("%s", describe(shard, len(frames), todo, counts))
    timings = {"render_s": 0.0, "frames_rendered": 0, **counts}
    t_start = time.perf_counter()
    index = {frame: i for i, frame in enumerate(frames)}
    for frame in tqdm(todo, desc=f"render shard {shard}", unit="img", file=sys.stderr):
        i = index[frame]
        spec = specs[i] if specs is not None else sample_scene(np.random.default_rng(seed_keys[i]), render_cfg, frame)
        meta = render_frame(bpy, spec, out, seed_keys[i], keep_exr, keys[frame], parts,
                            render_cfg["light_portals"])
        timings["render_s"] += meta["_render_s"]
        timings["frames_rendered"] += 1
    timings["wall_s"] = time.perf_counter() - t_start
    manifest = {"shard": shard, "seed": seed, "frames": frames, "frame_keys": keys, "from_specs": specs is not None,
                "inputs": {k: inputs[k] for k in ("assets", "code", "packages", "device")}, "input_parts": parts,
                "render": render_cfg, "provenance": provenance({"render": render_cfg, "seed": seed})}
    manifest["provenance"].pop("platform")
    manifest["provenance"]["render_device"] = device
    manifest["provenance"]["render_devices"] = used_devices(bpy)
    manifest["provenance"]["render_threads"] = bpy.context.scene.render.threads
    write_json(out / "manifest.json", manifest)
    if (out / "tmp").exists():
        for f in (out / "tmp").iterdir():
            f.unlink()
        (out / "tmp").rmdir()
    log.info("shard %d: rendered %d frames in %.1f s (%.1f s in Cycles)", shard,
             timings["frames_rendered"], timings["wall_s"], timings["render_s"])
    return timings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blender.render", description=__doc__.splitlines()[0])
    ap.add_argument("--render-json", required=True, help="the `render` config section as JSON")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--shard", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True, help="shard folder")
    ap.add_argument("--keep-exr", action="store_true", help="keep the multilayer EXR of every frame in exr/")
    ap.add_argument("--specs", type=Path, help="JSON list of scene specs (or frame metadata) to render instead")
    ap.add_argument("--threads", type=int, default=0,
                    help="Cycles threads when render.threads is 0 (the workflow passes the job's threads); "
                         "0: every core")
    ap.add_argument("--kernel-cache-dir",
                    help="GPU kernel cache folder, instead of render.kernel_cache_dir (the workflow passes it apart "
                         "from --render-json: it changes no output, so it is no param that reruns the job)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = json.loads(args.render_json)
    if args.kernel_cache_dir is not None:
        cfg["kernel_cache_dir"] = args.kernel_cache_dir
    specs = seed_keys = None
    if args.specs:
        items = json.loads(args.specs.read_text())
        specs = [SceneSpec.from_dict(d.get("scene", d)) for d in items]
        seed_keys = [d.get("seed_key") for d in items]  # frame metadata: re-rendered with its own Cycles seed
    try:
        render_shard(cfg, args.seed, args.shard, args.out, specs, args.keep_exr, seed_keys, args.threads)
    except ValueError as exc:  # AssetError and bad specs: one clear line, frames done so far are kept
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
