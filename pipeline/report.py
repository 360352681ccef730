"""Self-contained HTML report + Markdown summary + metrics JSON: is the fine-tuned model better, where, why."""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.coco import decode_segmentation
from pipeline.config import section_arg
from pipeline.io import atomic_path, files_sha256, provenance, read_json, write_json
from pipeline import plots


def _fmt(value: float | None) -> str:
    """COCOeval reports -1 where a metric has no ground truth (e.g. no large objects)."""
    return "n/a" if value is None or value < 0 else f"{value:.3f}"


def draw_predictions(image_path: Path, preds: list[dict[str, Any]], gt: list[dict[str, Any]],
                     names: dict[int, str], threshold: float) -> str:
    """Ground truth (left) and predictions above `threshold` (right), masks and boxes, as base64 PNG."""
    table = plots.class_colors(names)
    import torch
    from PIL import Image
    from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

    img = torch.from_numpy(np.asarray(Image.open(image_path).convert("RGB")).copy()).permute(2, 0, 1)

    def draw(anns, with_score):
        out = img
        if not anns:
            return out
        masks = torch.from_numpy(np.stack([decode_segmentation(a["segmentation"], *img.shape[1:])
                                           for a in anns])).bool()
        colors = [table[names[a["category_id"]]] for a in anns]
        out = draw_segmentation_masks(out, masks, alpha=0.45, colors=colors)
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float)
        labels = [names[a["category_id"]] + (f" {a['score']:.2f}" if with_score else "") for a in anns]
        return draw_bounding_boxes(out, boxes, labels=labels, colors=colors, width=2)

    shown = [p for p in preds if p["score"] >= threshold]
    both = torch.cat([draw(gt, False), torch.full((3, img.shape[1], 6), 255, dtype=torch.uint8),
                      draw(shown, True)], dim=2)
    buf = io.BytesIO()
    Image.fromarray(both.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _label(name: str, m: dict[str, Any] | None = None) -> str:
    if name == "zero_shot":
        size = (m or {}).get("input_size_px")
        return "general COCO model, zero-shot" + (f" ({size[0]}/{size[1]} px input)" if size else "")
    if name == "real":
        return "this model on real photos"
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
                 people_sheet: Path | None = None, jack_sheet: Path | None = None) -> str:
    """The HTML text of the report (all images embedded)."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    classes = [names[k] for k in sorted(names)]
    summary = summary or summarise(metrics, {}, -1, "?")
    colors = plots.class_colors(names)  # every figure, legend and overlay draws a class in this colour
    rows = []
    for iou_type in ("bbox", "segm"):
        m = metrics[iou_type]
        cells = "".join(f"<td>{_fmt(m[k])}</td>" for k in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100"))
        rows.append(f"<tr><th>{iou_type}</th>{cells}</tr>")
    per_class = "".join(
        f"<tr><th>{html.escape(n)}</th><td>{_fmt(metrics['bbox']['per_class'].get(n, -1))}</td>"
        f"<td>{_fmt(metrics['segm']['per_class'].get(n, -1))}</td></tr>" for n in classes)
    sections = []
    if len(summary["rows"]) > 1:
        sections.append(f"<h2>Comparison (same evaluation images)</h2>{comparison_table(summary, classes)}")
    if summary["data_efficiency"]:
        sections.append("<h2>Data efficiency</h2><img src='data:image/png;base64,"
                        f"{plots.efficiency_plot(summary['data_efficiency'], zero_shot_reference(summary), colors)}'>")
    figs = []
    if "pr" in metrics["segm"]:
        figs.append(plots.pr_plot(metrics["segm"]["pr"], "mask precision-recall", colors))
        figs.append(plots.pr_plot(metrics["bbox"]["pr"], "box precision-recall", colors))
    if "confusion" in metrics:
        figs.append(plots.confusion_plot(metrics["confusion"], colors))
    if figs:
        sections.append("<h2>Where it goes wrong</h2><p>Precision-recall per class (solid IoU 0.50, dashed 0.75); "
                        "confusion matrix: rows are the true class (background = false positive), columns the "
                        "prediction (missed = nothing matched).</p>"
                        + "".join(f"<img class='fig' src='data:image/png;base64,{b}'>" for b in figs))
    training = f"<img src='data:image/png;base64,{plots.loss_plot(metrics_csv)}'>"
    if val_csv is not None and Path(val_csv).is_file() and plots.read_csv(val_csv):
        training += (f"<p>AP over training (validation split, every train.eval_every iterations; best.pth is the "
                     f"best segm AP):</p><img class='fig' src='data:image/png;base64,{plots.val_ap_plot(val_csv)}'>")
    by_img: dict[int, list] = {}
    for p in preds:
        by_img.setdefault(p["image_id"], []).append(p)
    gt_by_img: dict[int, list] = {}
    for a in gt["annotations"]:
        gt_by_img.setdefault(a["image_id"], []).append(a)
    per_image = metrics.get("per_image") or [{"image_id": im["id"], "file_name": im["file_name"]} for im in gt["images"]]
    worst = per_image[: (num_images + 1) // 2]
    best = [r for r in reversed(per_image) if r not in worst][: num_images // 2]
    gallery = []
    for kind, chosen in (("worst", worst), ("best", best)):
        for r in chosen:
            b64 = draw_predictions(image_root / r["file_name"], by_img.get(r["image_id"], []),
                                   gt_by_img.get(r["image_id"], []), names, threshold)
            errs = f" — {r['errors']} errors (fp {r['fp']}, fn {r['fn']}, wrong class {r['wrong_class']})" if "errors" in r else ""
            gallery.append(f"<figure><img src='data:image/png;base64,{b64}'><figcaption>{kind}: "
                           f"{html.escape(r['file_name'])}{errs}</figcaption></figure>")
    error_rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(r['file_name'])}</td><td>{r['objects']}</td><td>{r['tp']}</td>"
        f"<td>{r['fp']}</td><td>{r['fn']}</td><td>{r['wrong_class']}</td><td>{_fmt(r['mean_iou'])}</td></tr>"
        for r in per_image[:15] if "errors" in r)
    if error_rows:
        sections.append("<h2>Per-image errors (worst first)</h2><table><tr><th>image</th><th>objects</th><th>tp</th>"
                        f"<th>fp</th><th>fn</th><th>wrong class</th><th>mean IoU</th></tr>{error_rows}</table>")
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
    legend = " ".join(f"<span style='color:rgb{colors[n]}'>■ {html.escape(n)}</span>" for n in names.values())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
figure{{display:inline-block;margin:6px}}img{{max-width:100%}}img.fig{{max-width:49%}}
figcaption{{font-size:12px;color:#555}}.headline{{font-size:1.2em;background:#eef5ff;padding:.6em}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="headline">{html.escape(headline(summary))}</p>
<p>Evaluated on {metrics.get('num_images', '?')} images, {metrics.get('num_predictions', '?')} predictions. {html.escape(note)}</p>
<h2>COCO metrics</h2><table><tr><th></th><th>AP</th><th>AP50</th><th>AP75</th><th>AP small</th><th>AP medium</th>
<th>AP large</th><th>AR100</th></tr>{''.join(rows)}</table>
<h2>Per-class AP (IoU 0.50:0.95)</h2><table><tr><th>class</th><th>bbox</th><th>segm</th></tr>{per_class}</table>
{''.join(sections)}
<h2>Training</h2>{training}
{sheet_html}<h2>Predictions: worst and best images</h2><p>{legend}</p>{''.join(gallery)}
<h2>Provenance</h2><pre>{html.escape(json.dumps(prov or {}, indent=1, sort_keys=True))}</pre>
</body></html>"""


def markdown_summary(title: str, metrics: dict[str, Any], summary: dict[str, Any], classes: list[str]) -> str:
    lines = [f"# {title}", "", headline(summary), "", comparison_table(summary, classes, markdown=True), ""]
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
    ap.add_argument("--compare", nargs="*", default=[], metavar="NAME=METRICS_JSON",
                    help="other models' metrics: mode_<transfer>, n<images>, zero_shot, real")
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
                        args.jack_sheet)
    if args.metrics_out:
        write_json(args.metrics_out, {"main": {k: metrics[k] for k in ("bbox", "segm", "num_images")},
                                      "confusion": metrics.get("confusion"), **summary, "provenance": prov})
    if args.summary:
        with atomic_path(args.summary) as tmp:
            tmp.write_text(markdown_summary(args.title, metrics, summary, classes))
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)
    return 0
