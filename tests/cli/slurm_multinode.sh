#!/usr/bin/env bash
# slurm_multinode.sh — slurm/multinode.sbatch on a SLURM cluster of 2 real
# nodes: the hosts of scripts/hosts.sh (network namespaces), one slurmd in
# each (scripts/start-slurm.sh --hosts). `sbatch -N 2` trains on 2 nodes x
# 2 ranks with `srun --mpi=pmix` and with `mpirun` inside the allocation
# (the weights 1 rank trains, 1e-5); kill -9 of the rank on the second
# node ends the job (srun --kill-on-bad-exit); a job preempted on 2 nodes
# checkpoints, requeues itself, resumes and ends bitwise where an
# uninterrupted one ends; a preempted job whose allocation shrinks to 1
# node while it waits resumes its 2-rank checkpoint on 1 rank, saying so
# (rank 0's "mimo: resuming a 2-rank checkpoint on 1 rank"). The cluster
# is started and stopped as an owner of its own (scripts/slurm-owner.bash,
# the leases of /tmp/mimo-slurm-hosts). Needs root (CAP_NET_ADMIN): skips
# otherwise. Every wait is bounded. ~1-2 minutes.
# resource-lock: hosts slurm (it brings up the hosts and a SLURM cluster on them, beside the one-node one: the same munge key and CPUs)
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
MIMO=$(realpath "$MIMO")
SRC=$(realpath "$SRC")
HOSTS=$SRC/scripts/hosts.sh
cd "$TMP" || exit 1

need_hosts
for b in slurmctld slurmd munged sbatch srun squeue scontrol; do
    command -v "$b" >/dev/null || {
        echo "FAIL: '$b' not found: SLURM is not installed (bash scripts/install-deps.sh installs slurm-wlm and munge)"
        exit 1
    }
done

