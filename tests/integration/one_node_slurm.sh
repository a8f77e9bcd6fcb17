#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the deploy test: munged, slurmctld and slurmd
# (Debian's slurm-wlm and munge) run as root from a private directory, with their own munge key
# and socket, their own ports, and a node that offers 8 GPUs as Slurm counts them (device files
# that are /dev/null), so that deploy/slurm/sweep-workers.sbatch runs unchanged, as on a GPU node.
#   one_node_slurm.sh start DIR SLURMCTLD_PORT SLURMD_PORT   prints SLURM_CONF=... once the node
#                                                            is idle
#   one_node_slurm.sh stop DIR                               stops the daemons it started
# Exits 77 with the reason when Slurm cannot run here (not root, packages missing, a daemon that
# does not come up): the test then skips and says why.
set -uo pipefail

skip() { echo "one-node Slurm unavailable: $*" >&2; exit 77; }

stop() {
  local dir=$1
  # Jobs a failed test left behind are cancelled while slurmctld still runs, so that slurmstepd
  # ends their processes (SIGKILL after KillWait): stopping the daemons alone would orphan them,
  # and a worker whose coordinator is gone keeps its cores busy.
  if [[ -f $dir/slurmctld.pid && -f $dir/slurm.conf ]]; then
    export SLURM_CONF=$dir/slurm.conf
    scancel --user="$(id -un)" 2>/dev/null
    for _ in $(seq 45); do
      local left
      left=$(squeue --noheader --format=%i 2>/dev/null) && [[ -z $left ]] && break
      sleep 1
    done
  fi
  for name in slurmd slurmctld munged; do
    local pidfile=$dir/$name.pid
    [[ -f $pidfile ]] || continue
    local pid
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    rm -f "$pidfile"
  done
}

start() {
  local dir=$1 ctld_port=$2 slurmd_port=$3
  [[ $(id -u) == 0 ]] || skip "slurmd runs jobs as their users and must start as root (this is uid $(id -u))"
  for tool in munged munge slurmctld slurmd sbatch sinfo; do
    command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || skip "$tool is missing (scripts/setup.sh installs slurm-wlm and munge)"
  done
  local node
  node=$(hostname -s)
  mkdir -p "$dir"/{munge,state,spool,log,gpus}
  chmod 700 "$dir/munge"
  head -c 128 /dev/urandom >"$dir/munge/munge.key"
  chmod 600 "$dir/munge/munge.key"
  /usr/sbin/munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" ||
    skip "munged did not start: $(tail -n 3 "$dir/log/munged.log" 2>/dev/null)"
  for i in 0 1 2 3 4 5 6 7; do ln -sf /dev/null "$dir/gpus/gpu$i"; done
  cat >"$dir/slurm.conf" <<CONF
ClusterName=sweeptest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
GresTypes=gpu
ReturnToService=2
KillWait=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 Gres=gpu:8 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
  echo "NodeName=$node Name=gpu File=$dir/gpus/gpu[0-7]" >"$dir/gres.conf"
  export SLURM_CONF=$dir/slurm.conf
  /usr/sbin/slurmctld -f "$SLURM_CONF" || { stop "$dir"; skip "slurmctld did not start"; }
  /usr/sbin/slurmd -f "$SLURM_CONF" -N "$node" || { stop "$dir"; skip "slurmd did not start"; }
  for _ in $(seq 60); do
    if [[ $(sinfo -h -o %t 2>/dev/null) == idle ]]; then
      echo "SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.5
  done
  local why
  why="node state '$(sinfo -h -o %t 2>/dev/null)': $(grep -h error "$dir"/log/slurm*.log | grep -v pmix | tail -n 3)"
  stop "$dir"
  skip "$why"
}

case "${1:-}" in
  start) start "$2" "$3" "$4" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 start DIR SLURMCTLD_PORT SLURMD_PORT | stop DIR" >&2; exit 2 ;;
esac
