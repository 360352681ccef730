"""Shared fixtures: one real tiny bpy render per test session, annotated with pycocotools."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def tiny_render_cfg(**over):
    """`render` section for tiny test renders (defaults come from the schema)."""
    from pipeline.config import validate

    cfg = validate({"name": "t", "seed": 0, "classes": ["pedestrian", "pallet_jack"],
                    "model": {"weights": "none"},
                    "render": {"images_per_shard": 2, "resolution_px": [128, 96], "samples": 4,
                               "max_bounces": 2, "camera_distance_m": [5.0, 7.0], "camera_height_m": [2.0, 3.0],
                               **over}})
    return cfg["render"]


def run_render(cfg: dict, out: Path, seed: int = 0, shard: int = 0, specs: list | None = None,
               keep_exr: bool = False, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    """Render a shard in a separate process (bpy state never leaks into the test process);
    with `specs` (SceneSpec list), exactly those scenes (`--specs`, written beside `out`)."""
    extra = (["--keep-exr"] if keep_exr else []) + list(extra or [])
    if specs is not None:
        path = out.with_name(out.name + "_specs.json")
        path.write_text(json.dumps([s.to_dict() for s in specs]))
        extra += ["--specs", str(path)]
    return subprocess.run([sys.executable, "-m", "blender.render", "--render-json", json.dumps(cfg),
                           "--seed", str(seed), "--shard", str(shard), "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def load_frame(shard: Path, frame: str):
    """(metadata, instance-id map, RGB) of one rendered frame."""
    import cv2

    meta = json.loads((shard / "meta" / f"{frame}.json").read_text())
    return (meta, cv2.imread(str(shard / meta["ids_file"]), cv2.IMREAD_UNCHANGED),
            cv2.imread(str(shard / meta["file_name"])))


@pytest.fixture(scope="session")
def rendered_shard(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render") / "shard_000"
    # One Cycles thread, as the workflow passes a job's threads; test_faults re-renders this shard with
    # every core and compares bytes: the thread count must not change a frame (it is not in the key).
    res = run_render(tiny_render_cfg(), out, extra=["--threads", "1"])
    assert res.returncode == 0, res.stderr[-3000:]
    (out.parent / "render.log").write_text(res.stderr)
    return out


@pytest.fixture(scope="session")
def shard_coco(rendered_shard) -> dict:
    from pipeline.coco import annotate_shard

    return annotate_shard(rendered_shard, ["pedestrian", "pallet_jack"], min_visible_pixels=1)
