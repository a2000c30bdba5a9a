#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, without systemd (Debian's Slurm 22.05 and
# munge): installs slurmctld, slurmd, slurm-client and munge where missing, writes
# /etc/slurm/slurm.conf for this host (proctrack/linuxproc, task/none, select/cons_tres,
# no accounting, jobcomp/filetxt, GRES gpu on placeholder device nodes: placement only, never a
# GPU), makes the munge key, starts munged, slurmctld and slurmd in the background and waits for
# `sinfo` to show the node idle. Idempotent: a cluster that already answers is left alone.
# Called by scripts/bootstrap.sh --full (the test suite's Slurm tests); REPRO_SLURM_SKIP=1 skips it.
set -euo pipefail

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if [ "${REPRO_SLURM_SKIP:-}" = 1 ]; then
  say "REPRO_SLURM_SKIP=1: no Slurm cluster"
  exit 0
fi

node_idle() {
  sinfo -h -N -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'
}

if command -v sinfo >/dev/null 2>&1 && node_idle; then
  say "Slurm answers (sinfo): left as it is"
  exit 0
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1 ||
  ! command -v munged >/dev/null 2>&1; then
  say "installing slurmctld, slurmd, slurm-client and munge (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
# what slurmd measures, less a little, so the node never registers below its own configuration
mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.95}' /proc/meminfo)

say "writing /etc/slurm/slurm.conf (node ${host}, ${cpus} CPUs, ${mem} MB)"
$SUDO mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/repro-slurm
# placeholder device nodes for GRES gpu (placement tests only: they are /dev/null's twins)
for i in 0 1; do
  [ -e "/var/lib/repro-slurm/gpu$i" ] || $SUDO mknod "/var/lib/repro-slurm/gpu$i" c 1 3
done
$SUDO tee /etc/slurm/slurm.conf >/dev/null <<EOF
# written by repro's scripts/slurm-setup.sh: a single-node cluster for tests
ClusterName=repro
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MpiDefault=none
KillWait=10
MaxArraySize=10001
GresTypes=gpu
NodeName=${host} CPUs=${cpus} RealMemory=${mem} Gres=gpu:placeholder:2 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
$SUDO tee /etc/slurm/gres.conf >/dev/null <<EOF
# placement only: these are not GPUs (repro never runs GPU work on them)
NodeName=${host} Name=gpu Type=placeholder File=/var/lib/repro-slurm/gpu[0-1]
EOF

if [ ! -s /etc/munge/munge.key ]; then
  say "making the munge key"
  $SUDO mkdir -p /etc/munge
  $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
$SUDO chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
$SUDO chmod 0700 /etc/munge
$SUDO chmod 0400 /etc/munge/munge.key

if ! pgrep -x munged >/dev/null 2>&1; then
  say "starting munged"
  $SUDO runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 1 20); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.5; done
munge -n </dev/null | unmunge >/dev/null || { echo "munged does not answer" >&2; exit 1; }

if ! pgrep -x slurmctld >/dev/null 2>&1; then
  say "starting slurmctld"
  $SUDO /usr/sbin/slurmctld
fi
if ! pgrep -x slurmd >/dev/null 2>&1; then
  say "starting slurmd"
  $SUDO /usr/sbin/slurmd
fi
for _ in $(seq 1 60); do node_idle && break; sleep 1; done
if ! node_idle; then
  # a node left down by an earlier start (e.g. a changed memory size) is resumed once
  $SUDO scontrol update nodename="${host}" state=resume >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do node_idle && break; sleep 1; done
fi
if ! node_idle; then
  echo "Slurm did not come up: sinfo says" >&2
  sinfo -N -l >&2 || true
  tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
  exit 1
fi
say "Slurm is up: $(sinfo -h -N -o '%N %t %c CPUs %m MB %G')"
