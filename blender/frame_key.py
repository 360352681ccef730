"""What a rendered frame is drawn from, as one key: a rerun keeps a frame only while its key matches.

A frame's key is the SHA-256 of five parts and the frame's index (plus, for frames rendered from
given scene specs, the spec itself):
- settings: the render settings that shape the image, the seed and the shard;
- assets:   the content of every file in the `render.assets` folders (models, .mtl, textures, .bin);
- code:     the scene code, every .py file of blender/;
- packages: the versions of what builds and renders it (bpy, anny, torch, warp, numpy, OpenCV);
- device:   the device Cycles renders on ("CPU", "GPU (OPTIX)", ...): their pixels differ.
Each frame's metadata keeps the digest of each part, so a rerun can say which part changed.
Pure Python (no bpy): the renderer uses it to decide what to keep, the Snakefile to declare the
files render reads, tests to check both.

Settings that only say how much or where to render do not change a frame, so they are left out:
`shards` and `images_per_shard` (frame i of shard s is the same scene whatever the counts),
`threads`, `kernel_cache_dir`, and `device` (the configured choice: the device it resolves to is the
`device` part).
"""
from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.io import file_sha256, files_sha256, read_json

SCENE_CODE = Path(__file__).resolve().parent  # blender/: everything that builds, renders and labels a frame
NOT_DRAWN = ("shards", "images_per_shard", "threads", "device", "kernel_cache_dir")
PACKAGES = ("bpy", "anny", "torch", "warp-lang", "numpy", "opencv-python-headless")
PARTS = ("settings", "assets", "code", "packages", "device")
# (folder, suffix) of a frame's files; meta is written last, so a frame is complete once it exists
FRAME_FILES = (("rgb", ".png"), ("ids", ".png"), ("meta", ".json"), ("exr", ".exr"))


def _sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def code_files() -> list[Path]:
    """The scene code: every Python file of blender/, sorted."""
    return sorted(SCENE_CODE.glob("*.py"))


def code_version() -> str:
    """One hash over the scene code's file names and contents."""
    return files_sha256(code_files())


def asset_files(render_cfg: dict[str, Any]) -> list[str]:
    """Every file of the configured asset folders, in subfolders too (an .obj's .mtl and textures, a
    .gltf's .bin and images are read with it), hidden files left out; sorted."""
    files = set()
    for folder in render_cfg.get("assets", {}).values():
        if folder and Path(folder).is_dir():
            files |= {str(p) for p in Path(folder).rglob("*") if p.is_file()
                      and not any(part.startswith(".") for part in p.relative_to(folder).parts)}
    return sorted(files)


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def shard_inputs(render_cfg: dict[str, Any], seed: int, shard: int, device: str = "CPU") -> dict[str, Any]:
    """Every part a frame of this shard is drawn from (computed once per shard)."""
    return {"settings": {"render": {k: v for k, v in sorted(render_cfg.items()) if k not in NOT_DRAWN},
                         "seed": seed, "shard": shard},
            "assets": {path: file_sha256(path) for path in asset_files(render_cfg)},
            "code": code_version(), "packages": package_versions(), "device": device}


def part_digests(inputs: dict[str, Any]) -> dict[str, str]:
    """A digest per part of `inputs` (stored in each frame's metadata)."""
    return {part: _sha256(inputs[part]) for part in PARTS}


def frame_key(inputs: dict[str, Any], index: int, spec: dict[str, Any] | None = None) -> str:
    """The key of frame `index` of a shard with `inputs` (shard_inputs); with `spec`, of a frame
    rendered from that given scene spec instead of one drawn from the seed."""
    return _sha256({**part_digests(inputs), "index": index, "spec": spec})


def remove_frame(out: Path, frame: str) -> None:
    """Delete a frame's files, metadata first: a frame without meta counts as not rendered."""
    for sub, suffix in sorted(FRAME_FILES, key=lambda f: f[0] != "meta"):
        (out / sub / f"{frame}{suffix}").unlink(missing_ok=True)


def frames_on_disk(out: Path) -> set[str]:
    """Names of the frames with any file in the shard folder."""
    return {p.stem for sub, suffix in FRAME_FILES if (out / sub).is_dir()
            for p in (out / sub).iterdir() if p.suffix == suffix and not p.name.startswith(".")}


def plan_frames(out: Path, keys: dict[str, str], parts: dict[str, str],
                keep_exr: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Which frames to (re)render: those missing, incomplete, or drawn from other inputs (their files
    are removed now); frames that no longer belong to the shard are removed.
    Returns (frames to render, counts: kept, missing, unkeyed, stale, removed and, per part, how many
    stale frames were drawn with another version of it)."""
    counts: dict[str, Any] = {"kept": 0, "missing": 0, "unkeyed": 0, "stale": 0, "removed": 0,
                              "changed": {part: 0 for part in PARTS}}
    for frame in sorted(frames_on_disk(out) - set(keys)):
        remove_frame(out, frame)
        counts["removed"] += 1
    needed = [("rgb", ".png"), ("ids", ".png")] + ([("exr", ".exr")] if keep_exr else [])
    todo = []
    for frame, key in keys.items():
        meta_path = out / "meta" / f"{frame}.json"
        meta = read_json(meta_path) if meta_path.exists() else None
        complete = meta is not None and all((out / sub / f"{frame}{suffix}").exists() for sub, suffix in needed)
        if complete and meta.get("input_key") == key:
            counts["kept"] += 1
            continue
        if meta is None or meta.get("input_key") == key:
            counts["missing"] += 1
        elif not meta.get("input_key"):
            counts["unkeyed"] += 1  # rendered before frames had keys, or by a tool that gives none
        else:
            counts["stale"] += 1
            for part, digest in parts.items():
                counts["changed"][part] += (meta.get("input_parts") or {}).get(part) != digest
        remove_frame(out, frame)
        todo.append(frame)
    return todo, counts


def describe(shard: int, total: int, todo: list[str], counts: dict[str, Any]) -> str:
    """One log line: what a rerun of the shard keeps, renders and removes, and why."""
    changed = ", ".join(f"{part} {n}" for part, n in counts["changed"].items() if n)
    return (f"shard {shard}: {total} frames; kept {counts['kept']} drawn from the same inputs, rendering "
            f"{len(todo)} ({counts['missing']} missing, {counts['unkeyed']} rendered before frames had keys, "
            f"{counts['stale']} drawn from other inputs" + (f": changed {changed}" if changed else "")
            + f"); removed {counts['removed']} that no longer belong")
