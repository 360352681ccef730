#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment from requirements.txt + constraints.txt.
# Idempotent: an existing venv whose requirements hash matches is reused in a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
  echo "error: bpy 5.0.1 needs Python 3.11 exactly; set PYTHON=/path/to/python3.11" >&2; exit 1; }
HASH=$(cat requirements.txt constraints.txt | sha256sum | cut -d' ' -f1)
STAMP="$VENV/.requirements.sha256"
# The repo itself, editable, so jobs import `pipeline`/`blender` from any working directory.
install_repo() {
  (cd / && "$VENV/bin/python" -c 'import pipeline, blender.spec' 2>/dev/null) && return 0
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
}
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]]; then
  install_repo
  echo "venv $VENV up to date"; exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
# constraints.txt keeps numpy<2 at every step: bpy 5.0.1 breaks with numpy 2.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
"$VENV/bin/python" -c 'import numpy, bpy, torch, torchvision, pycocotools, OpenEXR, cv2, anny; assert numpy.__version__ < "2"'
install_repo
echo "$HASH" > "$STAMP"
echo "venv $VENV ready"
