from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, load_config, validate

REPO = Path(__file__).resolve().parent.parent


def base(**over):
    cfg = {"name": "t", "seed": 0, "classes": ["pedestrian", "pallet_jack"], "model": {"weights": "none"}}
    cfg.update(over)
    return cfg


@pytest.mark.parametrize("name", ["smoke", "default", "proof_cpu", "bench320", "bench640"])
def test_shipped_configs_validate(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg["name"] == name and cfg["render"]["samples"] >= 1


def test_defaults_filled_from_schema():
    cfg = validate(base())
    assert cfg["render"]["resolution_px"] == [640, 480]
    assert cfg["train"]["momentum"] == 0.9


@pytest.mark.parametrize("over, words", [
    ({"render": {"bogus": 1}}, ["unknown key", "render.bogus"]),
    ({"colour": 1}, ["unknown key", "colour"]),
    ({"render": {"samples": "many"}}, ["render.samples", "not of type"]),
    ({"render": {"shards": -1}}, ["render.shards", "minimum"]),
    ({"render": {"samples": 0}}, ["render.samples"]),
    ({"render": {"resolution_px": [0, 480]}}, ["render.resolution_px"]),
    ({"classes": []}, ["classes"]),
    ({"render": {"focal_mm": [50, 20]}}, ["render.focal_mm", "min 50 > max 20"]),
    ({"split": {"train": 0.5, "val": 0.1, "test": 0.1}}, ["split", "must be 1"]),
    ({"model": {"weights": "/no/such/file.pth"}}, ["model.weights", "/no/such/file.pth"]),
    ({"name": "../evil"}, ["name"]),
    ({"compare": {"zero_shot": True}}, ["compare.zero_shot", "needs a pretrained model"]),
    ({"compare": {"transfer_modes": ["half"]}}, ["compare.transfer_modes"]),
    ({"compare": {"zero_shot_map": {"forklift": "truck"}}}, ["compare.zero_shot_map", "forklift"]),
    ({"evaluate": {"real_ann": "x.json"}}, ["evaluate.real_ann was replaced", "datasets:"]),
    ({"datasets": {"site": {"ann": "/no/real.json", "images": "/"}}}, ["datasets.site.ann", "/no/real.json"]),
    ({"datasets": {"site": {"ann": __file__, "images": "/no/folder"}}}, ["datasets.site.images", "/no/folder"]),
    ({"datasets": {"site": {"ann": __file__, "images": "/", "category_map": {"person": "human"}}}},
     ["datasets.site.category_map.person", "'human'"]),
    ({"datasets": {"site": {"ann": __file__}}}, ["datasets.site", "'images' is a required property"]),
    ({"datasets": {"../up": {"ann": __file__, "images": "/"}}}, ["datasets", "../up"]),
    ({"datasets": {"site": {"ann": __file__, "images": "/", "unmapped": "keep"}}}, ["datasets.site.unmapped"]),
    ({"annotate": {"min_visibility": 1.5}}, ["annotate.min_visibility"]),
    ({"train": {"scale_jitter": [1.2, 0.8]}}, ["train.scale_jitter", "min <= max"]),
    ({"render": {"camera_height_m": [2, 9]}}, ["render.camera_height_m", "below the lowest ceiling"]),
    ({"render": {"exposure_s": [0.01, 0.5]}}, ["render.exposure_s", "<= 0.2"]),
    ({"render": {"windows_per_wall": [3, 1]}}, ["render.windows_per_wall", "min 3 > max 1"]),
    ({"render": {"sensor_noise_prob": 2}}, ["render.sensor_noise_prob"]),
    ({"evaluate": {"checkpoint": "best"}, "train": {"eval_every": 0}}, ["evaluate.checkpoint", "train.eval_every > 0"]),
    ({"evaluate": {"checkpoint": "last"}}, ["evaluate.checkpoint"]),
    ({"train": {"ema_decay": 1.0}}, ["train.ema_decay"]),
    ({"model": {"anchor_sizes": [16, 32, 64, 128]}}, ["model.anchor_sizes"]),
    ({"model": {"anchor_sizes": [16, 32, 32, 64, 128]}}, ["model.anchor_sizes", "larger than the one before"]),
    ({"model": {"anchor_aspect_ratios": [0.0, 1.0]}}, ["model.anchor_aspect_ratios"]),
    ({"model": {"mask_roi_size": 4}}, ["model.mask_roi_size"]),
    ({"train": {"loss_weights": {"loss_masks": 2}}}, ["train.loss_weights", "loss_masks"]),
    ({"train": {"aspect_ratio_group_factor": -2}}, ["train.aspect_ratio_group_factor"]),
    ({"compare": {"zero_shot_size_px": [800]}}, ["compare.zero_shot_size_px"]),
    ({"render": {"floor_kinds": ["lava"]}}, ["render.floor_kinds", "lava"]),
    ({"render": {"wall_colors": [[0.5, 0.5]]}}, ["render.wall_colors"]),
    ({"render": {"light_kelvin": [6000, 3000]}}, ["render.light_kelvin", "min 6000 > max 3000"]),
    ({"render": {"workwear_colors": []}}, ["render.workwear_colors"]),
    ({"render": {"rolling_shutter_prob": 0.5, "readout_ms": [10, 190]}}, ["render.readout_ms", "0.2 s"]),
    ({"proof": {"seeds": []}}, ["proof.seeds"]),
    ({"proof": {"starts": ["pooled", "pooled"]}}, ["proof.starts"]),
    ({"proof": {"site_b": {"floor_kinds": ["lava"]}}}, ["proof.site_b over render", "render.floor_kinds", "lava"]),
    ({"proof": {"site_b": {"camera_height_m": [3.5, 9.0]}}}, ["proof.site_b over render", "below the lowest ceiling"]),
    ({"proof": {"site_b": {"shards": 8}}}, ["proof.site_b.shards", "proof.shards"]),
    ({"proof": {"train": {"iterations": 0}}}, ["proof.train over train", "train.iterations"]),
    ({"proof": {"starts": ["full"]}}, ["proof.starts"]),
    ({"train": {"iterations": 50, "warmup_iters": 50}}, ["train.warmup_iters (50)", "below train.iterations (50)"]),
    ({"render": {"camera_image": {"jpeg_quality": [95, 30]}}}, ["render.camera_image.jpeg_quality", "[95, 30]"]),
    ({"render": {"camera_image": {"resample_scale": [0.5, 2.0]}}}, ["render.camera_image.resample_scale", "<= 1"]),
    ({"real_train": {"dataset": "dock"}}, ["real_train.dataset", "'dock'", "not a `datasets:` entry"]),
    ({"datasets": {"site": {"ann": "examples/site/instances_default.json", "images": "examples/site/images"}},
      "real_train": {"dataset": "site", "split": {"train": 0.8, "val": 0.2, "test": 0.0}}},
     ["real_train.split", "train and test above 0"]),
    ({"datasets": {"site": {"ann": "examples/site/instances_default.json", "images": "examples/site/images"}},
      "real_train": {"dataset": "site", "train": {"iterations": 20}}},
     ["real_train.train over train", "train.warmup_iters", "below train.iterations (20)"]),
    ({"proof": {"test_images": 0}}, ["proof.test_images"]),
    ({"resources": {"train": {"gpus": -1}}}, ["resources.train.gpus", "minimum"]),
    ({"resources": {"render": {"threads": 0}}}, ["resources.render.threads", "minimum"]),
    ({"resources": {"evaluate": {"mem_mb": "16G"}}}, ["resources.evaluate.mem_mb", "not of type"]),
    ({"resources": {"train": {"runtime": 60}}}, ["unknown key", "resources.train.runtime", "runtime_min"]),
    ({"resources": {"training": {"gpus": 2}}}, ["unknown key", "resources.training", "train"]),
    ({"resources": {"gpu_partition": "gpu a100"}}, ["resources.gpu_partition", "gpu a100"]),
    ({"resources": {"evaluate": {"gpus": 0, "gpu_model": "a100"}}}, ["resources.evaluate.gpu_model", "gpus > 0"]),
    ({"resources": {"train": {"gpu_model": "a'100"}}}, ["resources.train.gpu_model"]),
    # annotate runs in its shard's render job (profiles/slurm), which has one partition
    ({"resources": {"annotate": {"partition": "short"}}},
     ["resources.annotate.partition", "'short'", "the default partition", "resources.render.partition"]),
    ({"resources": {"cpu_partition": "cpu", "annotate": {"partition": "short"}}},
     ["resources.annotate.partition", "'cpu'", "resources.render)"]),
    ({"render": {"device": "GPU"}, "resources": {"gpu_partition": "gpu", "annotate": {"partition": "cpu"}}},
     ["resources.annotate.partition", "'gpu'", "resources.render_gpu.partition"]),
    ({"proof": {"site_b": {"device": "GPU"}}, "resources": {"annotate": {"partition": "cpu"}, "cpu_partition": "cpu",
                                                            "gpu_partition": "gpu"}},
     ["proof.site_b over render", "resources.annotate.partition", "resources.render_gpu"]),
])
def test_bad_values_name_the_key(over, words):
    with pytest.raises(ConfigError) as err:
        validate(base(**over), "cfg.yaml")
    msg = str(err.value)
    assert msg.startswith("cfg.yaml")
    for w in words:
        assert w in msg


def test_bad_yaml_file_is_named(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="x.yaml: not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_schema_is_safe_yaml():
    assert yaml.safe_load((REPO / "configs" / "schema.yaml").read_text())["additionalProperties"] is False


def test_site_b_is_site_a_with_its_own_keys_and_exact_split_sizes():
    from pipeline.config import proof_fractions, site_b_render
    from pipeline.split import assign

    cfg = load_config(REPO / "configs" / "proof_cpu.yaml")
    b = site_b_render(cfg)
    assert b["floor_kinds"] == ["asphalt", "painted"] and b["jack_paints"] == ["green", "grey"]
    assert b["resolution_px"] == cfg["render"]["resolution_px"]  # what site B does not set comes from site A
    proof = cfg["proof"]
    total = b["shards"] * b["images_per_shard"]
    assert total >= max(proof["train_images"]) + proof["val_images"] + proof["test_images"]
    which = assign([f"im{k}" for k in range(total)], proof_fractions(cfg), proof["seed"])
    counts = {s: list(which.values()).count(s) for s in ("train", "val", "test")}
    assert counts["val"] == proof["val_images"] and counts["test"] == proof["test_images"]
    assert counts["train"] >= max(proof["train_images"])


def test_best_checkpoint_is_not_scored_on_the_split_that_picked_it():
    """best.pth is the checkpoint with the best segm AP on the val split (train.eval_every > 0): scoring
    it on val again reports the number it was chosen for (issue #22)."""
    with pytest.raises(ConfigError) as err:
        validate(base(evaluate={"checkpoint": "best", "split": "val"}, train={"eval_every": 4}), "cfg.yaml")
    msg = str(err.value)
    assert msg.startswith("cfg.yaml: evaluate.checkpoint") and "evaluate.split: val" in msg, msg
    # val is the default split: `checkpoint: best` alone is refused too
    with pytest.raises(ConfigError, match="evaluate.split: val"):
        validate(base(evaluate={"checkpoint": "best"}))
    # without validation no best.pth is picked at all: that (earlier) error is the one reported
    with pytest.raises(ConfigError, match=r"train.eval_every > 0"):
        validate(base(evaluate={"checkpoint": "best", "split": "val"}, train={"eval_every": 0}))
    # best scored on the held-out test split, or the final model on val, are fine
    assert validate(base(evaluate={"checkpoint": "best", "split": "test"}, train={"eval_every": 4}))
    assert validate(base(evaluate={"checkpoint": "final", "split": "val"}))


def test_smoke_config_still_scores_best_checkpoint_on_a_nonempty_test_split():
    from pipeline.split import assign

    cfg = load_config(REPO / "configs" / "smoke.yaml")
    assert cfg["evaluate"]["checkpoint"] == "best" and cfg["evaluate"]["split"] == "test"
    assert cfg["train"]["eval_every"] > 0
    n = cfg["render"]["shards"] * cfg["render"]["images_per_shard"]
    which = assign([f"im{k}" for k in range(n)], cfg["split"], cfg["seed"])
    assert list(which.values()).count("test") >= 1


def test_resources_kinds_given_in_part_keep_their_other_defaults():
    cfg = validate(base(resources={"train": {"gpus": 4}, "gpu_partition": "gpu"}))
    res = cfg["resources"]
    assert res["train"] == {"threads": 8, "mem_mb": 32000, "runtime_min": 240, "gpus": 4}
    assert res["gpu_partition"] == "gpu" and res["cpu_partition"] == ""
    assert res["evaluate"]["gpus"] == 1 and res["render"]["gpus"] == 0  # untouched kinds: the schema's
    # a mapping whose default is not a record is still replaced whole (an empty map means none)
    assert validate(base(compare={"zero_shot_map": {}}))["compare"]["zero_shot_map"] == {}


def test_annotate_partition_may_only_name_its_renders():
    """resources.annotate.partition, when given, must be the partition of the render jobs it runs with."""
    cfg = validate(base(resources={"cpu_partition": "cpu", "annotate": {"partition": "cpu"}}))
    assert cfg["resources"]["annotate"]["partition"] == "cpu"
    validate(base(resources={"render": {"partition": "long"}, "annotate": {"partition": "long"}}))


@pytest.mark.parametrize("overlay", ["cluster", "cluster_test"])
def test_cluster_overlays_validate_over_the_scenarios(overlay):
    """configs/cluster.yaml (the user's cluster) and cluster_test.yaml (the test cluster) are given after a
    scenario config: merged over it, the result validates."""
    extra = yaml.safe_load((REPO / "configs" / f"{overlay}.yaml").read_text())
    assert set(extra) == {"resources"}
    for name in ("smoke", "default"):
        cfg = load_config(REPO / "configs" / f"{name}.yaml", extra)
        assert cfg["name"] == name and cfg["resources"]["train"]["gpus"] >= 1
