"""Self-contained HTML report + Markdown summary + metrics JSON: is the fine-tuned model better, where, why."""
from __future__ import annotations

import argparse
import base64
import html
import json
from pathlib import Path
from typing import Any

from pipeline.config import section_arg
from pipeline.io import atomic_path, files_sha256, provenance, read_json, write_json
from pipeline import plots
from pipeline.report_eval import evaluation_parts, fmt as _fmt, real_section


def _label(name: str, m: dict[str, Any] | None = None) -> str:
    if name == "zero_shot":
        size = (m or {}).get("input_size_px")
        return "general COCO model, zero-shot" + (f" ({size[0]}/{size[1]} px input)" if size else "")
    if name.startswith("mode_"):
        return "transfer: " + name[len("mode_"):].replace("_", " ")
    return f"{name[1:]} training images"


def summarise(metrics: dict[str, Any], compare: dict[str, dict[str, Any]], train_images: int,
              transfer: str) -> dict[str, Any]:
    """The comparison rows (main model first) and the data-efficiency points, as plain numbers.

    A model that cannot detect some classes (the general COCO model: no pallet_jack) gets no
    all-class AP: averaging in a class it cannot detect would halve it. It is compared per class.
    """
    def row(name, label, m):
        partial = bool(m.get("not_detectable"))
        return {"name": name, "label": label, "segm_AP": None if partial else m["segm"]["AP"],
                "segm_AP50": None if partial else m["segm"]["AP50"], "bbox_AP": None if partial else m["bbox"]["AP"],
                "per_class_segm": m["segm"]["per_class"], "not_detectable": m.get("not_detectable", []),
                "num_images": m.get("num_images")}
    rows = [row("main", f"this model ({transfer}, {train_images} training images)", metrics)]
    rows += [row(n, _label(n, m), m) for n, m in compare.items()]
    points = [{"train_images": int(r["name"][1:]), "segm_AP": r["segm_AP"], "bbox_AP": r["bbox_AP"],
               "per_class_segm": r["per_class_segm"]}
              for r in rows if r["name"][0] == "n" and r["name"][1:].isdigit()]
    if points and train_images not in {p["train_images"] for p in points}:
        points.append({"train_images": train_images, "segm_AP": metrics["segm"]["AP"], "bbox_AP": metrics["bbox"]["AP"],
                       "per_class_segm": metrics["segm"]["per_class"]})
        points.sort(key=lambda p: p["train_images"])
    return {"rows": rows, "data_efficiency": points}


def zero_shot_reference(summary: dict[str, Any]) -> dict[str, float]:
    """The general model's mask AP for each class it can detect (empty without a zero-shot row)."""
    general = next((r for r in summary["rows"] if r["name"] == "zero_shot"), None)
    if general is None:
        return {}
    return {c: ap for c, ap in general["per_class_segm"].items() if c not in general["not_detectable"]}


def headline(summary: dict[str, Any]) -> str:
    """One sentence a manager can read: the fine-tuned model against the general one, class by class."""
    main = summary["rows"][0]
    text = f"This model: mask AP {_fmt(main['segm_AP'])} (box AP {_fmt(main['bbox_AP'])})."
    general = next((r for r in summary["rows"] if r["name"] == "zero_shot"), None)
    if general:
        pairs = "; ".join(f"{c} mask AP {_fmt(main['per_class_segm'].get(c, -1))} here vs {_fmt(ap)} zero-shot"
                          for c, ap in zero_shot_reference(summary).items())
        text += f" Against the general COCO model on the same images, class by class: {pairs or 'no shared class'}."
        if general["not_detectable"]:
            text += f" The general model cannot detect {', '.join(general['not_detectable'])} at all (no COCO class)."
    return text


def md_table(head: list[str], body: list[list[Any]]) -> list[str]:
    """A Markdown table as lines."""
    return ["| " + " | ".join(map(str, row)) + " |" for row in [head, ["---"] * len(head), *body]]


def comparison_table(summary: dict[str, Any], classes: list[str], markdown: bool = False) -> str:
    head = ["model", "mask AP", "mask AP50", "box AP"] + [f"{c} mask AP" for c in classes]
    body = []
    for r in summary["rows"]:
        # all-class AP of a model that cannot detect every class would average in zeros: per class only
        cells = [r["label"], *(["per class only"] * 3 if r["not_detectable"] else
                               [_fmt(r["segm_AP"]), _fmt(r["segm_AP50"]), _fmt(r["bbox_AP"])])]
        cells += ["not detectable" if c in r["not_detectable"] else _fmt(r["per_class_segm"].get(c, -1))
                  for c in classes]
        body.append(cells)
    if markdown:
        return "\n".join(md_table(head, body))
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    tr = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in body)
    return f"<table><tr>{th}</tr>{tr}</table>"