# The hosts (2, unless more are up: then those) and their cluster, apart
# from the one-node cluster of slurm.sh (own config, ports, munged, leases).
# This test is one owner of that cluster (scripts/slurm-owner.bash): its
# stop-slurm.sh --hosts stops what its start started, and only when no
# other owner uses it. The hosts are put back as they were: taken down if
# brought up here, back to their number (and rate) if fewer were up.
state=${MIMO_HOSTS_DIR:-/run/mimo-hosts}
export SLURM_CONF=${MIMO_SLURM_DIR:-/tmp/mimo-slurm-hosts}/slurm.conf
export MIMO_SLURM_OWNER=cli-slurm-multinode-$$ MIMO_SLURM_OWNER_PID=$$
before=$(sed -n 's/^netns //p' "$state/state" 2>/dev/null | wc -l)
before_rate=$(sed -n 's/^rate=//p' "$state/settings" 2>/dev/null)
tag=mimo-mn-$$
cleanup() {
    local n
    # (not when the controller is gone: each scancel would retry for 18 s)
    if [ -f "$SLURM_CONF" ] && timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"; then
        for n in srun mpirun kill ref pre shrink; do scancel --name="$tag-$n" 2>/dev/null; done
    fi
    bash "$SRC/scripts/stop-slurm.sh" --hosts >/dev/null
    if [ "$before" -eq 0 ]; then
        bash "$HOSTS" down >/dev/null 2>&1
    elif [ "$before" -lt 2 ]; then
        bash "$HOSTS" up "$before" ${before_rate:+--rate "$before_rate"} >/dev/null 2>&1
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
t0=$SECONDS
if [ "$before" -lt 2 ]; then
    bash "$HOSTS" up 2 >up.log 2>&1 || { echo "FAIL: hosts.sh up 2"; cat up.log; exit 1; }
fi
timeout 60 bash "$SRC/scripts/start-slurm.sh" --hosts >start.log 2>&1
rc=$?
check "start-slurm.sh --hosts starts a cluster of the hosts (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { cat start.log; finish; exit 1; }
grep -q "owner $MIMO_SLURM_OWNER started nothing" start.log &&
    echo "  the hosts' SLURM already up: using it (another owner's; this test's stop leaves it running)"
timeout 30 bash "$SRC/scripts/start-slurm.sh" --hosts >start2.log 2>&1
check "a second start finds every slurmd running" grep -q "slurmd of mimo-h2 already running" start2.log
check "nodes mimo-h1 and mimo-h2 are idle, 2 CPUs each" \
    test "$(sinfo -h -N -n mimo-h1,mimo-h2 -o '%N %T %c' | tr '\n' ' ')" = "mimo-h1 idle 2 mimo-h2 idle 2 "
echo "  hosts and SLURM up in $((SECONDS - t0)) s"
# the owners of the hosts' cluster, as of the one-node one: another
# owner's start finds the daemons running and starts nothing; its stop
# leaves them running and says so
MIMO_SLURM_OWNER=$tag-other timeout 30 bash "$SRC/scripts/start-slurm.sh" --hosts >other-start.log 2>&1
check "another owner's start-slurm.sh --hosts starts nothing" \
    grep -q "owner $tag-other started nothing" other-start.log
MIMO_SLURM_OWNER=$tag-other timeout 30 bash "$SRC/scripts/stop-slurm.sh" --hosts >other-stop.log 2>&1
check "its stop-slurm.sh --hosts leaves the daemons running and says so" \
    grep -Eq "slurmd of mimo-h2 \(pid [0-9]+\) left running" other-stop.log
check "... and they still answer" bash -c 'timeout 5 scontrol ping | grep -q "is UP"'
[ "$failed" -eq 0 ] || cat other-start.log other-stop.log

# The jobs run as root from $TMP with absolute paths; sbatch exports this
# environment (MIMO, SLURM_CONF, OMPI_*, OMP_WAIT_POLICY, ASAN_OPTIONS,
# MPIRUN_ARGS) to them. All hosts share this machine's cores: ranks yield
# when idle (lib.bash's OMPI_MCA_mpi_yield_when_idle), and mpirun does not
# bind (each node's first rank would go to core 0).
export MIMO ASAN_OPTIONS=$MPI_ASAN MPIRUN_ARGS="--bind-to none"
two_branch_data
two_branch_net 29 6 "$TMP/data.h5"

# --- 2 nodes x 2 ranks: srun --mpi=pmix, then mpirun in the allocation
t0=$SECONDS
expect 0 "" train net.yaml --out np1 --quiet
for launcher in srun mpirun; do
    LAUNCHER=$launcher submit $launcher -N 2 --ntasks-per-node=2 -- \
        "$SRC/slurm/multinode.sbatch" "$TMP/net.yaml" "$TMP/runs/$launcher" --check-every 1
    rc=$(await $launcher)
    check "sbatch -N 2 multinode.sbatch, LAUNCHER=$launcher: exit code $rc, expected 0" test "$rc" -eq 0
    [ "$rc" -eq 0 ] || cat $launcher.out $launcher.sbatch.log
    check "... ran 4 ranks on mimo-h[1-2]" grep -q "on mimo-h\[1-2\], 4 ranks x 1 threads" $launcher.out
    check "... trained the weights 1 rank trains (1e-5)" \
        params_close np1/checkpoints/last.h5 runs/$launcher/checkpoints/last.h5 1e-5
done
echo "  srun and mpirun jobs on 2 nodes: $((SECONDS - t0)) s"

# --- kill -9 of the rank on the second node (srun): without
# --kill-on-bad-exit the other rank waits in the allreduce and the job
# hangs until its time limit; with it srun ends the step within KillWait
# (30 s)
t0=$SECONDS
submit kill -N 2 --ntasks-per-node=1 -- "$SRC/slurm/multinode.sbatch" "$TMP/net.yaml" "$TMP/runs/kill" \
    --epochs 100000 --set train.checkpoint.every_steps=50
wait_ckpt runs/kill
victim=
for p in $(ip netns pids mimo-h2); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mimo ] && victim=$p; done
check "the job's rank on mimo-h2 runs (pid ${victim:-none})" test -n "$victim"
[ -n "$victim" ] && kill -9 "$victim"
t1=$SECONDS
rc=$(await kill)
check "kill -9 of the rank on mimo-h2 ends the job within 45 s (exit $rc, $((SECONDS - t1)) s)" \
    test "$rc" -ne 0 -a "$rc" -ne 124 -a $((SECONDS - t1)) -le 45
check "... naming the node and the task" grep -q "mimo-h2: task 1: Killed" kill.out
expect 0 "samples 500" eval "$TMP/runs/kill" --data "$TMP/data.h5" # (the newest checkpoint loads)
echo "  kill -9 on 2 nodes: $((SECONDS - t0)) s"

