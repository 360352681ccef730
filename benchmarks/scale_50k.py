"""The workflow at 50k images, simulated: realistic shard COCO files without rendering 50k frames.

    python benchmarks/scale_50k.py --label after --out benchmarks/results/scale_50k.json     # 1000 x 50
    python benchmarks/scale_50k.py --shards 40 --label small --out /tmp/scale_small.json      # minutes
    git archive <commit> | tar -x -C /tmp/base                                                # before/after:
    python benchmarks/scale_50k.py --code /tmp/base --label before --out benchmarks/results/scale_50k.json

1. Calibrate on real renders: `python -m blender.render` renders `--real-shards` shards of
   `--real-frames` frames with configs/default.yaml's render section (kept in --work and reused),
   `python -m pipeline annotate` turns them into COCO; counts per image, RLE and file sizes are recorded.
2. Synthesize `--shards` x `--images-per-shard` shard COCO files: every image copies the annotation
   counts (and dropped-instance records) of a real image; every annotation is a real mask (flipped,
   moved) re-encoded with pycocotools, with its keypoints, visibility and truncation; a frame_key per
   image. RGB files are hard links to the real renders (the sheets and the report open a few).
   Seeded: the data is the same for every run with the same sizes, so outputs compare byte for byte.
3. Time (wall, peak RSS via /usr/bin/time) each step with the code of `--code`: `snakemake -n` at the
   default shard count and at --shards (no outputs yet, and with every shard rendered and annotated);
   annotate of one 50-frame shard built from the real frames (annotate is parallel across shards);
   split of all shards; subset; contact and crop sheets; scoring `--eval-images` test images' synthetic
   predictions (ground truth moved and relabelled, misses, false positives) with the evaluate CLI's own
   functions (coco_eval, error_analysis: COCOeval bbox + segm, PR curves, confusion, per-image
   errors) and writing predictions.json and metrics.json; the report on those.

Results go under runs.<label> of --out (other labels kept), with a sha256 of every output, so a
before and an after run on the same data show whether the outputs are byte-identical.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["pedestrian", "pallet_jack"]
PY = sys.executable


def run_timed(cmd: list[str], log: Path, cwd: Path | None = None, env: dict | None = None) -> dict:
    """Run `cmd` under /usr/bin/time: wall seconds and the peak RSS of the process (MB)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        res = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], stdout=f, stderr=subprocess.STDOUT,
                             cwd=cwd, env=env)
    wall = time.perf_counter() - t0
    lines = [line for line in log.read_text().splitlines() if line.startswith("TIME ")]
    if res.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed ({res.returncode}), see {log}:\n{log.read_text()[-3000:]}")
    return {"wall_s": round(wall, 2), "max_rss_mb": round(int(lines[-1].split()[2]) / 1024, 1)}


def sha(path: Path, strip_provenance: bool = False) -> str:
    data = path.read_bytes()
    if strip_provenance:  # the report's provenance names the git SHA and the code path: differs by design
        data = re.sub(rb"<h2>Provenance</h2><pre>.*?</pre>", b"", data, flags=re.S)
    return hashlib.sha256(data).hexdigest()


def code_env(code: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(code)}


# ---------------------------------------------------------------- calibration on real renders

def render_real(work: Path, shards: int, frames: int, code: Path) -> Path:
    """Render `shards` real shards of `frames` frames at the default config's settings (kept if present)."""
    from pipeline.config import load_config, validate

    cfg = validate(load_config(ROOT / "configs" / "default.yaml"))
    render = {**cfg["render"], "images_per_shard": frames}
    root = work / "real"
    for k in range(shards):
        shard = root / "render" / f"shard_{k:03d}"
        if (shard / "manifest.json").is_file():
            continue
        print(f"rendering real shard {k} ({frames} frames at {render['resolution_px']})", file=sys.stderr)
        run_timed([PY, "-m", "blender.render", "--render-json", json.dumps(render), "--seed", str(cfg["seed"]),
                   "--shard", str(k), "--out", str(shard)], root / f"render_{k}.log", cwd=code, env=code_env(code))
    return root


