#!/usr/bin/env bash
# What produced benchmarks/results/proof_gpu_*: the site-adaptation experiment at GPU scale, run on
# a lent GPU machine (its own python3 with torch/torchvision; pycocotools carried as a wheel in .whl/)
# with both sites of configs/proof_cpu.yaml rendered beforehand on a CPU machine and packed:
#   snakemake results/proof_cpu/proof/site_b/dataset/n100.json results/proof_cpu/dataset/test.json \
#     --configfile configs/proof_cpu.yaml --cores all
#   python benchmarks/proof_gpu.py pack            # -> results/proof_gpu_data (~45 MiB)
#   OUT=/some/dir bash benchmarks/proof_gpu.sh     # on the GPU machine -> OUT/proof_gpu.tgz; extra args go to
#                                                  # proof_gpu.py run (measured: --base-iterations 700 --iterations 250)
#   MODE=recipe OUT=/some/dir bash benchmarks/proof_gpu.sh --iterations 500 --seeds 0 1
#                                                  # benchmarks/recipe_search.py instead (OUT/recipe_search.tgz holds
#                                                  # ./recipe.json);
#                                                  # then proof_gpu.sh --recipe <that recipe.json, in the tree>
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
WORK=${WORK:-/tmp/proof_gpu}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2  # many training processes share 16 cores
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import torch, torchvision, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__)'
  echo "cores: $(nproc --all)"  # plain nproc honours OMP_NUM_THREADS
} | tee "$OUT/proof_gpu_env.txt"
NAME=$([ "${MODE:-proof}" = recipe ] && echo recipe_search || echo proof_gpu)  # the archives' names
collect() {  # what comes back, also after a failure: page, JSON, plots, CSVs and logs (no checkpoints),
  # as one archive (the device tool returns a limited number of files), and every run's predictions.json
  # in a second one (bootstrap intervals and error analysis afterwards; apart, so that an archive too large
  # to come back costs only the predictions)
  (cd "$WORK" && find . \( -name '*.json' -o -name '*.csv' -o -name '*.log' -o -name '*.png' -o -name '*.html' \) \
     ! -name predictions.json | tar czf "$OUT/${NAME}.tgz" -T -) || true
  (cd "$WORK" && find . -name predictions.json | tar czf "$OUT/${NAME}_predictions.tgz" -T -) || true
}
trap collect EXIT
# sized to end within 9 minutes; past BUDGET_S what finished still comes back
if [ "${MODE:-proof}" = recipe ]; then  # MODE=recipe: the recipe search on site A's val (recipe.json in the archive)
  timeout "${BUDGET_S:-540}" python3 benchmarks/recipe_search.py --data results/proof_gpu_data --out "$WORK" "$@"
else
  timeout "${BUDGET_S:-540}" python3 benchmarks/proof_gpu.py run --out "$WORK" "$@"
fi
