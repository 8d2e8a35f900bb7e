# lib.bash — helpers for the command-line tests: run mimo, check its exit
# code and that its output contains a phrase. Sourced by tests/cli/*.sh.
# Usage in a test: MIMO=$1 SRC=$2; source lib.bash; expect CODE PHRASE -- ARGS
set -u
MIMO=${1:?usage: test.sh MIMO_BINARY SOURCE_DIR}
SRC=${2:?usage: test.sh MIMO_BINARY SOURCE_DIR}
TMP=$(mktemp -d)
SELF=$(realpath "$0") # the test script, wherever it later cd's to
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

# expect CODE PHRASE ARGS...: mimo ARGS exits with CODE and prints PHRASE
# (on stdout or stderr; an empty PHRASE checks only the code).
expect() {
    local code=$1 phrase=$2
    shift 2
    local out rc
    out=$($MIMO "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$code" ]; then
        echo "FAIL: mimo $* exited $rc, expected $code; output:"; echo "$out"
        failed=$((failed + 1))
    elif [ -n "$phrase" ] && ! grep -qF -- "$phrase" <<<"$out"; then
        echo "FAIL: mimo $* output lacks '$phrase'; output:"; echo "$out"
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
}

# config NAME TEXT: writes $TMP/NAME.yaml
config() { printf '%s\n' "$2" >"$TMP/$1.yaml"; }

# two_branch_data: data.h5 here, 500 rows (seed 4) for two_branch_net:
# inputs a (6) and b (3), targets reg (2, regression) and cls (1, binary).
two_branch_data() {
    /usr/bin/python3 - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(4)
n = 500
a = rs.randn(n, 6).astype('f4'); b = rs.randn(n, 3).astype('f4')
with h5py.File('data.h5', 'w') as f:
    f['a'], f['b'] = a, b
    f['reg'] = np.tanh(a[:, :2] - b[:, :2]).astype('f4')
    f['cls'] = (a[:, 2] + b[:, 2] > 0).astype('f4')[:, None]
PYEOF
}

# two_branch_net BATCH EPOCHS DATA [TRAIN_LINE]: net.yaml, the network the
# MPI tests train: two input branches added, two heads; SGD, seed 11.
two_branch_net() {
    config net "inputs: {a: {shape: 6}, b: {shape: 3}}
layers:
  ha: {type: dense, units: 16, activation: tanh, from: a}
  hb: {type: dense, units: 16, activation: tanh, from: b}
  s: {type: add, from: [ha, hb]}
  c: {type: concat, from: [s, b]}
  reg: {type: dense, units: 2, from: c}
  cls: {type: dense, units: 1, activation: sigmoid, from: s}
outputs:
  reg: {loss: mse}
  cls: {loss: binary_crossentropy, weight: 0.5, metrics: [accuracy]}
train:
  optimizer: {type: sgd, lr: 0.05, momentum: 0.9}
  batch_size: $1
  epochs: $2
  seed: 11${4:+
  $4}
data: {train: $3}"
}

# bags_data FILE: FILE here, 600 rows (seed 11) for bags_net: a user id
# (Zipf, < 2000), bags of item ids (Zipf, < 5000; 0-padded, lengths 0..10
# and 0..4) with a weight per id, tags (< 40, 0..3), 6 numbers; targets
# click (binary) and dwell (regression).
bags_data() {
    /usr/bin/python3 - "$1" <<'PYEOF'
import sys, h5py, numpy as np
rs = np.random.RandomState(11)
n, L = 600, 10
def bags(n, L, V):
    lens = rs.randint(0, L + 1, size=n)
    ids = np.zeros((n, L), 'i4')
    for i in range(n):
        ids[i, :lens[i]] = np.minimum(rs.zipf(1.2, size=lens[i]), V - 1)
    return ids
d = dict(user=np.minimum(rs.zipf(1.3, size=(n, 1)), 1999).astype('i4'),
         hist=bags(n, L, 5000), hist2=bags(n, 4, 5000), tags=bags(n, 3, 40),
         w=rs.uniform(0.5, 1.5, size=(n, L)).astype('f4'),
         num=rs.randn(n, 6).astype('f4'))
d['click'] = ((d['num'][:, 0] + (d['user'][:, 0] % 3 == 0)) > 0.5).astype('f4')[:, None]
d['dwell'] = (np.tanh(d['num'][:, 1]) + 0.1 * (d['hist'][:, 0] % 5)).astype('f4')[:, None]
with h5py.File(sys.argv[1], 'w') as f:
    for k, v in d.items(): f[k] = v
PYEOF
}

