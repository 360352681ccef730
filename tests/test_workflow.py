"""The whole smoke workflow under Snakemake in a temp dir; reruns touch only what changed."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import merge

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
RULES = {"render", "annotate", "split", "weights", "train", "evaluate", "report", "contact_sheet", "crop_sheet", "dataset_stats",
         "all"}
# Smaller than configs/smoke.yaml so the test stays around a minute.
TINY = {"render": {"shards": 2, "images_per_shard": 2, "resolution_px": [128, 96], "samples": 4},
        "model": {"weights": "none", "min_size_px": 96, "max_size_px": 128},
        "train": {"iterations": 2, "batch_size": 2, "checkpoint_every": 1, "workers": 0, "warmup_iters": 1},
        "report": {"num_images": 1}}


def write_config(workdir: Path, **changes) -> Path:
    cfg = merge(merge(yaml.safe_load((REPO / "configs/smoke.yaml").read_text()), TINY), changes)
    path = workdir / "test.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def smk(workdir, config: Path, *args, check=True, targets=()):
    # targets before --configfile, which takes every word after it
    res = subprocess.run([*SNAKEMAKE, *targets, "--directory", str(workdir), "--configfile", str(config), *args],
                         capture_output=True, text=True, env={**os.environ})
    if check:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res


def planned_rules(workdir, **changes):
    out = smk(workdir, write_config(workdir, **changes), "-n", "--quiet", "rules").stdout
    return {line.split()[0] for line in out.splitlines() if line and line.split()[0] in RULES}


def test_smoke_workflow_end_to_end_and_targeted_reruns(tmp_path):
    assert planned_rules(tmp_path) == RULES
    smk(tmp_path, write_config(tmp_path), "--cores", "2")
    out = tmp_path / "results" / "smoke"
    for rel in ["render/shard_000/manifest.json", "render/shard_001/manifest.json", "coco/shard_000.json",
                "dataset/train.json", "dataset/val.json", "dataset/test.json", "weights.json",
                "train/model_final.pth", "train/last.pth", "train/metrics.csv", "eval/metrics.json",
                "eval/predictions.json", "report/index.html", "logs/train.log", "benchmarks/train.tsv"]:
        assert (out / rel).is_file(), rel
    metrics = json.loads((out / "eval/metrics.json").read_text())
    assert set(metrics) >= {"bbox", "segm", "num_images"} and metrics["num_images"] >= 1
    html = (out / "report/index.html").read_text()
    assert "Dataset contact sheet" in html and (out / "report/contact_sheet.png").is_file()
    assert "People sheet" in html and (out / "report/pedestrian_sheet.png").is_file()
    assert "Jack sheet" in html and (out / "report/pallet_jack_sheet.png").is_file()
    # the cameras of smoke's rigs, as annotate records them per image, summed up for the report
    stats = json.loads((out / "report/dataset_stats.json").read_text())
    images = [im for p in sorted((out / "coco").glob("shard_*.json")) for im in json.loads(p.read_text())["images"]]
    assert {im["camera"]["rig"] for im in images} == set(stats["cameras"]) == {"ceiling_cctv", "eye_level"}
    lenses = [json.loads(p.read_text())["camera"]["lens"]["model"] for p in sorted(out.glob("render/shard_*/meta/*.json"))]
    assert "fisheye_polynomial" in lenses and "pinhole" in lenses  # a wide lens end to end, and a pinhole
    assert sum(c["frames"] for c in stats["cameras"].values()) == len(images) == 4
    assert "Dataset statistics" in html and (out / "report/dataset_stats.png").is_file()
    assert "COCO metrics" in html and "data:image/png;base64," in html and "pallet_jack" in html
    assert planned_rules(tmp_path) == set()
    # An evaluation setting changes: only evaluate and report rerun.
    assert planned_rules(tmp_path, evaluate={"score_threshold": 0.3}) == {"evaluate", "report", "all"}
    # A training setting changes: training and everything after it.
    assert planned_rules(tmp_path, train={"iterations": 3}) == {"train", "evaluate", "report", "all"}
    # A render setting changes: everything.
    assert planned_rules(tmp_path, render={"samples": 5}) == RULES - {"weights"}
    # A report setting changes: only the report.
    assert planned_rules(tmp_path, report={"num_images": 2}) == {"report", "all"}

    # Results, not only plans: a render setting change re-renders every frame, and training on the
    # changed data starts afresh (not a resume of the old run) and writes every output.
    def digests(sub):
        return {p.relative_to(out): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted((out / "render").glob(f"shard_*/{sub}/*"))}

    before = {sub: digests(sub) for sub in ("rgb", "meta")}
    rig_heights = {rig: {"height_m": [3.0, 3.5]} for rig in ("ceiling_cctv", "eye_level")}  # smoke's rigs
    changed = {"render": {"pedestrians_per_image": [3, 4], "camera_rigs": rig_heights}}
    smk(tmp_path, write_config(tmp_path, **changed), "--cores", "2")
    for shard in ("000", "001"):
        log = (out / f"logs/render/shard_{shard}.log").read_text()
        assert ("kept 0 drawn from the same inputs, rendering 2 (0 missing, 0 rendered before frames had keys, "
                "2 drawn from other inputs: changed settings 2)") in log
        manifest = json.loads((out / f"render/shard_{shard}/manifest.json").read_text())
        metas = {p.stem: json.loads(p.read_text()) for p in (out / f"render/shard_{shard}/meta").glob("*.json")}
        assert sorted(metas) == manifest["frames"]
        assert {f: m["input_key"] for f, m in metas.items()} == manifest["frame_keys"]
        assert all(3.0 <= m["scene"]["camera"]["location"][2] <= 3.5 for m in metas.values())
    after = {sub: digests(sub) for sub in ("rgb", "meta")}
    for sub in ("rgb", "meta"):
        assert after[sub].keys() == before[sub].keys() and all(after[sub][f] != before[sub][f] for f in after[sub])
    train_log = (out / "logs/train.log").read_text()
    assert "training afresh" in train_log and "train_data" in train_log and "resuming" not in train_log
    for rel in ("train/model_final.pth", "train/best.pth", "train/metrics.csv", "eval/metrics.json",
                "report/index.html"):
        assert (out / rel).is_file(), rel
    assert planned_rules(tmp_path, **changed) == set()
    # A forced rerun of the finished training resumes at its last iteration and still writes every output.
    import torch

    def model(name):
        return torch.load(out / "train" / name, map_location="cpu", weights_only=True)["model"]

    final, best = model("model_final.pth"), model("best.pth")
    smk(tmp_path, write_config(tmp_path, **changed), "--cores", "2", "--forcerun", "train")
    assert "at iteration 2 of 2" in (out / "logs/train.log").read_text()
    for name, before in (("model_final.pth", final), ("best.pth", best)):
        again = model(name)
        assert all(torch.equal(before[k], again[k]) for k in before), name
    assert planned_rules(tmp_path, **changed) == set()


def test_asset_files_and_scene_code_are_render_inputs(tmp_path):
    """Adding, swapping or removing an asset file replans render; the scene code is an input too."""
    people = tmp_path / "people"
    people.mkdir()
    (people / "a.obj").write_text("o a\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    config = write_config(tmp_path, render={"shards": 1, "assets": {"pedestrian": str(people)}})
    manifest = tmp_path / "results/smoke/render/shard_000/manifest.json"
    target = [str(manifest.relative_to(tmp_path))]
    dry = smk(tmp_path, config, "-n", targets=target).stdout
    inputs = next(line for line in dry.splitlines() if line.strip().startswith("input:"))
    assert str(people / "a.obj") in inputs and str(REPO / "blender/pedestrian_build.py") in inputs

    def plan():
        return smk(tmp_path, config, "-n", targets=target).stdout

    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}")
    smk(tmp_path, config, "--touch", "--cores", "1", targets=target)  # as if rendered with these inputs
    assert "Nothing to be done" in plan()
    (people / "b.obj").write_text((people / "a.obj").read_text())
    assert "Updated input files" in plan()
    smk(tmp_path, config, "--touch", "--cores", "1", targets=target)
    (people / "b.obj").unlink()
    assert "Set of input files has changed" in plan()
    smk(tmp_path, config, "--touch", "--cores", "1", targets=target)
    (people / "a.obj").write_text((people / "a.obj").read_text() + "f 1 3 2\n")
    assert "Updated input files" in plan()


def test_render_threads_and_kernel_cache_rerun_nothing(tmp_path):
    """render.threads and render.kernel_cache_dir change no pixel (blender/frame_key.py leaves them out of a
    frame's key): editing them plans no rerun of render or of what reads its shards; a drawn setting does."""
    target = ["results/smoke/coco/shard_000.json"]
    one = {"shards": 1, "images_per_shard": 1}
    smk(tmp_path, write_config(tmp_path, render=one), "--cores", "2", targets=target)  # metadata of a real run

    def plan(render=None):
        return smk(tmp_path, write_config(tmp_path, render={**one, **(render or {})}), "-n", "--cores", "8",
                   targets=target).stdout

    assert "Nothing to be done" in plan()
    for render in ({"threads": 3}, {"kernel_cache_dir": "/scratch/kernels"}, {"threads": 2, "kernel_cache_dir": "x"}):
        assert "Nothing to be done" in plan(render=render), render
    changed = plan(render={"samples": 5})
    assert "rule render:" in changed and "rule annotate:" in changed and "Params have changed" in changed
    # the job still gets them: Cycles' threads and the kernel cache folder on its command line
    dry = smk(tmp_path, write_config(tmp_path, render={**one, "threads": 3, "kernel_cache_dir": "$TMPDIR/k"}), "-n", "-p",
              "--cores", "8", "--forcerun", "render", targets=target).stdout
    assert "--threads 3 --kernel-cache-dir='$TMPDIR/k' " in dry


def test_same_config_and_seed_give_byte_identical_dataset(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        run.mkdir()
        # motion blur and sensor noise in every image: both must be reproducible too
        smk(run, write_config(run, render={"motion_blur_prob": 1.0, "sensor_noise_prob": 1.0}), "--cores", "2",
            "results/smoke/dataset/train.json")
    # Metadata, COCO files and the images themselves.
    files = sorted(p.relative_to(runs[0]) for p in (runs[0] / "results/smoke").rglob("*")
                   if (p.suffix == ".json" and "manifest" not in p.name and "benchmarks" not in p.parts)
                   or p.parent.name in ("rgb", "ids"))
    assert any(f.parts[-2] == "meta" for f in files) and any(f.parts[-2] == "coco" for f in files)
    assert any(f.parts[-2] == "rgb" for f in files)
    scenes = [json.loads((runs[0] / f).read_text())["scene"] for f in files if f.parts[-2] == "meta"]
    assert any(s["exposure_s"] > 0 for s in scenes) and any(s["sensor_noise"] for s in scenes)
    for f in files:
        assert (runs[1] / f).read_bytes() == (runs[0] / f).read_bytes(), f


def test_bad_config_fails_before_anything_runs(tmp_path):
    res = smk(tmp_path, write_config(tmp_path, render={"samples": 0}), "-n", check=False)
    assert res.returncode != 0
    assert "render.samples" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


def coco_architecture_weights(path: Path) -> Path:
    """A state dict with the general model's architecture and 91 COCO classes (random init: no download
    here), standing in for the pretrained file so that pretrained-only paths run for real."""
    import torch
    from torchvision.models import resnet50
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops import FrozenBatchNorm2d

    torch.manual_seed(0)
    model = MaskRCNN(_resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 5), num_classes=91)
    torch.save(model.state_dict(), path)
    return path


def test_comparisons_zero_shot_data_efficiency_and_a_real_set_in_one_report(tmp_path, shard_coco, rendered_shard):
    from tests.real_export import CATEGORY_MAP, make_export

    weights = coco_architecture_weights(tmp_path / "coco_arch.pth")
    ann, images, _ = make_export(shard_coco, rendered_shard, tmp_path / "site")  # a CVAT-style export
    site = {"ann": str(ann), "images": str(images), "category_map": CATEGORY_MAP}
    config = write_config(tmp_path, model={"weights": str(weights)}, train={"eval_every": 1},
                          compare={"transfer_modes": ["feature_extraction", "from_scratch"],
                                   "train_images": [1], "zero_shot": True}, datasets={"site_a": site})
    smk(tmp_path, config, "--cores", "2")
    out = tmp_path / "results" / "smoke"
    # the real set: put into our categories, evaluated, and a section of its own in the report
    prepared = json.loads((out / "real/site_a/summary.json").read_text())
    assert prepared["crowd"] == 1 and prepared["unmapped_categories"] == ["forklift"]
    real = json.loads((out / "real/site_a/eval/metrics.json").read_text())
    assert real["num_images"] == 2 and set(real["segm"]["per_class"]) == {"pedestrian", "pallet_jack"}
    assert {p["image_id"] for p in json.loads((out / "real/site_a/eval/predictions.json").read_text())} <= {1001, 1002}
    html = (out / "report/index.html").read_text()
    section = html[html.index("<h2>Real images: site_a</h2>"):]
    for text in ("not a row of that comparison", "person → pedestrian", "category &#x27;forklift&#x27;: 1",
                 "left ground truth", "Per-class AP", "Where it goes wrong", "cam1/frame_0001.png"):
        assert text in section, text
    assert "site_a" not in html[:html.index("<h2>Real images: site_a</h2>")].split("<h2>Provenance")[0]
    assert "## Real images" in (out / "report/summary.md").read_text()
    assert json.loads((out / "report/metrics.json").read_text())["real"]["site_a"]["num_images"] == 2
    # a changed category map redoes the real set's steps and the report, nothing else
    remapped = {**site, "category_map": {"person": "pedestrian"}}
    plan = smk(tmp_path, write_config(tmp_path, model={"weights": str(weights)}, train={"eval_every": 1},
                                      compare={"transfer_modes": ["feature_extraction", "from_scratch"],
                                               "train_images": [1], "zero_shot": True},
                                      datasets={"site_a": remapped}), "-n", "--quiet", "rules").stdout
    assert {line.split()[0] for line in plan.splitlines() if line.split() and line.split()[0] in
            {"prepare_real", "evaluate_real", "report", "train", "evaluate", "render"}} == \
        {"prepare_real", "evaluate_real", "report"}
    for variant in ("mode_feature_extraction", "mode_from_scratch", "n1", "zero_shot"):
        assert (out / "variants" / variant / "eval/metrics.json").is_file(), variant
    assert json.loads((out / "variants/n1/train.json").read_text())["images"].__len__() == 1
    zero = json.loads((out / "variants/zero_shot/eval/metrics.json").read_text())
    assert zero["not_detectable"] == ["pallet_jack"] and "general COCO model" in zero["model"]
    assert zero["input_size_px"] == [800, 1333]  # the general model at its native size, not the 96 px of ours
    assert {p["category_id"] for p in json.loads((out / "variants/zero_shot/eval/predictions.json").read_text())} <= {1}
    prov = json.loads((out / "variants/mode_from_scratch/train/provenance.json").read_text())
    assert prov["config"]["weights"]["kind"] == "none"
    html = (out / "report/index.html").read_text()
    for text in ("general COCO model, zero-shot (800/1333 px input)", "per class only", "transfer: feature extraction", "transfer: from scratch",
                 "1 training images", "Data efficiency", "Where it goes wrong", "AP over training"):
        assert text in html or text in (out / "report/summary.md").read_text(), text
    combined = json.loads((out / "report/metrics.json").read_text())
    assert [r["name"] for r in combined["rows"]] == ["main", "mode_feature_extraction", "mode_from_scratch",
                                                     "n1", "zero_shot"]
    # The comparison targets exist on their own and are up to date now.
    assert "Nothing to be done" in smk(tmp_path, config, "--cores", "1", "compare_modes", "data_efficiency").stderr


PROOF_TINY = {"seed": 3, "shards": 1, "train_images": [2], "val_images": 1, "test_images": 1,
              "starts": ["continued", "feature_extraction", "fine_tune", "pooled", "from_scratch"], "seeds": [0, 1],
              "train": {"iterations": 2, "eval_every": 1}, "bootstrap_resamples": 20, "scratch_lr": 0.02,
              # smoke's rigs: site B's cameras higher, the eye-level rig weighed 0 (a merge cannot remove it)
              "site_b": {"floor_kinds": ["asphalt"], "jack_paints": ["green"],
                         "camera_rigs": {"ceiling_cctv": {"height_m": [3.5, 5.0]}, "eye_level": {"weight": 0}}}}


def test_proof_experiment_dag_and_a_tiny_run(tmp_path):
    """`snakemake proof`: site B rendered with its own keys, every row x N x seed trained from the right
    weights and data with the same budget (the continued-training control on site A, pooled runs on site A +
    B), all scored on the site-B test set, the page and JSON written; reruns stay targeted."""
    import torch

    config = write_config(tmp_path, proof=PROOF_TINY)
    plan = smk(tmp_path, config, "-n", "--quiet", "rules", targets=["proof"]).stdout
    jobs = {line.split()[0]: int(line.split()[1]) for line in plan.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert jobs["proof_train"] == jobs["proof_evaluate"] == 2 * (1 + 4) and jobs["proof_render"] == 1
    assert jobs["train"] == 1 and jobs["proof_no_adaptation"] == 1 and jobs["proof_weights"] == 2
    assert "report" not in jobs  # the main report is not part of the experiment
    smk(tmp_path, config, "--cores", "2", targets=["proof"])
    out = tmp_path / "results" / "smoke"
    site_b = out / "proof" / "site_b"
    sizes = {s: len(json.loads((site_b / "dataset" / f"{s}.json").read_text())["images"]) for s in ("train", "val", "test")}
    assert sizes == {"train": 2, "val": 1, "test": 1}
    assert len(json.loads((site_b / "dataset/n2.json").read_text())["images"]) == 2
    scenes = [json.loads(p.read_text())["scene"] for p in (site_b / "render/shard_000/meta").glob("*.json")]
    assert scenes and all(s["floor"]["kind"] == "asphalt" and s["camera"]["location"][2] >= 3.5 for s in scenes)
    # Adapted runs start from the site-A model (feature extraction keeps its backbone), scratch from nothing.
    base = torch.load(out / "train" / "best.pth", map_location="cpu", weights_only=True)["model"]
    runs = out / "proof" / "runs"
    fe = torch.load(runs / "feature_extraction_n2_s0/train/model_final.pth", map_location="cpu", weights_only=True)["model"]
    scratch = torch.load(runs / "from_scratch_n2_s0/train/model_final.pth", map_location="cpu", weights_only=True)["model"]
    key = "backbone.body.layer1.0.conv1.weight"
    assert torch.equal(fe[key], base[key]) and not torch.equal(scratch[key], base[key])
    prov = {r.name: json.loads((r / "train/provenance.json").read_text()) for r in runs.iterdir()}
    assert sorted(prov) == sorted(f"{s}_s{k}" for s in ("continued", "feature_extraction_n2", "fine_tune_n2",
                                                        "pooled_n2", "from_scratch_n2") for k in (0, 1))
    for name, p in prov.items():  # the data and start of each row; the seed is train.seed + proof seed
        cfg = p["config"]
        data = cfg["data"]
        assert cfg["train"]["seed"] == int(name.rsplit("_s", 1)[1]) and cfg["train"]["eval_first"] and cfg["train"]["iterations"] == 2
        assert cfg["weights"]["kind"] == ("none" if name.startswith("from_scratch") else "path")
        assert (cfg["train"]["lr"] == 0.02) == name.startswith("from_scratch")  # proof.scratch_lr
        on_a = name.startswith(("continued", "pooled"))
        assert data["train"].endswith("/smoke/dataset/train.json" if on_a else "site_b/dataset/n2.json")
        assert data["val"].endswith("site_b/dataset/val.json")
        assert (data["mix"] or {}).get("fraction") == (0.5 if name.startswith("pooled") else None)
        if name.startswith("pooled"):
            assert data["mix"]["ann"].endswith("site_b/dataset/n2.json")
    result = json.loads((out / "proof" / "proof.json").read_text())
    assert [(r["start"], r["n"], r["seeds"]) for r in result["rows"]] == [
        ("continued", 0, [0, 1]), ("feature_extraction", 2, [0, 1]), ("fine_tune", 2, [0, 1]), ("pooled", 2, [0, 1]),
        ("from_scratch", 2, [0, 1])]
    for r in result["rows"]:
        assert set(r["segm"]["AP"]) == {"all", "pedestrian", "pallet_jack"}
        assert [p["iteration"] for p in r["val_curve"]] == [0, 1, 2]  # from the starting weights on
        assert all(s["train"]["iterations"] == 2 for s in r["per_seed"])
        assert ("vs_control" in r) == (r["start"] != "continued")
    assert set(result["no_adaptation"]) == {"segm", "bbox"} and "site_a_test" in result and "cores" in result["machine"]
    html = (out / "proof" / "index.html").read_text()
    for text in ("Site-B test AP against N", "site-A model, no adaptation", "from scratch", "AP over training",
                 "What the intervals support", "continued on site A (control)", "pooled"):
        assert text in html, text
    assert (out / "proof" / "ap_vs_n.png").stat().st_size > 1000
    # A site-B budget change retrains the site-B models only; site A and the renders stay.
    changed = write_config(tmp_path, proof={**PROOF_TINY, "train": {"iterations": 3, "eval_every": 1}})
    plan = smk(tmp_path, changed, "-n", "--quiet", "rules", targets=["proof"]).stdout
    rerun = {line.split()[0] for line in plan.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert rerun == {"proof_train", "proof_evaluate", "proof_report", "proof", "total"}


def test_training_with_a_sites_frames_mixed_fine_tuned_real_only_and_the_efficiency_curve(tmp_path):
    """`snakemake real_curve` on examples/site (a CVAT-style export of 10 frames): the set cut into
    train/val/test, real-only and synthetic -> real models at each N, synthetic + real mixed, all scored on
    the real test part; the page and JSON written; a changed mix share retrains the mixed model only."""
    site = {"ann": str(REPO / "examples/site/instances_default.json"), "images": str(REPO / "examples/site/images"),
            "category_map": {"person": "pedestrian", "pallet truck": "pallet_jack"}}
    real_train = {"dataset": "site", "curve": [2, 50], "train": {"iterations": 2, "eval_every": 1}}
    config = write_config(tmp_path, datasets={"site": site}, real_train=real_train)
    plan = smk(tmp_path, config, "-n", "--quiet", "rules", targets=["real_curve"]).stdout
    jobs = {line.split()[0]: int(line.split()[1]) for line in plan.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    # N = 2 and all 6 training frames (50 is more than the set has); N = 0 is the synthetic model as it is
    assert jobs["real_train"] == 4 and jobs["real_mixed"] == 1 and jobs["real_evaluate"] == 6, jobs
    smk(tmp_path, config, "--cores", "2", targets=["real_curve"])
    out = tmp_path / "results/smoke"
    data = out / "real_train/data"
    parts = {p: json.loads((data / f"{p}.json").read_text()) for p in ("train", "val", "test", "n2")}
    assert [len(parts[p]["images"]) for p in ("train", "val", "test", "n2")] == [6, 2, 2, 2]
    assert parts["n2"]["images"] == parts["train"]["images"][:2]
    test_ids = {im["id"] for im in parts["test"]["images"]}
    assert not test_ids & {im["id"] for p in ("train", "val") for im in parts[p]["images"]}
    result = json.loads((out / "real_train/real_curve.json").read_text())
    assert [(r["kind"], r["n"]) for r in result["runs"]] == [("real_only", 2), ("real_only", 6), ("syn2real", 0),
                                                             ("syn2real", 2), ("syn2real", 6), ("mixed", 6)]
    for run in ("real_only_n2", "syn2real_n0", "syn2real_n6", "mixed"):
        preds = json.loads((out / f"real_train/runs/{run}/eval/predictions.json").read_text())
        assert {p["image_id"] for p in preds} <= test_ids  # every model scored on the real test frames only
        assert json.loads((out / f"real_train/runs/{run}/eval/metrics.json").read_text())["num_images"] == 2
    # synthetic -> real starts from the synthetic model, real only from the main model's start (none here)
    runs = out / "real_train/runs"
    assert json.loads((runs / "syn2real_n2/train/provenance.json").read_text())["config"]["weights"]["kind"] == "path"
    assert json.loads((runs / "real_only_n2/train/provenance.json").read_text())["config"]["weights"]["kind"] == "none"
    mixed = json.loads((runs / "mixed/train/provenance.json").read_text())["config"]["data"]
    assert mixed["mix"]["fraction"] == 0.25 and mixed["val"].endswith("real_train/data/val.json")
    assert "mixed training: 2 images of" in (out / "logs/real_train/train_mixed.log").read_text()
    # validated on the real val part: every iteration (eval_every 1) for the real runs, at the end for mixed
    assert [len(r.get("val_curve", [])) for r in result["runs"]] == [2, 2, 0, 2, 2, 1]
    html = (out / "real_train/index.html").read_text()
    for text in ("Real-test AP against N", "synthetic, then real frames", "real frames only", "Real labels saved",
                 "6 training, 2 validation and 2 test frames"):
        assert text in html, text
    assert (out / "real_train/ap_vs_real_frames.png").stat().st_size > 1000
    # another mix share: the mixed model, its evaluation and the page; nothing else
    changed = write_config(tmp_path, datasets={"site": site}, real_train={**real_train, "mix_fraction": 0.5})
    plan = smk(tmp_path, changed, "-n", "--quiet", "rules", targets=["real_curve"]).stdout
    rerun = {line.split()[0] for line in plan.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert rerun == {"real_mixed", "real_evaluate", "real_curve_page", "real_curve", "total"}, rerun
    # without real_train.dataset the target says what to set
    res = smk(tmp_path, write_config(tmp_path, datasets={"site": site}), "--cores", "1", targets=["real_curve"], check=False)
    assert res.returncode != 0 and "real_train.dataset is empty" in res.stdout + res.stderr
