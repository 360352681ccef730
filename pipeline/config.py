"""Load and validate a scenario config against configs/schema.yaml (defaults filled in)."""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "configs" / "schema.yaml"
RANGE_KEYS = ("pedestrians_per_image", "pallet_jacks_per_image", "distractors_per_image",
              "camera_height_m", "camera_distance_m", "focal_mm", "sun_strength", "area_light_w",
              "ceiling_height_m", "windows_per_wall", "exposure_s", "pedestrian_speed_mps",
              "pallet_jack_speed_mps", "sensor_noise_sigma", "light_kelvin", "readout_ms")
PROCEDURAL_CLASSES = ("pedestrian", "pallet_jack")
# ranges of render.camera_image and the bounds their values must keep
CAMERA_IMAGE_BOUNDS = {"chromatic_aberration_px": (0, 10), "vignetting_strength": (0, 0.95),
                       "white_balance_shift": (-2, 2), "white_balance_tint": (-1, 1), "gamma": (0.2, 5),
                       "contrast": (0.2, 5), "infrared_falloff": (0, 0.95), "sharpen_amount": (0, 5),
                       "resample_scale": (0.1, 1), "jpeg_quality": (1, 100), "h264_crf": (0, 51)}


class ConfigError(ValueError):
    """A config value is wrong; the message names the file and key."""


def check_rig(rig: dict[str, Any], where: str, render: dict[str, Any]) -> None:
    """A camera rig's ranges are ordered, it stays under the ceiling, its lenses render (corners within
    90 deg of the axis, a monotone polynomial) over a grid of its ranges, and it can be placed."""
    if len(rig["pitch_deg"]) == 1:
        raise ConfigError(f"{where}.pitch_deg: give [min, max], or [] to draw distance_m")
    for key in ("height_m", "pitch_deg", "distance_m", "hfov_deg", "distortion"):
        if rig[key] and rig[key][0] > rig[key][1]:
            raise ConfigError(f"{where}.{key}: min {rig[key][0]} > max {rig[key][1]}")
    if rig["height_m"][0] <= 0 or rig["height_m"][1] >= render["ceiling_height_m"][0] - 0.5:
        raise ConfigError(f"{where}.height_m: {rig['height_m']} must lie above 0 and at least 0.5 m below the lowest "
                          f"ceiling (render.ceiling_height_m min {render['ceiling_height_m'][0]})")
    import numpy as np

    from blender.lens import lens_model
    from blender.spec import ObjectSpec, place_rig

    width, height = render["resolution_px"]
    for hfov in np.linspace(*rig["hfov_deg"], 9):  # where lenses fail is no convex region: a grid, not corners
        for d in np.linspace(*rig["distortion"], 9):
            try:
                lens_model(float(hfov), float(d), width, height)
            except ValueError as e:
                raise ConfigError(f"{where}: hfov_deg {rig['hfov_deg']} with distortion {rig['distortion']}: {e}") from None
    # the rig can be placed: 40 scenes of one person anywhere in the object area (nothing else in the way)
    rng = np.random.default_rng(0)
    area = render["object_area_m"]
    failed = 0
    for i in range(40):
        person = ObjectSpec("inst_001", "pedestrian", "pedestrian", 1,
                            (float(rng.uniform(-area, area)), float(rng.uniform(-area, area)), 0.0), 0.0, {})
        try:
            place_rig(rng, rig, where.rsplit(".", 1)[-1], [person], [], f"check_{i}")
        except ValueError as e:
            failed += 1
            reason = str(e).split(": ", 1)[1]
    if failed:
        raise ConfigError(f"{where}: {failed} of 40 test scenes found no camera position ({reason})")


