"""Self-contained HTML report: metrics table, loss curve, predictions drawn on images."""
from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import atomic_path, provenance, read_json

from pipeline.contact_sheet import class_color


def _png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _fmt(value: float) -> str:
    """COCOeval reports -1 where a metric has no ground truth (e.g. no large objects)."""
    return "n/a" if value < 0 else f"{value:.3f}"


def loss_plot(metrics_csv: Path) -> str:
    """Loss components and lr against iteration, as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv) as f:
        rows = list(csv.DictReader(f))
    it = [int(r["iteration"]) for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("loss", "loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"):
        ax.plot(it, [float(r[key]) for r in rows], label=key, lw=2 if key == "loss" else 1)
    ax.set_xlabel("iteration"); ax.set_ylabel("loss"); ax.legend(fontsize=7); ax.set_title("training loss")
    ax2.plot(it, [float(r["lr"]) for r in rows]); ax2.set_xlabel("iteration"); ax2.set_title("learning rate")
    out = _png_b64(fig)
    plt.close(fig)
    return out


def draw_predictions(image_path: Path, preds: list[dict[str, Any]], gt: list[dict[str, Any]],
                     names: dict[int, str], threshold: float) -> str:
    """Ground truth (left) and predictions above `threshold` (right), masks and boxes, as base64 PNG."""
    import torch
    from PIL import Image
    from pycocotools import mask as mask_utils
    from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

    img = torch.from_numpy(np.asarray(Image.open(image_path).convert("RGB")).copy()).permute(2, 0, 1)

    def draw(anns, with_score):
        out = img
        if not anns:
            return out
        masks = torch.from_numpy(np.stack([mask_utils.decode(a["segmentation"]) for a in anns])).bool()
        colors = [class_color(a["category_id"]) for a in anns]
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


def build_report(metrics: dict[str, Any], metrics_csv: Path, gt: dict[str, Any], preds: list[dict[str, Any]],
                 image_root: Path, num_images: int, threshold: float, title: str,
                 prov: dict[str, Any] | None = None, contact_sheet: Path | None = None) -> str:
    """The HTML text of the report (all images embedded)."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    rows = []
    for iou_type in ("bbox", "segm"):
        m = metrics[iou_type]
        cells = "".join(f"<td>{_fmt(m[k])}</td>" for k in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100"))
        rows.append(f"<tr><th>{iou_type}</th>{cells}</tr>")
    per_class = "".join(
        f"<tr><th>{html.escape(n)}</th><td>{_fmt(metrics['bbox']['per_class'].get(n, -1))}</td>"
        f"<td>{_fmt(metrics['segm']['per_class'].get(n, -1))}</td></tr>" for n in names.values())
    by_img: dict[int, list] = {}
    for p in preds:
        by_img.setdefault(p["image_id"], []).append(p)
    gt_by_img: dict[int, list] = {}
    for a in gt["annotations"]:
        gt_by_img.setdefault(a["image_id"], []).append(a)
    gallery = []
    for im in gt["images"][:num_images]:
        b64 = draw_predictions(image_root / im["file_name"], by_img.get(im["id"], []), gt_by_img.get(im["id"], []),
                               names, threshold)
        gallery.append(f"<figure><img src='data:image/png;base64,{b64}'><figcaption>{html.escape(im['file_name'])}: "
                       f"ground truth (left), predictions with score ≥ {threshold} (right)</figcaption></figure>")
    note = metrics["segm"].get("note", "")
    sheet_html = ""
    if contact_sheet is not None:
        b64 = base64.b64encode(Path(contact_sheet).read_bytes()).decode()
        sheet_html = (f"<h2>Dataset contact sheet</h2><p>Renders (left) and exact ground-truth masks (right).</p>"
                      f"<img src='data:image/png;base64,{b64}'>")
    legend = " ".join(f"<span style='color:rgb{class_color(i)}'>■ {html.escape(n)}</span>"
                      for i, n in names.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
figure{{display:inline-block;margin:6px}}img{{max-width:100%}}figcaption{{font-size:12px;color:#555}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Evaluated on {metrics.get('num_images', '?')} images, {metrics.get('num_predictions', '?')} predictions. {html.escape(note)}</p>
<h2>COCO metrics</h2><table><tr><th></th><th>AP</th><th>AP50</th><th>AP75</th><th>AP small</th><th>AP medium</th>
<th>AP large</th><th>AR100</th></tr>{''.join(rows)}</table>
<h2>Per-class AP (IoU 0.50:0.95)</h2><table><tr><th>class</th><th>bbox</th><th>segm</th></tr>{per_class}</table>
<h2>Training</h2><img src="data:image/png;base64,{loss_plot(metrics_csv)}">
{sheet_html}<h2>Predictions</h2><p>{legend}</p>{''.join(gallery)}
<h2>Provenance</h2><pre>{html.escape(json.dumps(prov or {}, indent=1, sort_keys=True))}</pre>
</body></html>"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline report", description=__doc__)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--predictions", type=Path, required=True)
    ap.add_argument("--metrics-csv", type=Path, required=True)
    ap.add_argument("--ann", type=Path, required=True)
    ap.add_argument("--image-root", type=Path, required=True)
    ap.add_argument("--contact-sheet", type=Path, help="PNG of renders with masks to embed")
    ap.add_argument("--report-cfg", required=True, help="`report` config section as JSON")
    ap.add_argument("--title", default="hangar-synth evaluation")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    cfg = json.loads(args.report_cfg)
    text = build_report(read_json(args.metrics), args.metrics_csv, read_json(args.ann), read_json(args.predictions),
                        args.image_root, cfg["num_images"], cfg["draw_score_threshold"], args.title,
                        provenance({"report": cfg}), args.contact_sheet)
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)
    return 0
