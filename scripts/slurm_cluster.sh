#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, to try the slurm profile without a real cluster
# (tests/test_slurm.py uses it). Needs root; installs Debian's slurm-wlm and munge if missing.
#
#   sudo bash scripts/slurm_cluster.sh start     # munged + slurmctld + slurmd, partition "cpu"
#   snakemake --workflow-profile workflow/profiles/slurm --configfile presets/smoke.yaml \
#       --config device=cpu --slurm-no-account --slurm-status-command squeue \
#       --slurm-init-seconds-before-status-checks 5 \
#       --set-resources train:mem_mb=1000 pretrain:mem_mb=1000
#   sudo bash scripts/slurm_cluster.sh stop      # stops the daemons it started, by pid file
#
# The node has no GPU, hence device=cpu (training jobs then ask for no GPU) and small memory
# requests. There is no accounting database: --slurm-status-command squeue (sacct cannot see
# finished jobs; MinJobAge keeps them visible to squeue/scontrol for 15 minutes) and
# --slurm-no-account. Finished jobs are also logged to $STATE/jobcomp.log.
#
# State (configuration copy, pid files, logs, spool) lives in $FEWLABELS_SLURM_STATE
# (default /tmp/fewlabels-slurm). The configuration is written to /etc/slurm/slurm.conf,
# which the SLURM commands read, unless a slurm.conf that this script did not write is there.
set -euo pipefail

STATE=${FEWLABELS_SLURM_STATE:-/tmp/fewlabels-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# fewlabels one-node test cluster (scripts/slurm_cluster.sh)"

die() { echo "slurm_cluster: $*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are not installed and this is not root: cannot install them"
    command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and there is no apt-get"
    echo "installing slurm-wlm and munge (apt-get)..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2
}

start_munge() {
    local pid=/run/munge/munged.pid
    if alive "$pid"; then return; fi
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
    # munged refuses to run as root; run it as the munge user, as the package's service does.
    runuser -u munge -- /usr/sbin/munged
    touch "$STATE/munged.started"   # ours: stop stops it
    for _ in $(seq 50); do alive "$pid" && return; sleep 0.1; done
    die "munged did not start"
}

write_conf() {
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; not touching a real cluster's configuration"
    fi
    # The node's CPUs and memory as slurmd sees them, under the name "localhost".
    local node
    node=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //; s/ UpTime=.*//')
    mkdir -p "$(dirname "$CONF")" "$STATE/ctld" "$STATE/d"
    cat > "$STATE/slurm.conf" <<EOF
$MARK
ClusterName=fewlabels
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
MpiDefault=none
ReturnToService=2
# Without accounting, finished jobs are only known while slurmctld keeps them.
MinJobAge=900
SchedulerParameters=sched_interval=2
NodeName=localhost NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cp "$STATE/slurm.conf" "$CONF"
}

start() {
    mkdir -p "$STATE"
    install
    [ "$(id -u)" = 0 ] || die "starting slurmctld and slurmd needs root"
    start_munge
    write_conf
    alive "$STATE/slurmctld.pid" || slurmctld -f "$CONF"
    alive "$STATE/slurmd.pid" || slurmd -f "$CONF" -N localhost
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm is up: $(sinfo -h -o '%P %D %c CPUs %m MB %T')" >&2
            return
        fi
        scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
        sleep 1
    done
    sinfo >&2 || true
    tail -5 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
    die "the node did not become idle; see $STATE/slurmctld.log and $STATE/slurmd.log"
}

stop() {
    local f
    for f in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
        if alive "$f"; then
            kill "$(cat "$f")"
            for _ in $(seq 50); do alive "$f" || break; sleep 0.1; done
        fi
    done
    if [ -f "$STATE/munged.started" ] && alive /run/munge/munged.pid; then
        kill "$(cat /run/munge/munged.pid)"
        rm -f "$STATE/munged.started"
    fi
    # Our slurm.conf out of the way: with it and no controller, every `import` of the SLURM
    # executor plugin (each snakemake start) waits ~9 s for `scontrol show config` to time out.
    if [ -f "$CONF" ] && grep -qF "$MARK" "$CONF"; then
        rm -f "$CONF"
    fi
    echo "slurm stopped" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
