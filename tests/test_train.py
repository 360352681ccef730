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


def fixed_batch_losses(images, targets, lr: float, steps: int) -> list[float]:
    """The loss before each of `steps` training steps on one fixed batch, from one seeded random start.

    A step is train()'s: the pipeline's optimizer (momentum SGD, weight decay on weights only) and
    gradient clipping at the configured norm. The RPN and the RoI heads sample anchors and RoIs at
    random in every training forward; reseeding before each forward makes the loss a function of
    the weights alone (the same sampled problem every time), so the values differ only by what the
    steps did to the weights."""
    from pipeline.train import make_optimizer

    cfg = train_cfg(lr=lr)
    torch.manual_seed(0)
    model = build_model(3, {"kind": "none"}, min_size=96, max_size=128)
    model.train()
    optimizer = make_optimizer(cfg, model)
    losses = []
    for _ in range(steps):
        torch.manual_seed(1)
        loss = sum(model(list(images), list(targets)).values())
        losses.append(loss.item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip_norm"])
        optimizer.step()
    return losses


def test_train_steps_lower_loss_on_fixed_batch(shard_coco, rendered_shard, tmp_path):
    """Twelve steps at the default lr (0.005) from scratch on one batch lower its loss well below
    the start; the same code at lr 0 keeps it exactly where it was.

    The bound is not tuned to one machine. Floating-point paths differ between CPUs (kernels by
    instruction set, thread count), and within a step or two they flip discrete choices (top
    proposals, NMS, matched and sampled RoIs): the trajectory becomes another draw of the same
    noisy process, so the one loss after 8 steps that the old test compared moved between 0.75 and
    0.82 x the start across kernel paths (0.82 failed its 0.8). Here the mean of the losses after
    8 to 11 steps (four, damping the step-to-step jitter) is compared; measured for issue #22, it
    is 0.59-0.62 x the start over ATEN_CPU_CAPABILITY default/avx2/avx512 with 1 or 2 threads;
    0.58-0.62 (sd 0.013) over 12 runs whose start weights were perturbed by 1e-6 relative, as
    rounding differences would; and 0.33-0.66 over 16 other random starts and sampling seeds.
    0.8 is 13 sd above the worst perturbed run, and above every other start. An optimizer step
    that does nothing, lr 0, or gradients that never reach the weights leave the ratio at
    exactly 1.0; steps the wrong way raise it.
    """
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    ds = CocoInstances(ann, root, eval_transforms())
    images, targets = collate([ds[0], ds[1]])
    trained = fixed_batch_losses(images, targets, lr=0.005, steps=12)
    # Exactly equal by construction: same start, same sampling, the weights do not move
    # (p - 0 x step == p), so any change above comes from the weights alone.
    assert fixed_batch_losses(images, targets, lr=0.0, steps=2) == [trained[0]] * 2
    late = sum(trained[-4:]) / 4
    assert late < 0.8 * trained[0], "loss per step: " + " ".join(f"{x:.3f}" for x in trained)


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
    last = load_checkpoint(out / "last.pth")
    assert "optimizer" not in ckpt and {"optimizer", "rng", "epoch", "scaler", "lr_scheduler"} <= set(last)
    assert len(last["rng"]) == 1 and set(last["rng"][0]) == {"cpu", "cuda"}  # one entry per process
    # The logged lr is the one each step used: warmup starts at 0.001 x lr, then the cosine begins at lr.
    with open(out / "metrics.csv") as f:
        assert [float(r["lr"]) for r in csv.DictReader(f)] == pytest.approx([1e-6, 1e-3])
    assert (out / "model_final.pth").stat().st_size < 0.75 * (out / "last.pth").stat().st_size
    # Extending the run resumes from last.pth (iteration 2) instead of starting over... only when
    # the config matches; a changed config starts afresh.
    with pytest.raises(ValueError, match="trained for classes"):
        load_checkpoint(out / "last.pth", ["pedestrian"])
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth: not a hangar-synth checkpoint"):
        load_checkpoint(bad)


def test_resume_is_exact_with_workers_and_ema(shard_coco, rendered_shard, tmp_path):
    """Killed and resumed with 2 data workers (the default config uses 4), every augmentation on:
    the losses and weights of an uninterrupted run, and of a run with no workers at all."""
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    # 2 images, batch 1: iterations cross an epoch boundary; the "kill" lands mid-epoch.
    cfg = train_cfg(iterations=4, batch_size=1, checkpoint_every=1, hflip_prob=0.5, photometric_prob=0.5,
                    scale_jitter=[0.7, 1.3], workers=2, ema_decay=0.5)
    train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "a")
    stopped = train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "b", stop_after=3)
    assert stopped["stopped"] and load_checkpoint(tmp_path / "b" / "last.pth")["iteration"] == 3
    train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "b")
    train({**cfg, "workers": 0}, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "c")

    def losses(run):
        with open(tmp_path / run / "metrics.csv") as f:
            return [(r["iteration"], round(float(r["loss"]), 4)) for r in csv.DictReader(f)]

    assert losses("a") == losses("b") == losses("c") and len(losses("a")) == 4
    finals = [load_checkpoint(tmp_path / run / "model_final.pth")["model"] for run in "abc"]
    for k in finals[0]:
        for other in finals[1:]:
            assert torch.allclose(finals[0][k].float(), other[k].float(), atol=1e-5), k
    # With EMA on, the final model is the average (what validation scored), not the last weights.
    last = load_checkpoint(tmp_path / "a" / "last.pth")
    ema = {k[len("module."):]: v for k, v in last["ema"].items() if k.startswith("module.")}
    assert all(torch.equal(ema[k], finals[0][k]) for k in finals[0])
    assert any(not torch.equal(last["model"][k], finals[0][k]) for k in finals[0] if finals[0][k].is_floating_point())


