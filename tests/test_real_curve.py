"""The real-label efficiency page: rows from metrics files, N from the training files, labels saved."""
import json

from pipeline.real_curve import collect, frames_to_match, main


def metrics(ap: float) -> dict:
    per = {"pedestrian": ap, "pallet_jack": ap / 2}
    return {t: {"AP": ap, "AP50": min(1.0, 2 * ap), "per_class": per} for t in ("segm", "bbox")}


def test_curve_rows_and_the_real_frames_synthetic_pretraining_saves(tmp_path):
    """N is counted from each run's training file; synthetic -> real at 2 frames matches real only at 6
    (0.30 >= 0.25); where real only scores 0 there is nothing to match and the page says so."""
    runs = []
    for kind, n, ap in [("real_only", 2, 0.0), ("real_only", 6, 0.25), ("syn2real", 0, 0.1), ("syn2real", 2, 0.3),
                        ("syn2real", 6, 0.4), ("mixed", 6, 0.2)]:
        m = tmp_path / f"{kind}_{n}.json"
        m.write_text(json.dumps(metrics(ap)))
        t = tmp_path / f"{kind}_{n}_train.json"
        t.write_text(json.dumps({"images": [{"id": i} for i in range(n)]}))
        runs.append((kind, t if n else None, m, None))
    result = collect(runs, {"title": "t"})
    assert [(r["kind"], r["n"]) for r in result["runs"]] == [("real_only", 2), ("real_only", 6), ("syn2real", 0),
                                                             ("syn2real", 2), ("syn2real", 6), ("mixed", 6)]
    assert result["frames_to_match_real_only"] == {"segm": {"6": 2}, "bbox": {"6": 2}}
    assert frames_to_match([{"kind": "real_only", "n": 4, "segm": {"AP": 0.5}, "bbox": {"AP": 0.5}},
                            {"kind": "syn2real", "n": 4, "segm": {"AP": 0.4}, "bbox": {"AP": 0.6}}]) == \
        {"segm": {"4": None}, "bbox": {"4": 4}}
    info = {"title": "real curve", "classes": ["pedestrian", "pallet_jack"], "dataset": "site", "split_by": "folder",
            "seed": 0, "parts": {"train": 6, "val": 2, "test": 2}, "transfer": "fine_tune", "iterations": 8,
            "batch_size": 2, "lr": 0.002, "mixed_iterations": 8, "mix_fraction": 0.25,
            "real_only_start": "weights: none, transfer: from_scratch", "synthetic_model": "smoke, best.pth"}
    args = [a for kind, t, m, _ in runs for a in ("--run", kind, str(t) if t else "-", str(m), "-")]
    assert main([*args, "--info", json.dumps(info), "--out-dir", str(tmp_path / "page")]) == 0
    html = (tmp_path / "page/index.html").read_text()
    assert "n/a: real only scored 0" in html and "<td>6</td><td>2</td>" in html
    assert json.loads((tmp_path / "page/real_curve.json").read_text())["runs"][-1]["kind"] == "mixed"
