"""The report's section for one evaluation (a model on one set of images): COCO tables, where it goes
wrong (PR curves, confusion), per-image errors and a gallery. Used for the synthetic evaluation split
and for each of a site's real sets, so both read the same way."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import plots
from pipeline.coco import decode_segmentation

STATS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100")


def fmt(value: float | None) -> str:
    """COCOeval reports -1 where a metric has no ground truth (e.g. no large objects)."""
    return "n/a" if value is None or value < 0 else f"{value:.3f}"


def draw_predictions(image_path: Path, preds: list[dict[str, Any]], gt: list[dict[str, Any]],
                     names: dict[int, str], threshold: float) -> str:
    """Ground truth (left) and predictions above `threshold` (right), masks and boxes, as base64 PNG.

    Crowd regions (`iscrowd`) are drawn on the ground-truth side with a "crowd" label."""
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
        labels = [names[a["category_id"]] + (" crowd" if a.get("iscrowd") else "")
                  + (f" {a['score']:.2f}" if with_score else "") for a in anns]
        return draw_bounding_boxes(out, boxes, labels=labels, colors=colors, width=2)

    shown = [p for p in preds if p["score"] >= threshold]
    both = torch.cat([draw(gt, False), torch.full((3, img.shape[1], 6), 255, dtype=torch.uint8),
                      draw(shown, True)], dim=2)
    buf = io.BytesIO()
    Image.fromarray(both.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def evaluation_parts(metrics: dict[str, Any], gt: dict[str, Any], preds: list[dict[str, Any]], image_root: Path,
                     num_images: int, threshold: float, colors: dict[str, tuple], level: int = 2) -> dict[str, str]:
    """HTML of one evaluation: {tables, wrong, errors, gallery} (headings at `level`)."""
    h = f"h{level}"
    names = {c["id"]: c["name"] for c in gt["categories"]}
    classes = [names[k] for k in sorted(names)]
    rows = "".join(f"<tr><th>{t}</th>" + "".join(f"<td>{fmt(metrics[t][k])}</td>" for k in STATS) + "</tr>"
                   for t in ("bbox", "segm"))
    per_class = "".join(f"<tr><th>{html.escape(n)}</th><td>{fmt(metrics['bbox']['per_class'].get(n, -1))}</td>"
                        f"<td>{fmt(metrics['segm']['per_class'].get(n, -1))}</td></tr>" for n in classes)
    tables = (f"<{h}>COCO metrics</{h}><table><tr><th></th><th>AP</th><th>AP50</th><th>AP75</th><th>AP small</th>"
              f"<th>AP medium</th><th>AP large</th><th>AR100</th></tr>{rows}</table>"
              f"<{h}>Per-class AP (IoU 0.50:0.95)</{h}><table><tr><th>class</th><th>bbox</th><th>segm</th></tr>"
              f"{per_class}</table>")
    figs = []
    if "pr" in metrics["segm"]:
        figs.append(plots.pr_plot(metrics["segm"]["pr"], "mask precision-recall", colors))
        figs.append(plots.pr_plot(metrics["bbox"]["pr"], "box precision-recall", colors))
    if "confusion" in metrics:
        figs.append(plots.confusion_plot(metrics["confusion"], colors))
    wrong = ""
    if figs:
        wrong = (f"<{h}>Where it goes wrong</{h}><p>Precision-recall per class (solid IoU 0.50, dashed 0.75); "
                 "confusion matrix: rows are the true class (background = false positive), columns the "
                 "prediction (missed = nothing matched).</p>"
                 + "".join(f"<img class='fig' src='data:image/png;base64,{b}'>" for b in figs))
    per_image = metrics.get("per_image") or [{"image_id": im["id"], "file_name": im["file_name"]} for im in gt["images"]]
    crowd = any("in_crowd" in r and r["in_crowd"] for r in per_image)
    error_rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(r['file_name'])}</td><td>{r['objects']}</td><td>{r['tp']}</td>"
        f"<td>{r['fp']}</td><td>{r['fn']}</td><td>{r['wrong_class']}</td><td>{fmt(r['mean_iou'])}</td>"
        + (f"<td>{r.get('in_crowd', 0)}</td>" if crowd else "") + "</tr>"
        for r in per_image[:15] if "errors" in r)
    errors = ""
    if error_rows:
        errors = (f"<{h}>Per-image errors (worst first)</{h}><table><tr><th>image</th><th>objects</th><th>tp</th>"
                  "<th>fp</th><th>fn</th><th>wrong class</th><th>mean IoU</th>"
                  + ("<th>in crowd regions (ignored)</th>" if crowd else "") + f"</tr>{error_rows}</table>")
    by_img: dict[int, list] = {}
    for p in preds:
        by_img.setdefault(p["image_id"], []).append(p)
    gt_by_img: dict[int, list] = {}
    for a in gt["annotations"]:
        gt_by_img.setdefault(a["image_id"], []).append(a)
    worst = per_image[: (num_images + 1) // 2]
    best = [r for r in reversed(per_image) if r not in worst][: num_images // 2]
    figures = []
    for kind, chosen in (("worst", worst), ("best", best)):
        for r in chosen:
            b64 = draw_predictions(image_root / r["file_name"], by_img.get(r["image_id"], []),
                                   gt_by_img.get(r["image_id"], []), names, threshold)
            errs = (f" — {r['errors']} errors (fp {r['fp']}, fn {r['fn']}, wrong class {r['wrong_class']})"
                    if "errors" in r else "")
            figures.append(f"<figure><img src='data:image/png;base64,{b64}'><figcaption>{kind}: "
                           f"{html.escape(r['file_name'])}{errs}</figcaption></figure>")
    legend = " ".join(f"<span style='color:rgb{colors[n]}'>■ {html.escape(n)}</span>" for n in classes)
    gallery = (f"<{h}>Predictions: worst and best images</{h}><p>Each image: <b>left ground truth</b>, <b>right "
               f"prediction</b> (score ≥ {threshold:g}). {legend}</p>{''.join(figures)}")
    return {"tables": tables, "wrong": wrong, "errors": errors, "gallery": gallery}


def real_section(name: str, metrics: dict[str, Any], gt: dict[str, Any], preds: list[dict[str, Any]],
                 image_root: Path, summary: dict[str, Any], num_images: int, threshold: float,
                 colors: dict[str, tuple]) -> str:
    """A site's real set: its own full section, apart from the comparisons on the synthetic split."""
    parts = evaluation_parts(metrics, gt, preds, image_root, num_images, threshold, colors, level=3)
    mapped = ", ".join(f"{html.escape(k)} → {html.escape(v)}" for k, v in summary.get("category_map", {}).items())
    dropped = "; ".join(f"{html.escape(k)}: {v}" for k, v in summary.get("dropped", {}).items()) or "none"
    return (f"<h2>Real images: {html.escape(name)}</h2><p class='real'>The main model on {metrics.get('num_images', '?')}"
            f" labelled frames of <code>{html.escape(str(summary.get('source', name)))}</code>: other images than the "
            "synthetic evaluation split above, so its numbers are not a row of that comparison. "
            f"Categories: {mapped or 'names as ours'}; crowd regions (ignored in scoring): {summary.get('crowd', 0)}; "
            f"annotations dropped: {dropped}; boxes clipped to the image: {summary.get('boxes_clipped', 0)}.</p>"
            + parts["tables"] + parts["wrong"] + parts["errors"] + parts["gallery"])
