#!/usr/bin/env bash
# What produced benchmarks/results/train_*gpu*.json and overfit_gpu*: run on a lent GPU machine
# (its own python3 with torch; pycocotools carried as a wheel in .whl/), with the 640x480 data of
# configs/bench640.yaml rendered beforehand on a CPU machine and carried as results/bench640.
#   OUT=/some/dir bash benchmarks/gpu_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
D=results/bench640
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu_env.txt"
python3 -c 'import torch, torchvision, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__)' | tee -a "$OUT/gpu_env.txt"
# 1. throughput: tutorial loop vs pipeline loop, fp32 / AMP, batch 2/4/8
python3 benchmarks/train.py --train-json $D/dataset/train.json --image-root $D --batch-sizes 2 4 8 \
  --warmup 5 --iterations 20 --out "$OUT/train_gpu.json" 2>"$OUT/train_gpu.stderr.log"
# 2. the real CLI on CUDA: from scratch, bf16 AMP, 28 images, validated on the training images
#    every 100 iterations (an overfit run: AP must climb well above its start), then evaluate.
python3 -m pipeline weights --arch maskrcnn_resnet50_fpn --weights none --out /tmp/weights.json
timeout 240 python3 -m pipeline train --train-json $D/dataset/train.json --val-json $D/dataset/train.json --image-root $D \
  --weights-json /tmp/weights.json --classes '["pedestrian", "pallet_jack"]' \
  --model-cfg '{"arch": "maskrcnn_resnet50_fpn", "max_size_px": 640, "min_size_px": 480, "trainable_backbone_layers": 5, "transfer": "full", "weights": "none"}' \
  --train-cfg '{"amp": true, "amp_dtype": "bfloat16", "batch_size": 4, "channels_last": false, "checkpoint_every": 200, "device": "cuda", "eval_every": 100, "grad_clip_norm": 10.0, "hflip_prob": 0.0, "iterations": 300, "lr": 0.02, "momentum": 0.9, "optimizer": "sgd", "photometric_prob": 0.0, "scale_jitter": [1.0, 1.0], "seed": 0, "warmup_iters": 50, "weight_decay": 0.0001, "workers": 8}' \
  --out-dir /tmp/overfit 2>"$OUT/overfit_train.log"
cp /tmp/overfit/val_metrics.csv "$OUT/overfit_gpu_val.csv"; cp /tmp/overfit/metrics.csv "$OUT/overfit_gpu_metrics.csv"
python3 -m pipeline evaluate --checkpoint /tmp/overfit/model_final.pth --ann $D/dataset/train.json --image-root $D \
  --eval-cfg '{"confusion_score_threshold": 0.5, "mask_threshold": 0.5, "match_iou": 0.5, "real_ann": "", "real_image_root": "", "score_threshold": 0.05, "split": "val"}' \
  --model-cfg '{"arch": "maskrcnn_resnet50_fpn", "max_size_px": 640, "min_size_px": 480, "trainable_backbone_layers": 5, "transfer": "full", "weights": "none"}' \
  --out-dir /tmp/overfit_eval 2>"$OUT/overfit_eval.log"
cp /tmp/overfit_eval/metrics.json "$OUT/overfit_gpu_eval.json"
cat "$OUT/overfit_gpu_val.csv"
