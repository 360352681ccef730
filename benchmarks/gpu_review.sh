#!/usr/bin/env bash
# What produced benchmarks/results/review_gpu_*: the CUDA checks of the training/evaluation review
# (resume under float16 AMP with GradScaler, EMA, workers; batched and AMP evaluation), run on a
# lent GPU machine (its own python3 with torch; pycocotools carried as a wheel in .whl/) with the
# data of configs/bench320.yaml rendered beforehand on a CPU machine and carried as results/bench320:
#   snakemake results/bench320/dataset/test.json --cores all --configfile configs/bench320.yaml
#   OUT=/some/dir bash benchmarks/gpu_review.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import torch, torchvision, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__)'
} | tee "$OUT/review_gpu_env.txt"
python3 benchmarks/review_gpu.py --data results/bench320 --iterations "${ITERATIONS:-400}" \
  --out "$OUT/review_gpu.json" 2>"$OUT/review_gpu.stderr.log"
