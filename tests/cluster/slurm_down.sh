#!/usr/bin/env bash
# Stop the one-node cluster started by slurm_up.sh (leaves the packages installed).
set -uo pipefail
scancel --user=root >/dev/null 2>&1
for d in slurmd slurmctld munged; do pkill -x "$d" 2>/dev/null; done
for _ in $(seq 20); do pgrep -x 'slurmd|slurmctld|munged' >/dev/null || exit 0; sleep 0.5; done
for d in slurmd slurmctld munged; do pkill -9 -x "$d" 2>/dev/null; done
exit 0