def annotate_cmd(shard_dir: Path, out: Path, prefix: str) -> list[str]:
    return [PY, "-m", "pipeline", "annotate", str(shard_dir), "--classes", json.dumps(CLASSES),
            "--min-visible-pixels", "30", "--min-visibility", "0.0", "--image-prefix", prefix, "--out", str(out)]


def calibrate(real: Path, code: Path, out_dir: Path) -> tuple[list[dict], dict]:
    """Annotate the real shards with `code`; their COCO dicts and the statistics the synthesis copies."""
    cocos, per_shard = [], []
    for shard in sorted((real / "render").glob("shard_*")):
        out = out_dir / "real_coco" / f"{shard.name}.json"
        t = run_timed(annotate_cmd(shard, out, f"render/{shard.name}/"), out_dir / "logs" / f"annotate_{shard.name}.log",
                      cwd=code, env=code_env(code))
        coco = json.loads(out.read_text())
        cocos.append(coco)
        per_shard.append({"shard": shard.name, "frames": len(coco["images"]), **t, "coco_bytes": out.stat().st_size})
    images = [im for c in cocos for im in c["images"]]
    anns = [a for c in cocos for a in c["annotations"]]
    counts = [len(a["segmentation"]["counts"]) for a in anns]
    meta_bytes = [p.stat().st_size for p in (real / "render").glob("shard_*/meta/*.json")]
    ids_bytes = [p.stat().st_size for p in (real / "render").glob("shard_*/ids/*.png")]
    rgb_bytes = [p.stat().st_size for p in (real / "render").glob("shard_*/rgb/*.png")]
    stats = {
        "images": len(images), "resolution_px": [images[0]["width"], images[0]["height"]],
        "annotations": len(anns),
        "annotations_per_image": round(len(anns) / len(images), 3),
        "per_category": {name: sum(a["category_id"] == i + 1 for a in anns) for i, name in enumerate(CLASSES)},
        "dropped": sum(len(c["info"]["dropped"]) for c in cocos),
        "rle_counts_chars": {"mean": round(float(np.mean(counts)), 1),
                             **{f"p{q}": int(np.percentile(counts, q)) for q in (10, 50, 90)}, "max": max(counts)},
        "area_px": {f"p{q}": int(np.percentile([a["area"] for a in anns], q)) for q in (10, 50, 90)},
        "coco_bytes_per_image": round(sum(s["coco_bytes"] for s in per_shard) / len(images)),
        "meta_json_bytes_per_image": round(float(np.mean(meta_bytes))),
        "ids_png_bytes_per_image": round(float(np.mean(ids_bytes))),
        "rgb_png_bytes_per_image": round(float(np.mean(rgb_bytes))),
        "annotate": per_shard,
    }
    return cocos, stats


# ---------------------------------------------------------------- synthesis

def templates(cocos: list[dict]) -> tuple[list[dict], dict[int, list[dict]]]:
    """Per real image: its annotation list, dropped records; per category: mask crops to reuse."""
    from pycocotools import mask as mask_utils

    per_image, by_cat = [], {}
    for coco in cocos:
        anns: dict[int, list] = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        for im in coco["images"]:
            dropped = [d for d in coco["info"]["dropped"] if d["frame"] == im["frame"]]
            per_image.append({"cats": [a["category_id"] for a in anns.get(im["id"], [])], "dropped": dropped})
            for a in anns.get(im["id"], []):
                x, y, w, h = (int(v) for v in a["bbox"])
                crop = mask_utils.decode(a["segmentation"])[y:y + h, x:x + w].astype(bool)
                kps = a.get("keypoints")
                rel = None
                if kps:
                    rel = [(kx - x, ky - y, v) for kx, ky, v in zip(kps[0::3], kps[1::3], kps[2::3])]
                by_cat.setdefault(a["category_id"], []).append(
                    {"crop": crop, "kps": rel, "visibility": a["visibility"], "truncation": a["truncation"]})
    return per_image, by_cat