# bags_net NAME OPTIMIZER DATA: NAME.yaml, the network of the row-sparse
# tests: an embedding, a bag with weights, a bag sharing its table, a
# frozen bag and dense layers, two heads; batch 60, 2 epochs, a checkpoint
# each epoch.
bags_net() {
    config "$1" "inputs:
  user:  {shape: 1, dtype: int32}
  hist:  {shape: 10, dtype: int32}
  hist2: {shape: 4, dtype: int32}
  tags:  {shape: 3, dtype: int32}
  w:     {shape: 10}
  num:   {shape: 6}
layers:
  ue:    {type: embedding, input_dim: 2000, output_dim: 8, from: user}
  uf:    {type: flatten, from: ue}
  hb:    {type: embedding_bag, input_dim: 5000, output_dim: 8, combiner: sum, from: [hist, w]}
  hb2:   {type: embedding_bag, shares: hb, from: hist2}
  tb:    {type: embedding_bag, input_dim: 40, output_dim: 4, trainable: false, from: tags}
  h:     {type: dense, units: 8, activation: relu, from: num}
  cat:   {type: concat, from: [uf, hb, hb2, tb, h]}
  t:     {type: dense, units: 8, activation: tanh, from: cat}
  click: {type: dense, units: 1, activation: sigmoid, from: t}
  dwell: {type: dense, units: 1, from: cat}
outputs:
  click: {loss: binary_crossentropy}
  dwell: {loss: mse, weight: 0.5}
train:
  optimizer: $2
  batch_size: 60
  epochs: 2
  seed: 4
  checkpoint: {every_epochs: 1, keep: 4, save_best: false}
data: {train: $3}"
}

# SLURM tests (their job names start with $tag):
# submit NAME SBATCH_ARGS... -- SCRIPT ARGS...: sbatch --wait in the
# background (at most 150 s), its exit code into NAME.rc, the job's
# output into NAME.out (NAME-<task>.out for arrays).
submit() {
    local name=$1
    shift
    (
        timeout 150 sbatch --wait --quiet --job-name="$tag-$name" --time=5 \
            --output="$TMP/$name.out" "$@" >"$name.sbatch.log" 2>&1
        echo $? >"$name.rc"
    ) &
}
await() { # await NAME: the exit code of its sbatch --wait (124: timed out)
    for _ in $(seq 1600); do [ -s "$1.rc" ] && break; sleep 0.1; done
    [ -s "$1.rc" ] && cat "$1.rc" || echo 124
}
jobid() { squeue -h -n "$tag-$1" -o %i 2>/dev/null | head -n 1; }

# no_tmp PATH: no temporary file of an atomic write to PATH is left
# (they are named PATH.tmp.<pid>.<random>).
no_tmp() { ! compgen -G "$1.tmp*" >/dev/null; }

# Events, not seconds: a test waits for what it needs to have happened (a
# checkpoint written, a lock taken, a handler installed), never for a time
# that assumes the machine's speed. The limits below only bound a hang.
#
# wait_until LIMIT COND...: until COND holds, polled every 10 ms; 1 when it
# still does not after LIMIT seconds.
wait_until() {
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.01
    done
}

