"""What a rendered frame is drawn from, as one key: a rerun keeps a frame only while its key matches.

A frame's key is the SHA-256 of: the render settings that shape the image, the seed, shard and
frame index (or, for frames rendered from given scene specs, the spec itself), the content of
every asset file the scene could draw from, the scene code (every .py file of blender/), and the
versions of the packages that build and render it (bpy, anny). Pure Python (no bpy): the renderer
uses it to decide what to keep, the Snakefile to declare the files render reads, tests to check both.

Settings that only say how much or where to render do not change a frame, so they are left out:
`shards` and `images_per_shard` (frame i of shard s is the same scene whatever the counts),
`threads`, and `device` (CPU and GPU Cycles render the same scene; the manifest records which ran).
"""
from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.io import file_sha256, files_sha256, read_json

SCENE_CODE = Path(__file__).resolve().parent  # blender/: everything that builds, renders and labels a frame
NOT_DRAWN = ("shards", "images_per_shard", "threads", "device")
PACKAGES = ("bpy", "anny")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_files() -> list[Path]:
    """The scene code: every Python file of blender/, sorted."""
    return sorted(SCENE_CODE.glob("*.py"))


def code_version() -> str:
    """One hash over the scene code's file names and contents."""
    return files_sha256(code_files())


def asset_files(render_cfg: dict[str, Any]) -> list[str]:
    """Every model file of the configured asset folders (what a scene may draw from), sorted."""
    from blender.spec import asset_files as folder_files

    return sorted(f for _, folder in sorted(render_cfg.get("assets", {}).items()) for f in folder_files(folder))


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def shard_inputs(render_cfg: dict[str, Any], seed: int, shard: int) -> dict[str, Any]:
    """Everything a frame of this shard is drawn from except its index (computed once per shard)."""
    return {"render": {k: v for k, v in sorted(render_cfg.items()) if k not in NOT_DRAWN},
            "seed": seed, "shard": shard,
            "assets": {path: file_sha256(Path(path)) for path in asset_files(render_cfg)},
            "code": code_version(), "packages": package_versions()}


def frame_key(inputs: dict[str, Any], index: int, spec: dict[str, Any] | None = None) -> str:
    """The key of frame `index` of a shard with `inputs` (shard_inputs); with `spec`, of a frame
    rendered from that given scene spec instead of one drawn from the seed."""
    drawn = {**inputs, "index": index} if spec is None else {**inputs, "index": index, "spec": spec}
    return _sha256(json.dumps(drawn, sort_keys=True, separators=(",", ":")).encode())


FRAME_FILES = (("rgb", ".png"), ("ids", ".png"), ("meta", ".json"), ("exr", ".exr"))


def remove_frame(out: Path, frame: str) -> None:
    """Delete a frame's files, metadata first: a frame without meta counts as not rendered."""
    for sub, suffix in sorted(FRAME_FILES, key=lambda f: f[0] != "meta"):
        (out / sub / f"{frame}{suffix}").unlink(missing_ok=True)


def frames_on_disk(out: Path) -> set[str]:
    """Names of the frames with any file in the shard folder."""
    return {p.stem for sub, suffix in FRAME_FILES if (out / sub).is_dir()
            for p in (out / sub).iterdir() if p.suffix == suffix and not p.name.startswith(".")}


def plan_frames(out: Path, keys: dict[str, str], code: str) -> tuple[list[str], dict[str, int]]:
    """Which frames to (re)render: those missing or drawn from other inputs; removes frames that no
    longer belong to the shard. Returns (frames to render, counts by reason)."""
    counts = {"kept": 0, "missing": 0, "settings_changed": 0, "code_changed": 0, "removed": 0}
    for frame in sorted(frames_on_disk(out) - set(keys)):
        remove_frame(out, frame)
        counts["removed"] += 1
    todo = []
    for frame, key in keys.items():
        meta_path = out / "meta" / f"{frame}.json"
        if not meta_path.exists():
            counts["missing"] += 1
        else:
            meta = read_json(meta_path)
            complete = all((out / sub / f"{frame}.png").exists() for sub in ("rgb", "ids"))
            if meta.get("input_key") == key and complete:
                counts["kept"] += 1
                continue
            reason = ("missing" if meta.get("input_key") == key else
                      "code_changed" if meta.get("code_version") not in (None, code) else "settings_changed")
            counts[reason] += 1
            remove_frame(out, frame)
        todo.append(frame)
    return todo, counts
