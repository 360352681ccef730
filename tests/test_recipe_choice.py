"""How benchmarks/recipe_search.py adopts and chooses, and how proof_gpu.py applies the chosen recipe (pure
functions; the search's trainings are benchmarks)."""
from __future__ import annotations

from benchmarks.proof_gpu import recipe_note, with_recipe
from benchmarks.recipe_search import combine, select


def _row(value: float, lo: float | None = None, hi: float | None = None) -> dict:
    out = {"criterion": {"value": value, "lo": value, "hi": value}}
    if lo is not None:
        out["criterion_minus_baseline"] = {"value": value - 0.1, "lo": lo, "hi": hi}
    return out


def test_a_factor_is_adopted_only_where_its_interval_is_above_zero_and_combined_must_pass_too():
    table = {"baseline": _row(0.10), "mask56": _row(0.30, 0.0, 0.4), "anchors": _row(0.20, 0.01, 0.2),
             "upscale": _row(0.25, 0.02, 0.3), "mask_loss": _row(0.12, None, None)}
    factors = ["mask56", "anchors", "upscale", "mask_loss"]
    # mask56 has the highest mean, but its interval touches 0: not adopted; the best adopted one is chosen
    assert select(table, factors) == (["anchors", "upscale"], "upscale")
    table["combined"] = _row(0.40, -0.01, 0.5)  # highest of all, but not shown above the baseline
    assert select(table, factors) == (["anchors", "upscale"], "upscale")
    table["combined"] = _row(0.40, 0.05, 0.5)
    assert select(table, factors) == (["anchors", "upscale"], "combined")
    nothing = {name: _row(r["criterion"]["value"], -0.1, 0.1) if name != "baseline" else r for name, r in table.items()}
    assert select(nothing, factors) == ([], "baseline")


def test_combined_merges_nested_overrides():
    parts = [{"model": {"mask_roi_size": 28}, "train": {"loss_weights": {"loss_mask": 2.0}}},
             {"model": {}, "train": {"loss_weights": {"loss_objectness": 0.5}, "iterations": 20}}]
    assert combine(parts) == {"model": {"mask_roi_size": 28},
                              "train": {"loss_weights": {"loss_mask": 2.0, "loss_objectness": 0.5}, "iterations": 20}}


def test_a_recipe_reaches_every_run_section_and_scales_only_the_site_a_schedule():
    plan = {"model": {"min_size_px": 240, "anchor_sizes": None}, "train": {"iterations": 150, "loss_weights": {"loss_box_reg": 1.5}},
            "proof_train": {"iterations": 60, "loss_weights": {}}, "proof": {}}
    recipe = {"chosen": "combined", "model": {"anchor_sizes": [19, 25, 32, 42, 58], "mask_roi_size": 28},
              "train": {"loss_weights": {"loss_mask": 2.0}}, "iterations_factor": 2.0}
    new, base_iterations = with_recipe(plan, recipe, 700)
    assert base_iterations == 1400 and new["proof_train"]["iterations"] == 60  # site-B budget unchanged
    assert new["model"] == {"min_size_px": 240, "anchor_sizes": [19, 25, 32, 42, 58], "mask_roi_size": 28}
    assert new["train"]["loss_weights"] == {"loss_box_reg": 1.5, "loss_mask": 2.0}  # merged, not replaced
    assert new["proof_train"]["loss_weights"] == {"loss_mask": 2.0}
    assert plan["model"]["anchor_sizes"] is None  # the plan itself is left as it was
    note = recipe_note(recipe)
    assert "anchors fitted to site-A boxes" in note and "mask_roi_size 28" in note and "x 2.0" in note
    baseline = recipe_note({"chosen": "baseline", "model": {}, "train": {}, "iterations_factor": 1.0})
    assert "torchvision's default anchors" in baseline and "fitted" not in baseline