# --- preemption on 2 nodes: 'pre' gets SIGUSR1 once its first checkpoint
# exists, checkpoints, exits 75, requeues itself; released from the requeue
# hold it resumes and ends bitwise where 'ref' (same 2 nodes x 1 rank)
# ends (srun). 'shrink' (mpirun) is preempted the same way, but while it
# waits its allocation becomes 1 node x 1 rank: it resumes the 2-rank
# checkpoint on 1 rank (within 1e-5 of 'ref').
t0=$SECONDS
long=(--epochs 300 --set train.checkpoint.every_steps=100)
submit ref -N 2 --ntasks-per-node=1 -- "$SRC/slurm/multinode.sbatch" "$TMP/net.yaml" "$TMP/runs/ref" "${long[@]}"
submit pre -N 2 --ntasks-per-node=1 -- "$SRC/slurm/multinode.sbatch" "$TMP/net.yaml" "$TMP/runs/pre" "${long[@]}"
# preempt NAME [SCONTROL UPDATES...]: signal NAME after its first checkpoint,
# wait until it is requeued, apply the updates, release it
preempt() {
    local name=$1 id first='' state=''
    shift
    for _ in $(seq 600); do
        first=$(ls runs/"$name"/checkpoints/ckpt-*.h5 2>/dev/null | head -n 1)
        [ -n "$first" ] && break
        sleep 0.1
    done
    id=$(jobid "$name")
    [ -n "$id" ] || { sleep 1; id=$(jobid "$name"); }
    check "job '$name' wrote its first checkpoint (${first:-none}) and runs (job '$id')" test -n "$first" -a -n "$id"
    [ -n "$id" ] || return 0
    scancel --signal=USR1 --batch "$id"
    for _ in $(seq 600); do
        state=$(squeue -h -j "$id" -o '%T %r' 2>/dev/null)
        [ "$state" = "PENDING BeginTime" ] && break
        sleep 0.1
    done
    check "job '$name' requeued itself (state '$state')" test "$state" = "PENDING BeginTime"
    [ $# -gt 0 ] && scontrol update JobId="$id" "$@"
    sleep 2 # slurmd refuses a job released in the second of its requeue
    scontrol update JobId="$id" StartTime=now
}
preempt pre
rc=$(await ref)
check "the uninterrupted 2-node job: exit code $rc, expected 0" test "$rc" -eq 0
rc=$(await pre)
check "the preempted 2-node job, after requeue: exit code $rc, expected 0" test "$rc" -eq 0
check "... stopped mid-training" grep -q "mimo: stopping at epoch" pre.out
check "... reran with SLURM_RESTART_COUNT=1 on 2 nodes" grep -q "on mimo-h\[1-2\], 2 ranks x 1 threads, restart 1," pre.out
check "... resumed from its checkpoint" grep -q "mimo: resuming from $TMP/runs/pre/checkpoints/ckpt-" pre.out
check "... and ends with bitwise the parameters of the uninterrupted job" \
    same_params runs/ref/checkpoints/last.h5 runs/pre/checkpoints/last.h5
[ "$failed" -eq 0 ] || { echo "--- pre.out"; grep -v '^epoch' pre.out; }

# mpirun across nodes exits ~4 x MPI_SIGKILL_TIMEOUT after its ranks have
# checkpointed and exited 75 (40 s for the default 10): the tiny net's
# checkpoint needs far less than 2 s
LAUNCHER=mpirun MPI_SIGKILL_TIMEOUT=2 submit shrink -N 2 --ntasks-per-node=1 -- \
    "$SRC/slurm/multinode.sbatch" "$TMP/net.yaml" "$TMP/runs/shrink" "${long[@]}"
preempt shrink NumNodes=1-1 NumTasks=1
rc=$(await shrink)
check "a preempted job (mpirun) requeued onto 1 node: exit code $rc, expected 0" test "$rc" -eq 0
check "... stopped mid-training" grep -q "mimo: stopping at epoch" shrink.out
check "... reran on 1 node, 1 rank" grep -qE "on mimo-h[12], 1 ranks x 1 threads, restart 1," shrink.out
check "... saying it resumes a 2-rank checkpoint on 1 rank" \
    grep -q "mimo: resuming a 2-rank checkpoint on 1 rank" shrink.out
check "... and ends within 1e-5 of the uninterrupted 2-node job" \
    params_close runs/ref/checkpoints/last.h5 runs/shrink/checkpoints/last.h5 1e-5
[ "$failed" -eq 0 ] || { echo "--- shrink.out"; grep -v '^epoch' shrink.out; }
echo "  preemption on 2 nodes, and onto 1: $((SECONDS - t0)) s"

# --- this test's stop: it stops the slurmds (by pid) if this test started
# them, or says who else still uses them
pid=$(sed -n 's/.*slurmd of mimo-h2 \(started\|already running\) (pid \([0-9]*\).*/\2/p' start.log)
timeout 60 bash "$SRC/scripts/stop-slurm.sh" --hosts >stop.log 2>&1
if grep -q "slurmd of mimo-h2 (pid ${pid:-none}) stopped" stop.log; then
    check "stop-slurm.sh --hosts stopped the slurmd of mimo-h2 (pid $pid)" test ! -e "/proc/$pid"
else
    check "stop-slurm.sh --hosts left the slurmds running and said why" \
        grep -Eq "slurmd of mimo-h2 \(pid [0-9]+\) left running" stop.log
    grep "left running" stop.log
fi
[ "$failed" -eq 0 ] || cat start.log stop.log
finish