def place(rng: np.random.Generator, t: dict, height: int, width: int) -> tuple[np.ndarray, list | None]:
    """A template mask flipped at random and moved to a random place inside the image; its keypoints."""
    crop = t["crop"]
    flip = bool(rng.integers(2))
    if flip:
        crop = crop[:, ::-1]
    h, w = crop.shape
    y0, x0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    mask = np.zeros((height, width), np.uint8, order="F")
    mask[y0:y0 + h, x0:x0 + w] = crop
    kps = None
    if t["kps"] is not None:
        kps = []
        for kx, ky, v in t["kps"]:
            if v == 0:
                kps += [0, 0, 0]
                continue
            px = x0 + ((w - 1 - kx) if flip else kx)
            kps += [round(float(px), 2), round(float(y0 + ky), 2), v]
    return mask, kps


def synth_shard(rng: np.random.Generator, shard: int, n_images: int, per_image: list[dict],
                by_cat: dict[int, list[dict]], size: tuple[int, int], categories: list[dict]) -> dict:
    """One shard's COCO dict, shaped like `pipeline annotate`'s output."""
    from pycocotools import mask as mask_utils

    width, height = size
    images, annotations, dropped = [], [], []
    for i in range(n_images):
        frame = f"s{shard:03d}_{i:05d}"
        src = per_image[int(rng.integers(len(per_image)))]
        image_id = i + 1
        images.append({"id": image_id, "file_name": f"render/shard_{shard:03d}/rgb/{frame}.png", "width": width,
                       "height": height, "frame": frame, "frame_key": rng.bytes(32).hex()})
        dropped += [{**d, "frame": frame} for d in src["dropped"]]
        if not src["cats"]:
            continue
        placed = [(cat, t, *place(rng, t, height, width))
                  for cat in src["cats"] for t in [by_cat[cat][int(rng.integers(len(by_cat[cat])))]]]
        rles = mask_utils.encode(np.asfortranarray(np.stack([m for *_, m, _ in placed], axis=2)))
        areas, boxes = mask_utils.area(rles), mask_utils.toBbox(rles)
        for k, ((cat, t, _, kps), rle) in enumerate(zip(placed, rles)):
            rle["counts"] = rle["counts"].decode("ascii")
            ann = {"id": 0, "image_id": image_id, "category_id": cat, "segmentation": rle, "area": float(areas[k]),
                   "bbox": [float(v) for v in boxes[k]], "iscrowd": 0, "instance_id": k + 1,
                   "visibility": t["visibility"], "truncation": t["truncation"]}
            if kps is not None:
                ann.update(keypoints=kps, num_keypoints=sum(v > 0 for v in kps[2::3]))
            else:
                ann["num_keypoints"] = 0
            annotations.append(ann)
    for i, ann in enumerate(annotations):
        ann["id"] = i + 1
    return {"info": {"description": "hangar-synth synthetic warehouse", "shard": shard, "dropped": dropped},
            "images": images, "annotations": annotations, "categories": categories}


def synthesize(data: Path, real: Path, cocos: list[dict], shards: int, images_per_shard: int, seed: int) -> dict:
    """Write the shard COCO files (and RGB hard links) once per size; reused while `done.json` is there."""
    done = data / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    if data.exists():
        shutil.rmtree(data)
    t0 = time.perf_counter()
    per_image, by_cat = templates(cocos)
    size = (cocos[0]["images"][0]["width"], cocos[0]["images"][0]["height"])
    rgbs = sorted((real / "render").glob("shard_*/rgb/*.png"))
    total = 0
    for s in range(shards):
        coco = synth_shard(np.random.default_rng([seed, s]), s, images_per_shard, per_image, by_cat, size,
                           cocos[0]["categories"])
        path = data / "coco" / f"shard_{s:03d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco, sort_keys=True) + "\n")  # as pipeline.io.write_json(indent=None)
        total += path.stat().st_size
        rgb_dir = data / "render" / f"shard_{s:03d}" / "rgb"
        rgb_dir.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(coco["images"]):
            os.link(rgbs[(s * images_per_shard + i) % len(rgbs)], data / im["file_name"])
        if (s + 1) % 100 == 0:
            print(f"synthesized {s + 1}/{shards} shards", file=sys.stderr)
    info = {"shards": shards, "images_per_shard": images_per_shard, "images": shards * images_per_shard,
            "seed": seed, "coco_mb": round(total / 2**20, 1), "synth_s": round(time.perf_counter() - t0, 1)}
    done.write_text(json.dumps(info))
    return info