def test_periodic_validation_keeps_best_checkpoint(shard_coco, rendered_shard, tmp_path):
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    out = tmp_path / "v"
    train(train_cfg(iterations=2, eval_every=1, tensorboard=True), CLASSES, MODEL_CFG, {"kind": "none"}, ann, root,
          out, val_json=ann)
    with open(out / "val_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["iteration"] for r in rows] == ["1", "2"]
    assert all(0.0 <= float(r["segm_AP"]) <= 1.0 for r in rows)
    best = load_checkpoint(out / "best.pth", CLASSES)
    assert best["iteration"] == 1 + max(range(2), key=lambda i: (float(rows[i]["segm_AP"]), -i))
    # TensorBoard: losses, lr, validation AP and a sheet of validation predictions
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard")).Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "train/loss_mask", "val/segm_AP", "val/bbox_AP"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert [e.value for e in events.Scalars("val/segm_AP")] == pytest.approx([float(r["segm_AP"]) for r in rows])
    assert "val/predictions" in tags["images"]


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


def test_photometric_distortion_is_per_image_and_keeps_colours(shard_coco, rendered_shard, tmp_path):
    from torchvision import tv_tensors

    from pipeline.data import train_transforms

    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    plain = CocoInstances(ann, root, train_transforms(0.0))
    distorted = CocoInstances(ann, root, train_transforms(0.0, photometric_prob=1.0))
    torch.manual_seed(0)
    (a, ta), (b, tb) = plain[0], distorted[0]
    assert not torch.equal(a, b)  # pixels changed ...
    assert torch.equal(ta["boxes"], tb["boxes"]) and torch.equal(ta["masks"], tb["masks"])  # ... labels did not
    # photometric_prob is the share of images distorted (RandomPhotometricDistort(p) draws each of its five
    # operations with p: 97 % of images touched at 0.5), and a red object stays red (no channel shuffle).
    red = tv_tensors.Image(torch.tensor([200, 60, 40], dtype=torch.uint8)[:, None, None].expand(3, 16, 16).clone())
    target = {"boxes": tv_tensors.BoundingBoxes([[0, 0, 8, 8]], format="XYXY", canvas_size=(16, 16)),
              "labels": torch.tensor([1]), "masks": tv_tensors.Mask(torch.ones(1, 16, 16, dtype=torch.uint8))}

    def draws(transform, n=300):
        torch.manual_seed(1)
        return [transform(red, target)[0].mean(dim=(1, 2)) for _ in range(n)]

    half = draws(train_transforms(0.0, photometric_prob=0.5))
    changed = sum(not torch.allclose(m, red.float().mean(dim=(1, 2)) / 255) for m in half) / len(half)
    assert 0.4 < changed < 0.6, changed
    assert all(int(m.argmax()) == 0 for m in half)
    shuffled = draws(train_transforms(0.0, photometric_prob=1.0, channel_permutation=True), 60)
    assert any(int(m.argmax()) != 0 for m in shuffled)  # only when asked


def test_scale_jitter_spans_the_configured_range(shard_coco, rendered_shard, tmp_path, caplog):
    from pipeline.data import ScaleJitter, SeededSamples, train_transforms

    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    ds = SeededSamples(CocoInstances(ann, root, train_transforms(0.0, scale=ScaleJitter(96, 128, 0.5, 1.5)),
                                     classes=CLASSES))
    samples = [ds[(0, seed)] for seed in range(40)]
    shorts = [min(img.shape[-2:]) for img, _ in samples]
    assert min(shorts) < 0.6 * 96 and max(shorts) > 1.4 * 96  # up and down, not capped at max_size_px
    for img, t in samples[:5]:  # masks and boxes follow the image
        assert t["masks"].shape[-2:] == img.shape[-2:] and float(t["boxes"][:, 2:].max()) <= img.shape[-1]
    # The model keeps those sizes while training and evaluates at min_size_px.
    model = build_model(3, {"kind": "none"}, min_size=96, max_size=128)
    model.transform._skip_resize = True
    img, t = max(samples, key=lambda s: s[0].shape[-1])
    model.train()
    assert model.transform([img], [t])[0].image_sizes[0] == tuple(img.shape[-2:])
    model.eval()
    assert min(model.transform([img])[0].image_sizes[0]) == 96
    cfg = train_cfg(iterations=2, photometric_prob=1.0, scale_jitter=[0.5, 1.5])
    with caplog.at_level("INFO", logger="pipeline.train"):
        train(cfg, CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "j")
    assert "shorter side 48-144 px for 96 px" in caplog.text
    assert load_checkpoint(tmp_path / "j" / "model_final.pth")["iteration"] == 2


def test_frozen_parts_of_v2_keep_their_batchnorm_statistics(shard_coco, rendered_shard, tmp_path):
    """v2 uses plain BatchNorm2d: `requires_grad=False` alone let every training step move their running
    statistics. Frozen parts get FrozenBatchNorm2d; trainable ones keep learning BatchNorm."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2
    from torchvision.ops import FrozenBatchNorm2d

    from pipeline.model import model_from_checkpoint

    path = tmp_path / "v2.pth"
    torch.save(maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91).state_dict(), path)
    info = {"kind": "path", "arch": "maskrcnn_resnet50_fpn_v2", "path": str(path)}
    model = build_model(3, info, 3, 96, 128, transfer="feature_extraction")
    frozen_bn = [m for n, m in model.named_modules() if not n.startswith("roi_heads") and
                 isinstance(m, (torch.nn.BatchNorm2d, FrozenBatchNorm2d))]
    assert frozen_bn and all(isinstance(m, FrozenBatchNorm2d) for m in frozen_bn)
    head_bn = [m for n, m in model.named_modules() if n.startswith("roi_heads") and isinstance(m, torch.nn.BatchNorm2d)]
    assert head_bn  # v2's box/mask heads normalise too, and they learn
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    images, targets = collate([CocoInstances(ann, root, eval_transforms())[i] for i in range(2)])
    model.train()
    sum(model(list(images), list(targets)).values()).backward()  # a forward in train mode moves BN statistics
    after = model.state_dict()
    moved = {k for k in before if "running_mean" in k and not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("roi_heads.") for k in moved), sorted(moved)[:5]
    # a checkpoint of that model rebuilds with the same layers (strict load)
    ckpt = {"model": after, "classes": CLASSES, "weights": json.dumps(info),
            "config": json.dumps({"model": {**MODEL_CFG, "arch": "maskrcnn_resnet50_fpn_v2",
                                            "transfer": "feature_extraction", "trainable_backbone_layers": 3}})}
    assert isinstance(model_from_checkpoint(ckpt).backbone.fpn.layer_blocks[0][1], FrozenBatchNorm2d)


def test_weight_ema_warms_up_its_decay():
    from pipeline.train import weight_ema

    assert weight_ema(torch.nn.Linear(2, 1), 0.0) is None
    net = torch.nn.Linear(2, 1)
    ema = weight_ema(net, 0.9)
    for value in (1.0, 2.0, 3.0):
        with torch.no_grad():
            net.weight.fill_(value)
        ema.update_parameters(net)
    # n=0 copies; then decay min(0.9, 2/11) and min(0.9, 3/12)
    expected = (1.0 * 2 / 11 + 2.0 * 9 / 11) * 0.25 + 3.0 * 0.75
    assert torch.allclose(ema.module.weight, torch.full((1, 2), expected))


def test_a_runs_checkpoint_is_a_base_model_for_another_site(shard_coco, rendered_shard, tmp_path):
    """model.weights: <a run's model_final.pth>: same classes keep its trained heads, others get new ones;
    the backbone arrives either way, and fine-tuning from it trains and reloads."""
    from pipeline.model import model_from_checkpoint
    from pipeline.weights import resolve

    ann, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    train(train_cfg(iterations=1), CLASSES, MODEL_CFG, {"kind": "none"}, ann, root, tmp_path / "site_a")
    base_path = tmp_path / "site_a" / "model_final.pth"
    base = load_checkpoint(base_path)["model"]
    info = resolve("maskrcnn_resnet50_fpn", str(base_path))
    heads = ("roi_heads.box_predictor.cls_score.weight", "roi_heads.mask_predictor.mask_fcn_logits.weight")
    same = build_model(3, info, 3, 96, 128, classes=CLASSES).state_dict()
    assert all(torch.equal(same[k], base[k]) for k in heads)
    for classes in (["pallet_jack", "pedestrian"], ["pedestrian"]):  # other order or other classes: new heads
        other = build_model(len(classes) + 1, info, 3, 96, 128, classes=classes).state_dict()
        assert other[heads[0]].shape[0] == len(classes) + 1 and not torch.equal(other[heads[1]][:2], base[heads[1]][:2])
        assert torch.equal(other["backbone.body.layer4.0.conv1.weight"], base["backbone.body.layer4.0.conv1.weight"])
    site_b = {**MODEL_CFG, "weights": str(base_path), "transfer": "feature_extraction"}
    train(train_cfg(iterations=1), CLASSES, site_b, info, ann, root, tmp_path / "site_b")
    adapted = load_checkpoint(tmp_path / "site_b" / "model_final.pth")
    assert torch.equal(adapted["model"]["backbone.body.conv1.weight"], base["backbone.body.conv1.weight"])  # frozen
    model_from_checkpoint(adapted)  # rebuilds with the same (frozen) layers, strict load


def test_mixed_training_draws_both_sets_and_a_changed_share_trains_afresh(shard_coco, rendered_shard, tmp_path, caplog):
    """Synthetic + a site's frames (a CVAT-style export put into our categories): both sets reach training,
    the mix is part of the run (provenance, run key), and a run with another share does not resume it."""
    import logging

    from pipeline.datasets import normalize
    from pipeline.train import Mix
    from tests.real_export import CATEGORY_MAP, make_export

    ann, images, _ = make_export(shard_coco, rendered_shard, tmp_path / "site")
    real = tmp_path / "real.json"
    real.write_text(json.dumps(normalize(json.loads(ann.read_text()), CLASSES, CATEGORY_MAP, ann)[0]))
    train_json, root = write_train_json(shard_coco, rendered_shard, tmp_path)
    out = tmp_path / "mixed"
    with caplog.at_level(logging.INFO):
        train(train_cfg(iterations=2), CLASSES, MODEL_CFG, {"kind": "none"}, train_json, root, out,
              mix=Mix(real, images, 0.5), val_json=real, val_root=images)
    assert any("mixed training: 2 images of" in r.getMessage() and "50 % / 50 %" in r.getMessage() for r in caplog.records)
    prov = json.loads((out / "provenance.json").read_text())["config"]["data"]
    assert prov["mix"] == {"ann": str(real), "root": str(images), "fraction": 0.5} and prov["val"] == str(real)
    assert load_checkpoint(out / "last.pth")["run_key"]["mix"]["fraction"] == 0.5
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        train(train_cfg(iterations=2), CLASSES, MODEL_CFG, {"kind": "none"}, train_json, root, out,
              mix=Mix(real, images, 0.25))
    assert any("mix" in r.getMessage() and "training afresh" in r.getMessage() for r in caplog.records)
