"""The small-object recipe (issue #26) is configuration of torchvision's Mask R-CNN R50-FPN: anchors, the mask
branch's RoIAlign size and the weights of the loss terms. Real Mask R-CNN steps on the rendered fixture."""
import csv
import json

import pytest
import torch

from pipeline.model import RPN_PREDICTOR, build_model, load_checkpoint, model_from_checkpoint
from pipeline.train import train

from tests.test_train import CLASSES, MODEL_CFG, train_cfg, write_train_json

pytestmark = pytest.mark.slow
RECIPE = {"anchor_sizes": [12, 24, 48, 96, 192], "anchor_aspect_ratios": [0.8, 1.8, 3.0, 4.0], "mask_roi_size": 28}


def mask_logit_size(model, image) -> int:
    """Side of the mask predictor's output on one image (a hook on torchvision's MaskRCNNPredictor)."""
    seen = []
    handle = model.roi_heads.mask_predictor.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    with torch.no_grad():
        model.eval()([image])
    handle.remove()
    return seen[0]


def test_a_recipe_trains_and_its_checkpoint_rebuilds_it(shard_coco, rendered_shard, tmp_path):
    """Sizes, ratios and the mask RoI size reach torchvision's AnchorGenerator, RPNHead and MultiScaleRoIAlign;
    training with them runs, and the checkpoint (config inside) rebuilds the same parts with the same
    weights; the default model keeps torchvision's 3 ratios, 32-512 px and 28x28 masks."""
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    model_cfg = {**MODEL_CFG, **RECIPE}
    train(train_cfg(), CLASSES, model_cfg, {"kind": "none"}, ann, root, tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run" / "model_final.pth", CLASSES)
    model = model_from_checkpoint(ckpt)
    gen = model.rpn.anchor_generator
    assert [s[0] for s in gen.sizes] == RECIPE["anchor_sizes"]
    assert all(list(r) == RECIPE["anchor_aspect_ratios"] for r in gen.aspect_ratios)
    assert model.rpn.head.cls_logits.out_channels == 4 and model.rpn.head.bbox_pred.out_channels == 16
    assert model.roi_heads.mask_roi_pool.output_size == (28, 28)
    image = torch.rand(3, 96, 128)
    assert mask_logit_size(model, image) == 56
    default = build_model(3, {"kind": "none"}, min_size=96, max_size=128)
    assert [s[0] for s in default.rpn.anchor_generator.sizes] == [32, 64, 128, 256, 512]
    assert default.rpn.head.cls_logits.out_channels == 3 and mask_logit_size(default, image) == 28


def test_pretrained_weights_load_under_another_anchor_count(tmp_path):
    """A COCO-shaped state dict (91 classes, 3 anchors per location) loads into a 4-ratio model: every
    tensor but the RPN's two 1x1 predictors is the file's, those have 4 outputs per location from
    torchvision's init; with 3 ratios and other sizes everything, the RPN predictors too, is the file's."""
    torch.manual_seed(0)
    coco_like = build_model(91, {"kind": "none"}, 3, 96, 128, replace_heads=False).state_dict()
    path = tmp_path / "coco_like.pth"
    torch.save(coco_like, path)
    info = {"kind": "path", "path": str(path)}
    four = build_model(91, info, 3, 96, 128, replace_heads=False, recipe=RECIPE).state_dict()
    assert four["rpn.head.cls_logits.weight"].shape[0] == 4 and four["rpn.head.bbox_pred.weight"].shape[0] == 16
    for k, v in four.items():
        if k in RPN_PREDICTOR:
            assert four[k].shape != coco_like[k].shape
        elif v.dtype.is_floating_point:
            assert torch.equal(v, coco_like[k]), k
    same_count = build_model(91, info, 3, 96, 128, replace_heads=False,
                             recipe={"anchor_sizes": RECIPE["anchor_sizes"]}).state_dict()
    assert all(torch.equal(v, coco_like[k]) for k, v in same_count.items() if v.dtype.is_floating_point)
    # feature extraction trains the heads only, and the RPN's head too where the anchors are not the weights'
    # own: COCO's are torchvision's defaults, a pipeline checkpoint's those of its config
    base = tmp_path / "base.pth"
    torch.save({"model": build_model(3, {"kind": "none"}, 3, 96, 128, recipe=RECIPE).state_dict(), "classes": CLASSES,
                "config": json.dumps({"model": {**MODEL_CFG, **RECIPE}})}, base)
    base_info = {"kind": "path", "path": str(base)}
    heads = {"roi_heads.box_head", "roi_heads.box_predictor", "roi_heads.mask_head", "roi_heads.mask_predictor"}
    for weights, recipe, rpn_learns in ((info, None, False), (info, {"anchor_sizes": RECIPE["anchor_sizes"]}, True),
                                        (info, RECIPE, True), (base_info, RECIPE, False), (base_info, None, True)):
        fe = build_model(3, weights, 3, 96, 128, transfer="feature_extraction", recipe=recipe, classes=CLASSES)
        learns = {n.split(".")[0] + "." + n.split(".")[1] for n, p in fe.named_parameters() if p.requires_grad}
        assert learns == heads | ({"rpn.head"} if rpn_learns else set()), (weights["path"], recipe)
    # a mismatch outside the RPN's predictors is no recipe: the file is refused, naming it
    bad = dict(coco_like)
    bad["roi_heads.mask_head.0.0.weight"] = torch.zeros(8, 256, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth: not a maskrcnn_resnet50_fpn COCO state dict"):
        build_model(91, {"kind": "path", "path": str(tmp_path / "bad.pth")}, 3, 96, 128, replace_heads=False,
                    recipe=RECIPE)


def test_loss_weights_weight_the_optimised_sum(shard_coco, rendered_shard, tmp_path):
    """metrics.csv logs torchvision's terms unweighted and `loss` as the weighted sum; the weights reach the
    backward pass: with loss_mask 0 (and no weight decay) the mask branch keeps its initial weights whatever
    the other terms' weights, while with loss_mask 1 it learns."""
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    runs = {"plain": {}, "weighted": {"loss_mask": 3.0, "loss_objectness": 0.5},
            "no_mask": {"loss_mask": 0.0}, "no_mask_cls5": {"loss_mask": 0.0, "loss_classifier": 5.0}}
    mask_branch = {}
    for name, weights in runs.items():
        train(train_cfg(iterations=3, weight_decay=0.0, loss_weights=weights), CLASSES, MODEL_CFG,
              {"kind": "none"}, ann, root, tmp_path / name)
        with open(tmp_path / name / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 3
        for r in rows:
            terms = {k: float(v) for k, v in r.items() if k.startswith("loss_") and v != ""}
            assert len(terms) == 5 and float(r["loss"]) == pytest.approx(
                sum(weights.get(k, 1.0) * v for k, v in terms.items()), rel=1e-5)
            if name == "weighted":  # the mask and objectness terms are never 0 on the fixture's frames
                assert float(r["loss"]) != pytest.approx(sum(terms.values()), rel=1e-3)
        state = load_checkpoint(tmp_path / name / "model_final.pth", CLASSES)["model"]
        mask_branch[name] = {k: v for k, v in state.items() if k.startswith(("roi_heads.mask_head",
                                                                            "roi_heads.mask_predictor"))}
    assert mask_branch["no_mask"] and all(torch.equal(v, mask_branch["no_mask_cls5"][k])
                                          for k, v in mask_branch["no_mask"].items())
    assert not all(torch.equal(v, mask_branch["plain"][k]) for k, v in mask_branch["no_mask"].items())