def build_report(metrics: dict[str, Any], metrics_csv: Path, gt: dict[str, Any], preds: list[dict[str, Any]],
                 image_root: Path, num_images: int, threshold: float, title: str,
                 prov: dict[str, Any] | None = None, contact_sheet: Path | None = None,
                 summary: dict[str, Any] | None = None, val_csv: Path | None = None,
                 people_sheet: Path | None = None, jack_sheet: Path | None = None,
                 real: list[dict[str, Any]] | None = None, dataset_stats: Path | None = None,
                 rig_samples: Path | None = None) -> str:
    """The HTML text of the report (all images embedded); `real`: a section per real set
    ({name, metrics, gt, preds, image_root, summary})."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    classes = [names[k] for k in sorted(names)]
    summary = summary or summarise(metrics, {}, -1, "?")
    colors = plots.class_colors(names)  # every figure, legend and overlay draws a class in this colour
    sections = []
    if len(summary["rows"]) > 1:
        sections.append(f"<h2>Comparison (same evaluation images)</h2>{comparison_table(summary, classes)}")
    if summary["data_efficiency"]:
        sections.append("<h2>Data efficiency</h2><img src='data:image/png;base64,"
                        f"{plots.efficiency_plot(summary['data_efficiency'], zero_shot_reference(summary), colors)}'>")
    parts = evaluation_parts(metrics, gt, preds, image_root, num_images, threshold, colors)
    sections += [parts["wrong"], parts["errors"]]
    training = f"<img src='data:image/png;base64,{plots.loss_plot(metrics_csv)}'>"
    if val_csv is not None and Path(val_csv).is_file() and plots.read_csv(val_csv):
        training += (f"<p>AP over training (validation split, every train.eval_every iterations; best.pth is the "
                     f"best segm AP):</p><img class='fig' src='data:image/png;base64,{plots.val_ap_plot(val_csv)}'>")
    note = metrics["segm"].get("note", "")
    sheet_html = ""
    if contact_sheet is not None:
        b64 = base64.b64encode(Path(contact_sheet).read_bytes()).decode()
        sheet_html = (f"<h2>Dataset contact sheet</h2><p>Renders (left) and exact ground-truth masks (right).</p>"
                      f"<img src='data:image/png;base64,{b64}'>")
    for path, heading, text in ((people_sheet, "People sheet", "Pedestrians across scenes: mask outline, COCO "
                                 "keypoints (green visible, red hidden)."),
                                (jack_sheet, "Jack sheet", "Pallet jacks across variants, loads and lighting: mask "
                                 "outline (a load on the forks is not part of the jack).")):
        if path is not None:
            b64 = base64.b64encode(Path(path).read_bytes()).decode()
            sheet_html += f"<h2>{heading}</h2><p>{text}</p><img src='data:image/png;base64,{b64}'>"
    if dataset_stats is not None:
        b64 = base64.b64encode(Path(dataset_stats).read_bytes()).decode()
        sheet_html += ("<h2>Dataset statistics</h2><p>Object heights in pixels (mask box; a site's own sets, "
                       "where given, drawn beside them), visibility, and the cameras per rig: height, pitch below "
                       "the horizon, horizontal field of view (dataset_stats.json holds the percentiles; "
                       "<code>snakemake site_sheets</code> writes 16 full frames per rig).</p>"
                       f"<img src='data:image/png;base64,{b64}'>")
    if rig_samples is not None:
        b64 = base64.b64encode(Path(rig_samples).read_bytes()).decode()
        sheet_html += ("<h3>Frames per camera rig</h3><p>Four frames of each rig, as its camera recorded them "
                       f"(lens, processing, compression).</p><img src='data:image/jpeg;base64,{b64}'>")
    real_html = [real_section(r["name"], r["metrics"], r["gt"], r["preds"], r["image_root"], r["summary"],
                              num_images, threshold, colors) for r in real or []]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
figure{{display:inline-block;margin:6px}}img{{max-width:100%}}img.fig{{max-width:49%}}
figcaption{{font-size:12px;color:#555}}.headline{{font-size:1.2em;background:#eef5ff;padding:.6em}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="headline">{html.escape(headline(summary))}</p>
<p>Evaluated on {metrics.get('num_images', '?')} images, {metrics.get('num_predictions', '?')} predictions. {html.escape(note)}</p>
{parts["tables"]}
{''.join(sections)}
<h2>Training</h2>{training}
{sheet_html}{parts["gallery"]}
{''.join(real_html)}
<h2>Provenance</h2><pre>{html.escape(json.dumps(prov or {}, indent=1, sort_keys=True))}</pre>
</body></html>"""


