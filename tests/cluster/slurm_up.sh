#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian bookworm, SLURM 22.05),
# enough to run the workflow with `snakemake --profile profiles/slurm`.
# Needs root. Idempotent: an already running cluster is restarted with a fresh config.
#
#   sudo tests/cluster/slurm_up.sh        # install (apt) + configure + start
#   sudo tests/cluster/slurm_down.sh      # stop the daemons
#
# What it sets up, and why:
#   - munge (SLURM's authentication), key created by and for the `munge` user,
#     munged running as `munge` with its socket in /run/munge.
#   - /etc/slurm/slurm.conf: one node (this host) with its real CPUs and memory,
#     two partitions on it, `main` (the default) and `gpu`, and two fake GPUs
#     (`Gres=gpu:2`, gres.conf File=/dev/null and /dev/zero: no device behind them)
#     so GPU requests (sbatch --gpus=N, from the config's `resources` table) can be
#     scheduled and the tests can see which job went to which partition.
#     The file must live at /etc/slurm/slurm.conf: the job step plugin drops
#     SLURM_CONF inside jobs, so a config elsewhere is not seen by srun.
#   - No accounting daemon (AccountingStorageType=accounting_storage/none):
#     the SLURM executor plugin must query job status with squeue
#     (`slurm-status-command: squeue` in profiles/slurm) and submit without an
#     account (--slurm-no-account). MinJobAge is raised so finished jobs stay
#     visible to squeue long enough; with a short MinJobAge the plugin falls back to
#     sacct, which without accounting only knows the running jobs.
#   - A job completion log (JobCompType=jobcomp/filetxt) at
#     /var/log/slurm/jobcomp.log: one line per finished job, used by the tests as
#     proof that a job really ran through SLURM.
set -euo pipefail

[[ $(id -u) == 0 ]] || { echo "slurm_up.sh: must run as root (it installs packages and starts daemons)" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm_up.sh: installing slurmctld slurmd slurm-client munge (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null; }
fi

here=$(cd "$(dirname "$0")" && pwd)
"$here/slurm_down.sh" >/dev/null 2>&1 || true

# --- munge ---------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  runuser -u munge -- dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chmod 0400 /etc/munge/munge.key
fi
runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1  # daemons must not hold the caller's stdout open
munge -n | unmunge >/dev/null || { echo "slurm_up.sh: munge does not work" >&2; exit 1; }

# --- slurm.conf ----------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
# written by tests/cluster/slurm_up.sh
ClusterName=hangar
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=3600
ReturnToService=2
GresTypes=gpu
NodeName=${host} CPUs=${cpus} RealMemory=${mem_mb} Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=${host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${host} MaxTime=INFINITE State=UP
CONF
printf "Name=gpu File=/dev/null\nName=gpu File=/dev/zero\n" > /etc/slurm/gres.conf

# --- daemons --------------------------------------------------------------
rm -f /var/spool/slurmctld/* 2>/dev/null || true
/usr/sbin/slurmctld -c </dev/null >/dev/null 2>&1   # -c: start clean, forget jobs of an earlier cluster
/usr/sbin/slurmd </dev/null >/dev/null 2>&1
state=""
for _ in $(seq 60); do
  pgrep -x slurmctld >/dev/null || break   # died at start-up: its log says why
  state=$(timeout 5 sinfo -h -n "$host" -o %T 2>/dev/null || true)
  [[ $state == idle* || $state == mixed* ]] && break
  sleep 1
done
if [[ $state != idle* && $state != mixed* ]]; then
  echo "slurm_up.sh: node $host did not become idle (state '$state'); see /var/log/slurm/" >&2
  tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
  exit 1
fi
echo "slurm_up.sh: cluster 'hangar' up: node $host, $cpus CPUs, ${mem_mb} MB, gpu:2 (fake), partitions main (default) and gpu"
