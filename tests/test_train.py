"""Real Mask R-CNN steps on CPU with the rendered fixture."""
import csv
import json

import pytest
import torch

from pipeline.data import CocoInstances, collate, eval_transforms
from pipeline.model import build_model, load_checkpoint
from pipeline.train import NonFiniteLoss, train

pytestmark = pytest.mark.slow
CLASSES = ["pedestrian", "pallet_jack"]
MODEL_CFG = {"arch": "maskrcnn_resnet50_fpn", "weights": "none", "trainable_backbone_layers": 3,
             "min_size_px": 96, "max_size_px": 128}


def train_cli_args(shard_coco, rendered_shard, tmp_path, out, **cfg_over) -> list[str]:
    """`-m pipeline train ...` arguments for a from-scratch run on the rendered fixture (subprocess tests)."""
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(shard_coco))
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"kind": "none", "arch": "maskrcnn_resnet50_fpn"}))
    return ["-m", "pipeline", "train", "--train-json", str(ann), "--image-root", str(rendered_shard),
            "--weights-json", str(weights), "--classes", json.dumps(CLASSES),
            "--model-cfg", json.dumps({**MODEL_CFG, "transfer": "fine_tune"}),
            "--train-cfg", json.dumps(train_cfg(eval_every=0, **cfg_over)), "--out-dir", str(out)]


def write_train_json(shard_coco, rendered_shard, tmp_path):
    p = tmp_path / "train.json"
    p.write_text(json.dumps(shard_coco))
    return p, rendered_shard


def test_heads_are_three_class():
    m = build_model(3, {"kind": "none"}, min_size=96, max_size=128)
    assert m.roi_heads.box_predictor.cls_score.out_features == 3
    assert m.roi_heads.box_predictor.bbox_pred.out_features == 12
    assert m.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 3


def test_train_steps_lower_loss_on_fixed_batch(shard_coco, rendered_shard, tmp_path):
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    ds = CocoInstances(ann, root, eval_transforms())
    images, targets = collate([ds[0], ds[1]])
    torch.manual_seed(0)
    model = build_model(3, {"kind": "none"}, min_size=96, max_size=128)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.002, momentum=0.9)

    def loss_now():
        torch.manual_seed(1)  # same RPN/ROI sampling each time: compare like with like
        return sum(model(list(images), list(targets)).values())

    with torch.no_grad():
        start = loss_now().item()
    for _ in range(8):
        loss = loss_now()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
    with torch.no_grad():
        end = loss_now().item()
    assert end < 0.8 * start, (start, end)


def train_cfg(**over):
    cfg = {"iterations": 2, "batch_size": 2, "lr": 0.001, "momentum": 0.9, "weight_decay": 1e-4,
           "warmup_iters": 1, "grad_clip_norm": 10.0, "checkpoint_every": 1, "hflip_prob": 0.5,
           "workers": 0, "device": "cpu", "amp": False, "seed": 0}
    cfg.update(over)
    return cfg


def test_train_writes_checkpoints_and_resumes(shard_coco, rendered_shard, tmp_path):
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    out = tmp_path / "run"
    train(train_cfg(), CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, out)
    ckpt = load_checkpoint(out / "model_final.pth", CLASSES)
    assert ckpt["iteration"] == 2 and (out / "metrics.csv").read_text().count("\n") == 3
    # model_final.pth is for deployment: the model alone; last.pth also carries optimizer/RNG state.
    assert "optimizer" not in ckpt and {"optimizer", "rng", "epoch"} <= set(load_checkpoint(out / "last.pth"))
    assert (out / "model_final.pth").stat().st_size < 0.75 * (out / "last.pth").stat().st_size
    # Extending the run resumes from last.pth (iteration 2) instead of starting over... only when
    # the config matches; a changed config starts afresh.
    with pytest.raises(ValueError, match="trained for classes"):
        load_checkpoint(out / "last.pth", ["pedestrian"])
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth: not a hangar-synth checkpoint"):
        load_checkpoint(bad)