def _fill_defaults(schema: dict, node: Any, root: dict | None = None) -> Any:
    """Insert `default` values from the schema into missing keys (recursively). A record given in
    part (a $ref to a definition without additional keys, e.g. one kind of `resources`) takes its
    other keys from its default."""
    root = root or schema
    if schema.get("type") == "object" and isinstance(node, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in node and "default" in sub:
                node[key] = copy.deepcopy(sub["default"])
            elif isinstance(node.get(key), dict) and isinstance(sub.get("default"), dict) and "$ref" in sub:
                ref = root["definitions"][sub["$ref"].rsplit("/", 1)[-1]]
                if ref.get("additionalProperties") is False:
                    node[key] = {**copy.deepcopy(sub["default"]), **node[key]}
            if key in node:
                _fill_defaults(sub, node[key], root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):  # named entries (e.g. datasets.<name>) take their record's defaults
            for key, value in node.items():
                if key not in schema.get("properties", {}):
                    _fill_defaults(extra, value, root)
    return node


def validate(cfg: dict[str, Any], source: str = "<config>") -> dict[str, Any]:
    """Validate `cfg` (a dict), fill defaults and return it; raise ConfigError naming the key."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(cfg).__name__}")
    for section in ("render", "annotate", "split", "model", "train", "evaluate", "report", "compare", "proof",
                    "resources"):
        cfg.setdefault(section, {})
    moved = [k for k in ("real_ann", "real_image_root") if k in (cfg.get("evaluate") or {})]
    if moved:
        raise ConfigError(f"{source}: evaluate.{moved[0]} was replaced by named real sets: write "
                          "datasets: {real: {ann: <COCO json>, images: <folder>, category_map: {their name: our class}}}")
    cfg = _fill_defaults(schema, cfg)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            raise ConfigError(f"{source}: unknown key {key + '.' if err.absolute_path else ''}{extra[0]} "
                              f"(allowed: {', '.join(sorted(err.schema['properties']))})")
        raise ConfigError(f"{source}: {key}: {err.message}")
    for key in RANGE_KEYS:
        lo, hi = cfg["render"][key]
        if lo > hi:
            raise ConfigError(f"{source}: render.{key}: min {lo} > max {hi}")
    for key, (low, high) in CAMERA_IMAGE_BOUNDS.items():
        lo, hi = cfg["render"]["camera_image"][key]
        if not low <= lo <= hi <= high:
            raise ConfigError(f"{source}: render.camera_image.{key}: need {low} <= min <= max <= {high}, got [{lo}, {hi}]")
    if cfg["render"]["camera_height_m"][1] >= cfg["render"]["ceiling_height_m"][0] - 0.5:
        raise ConfigError(f"{source}: render.camera_height_m: max {cfg['render']['camera_height_m'][1]} must be at "
                          f"least 0.5 m below the lowest ceiling (render.ceiling_height_m min "
                          f"{cfg['render']['ceiling_height_m'][0]})")
    for name, rig in cfg["render"]["camera_rigs"].items():
        check_rig(rig, f"{source}: render.camera_rigs.{name}", cfg["render"])
    rigs = cfg["render"]["camera_rigs"]
    if rigs and not any(r["weight"] > 0 for r in rigs.values()):
        raise ConfigError(f"{source}: render.camera_rigs: every rig has weight 0; give one a weight, or write "
                          "camera_rigs: {} in a config file for the single rig of camera_height_m/camera_distance_m")
    if not (0 < cfg["render"]["exposure_s"][0] and cfg["render"]["exposure_s"][1] <= 0.2):
        raise ConfigError(f"{source}: render.exposure_s: need 0 < min <= max <= 0.2 s, got {cfg['render']['exposure_s']}")
    rs = cfg["render"]
    if rs["rolling_shutter_prob"] > 0 and not (0 < rs["readout_ms"][0] and rs["exposure_s"][1] + rs["readout_ms"][1] / 1000 <= 0.2):
        raise ConfigError(f"{source}: render.readout_ms {rs['readout_ms']}: need min > 0 and exposure_s max + readout "
                          f"max <= 0.2 s (motion is keyed 0.1 s either side of the frame), got exposure_s {rs['exposure_s']}")
    if cfg["train"]["warmup_iters"] >= cfg["train"]["iterations"]:
        raise ConfigError(f"{source}: train.warmup_iters ({cfg['train']['warmup_iters']}) must be below train.iterations "
                          f"({cfg['train']['iterations']}): the learning rate would never leave its warmup")
    lo, hi = cfg["train"]["scale_jitter"]
    if not 0 < lo <= hi:
        raise ConfigError(f"{source}: train.scale_jitter: need 0 < min <= max, got [{lo}, {hi}]")
    missing = [c for c in PROCEDURAL_CLASSES if c not in cfg["classes"]]
    if missing:
        raise ConfigError(f"{source}: classes must include {missing} (the procedural generators emit them)")
    split = cfg["split"]
    total = split["train"] + split["val"] + split["test"]
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"{source}: split.train + split.val + split.test must be 1, got {total:g}")
    sizes = cfg["model"].get("anchor_sizes")
    if sizes is not None and any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ConfigError(f"{source}: model.anchor_sizes: one size per FPN level P2-P6, finest first, each larger "
                          f"than the one before; got {sizes}")
    weights = cfg["model"]["weights"]
    if weights not in ("coco", "none") and not Path(weights).is_file():
        raise ConfigError(f"{source}: model.weights: {weights!r} is neither coco, none nor an existing file")
    for cls, folder in cfg["render"]["assets"].items():
        if not folder:
            continue
        if not Path(folder).is_dir():
            raise ConfigError(f"{source}: render.assets.{cls}: {folder!r} is not a folder")
        from blender.spec import asset_files

        if not asset_files(folder):
            raise ConfigError(f"{source}: render.assets.{cls}: {folder!r} holds no .blend, .glb, .gltf or .obj file")
    if cfg["compare"]["zero_shot"] and weights == "none":
        raise ConfigError(f"{source}: compare.zero_shot needs a pretrained model (model.weights coco or a path), "
                          "got none")
    for cls in cfg["compare"]["zero_shot_map"]:
        if cls not in cfg["classes"]:
            raise ConfigError(f"{source}: compare.zero_shot_map: {cls!r} is not one of classes {cfg['classes']}")
    if cfg["evaluate"]["checkpoint"] == "best" and cfg["train"]["eval_every"] == 0:
        raise ConfigError(f"{source}: evaluate.checkpoint: best needs validation during training "
                          "(train.eval_every > 0), which picks best.pth")
    if cfg["evaluate"]["checkpoint"] == "best" and cfg["evaluate"]["split"] == "val":
        # training validates on the val split and keeps the best of those scores as best.pth: scoring
        # best.pth on val again reports a number the model was selected for (optimistic)
        raise ConfigError(f"{source}: evaluate.checkpoint: best is picked on the val split (train.eval_every), "
                          "so evaluate.split: val would score the model on the images that chose it; "
                          "use evaluate.split: test (or evaluate.checkpoint: final)")
    for name, entry in cfg["datasets"].items():
        where = f"{source}: datasets.{name}"
        if not Path(entry["ann"]).is_file():
            raise ConfigError(f"{where}.ann: {entry['ann']!r} does not exist")
        if not Path(entry["images"]).is_dir():
            raise ConfigError(f"{where}.images: {entry['images']!r} is not a folder")
        for theirs, ours in entry["category_map"].items():
            if ours not in cfg["classes"]:
                raise ConfigError(f"{where}.category_map.{theirs}: {ours!r} is not one of classes {cfg['classes']}")
    for kind, res in cfg["resources"].items():
        if isinstance(res, dict) and res.get("gpu_model") and not res["gpus"]:
            raise ConfigError(f"{source}: resources.{kind}.gpu_model: {res['gpu_model']!r} needs gpus > 0, got 0")
    # profiles/slurm runs annotate in its shard's render job (one group job: one partition)
    render_kind = "render_gpu" if cfg["render"]["device"] == "GPU" else "render"
    annotate_partition, render_partition = cfg["resources"]["annotate"].get("partition"), job_partition(
        cfg["resources"], render_kind)
    if annotate_partition and annotate_partition != render_partition:
        raise ConfigError(f"{source}: resources.annotate.partition: {annotate_partition!r} differs from the partition "
                          f"of the render jobs it runs with ({render_partition or 'the default partition'!r}, "
                          f"resources.{render_kind}): annotate runs in its shard's render job (profiles/slurm "
                          f"groups them), which has one partition; remove resources.annotate.partition "
                          f"(annotate takes the render's) or set resources.{render_kind}.partition")
    _validate_proof(cfg, source)
    _validate_real_train(cfg, source)
    return cfg


def section_defaults(section: str, partial: dict[str, Any] | str | None = None,
                     argument: str | None = None) -> dict[str, Any]:
    """One config section (e.g. `evaluate`) given in part -> complete, from the schema's defaults, and checked.

    `partial` may be the JSON text of a CLI argument; errors name `argument` (e.g. --eval-cfg) and the key."""
    import json

    import jsonschema

    where = f"{argument}: " if argument else ""
    if isinstance(partial, str):
        try:
            partial = json.loads(partial)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}not valid JSON ({exc}); give the `{section}` section as a JSON object, "
                              "e.g. '{}' for all defaults") from None
    partial = {} if partial is None else partial
    if not isinstance(partial, dict):
        raise ConfigError(f"{where}the `{section}` section must be a JSON object, got {type(partial).__name__}")
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    sub = schema["properties"][section]
    allowed = sorted(sub.get("properties", {}))
    unknown = sorted(set(partial) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}unknown key {section}.{unknown[0]} (allowed: {', '.join(allowed)})")
    cfg = _fill_defaults(sub, copy.deepcopy(partial), schema)
    errors = sorted(jsonschema.Draft202012Validator({**sub, "definitions": schema["definitions"]}).iter_errors(cfg),
                    key=lambda e: list(e.absolute_path))
    if errors:
        key = ".".join([section, *(str(p) for p in errors[0].absolute_path)])
        raise ConfigError(f"{where}{key}: {errors[0].message}")
    return cfg


def section_arg(section: str) -> Callable[[str], dict[str, Any]]:
    """argparse `type=` of a config-section JSON argument (--eval-cfg ...): keys left out take the schema's
    defaults; an unknown key or bad value stops argparse with the argument and key named."""
    def parse(text: str) -> dict[str, Any]:
        try:
            return section_defaults(section, text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = f"`{section}` section JSON"
    return parse


def site_b_render(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `render` section of proof site B: proof.site_b merged over render, sharded to hold
    max(train_images) + val_images + test_images images (the last shard may add a few to the pool)."""
    proof = cfg["proof"]
    total = max(proof["train_images"]) + proof["val_images"] + proof["test_images"]
    return merge(cfg["render"], {**proof["site_b"], "shards": proof["shards"],
                                 "images_per_shard": -(-total // proof["shards"])})


def job_partition(resources: dict[str, Any], kind: str) -> str:
    """The SLURM partition of jobs of `kind` by the `resources` table (empty: the cluster's default)."""
    res = resources[kind]
    return res.get("partition") or resources["gpu_partition" if res["gpus"] else "cpu_partition"]


def proof_fractions(cfg: dict[str, Any]) -> dict[str, float]:
    """split fractions that cut the site-B images into exactly val_images / test_images, the rest train."""
    proof, render = cfg["proof"], site_b_render(cfg)
    total = render["shards"] * render["images_per_shard"]
    val, test = proof["val_images"] / total, proof["test_images"] / total
    return {"train": 1.0 - val - test, "val": val, "test": test}


def _validate_proof(cfg: dict[str, Any], source: str) -> None:
    """proof.site_b and proof.train are checked as the render/train sections they become."""
    proof = cfg["proof"]
    if not proof["site_b"] and not proof["train"]:
        return
    for key in ("shards", "images_per_shard"):
        if key in proof["site_b"]:
            raise ConfigError(f"{source}: proof.site_b.{key}: site B's size comes from proof.shards, "
                              "proof.train_images, proof.val_images and proof.test_images")
    derived = {k: copy.deepcopy(v) for k, v in cfg.items() if k != "proof"}
    derived["render"] = site_b_render(cfg)
    derived["train"] = merge(cfg["train"], proof["train"])
    validate(derived, f"{source} (proof.site_b over render, proof.train over train)")


def _validate_real_train(cfg: dict[str, Any], source: str) -> None:
    """real_train names a `datasets:` entry, cuts it whole, and its train keys make a valid train section."""
    real = cfg["real_train"]
    if not real["dataset"]:
        return
    if real["dataset"] not in cfg["datasets"]:
        raise ConfigError(f"{source}: real_train.dataset: {real['dataset']!r} is not a `datasets:` entry "
                          f"(have: {', '.join(cfg['datasets']) or 'none'})")
    total = sum(real["split"].values())
    if abs(total - 1.0) > 1e-6 or not real["split"]["train"] or not real["split"]["test"]:
        raise ConfigError(f"{source}: real_train.split: train + val + test must be 1 with train and test above 0, "
                          f"got {real['split']}")
    derived = {k: copy.deepcopy(v) for k, v in cfg.items() if k != "real_train"}
    derived["train"] = merge(cfg["train"], real["train"])
    derived["evaluate"]["checkpoint"] = "final"  # real runs are scored at their final weights
    validate(derived, f"{source} (real_train.train over train)")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config with yaml.safe_load, apply `overrides` (merged), validate."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if overrides:
        cfg = merge(cfg or {}, overrides)
    return validate(cfg, str(path))


def merge(base: dict, extra: dict) -> dict:
    """Recursive dict merge (extra wins), used for Snakemake --config overrides."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline validate", description="Validate a config file.")
    ap.add_argument("config", type=Path)
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(cfg, sort_keys=False))
    return 0