# ckpt_step DIR: the global step of DIR's newest periodic checkpoint (its
# name, ckpt-<step>.h5, appears only once the file is whole); 0 for none.
ckpt_step() {
    local f s n=0
    for f in "$1"/checkpoints/ckpt-*.h5; do
        [ -e "$f" ] || continue
        s=${f##*/ckpt-}
        s=$((10#${s%.h5}))
        [ "$s" -gt "$n" ] && n=$s
    done
    echo "$n"
}
has_ckpt() { [ "$(ckpt_step "$1")" -gt 0 ]; }
ckpt_reached() { [ "$(ckpt_step "$1")" -ge "$2" ]; } # ckpt_reached DIR STEP

# wait_ckpt DIR [STEP [PID]]: until DIR has a periodic checkpoint (at step
# STEP or later); 1 after 300 s, or at once when PID has ended without it.
wait_ckpt() {
    local end=$((SECONDS + 300))
    until ckpt_reached "$1" "${2:-1}"; do
        [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || return 1
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.01
    done
}

# tree PID: PID and all its descendants (mpirun and its ranks, or a
# timeout, its mpirun and the ranks).
tree() {
    local c
    echo "$1"
    for c in $(ps -o pid= --ppid "$1"); do tree "$c"; done
}

# freeze PID... / thaw PID...: SIGSTOP / SIGCONT. A process frozen at an
# event stays at that point however fast the machine, while the test does
# what it must do during the run; 1 when a PID has already ended. freeze
# returns once every thread of each PID is stopped: SIGSTOP is delivered
# asynchronously, and a background thread (the checkpoint writer) could
# otherwise still rename its file after the test saw it mid-write.
freeze() {
    local p r=0
    for p in "$@"; do kill -STOP "$p" 2>/dev/null || r=1; done
    for p in "$@"; do wait_until 60 all_stopped "$p" || r=1; done
    return $r
}
thaw() { local p; for p in "$@"; do kill -CONT "$p" 2>/dev/null; done; }

# all_stopped PID: every thread of PID is stopped (state T or t in its
# /proc stat, after the command name's closing parenthesis), or has ended.
all_stopped() {
    local st s
    for st in /proc/"$1"/task/*/stat; do
        s=$(cat "$st" 2>/dev/null) || continue
        s=${s##*) }
        case ${s%% *} in T | t | Z | X) ;; *) return 1 ;; esac
    done
}

# rank_pid LAUNCHER_PID RANK: the pid of MPI rank RANK among mpirun's
# children, by the OMPI_COMM_WORLD_RANK in its environment (their pid order
# need not be the ranks' order); empty when none has it (yet).
rank_pid() {
    local c
    for c in $(ps -o pid= --ppid "$1"); do
        if tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$c"
            return
        fi
    done
}

# check DESCRIPTION COMMAND...: counts a pass when COMMAND succeeds.
check() {
    local what=$1
    shift
    if "$@"; then passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}

# py DESCRIPTION SCRIPT: a Python check (its asserts) passes; prints its
# output. Debian's interpreter, which has h5py and numpy.
py() {
    local what=$1 out
    if out=$(/usr/bin/python3 -c "$2" 2>&1); then
        passed=$((passed + 1))
        [ -n "$out" ] && echo "$out"
    else
        echo "FAIL: $what:"; echo "$out"; failed=$((failed + 1))
    fi
}

# params_close A.h5 B.h5 TOL: every /params tensor of B is within TOL of
# A's, relative to A's largest magnitude (TOL 0: bitwise equal).
params_close() {
    /usr/bin/python3 - "$@" <<'PYEOF'
import sys, h5py, numpy as np
a, b, tol = h5py.File(sys.argv[1]), h5py.File(sys.argv[2]), float(sys.argv[3])
worst, tensors = 0.0, 0
for k in a['params']:
    for n in a['params'][k]:
        x, y = a['params'][k][n][()], b['params'][k][n][()]
        if x.shape != y.shape:
            sys.exit(1)
        tensors += 1
        d = np.abs(x.astype('f8') - y)
        if not np.isfinite(d).all():  # a NaN must not compare as no difference
            worst = float('inf')
        elif d.size:
            worst = max(worst, float(np.max(d) / (np.max(np.abs(x)) + 1e-30)))
if tol > 0:
    print(f'  {sys.argv[2]}: max relative difference {worst:.2e}')
sys.exit(0 if tensors and worst <= tol else 1)
PYEOF
}

# same_params A.h5 B.h5: bitwise equal parameters.
same_params() { params_close "$1" "$2" 0; }

# ranks_agree CONFIG NP...: CONFIG trained by 1 process (run np1) and by
# each NP ranks (runs npNP, the replicas checked every step): the
# parameters of 1 process within 1e-5 (moving statistics are /params too).
ranks_agree() {
    local cfg=$1 np
    shift
    expect 0 "" train "$cfg" --out np1 --quiet
    for np in "$@"; do
        mpi_expect "$np" 0 "" train "$cfg" --out "np$np" --quiet --check-every 1
        check "$np ranks: the parameters of 1 rank (1e-5)" \
            params_close np1/checkpoints/last.h5 "np$np/checkpoints/last.h5" 1e-5
    done
}

# resumes_exactly CONFIG MESSAGE CKPT...: CONFIG trained again with a
# checkpoint every 5 steps (run part), its checkpoints CKPT... removed (the
# last ones: the run "stopped" before them), resumed (printing MESSAGE):
# bitwise the uninterrupted run np1 (ranks_agree's).
resumes_exactly() {
    local cfg=$1 msg=$2
    shift 2
    expect 0 "" train "$cfg" --out part --quiet --set train.checkpoint.every_steps=5
    (cd part/checkpoints && rm "$@")
    expect 0 "$msg" train "$cfg" --out part --resume part
    check "resumed mid-epoch: bitwise the uninterrupted run" \
        same_params np1/checkpoints/last.h5 part/checkpoints/last.h5
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# need_fashion: F is the Fashion-MNIST folder, else one FAIL and the end.
need_fashion() {
    F=/usr/share/datasets/fashion-mnist
    [ -f "$F/train-images-idx3-ubyte.gz" ] && return 0
    echo "FAIL: $F missing: install dataset-fashion-mnist (scripts/install-deps.sh)"
    failed=$((failed + 1))
    finish
    exit
}

# need_hosts: the hosts of scripts/hosts.sh can be made here (a throwaway
# network namespace and veth pair), else "SKIP: why" and exit 0 — CTest's
# SKIP_REGULAR_EXPRESSION "^SKIP:" reports the test skipped
# (tests/CMakeLists.txt).
need_hosts() {
    local probe=mimo-p$$
    if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v unshare >/dev/null ||
        ! ip netns add "$probe" 2>/dev/null; then
        echo "SKIP: cannot create network namespaces (needs root with CAP_NET_ADMIN, iproute2, util-linux)"
        exit 0
    fi
    if ! ip link add "$probe" type veth peer name eth0 netns "$probe" 2>/dev/null; then
        ip netns del "$probe"
        echo "SKIP: cannot create network links (needs CAP_NET_ADMIN)"
        exit 0
    fi
    ip link del "$probe"
    ip netns del "$probe"
}

# tutorial_block NAME: $tutorial = the commands between the lines
# "# TUTORIAL-BEGIN" and "# TUTORIAL-END" of the test script, verbatim; checks
# that README.md's "<!-- ci: NAME -->" block holds the same commands, and
# prepares the current directory to run them as the README does: build/mimo
# and a copy of configs/ (data paths resolve next to it, ../data).
tutorial_block() {
    local readme
    tutorial=$(sed -n '/^# TUTORIAL-BEGIN$/,/^# TUTORIAL-END$/p' "$SELF" | sed '1d;$d' | sed 's/^# //')
    readme=$(awk -v m="<!-- ci: $1 -->" '$0 == m {f = 1; next}
        f && /^```sh/ {in_b = 1; next} in_b && /^```/ {exit} in_b {print}' "$SRC/README.md")
    if [ -n "$readme" ]; then
        check "README's ci: $1 block = the commands in tests/cli/$(basename "$SELF")" \
            test "$readme" = "$tutorial"
        [ "$readme" = "$tutorial" ] || diff <(echo "$readme") <(echo "$tutorial")
    else
        echo "note: README.md has no <!-- ci: $1 --> block yet; running $(basename "$SELF")'s copy"
    fi
    mkdir -p build data
    ln -s "$MIMO" build/mimo
    cp -r "$SRC/configs" configs
}

# run_tutorial LIMIT BAR: runs $run (the tutorial's commands, as written
# or shortened) under bash -euo pipefail, at most LIMIT seconds, into
# tutorial.log; says how long it took and what eval printed, sets $acc
# (eval's label_accuracy) and checks it is at least BAR.
run_tutorial() {
    local start secs
    start=$(date +%s)
    # MIMO under ASan: no leak checks under mpirun (MPI_ASAN)
    if ASAN_OPTIONS=$MPI_ASAN timeout -k 5 "$1" bash -euo pipefail -c "$run" >tutorial.log 2>&1; then
        passed=$((passed + 1))
    else
        echo "FAIL: the tutorial's commands (exit $?):"; tail -n 30 tutorial.log
        failed=$((failed + 1))
    fi
    secs=$(($(date +%s) - start))
    acc=$(awk '$1 == "label_accuracy" { print $2 }' tutorial.log)
    echo "tutorial: ${secs} s in all; test label accuracy ${acc:-?}"
    grep -E "^epoch|^(loss|label_|group_|samples)" tutorial.log
    check "test label accuracy ($acc) >= $2" \
        awk -v a="$acc" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'
}

# MPI: as root mpirun needs these; 4 ranks on 2 cores need oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# The suite runs two tests at a time on 2 cores (ctest -j2): a rank or an
# OpenMP thread that waits must give its core away, not spin on it (Open
# MPI spins when ranks <= cores, libgomp spins before sleeping), or the
# test beside it crawls. Speeds are never asserted; results do not change.
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# Under AddressSanitizer, Open MPI's plugins (dlopen'ed, unloaded at
# MPI_Finalize) leave allocations LeakSanitizer cannot name or suppress:
# leak checks run in the single-process tests, not under mpirun.
MPI_ASAN="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# mpi_expect NP CODE PHRASE ARGS...: like expect, under mpirun -np NP, with
# one OpenMP thread per rank and a 300 s limit: a hang fails the test, and
# the limit is far above what any run here takes, so that a loaded machine
# (CI's parallel suites, other jobs) is never taken for a hang.
mpi_expect() {
    local np=$1
    shift
    local saved=$MIMO
    MIMO="env ASAN_OPTIONS=$MPI_ASAN timeout -k 5 300 mpirun -np $np -x OMP_NUM_THREADS=1 $saved"
    expect "$@"
    MIMO=$saved
}