def test_resume_matches_uninterrupted_run(shard_coco, rendered_shard, tmp_path):
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    # 2 images, batch 1: iterations cross an epoch boundary; the "kill" lands mid-epoch.
    cfg = train_cfg(iterations=4, batch_size=1, checkpoint_every=1, hflip_prob=0.5)
    train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "a")
    stopped = train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "b", stop_after=3)
    assert stopped["stopped"] and load_checkpoint(tmp_path / "b" / "last.pth")["iteration"] == 3
    train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "b")
    a = load_checkpoint(tmp_path / "a" / "model_final.pth")["model"]
    b = load_checkpoint(tmp_path / "b" / "model_final.pth")["model"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k

    def losses(run):
        with open(tmp_path / run / "metrics.csv") as f:
            return [(r["iteration"], round(float(r["loss"]), 3)) for r in csv.DictReader(f)]

    assert losses("a") == losses("b") and len(losses("a")) == 4


def test_periodic_validation_keeps_best_checkpoint(shard_coco, rendered_shard, tmp_path):
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    out = tmp_path / "v"
    train(train_cfg(iterations=2, eval_every=1), CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, out, val_json=ann)
    with open(out / "val_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["iteration"] for r in rows] == ["1", "2"]
    assert all(0.0 <= float(r["segm_AP"]) <= 1.0 for r in rows)
    best = load_checkpoint(out / "best.pth", CLASSES)
    assert best["iteration"] == 1 + max(range(2), key=lambda i: (float(rows[i]["segm_AP"]), -i))


def test_nan_loss_stops_with_clear_error(shard_coco, rendered_shard, tmp_path):
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    with pytest.raises(NonFiniteLoss, match="last good checkpoint"):
        train(train_cfg(lr=1e6, iterations=6, grad_clip_norm=0.0, warmup_iters=0), CLASSES, MODEL_CFG,
              {"kind": "none"}, ann, root, tmp_path / "nan")


def test_empty_training_sets_are_rejected(shard_coco, rendered_shard, tmp_path):
    p = tmp_path / "empty.json"
    p.write_text(json.dumps({**shard_coco, "annotations": []}))
    with pytest.raises(ValueError, match="no image in the training set has an object"):
        train(train_cfg(), CLASSES, MODEL_CFG, {"kind": "none"}, p, rendered_shard, tmp_path / "e")


def test_transfer_modes_freeze_what_they_say(tmp_path):
    from pipeline.model import build_model, count_trainable

    # A state dict in COCO layout (91 classes) stands in for the downloaded file: same code path as coco.
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models import resnet50
    from torchvision.ops import FrozenBatchNorm2d

    coco_like = MaskRCNN(_resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 5), num_classes=91)
    path = tmp_path / "coco_like.pth"
    torch.save(coco_like.state_dict(), path)
    info = {"kind": "path", "arch": "maskrcnn_resnet50_fpn", "path": str(path)}
    counts = {mode: count_trainable(build_model(3, info, 3, 96, 128, transfer=mode))
              for mode in ("feature_extraction", "fine_tune", "full")}
    assert counts["feature_extraction"] < counts["fine_tune"] < counts["full"]
    fe = build_model(3, info, 3, 96, 128, transfer="feature_extraction")
    trainable = {n.split(".")[0] for n, p in fe.named_parameters() if p.requires_grad}
    assert trainable == {"roi_heads"}
    ft = build_model(3, info, 1, 96, 128, transfer="fine_tune")
    assert any(p.requires_grad for n, p in ft.named_parameters() if n.startswith("backbone.body.layer4"))
    assert not any(p.requires_grad for n, p in ft.named_parameters() if n.startswith("backbone.body.layer3"))
    # Loaded weights really arrive (backbone conv1 equals the file's).
    assert torch.equal(fe.backbone.body.conv1.weight, coco_like.backbone.body.conv1.weight)


def test_v2_arch_loads_weights_and_freezes_backbone_stages(tmp_path):
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    from pipeline.model import build_model

    ref = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path / "v2.pth"
    torch.save(ref.state_dict(), path)
    m = build_model(3, {"kind": "path", "arch": "maskrcnn_resnet50_fpn_v2", "path": str(path)}, 1, 96, 128)
    assert m.roi_heads.box_predictor.cls_score.out_features == 3
    assert torch.equal(m.backbone.body.conv1.weight, ref.backbone.body.conv1.weight)
    trainable = {n.split(".")[0] for n, p in m.backbone.body.named_parameters() if p.requires_grad}
    assert trainable == {"layer4"}
    scratch = build_model(3, {"kind": "none", "arch": "maskrcnn_resnet50_fpn_v2"}, 1, 96, 128)
    assert all(p.requires_grad for p in scratch.backbone.body.parameters())


def test_adamw_option_trains_and_resumes_with_its_state(shard_coco, rendered_shard, tmp_path):
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    cfg = train_cfg(iterations=2, optimizer="adamw", lr=1e-4)
    train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "w")
    state = load_checkpoint(tmp_path / "w" / "last.pth")["optimizer"]["state"]
    assert state and all("exp_avg_sq" in s for s in state.values())  # AdamW moments, not SGD momentum


def test_photometric_and_scale_jitter_keep_labels_consistent(shard_coco, rendered_shard, tmp_path, caplog):
    from pipeline.data import train_transforms

    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    plain = CocoInstances(ann, root, train_transforms(0.0))
    distorted = CocoInstances(ann, root, train_transforms(0.0, photometric_prob=1.0))
    torch.manual_seed(0)
    (a, ta), (b, tb) = plain[0], distorted[0]
    assert not torch.equal(a, b)  # pixels changed ...
    assert torch.equal(ta["boxes"], tb["boxes"]) and torch.equal(ta["masks"], tb["masks"])  # ... labels did not
    cfg = train_cfg(iterations=2, photometric_prob=1.0, scale_jitter=[0.5, 1.0])
    with caplog.at_level("INFO", logger="pipeline.train"):
        train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "j")
    # multi-scale training sizes, the configured 96 px last (what evaluation uses)
    assert "shorter side drawn from (48, 60, 72, 84, 96) px" in caplog.text
    assert load_checkpoint(tmp_path / "j" / "model_final.pth")["iteration"] == 2