def markdown_summary(title: str, metrics: dict[str, Any], summary: dict[str, Any], classes: list[str],
                     real: list[dict[str, Any]] = ()) -> str:
    lines = [f"# {title}", "", headline(summary), "", comparison_table(summary, classes, markdown=True), ""]
    if real:
        lines += ["## Real images (other images than the synthetic split)", ""]
        lines += md_table(["set", "images", "mask AP", "box AP"] + [f"{c} mask AP" for c in classes],
                          [[r["name"], r["metrics"].get("num_images"), _fmt(r["metrics"]["segm"]["AP"]),
                            _fmt(r["metrics"]["bbox"]["AP"])]
                           + [_fmt(r["metrics"]["segm"]["per_class"].get(c, -1)) for c in classes] for r in real]) + [""]
    if summary["data_efficiency"]:
        lines += ["## Data efficiency", ""]
        lines += md_table(["training images", "mask AP", "box AP"],
                          [[p["train_images"], _fmt(p["segm_AP"]), _fmt(p["bbox_AP"])]
                           for p in summary["data_efficiency"]]) + [""]
    if "confusion" in metrics:
        c = metrics["confusion"]
        lines += [f"## Confusion (score ≥ {c['score_threshold']}, IoU ≥ {c['iou_threshold']})", ""]
        lines += md_table(["true \\ predicted", *c["predicted"]],
                          [[t, *row] for t, row in zip(c["true"], c["matrix"])]) + [""]
    return "\n".join(lines)


