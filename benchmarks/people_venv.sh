#!/usr/bin/env bash
# Make .people-venv for benchmarks/people_pose.py (MediaPipe BlazePose), apart from the project venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PEOPLE_VENV:-.people-venv}
PY=${PYTHON:-python3.11}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q -r benchmarks/people-requirements.txt
"$VENV/bin/python" -c "import mediapipe as mp; mp.solutions.pose.Pose(static_image_mode=True).close(); print('mediapipe', mp.__version__, 'ok')"