def predictions(gt: dict, seed: int, fp_per_image: float) -> list[dict]:
    """Synthetic detector output, ordered like the evaluate CLI's: per image, score-sorted; ground truth
    moved a few px (85 % found, 5 % of them with the other class), plus low-scoring false positives
    (Poisson, mean `fp_per_image`)."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng([seed, 99])
    by_img: dict[int, list] = {}
    for a in gt["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    pool = gt["annotations"]
    out = []
    for im in gt["images"]:
        h, w = im["height"], im["width"]
        masks, cats, scores = [], [], []
        for a in by_img.get(im["id"], []):
            if rng.random() > 0.85:
                continue
            m = mask_utils.decode(a["segmentation"])
            masks.append(np.roll(m, (int(rng.normal(0, 2)), int(rng.normal(0, 2))), axis=(0, 1)))
            cats.append(a["category_id"] if rng.random() > 0.05 else 3 - a["category_id"])
            scores.append(float(rng.beta(8, 2)))
        for _ in range(int(rng.poisson(fp_per_image))):
            m = mask_utils.decode(pool[int(rng.integers(len(pool)))]["segmentation"])
            masks.append(np.roll(m, (int(rng.integers(h)), int(rng.integers(w))), axis=(0, 1)))
            cats.append(int(rng.integers(1, 3)))
            scores.append(float(0.05 + 0.6 * rng.beta(1, 4)))
        if not masks:
            continue
        rles = mask_utils.encode(np.asfortranarray(np.stack(masks, axis=2)))
        boxes = mask_utils.toBbox(rles)
        for k in np.argsort(-np.asarray(scores), kind="stable"):
            rle = rles[k]
            x, y, bw, bh = (float(v) + float(rng.normal(0, 1)) for v in boxes[k])
            out.append({"image_id": im["id"], "category_id": cats[k], "bbox": [x, y, bw, bh], "score": scores[k],
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
    return out


# ---------------------------------------------------------------- the evaluate step (subprocess)

def score_main(argv: list[str]) -> int:
    """`--score ANN PREDS OUT_DIR EVAL_CFG`: what the evaluate CLI does after predicting, on given predictions."""
    ann, preds_path, out_dir, eval_cfg = Path(argv[0]), Path(argv[1]), Path(argv[2]), json.loads(argv[3])
    from pipeline.analysis import error_analysis
    from pipeline.evaluate import coco_eval
    from pipeline.io import read_json, write_json

    t0 = time.perf_counter()
    gt, preds = read_json(ann), read_json(preds_path)
    t_read = time.perf_counter()
    metrics = coco_eval(gt, preds)
    t_coco = time.perf_counter()
    thr, iou = eval_cfg["confusion_score_threshold"], eval_cfg["match_iou"]
    metrics["confusion"], metrics["per_image"] = error_analysis(gt, preds, thr, iou)
    t_err = time.perf_counter()
    metrics["not_detectable"] = []
    metrics["num_images"] = len(gt["images"])
    metrics["num_predictions"] = len(preds)
    metrics["input_size_px"] = [480, 640]
    metrics["model"] = "synthetic predictions"
    write_json(out_dir / "predictions.json", preds, indent=None)
    write_json(out_dir / "metrics.json", metrics)
    t_write = time.perf_counter()
    (out_dir / "phases.json").write_text(json.dumps({
        "read_s": round(t_read - t0, 2), "coco_eval_s": round(t_coco - t_read, 2),
        "error_analysis_s": round(t_err - t_coco, 2), "write_s": round(t_write - t_err, 2)}))
    return 0


# ---------------------------------------------------------------- the measured steps

def dag(code: Path, work: Path, shards: int, annotated: bool, label: str) -> dict:
    """`snakemake -n` on the default config with `render.shards: shards`; `annotated`: every shard
    rendered (a manifest) and annotated (a shard COCO file) already."""
    d = work / f"dag_{shards}_{'annotated' if annotated else 'fresh'}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    cfg = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    cfg["render"]["shards"] = shards
    cfg["name"] = "scale"
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    if annotated:
        out = d / "results" / "scale"
        for k in range(shards):
            m = out / "render" / f"shard_{k:03d}" / "manifest.json"
            m.parent.mkdir(parents=True, exist_ok=True)
            m.write_text("{}")
        time.sleep(1.0)  # the COCO files strictly newer than the manifests (snakemake -n reads neither)
        (out / "coco").mkdir(parents=True)
        for k in range(shards):
            (out / "coco" / f"shard_{k:03d}.json").write_text("{}")
    log = work / "logs" / label / f"{d.name}.log"
    t = run_timed([PY, "-m", "snakemake", "-s", str(code / "Snakefile"), "-n", "--directory", str(d),
                   "--configfile", str(d / "config.yaml")], log, env=code_env(code))
    text = log.read_text()
    jobs = re.search(r"^total\s+(\d+)", text, flags=re.M)
    return {**t, "jobs": int(jobs.group(1)) if jobs else None}


def annotate_50(code: Path, work: Path, real: Path, frames: int, label: str) -> dict:
    """Annotate of one `frames`-frame shard made of copies of the real frames (cost per shard)."""
    shard = work / "annotate_shard" / "shard_000"
    if not (shard / "manifest.json").is_file():
        src = sorted(p.stem for p in (real / "render").glob("shard_*/meta/*.json"))
        for sub in ("meta", "ids"):
            (shard / sub).mkdir(parents=True, exist_ok=True)
        names = []
        for i in range(frames):
            stem = src[i % len(src)]
            meta_src = next((real / "render").glob(f"shard_*/meta/{stem}.json"))
            meta = json.loads(meta_src.read_text())
            name = f"s000_{i:05d}"
            os.link(meta_src.parent.parent / meta["ids_file"], shard / "ids" / f"{name}.png")
            meta.update(frame=name, file_name=f"rgb/{name}.png", ids_file=f"ids/{name}.png")
            (shard / "meta" / f"{name}.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
            names.append(name)
        (shard / "manifest.json").write_text(json.dumps({"shard": 0, "frames": names}))
    out = work / "out" / label / "annotate_shard_000.json"
    t = run_timed(annotate_cmd(shard, out, "render/shard_000/"), work / "logs" / label / "annotate.log",
                  cwd=code, env=code_env(code))
    return {**t, "frames": frames, "ms_per_frame": round(1000 * t["wall_s"] / frames, 1), "sha256": sha(out)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--score"]:
        return score_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=1000)
    ap.add_argument("--images-per-shard", type=int, default=50)
    ap.add_argument("--eval-images", type=int, default=5000, help="test images scored (first N of the test split)")
    ap.add_argument("--fp-per-image", type=float, default=6.0, help="mean false positives per image (score < 0.65)")
    ap.add_argument("--real-shards", type=int, default=2)
    ap.add_argument("--real-frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose pipeline and Snakefile are timed")
    ap.add_argument("--label", default="after")
    ap.add_argument("--commit", help="commit of --code, recorded (default: git rev-parse HEAD there)")
    ap.add_argument("--steps", default="dag,annotate,split,subset,sheets,evaluate,report")
    ap.add_argument("--work", type=Path, default=Path("/tmp/scale50k"), help="data and outputs (GBs at 50k)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/scale_50k.json"))
    args = ap.parse_args(argv)
    code = args.code.resolve()
    steps = args.steps.split(",")
    sys.path.insert(0, str(ROOT))
    from pipeline.config import load_config, validate

    default = validate(load_config(ROOT / "configs" / "default.yaml"))
    work, label = args.work, args.label
    out = work / "out" / label
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    real = render_real(work, args.real_shards, args.real_frames, code)
    cocos, calib = calibrate(real, code, out)
    data = synthesize(work / f"data_{args.shards}x{args.images_per_shard}", real, cocos, args.shards,
                      args.images_per_shard, args.seed)
    data_dir = work / f"data_{args.shards}x{args.images_per_shard}"
    shard_files = [str(data_dir / "coco" / f"shard_{k:03d}.json") for k in range(args.shards)]
    env = code_env(code)
    res: dict = {}
    hashes: dict = {}

    def step(name: str, cmd: list[str]) -> dict:
        res[name] = run_timed(cmd, work / "logs" / label / f"{name}.log", cwd=code, env=env)
        print(f"{name:28s} {res[name]['wall_s']:8.2f} s  {res[name]['max_rss_mb']:8.1f} MB", file=sys.stderr)
        return res[name]

    if "dag" in steps:
        for n in sorted({default["render"]["shards"], args.shards}):
            for state in ("fresh", "annotated"):
                key = f"dag_{n}_shards_{state}"
                res[key] = dag(code, work, n, state == "annotated", label)
                print(f"{key:28s} {res[key]['wall_s']:8.2f} s  {res[key]['max_rss_mb']:8.1f} MB  "
                      f"{res[key]['jobs']} jobs", file=sys.stderr)
    if "annotate" in steps:
        res["annotate_one_shard"] = annotate_50(code, work, real, args.images_per_shard, label)
        hashes["annotate_shard_000.json"] = res["annotate_one_shard"].pop("sha256")
        print(f"annotate_one_shard           {res['annotate_one_shard']['wall_s']:8.2f} s", file=sys.stderr)
    dataset = out / "dataset"
    step("split", [PY, "-m", "pipeline", "split", *shard_files, "--fractions", json.dumps(default["split"]),
                   "--seed", str(default["seed"]), "--out-dir", str(dataset)])
    sizes = {n: round((dataset / f"{n}.json").stat().st_size / 2**20, 1) for n in ("train", "val", "test")}
    if "subset" in steps:
        step("subset", [PY, "-m", "pipeline", "subset", str(dataset / "train.json"), "--images", "200",
                        "--out", str(out / "n200.json")])
    if "sheets" in steps:
        step("contact_sheet", [PY, "-m", "pipeline", "contact-sheet", *shard_files, "--image-root", str(data_dir),
                               "--max-images", str(default["report"]["contact_sheet_images"]),
                               "--out", str(out / "contact_sheet.png")])
        for cls in CLASSES:
            step(f"crop_sheet_{cls}", [PY, "-m", "pipeline", "contact-sheet", *shard_files, "--image-root",
                                       str(data_dir), "--crops", cls, "--max-images",
                                       str(default["report"]["crop_sheet_crops"]),
                                       "--out", str(out / f"{cls}_sheet.png")])
    if "evaluate" in steps or "report" in steps:
        test = json.loads((dataset / "test.json").read_text())
        n_eval = min(args.eval_images, len(test["images"]))
        keep = {im["id"] for im in test["images"][:n_eval]}  # as `pipeline subset`: the first N, their annotations
        ann = {**test, "images": test["images"][:n_eval],
               "annotations": [a for a in test["annotations"] if a["image_id"] in keep]}
        ann_path, preds_path = out / "eval_ann.json", out / "synthetic_predictions.json"
        ann_path.write_text(json.dumps(ann, sort_keys=True) + "\n")
        t0 = time.perf_counter()
        preds = predictions(ann, args.seed, args.fp_per_image)
        preds_path.write_text(json.dumps(preds))
        res["synthetic_predictions"] = {"images": n_eval, "annotations": len(ann["annotations"]),
                                        "predictions": len(preds), "made_s": round(time.perf_counter() - t0, 1)}
        del preds, test, ann
        eval_dir = out / "eval"
        step("evaluate_scoring", [PY, str(ROOT / "benchmarks" / "scale_50k.py"), "--score", str(ann_path),
                                  str(preds_path), str(eval_dir), json.dumps(default["evaluate"])])
        res["evaluate_scoring"]["phases"] = json.loads((eval_dir / "phases.json").read_text())
    if "report" in steps:
        curve = out / "train" / "metrics.csv"
        curve.parent.mkdir(parents=True, exist_ok=True)
        rows = ["iteration,epoch,lr,loss,loss_classifier,loss_box_reg,loss_mask,loss_objectness,loss_rpn_box_reg"]
        rows += [f"{i},{i // 100},0.005,{2 / (1 + i / 500):.4f},0.3,0.2,0.3,0.05,0.02" for i in range(20, 3001, 20)]
        curve.write_text("\n".join(rows) + "\n")
        compare = []
        metrics = json.loads((eval_dir / "metrics.json").read_text())
        for name in ("mode_feature_extraction", "mode_full", "mode_from_scratch", "n25", "n50", "n100", "n200",
                     "zero_shot"):
            m = {**metrics, "not_detectable": ["pallet_jack"] if name == "zero_shot" else []}
            p = out / "variants" / name / "metrics.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(m, sort_keys=True, indent=1))
            compare.append(f"{name}={p}")
        sheets = {k: out / f"{k}.png" for k in ("contact_sheet", "pedestrian_sheet", "pallet_jack_sheet")}
        for p in sheets.values():
            if not p.is_file():  # --steps without sheets: any PNG will do
                shutil.copyfile(real / "render" / "shard_000" / "rgb" / "s000_00000.png", p)
        rep = out / "report"
        step("report", [PY, "-m", "pipeline", "report", "--metrics", str(eval_dir / "metrics.json"),
                        "--predictions", str(eval_dir / "predictions.json"), "--metrics-csv", str(curve),
                        "--ann", str(ann_path), "--train-json", str(dataset / "train.json"),
                        "--image-root", str(data_dir), "--contact-sheet", str(sheets["contact_sheet"]),
                        "--people-sheet", str(sheets["pedestrian_sheet"]),
                        "--jack-sheet", str(sheets["pallet_jack_sheet"]),
                        "--report-cfg", json.dumps(default["report"]), "--title", "hangar-synth: scale (test split)",
                        "--compare", *compare, "--out", str(rep / "index.html"), "--summary", str(rep / "summary.md"),
                        "--metrics-out", str(rep / "metrics.json")])
    for p in sorted(out.rglob("*")):
        rel = str(p.relative_to(out))
        if p.is_file() and not rel.startswith(("logs", "real_coco", "variants", "train/")) and rel not in (
                "eval/phases.json", "annotate_shard_000.json"):
            hashes[rel] = sha(p, strip_provenance=rel.endswith(".html"))
    result = {
        "command": "python benchmarks/scale_50k.py " + " ".join(argv),
        "code": str(code), "git_sha": args.commit or subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=code, capture_output=True, text=True).stdout.strip() or None,
        "data": data, "fp_per_image": args.fp_per_image, "eval_images": args.eval_images, "dataset_json_mb": sizes, "steps": res, "sha256": hashes,
    }
    doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
    doc.setdefault("runs", {})[label] = result
    doc["calibration"] = calib
    doc["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                      "note": "2 shared cores, every step under nice -n 19 beside other people's jobs"}
    others = {k: v["sha256"] for k, v in doc["runs"].items()
              if k != label and v["data"] == data and v.get("fp_per_image") == args.fp_per_image
              and v.get("eval_images") == args.eval_images}
    for other, their in others.items():
        same = sorted(k for k in hashes if their.get(k) == hashes[k])
        differ = sorted(k for k in hashes if k in their and their[k] != hashes[k])
        print(f"outputs vs {other}: {len(same)} identical, differ: {differ or 'none'}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