def run_provenance(report_cfg: dict[str, Any], train_prov: Path | None = None, manifests: list[Path] = (),
                   run_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every config section the run used and each stage's code version, from the provenance the earlier
    stages wrote beside their outputs (train/provenance.json, the render manifests) and `run_cfg` (the
    sections no earlier stage records: annotate, split, evaluate)."""
    prov = provenance({"report": report_cfg})
    config = {**(run_cfg or {}), "report": report_cfg}
    # the SHA names a commit, not uncommitted edits (nor code outside git): the report's modules' hash does
    code = {"report": prov["git_sha"], "pipeline_sha256": files_sha256(sorted(Path(__file__).parent.glob("*.py")))}
    stages: dict[str, Any] = {}
    if train_prov is not None and Path(train_prov).is_file():
        tp = read_json(train_prov)
        config.update(tp.get("config") or {})  # what training used: train, model, classes, weights
        code["train"] = tp.get("git_sha")
        stages["train"] = {k: tp[k] for k in ("device", "device_name", "processes", "packages", "python") if k in tp}
    render = [read_json(m).get("provenance") or {} for m in manifests]
    if render:
        config.update(render[0].get("config") or {})  # render, seed
        code["render"] = sorted({r.get("git_sha") for r in render}, key=str)
        stages["render"] = sorted({r.get("render_device") for r in render if r.get("render_device")})
        differ = [str(m) for m, r in zip(manifests, render) if r.get("config") != render[0].get("config")]
        if differ:  # shards rendered under other settings than the first: show it, never hide it
            stages["render_config_differs"] = differ
    prov.update(config=config, code_version=code, stages=stages)
    return prov


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline report", description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--predictions", type=Path, required=True)
    ap.add_argument("--metrics-csv", type=Path, required=True, help="train/metrics.csv (val_metrics.csv beside it is used if present)")
    ap.add_argument("--ann", type=Path, required=True)
    ap.add_argument("--train-json", type=Path, help="training split, for its image count")
    ap.add_argument("--image-root", type=Path, required=True)
    ap.add_argument("--contact-sheet", type=Path, help="PNG of renders with masks to embed")
    ap.add_argument("--people-sheet", type=Path, help="PNG of pedestrian crops to embed")
    ap.add_argument("--jack-sheet", type=Path, help="PNG of pallet jack crops to embed")
    ap.add_argument("--dataset-stats", type=Path, help="PNG of dataset statistics (python -m pipeline dataset-stats) to embed")
    ap.add_argument("--rig-samples", type=Path, help="rig_samples.jpg of dataset-stats (frames per camera rig) to embed")
    ap.add_argument("--compare", nargs="*", default=[], metavar="NAME=METRICS_JSON",
                    help="other models' metrics on the same images: mode_<transfer>, n<images>, zero_shot")
    ap.add_argument("--real", nargs="*", default=[], metavar="NAME=FOLDER",
                    help="a site's real set: FOLDER holds ann.json and summary.json (pipeline prepare-dataset) and "
                         "eval/metrics.json + eval/predictions.json; IMAGES root given by --real-images")
    ap.add_argument("--real-images", nargs="*", default=[], metavar="NAME=IMAGES",
                    help="image folder of each --real set")
    ap.add_argument("--report-cfg", type=section_arg("report"), default="{}",
                    help="`report` config section as JSON; keys left out take configs/schema.yaml's defaults")
    ap.add_argument("--run-cfg", default="{}", help="JSON {section: config} of the sections the run used that no "
                    "earlier stage records beside its output (annotate, split, evaluate), for the provenance")
    ap.add_argument("--manifests", type=Path, nargs="*", default=[],
                    help="render manifest.json files: their provenance (render config, seed, git SHA) is shown")
    ap.add_argument("--title", default="hangar-synth evaluation")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--summary", type=Path, help="Markdown summary to write")
    ap.add_argument("--metrics-out", type=Path, help="combined metrics JSON to write")
    args = ap.parse_args(argv)
    cfg = args.report_cfg
    run_cfg = json.loads(args.run_cfg)
    if not isinstance(run_cfg, dict):
        raise SystemExit(f"--run-cfg: expected a JSON object {{section: config}}, got {args.run_cfg!r}")
    compare = {}
    for item in args.compare:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--compare {item!r}: expected NAME=path/to/metrics.json")
        compare[name] = read_json(Path(path))
    roots = dict(item.partition("=")[::2] for item in args.real_images)
    real = []
    for item in args.real:
        name, sep, folder = item.partition("=")
        if not sep or name not in roots:
            raise SystemExit(f"--real {item!r}: expected NAME=folder, with NAME=images in --real-images")
        folder = Path(folder)
        real.append({"name": name, "metrics": read_json(folder / "eval/metrics.json"), "gt": read_json(folder / "ann.json"),
                     "preds": read_json(folder / "eval/predictions.json"), "image_root": Path(roots[name]),
                     "summary": read_json(folder / "summary.json")})
    metrics, gt = read_json(args.metrics), read_json(args.ann)
    train_images = len(read_json(args.train_json)["images"]) if args.train_json else -1
    transfer = "fine_tune"
    train_prov = args.metrics_csv.parent / "provenance.json"
    prov = run_provenance(cfg, train_prov, args.manifests, run_cfg)
    if train_prov.is_file():
        tp = read_json(train_prov).get("config", {})
        transfer = tp.get("model", {}).get("transfer", transfer).replace("_", " ")
        if tp.get("weights", {}).get("kind") == "none":
            transfer = "from scratch"
    summary = summarise(metrics, compare, train_images, transfer)
    classes = [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    text = build_report(metrics, args.metrics_csv, gt, read_json(args.predictions), args.image_root,
                        cfg["num_images"], cfg["draw_score_threshold"], args.title, prov, args.contact_sheet,
                        summary, args.metrics_csv.parent / "val_metrics.csv", args.people_sheet,
                        args.jack_sheet, real, args.dataset_stats, args.rig_samples)
    if args.metrics_out:
        write_json(args.metrics_out, {"main": {k: metrics[k] for k in ("bbox", "segm", "num_images")},
                                      "real": {r["name"]: {k: r["metrics"][k] for k in ("bbox", "segm", "num_images")}
                                               | {"dataset": r["summary"]} for r in real},
                                      "confusion": metrics.get("confusion"), **summary, "provenance": prov})
    if args.summary:
        with atomic_path(args.summary) as tmp:
            tmp.write_text(markdown_summary(args.title, metrics, summary, classes, real))
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)
    return 0
