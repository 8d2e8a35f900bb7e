#!/usr/bin/env bash
# task_balancing_conflict.sh — README's study of task balancing with
# heads that truly oppose each other (not run by CTest).
#
# configs/fashion-partial.yaml's network (the 10-class `label` head, the
# `group` head labelled on 10% of the images) with two changes:
#  - the `label` classifier is frozen (`trainable: false`: a fixed random
#    256 -> 10 projection, Hoffer et al. 2018's fixed classifier; the trunk
#    learns to fit it alone — the reference row shows it costs little);
#  - a head `swap` reads the SAME frozen classifier (`shares: label`) from
#    the same shared tensor, with labels = the label with classes 0<->2,
#    1<->3 and 5<->7 exchanged (pairs inside one group, so the group head
#    agrees with both). On an image of those six classes the two heads ask
#    the one representation for contradictory logits: once p(y) ~
#    p(swap(y)), head label's gradient at trunk_a is W^T(p - e_y) and
#    head swap's W^T(p - e_swap(y)), exactly opposite and non-zero. (With
#    a trainable shared classifier the conflict moves into the kernel —
#    its class columns merge — and the gradients at the trunk vanish;
#    measured with the pairs 1<->3, 5<->7 swapped, 3 epochs, seed 1:
#    cos(label, swap) +0.08 at the last epoch.)
# Every method (none, loss_weighting: uncertainty, pcgrad, mgda_ub,
# gradnorm), and the network without the swap head as a reference, with
# seeds 1, 2, 3; EPOCHS epochs (default 3) on the first ROWS training
# images (default 20000: pcgrad's three backwards and its exchange of the
# heads' gradients of every shared parameter take ~3 minutes an epoch of
# 60,000 on 2 busy cores), 2 ranks x 1 thread, nice, grad_diagnostics on. Prints one line per run, then the mean and the
# sample standard deviation over the seeds of the validation metrics of
# the last epoch (the 10,000 test images) and of the train cosines
# between heads at the shared tensor (trunk_a): cos(label, swap) over the
# epochs and at the last one; then cos(label, swap) per epoch for `none`.
# Usage: tests/bench/task_balancing_conflict.sh build/mimo [EPOCHS] [SEEDS] [ROWS]
# (METHODS="ref none ..." in the environment runs only those;
# SWAP_WEIGHT=W gives the swap head `weight: W`, default 1: with W < 1
# `none` favours the label head, and a balancing method shows where it
# moves the trade-off; loss_weighting: uncertainty ignores `weight`).
set -euo pipefail
source "$(dirname "$0")/lib.bash"
MIMO=$(realpath "${1:?usage: task_balancing_conflict.sh MIMO [EPOCHS] [SEEDS]}")
EPOCHS=${2:-3}
SEEDS=${3:-1 2 3}
ROWS=${4:-20000}
W=${SWAP_WEIGHT:-1}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
fashion_partial_data
/usr/bin/python3 -c "
import h5py, numpy as np
p = np.arange(10)
p[[0, 2, 1, 3, 5, 7]] = [2, 0, 3, 1, 7, 5]
with h5py.File('train.h5', 'r') as h, h5py.File('train-sub.h5', 'w') as o:
    for k in h:
        o[k] = h[k][:$ROWS]
for f in ('train-sub.h5', 'test.h5'):
    with h5py.File(f, 'a') as h:
        h['swap'] = p[h['label'][:]].astype('i4')"
fashion_partial_config train-sub.h5 |
    sed -e 's|^  label:    {type: dense, units: 10, activation: softmax,|& trainable: false,|' >ref.yaml
grep -q 'trainable: false' ref.yaml
sed -e 's|^  group:    {type: dense.*|&\n  swap:     {type: dense, shares: label, from: trunk_a}|' \
    -e "s|^  group: {loss.*|&\n  swap: {loss: sparse_categorical_crossentropy, weight: $W, metrics: [accuracy]}|" ref.yaml >swap.yaml
METHODS=${METHODS:-ref none uncertainty pcgrad mgda_ub gradnorm}
cpu() { grep -m1 "^$1" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
echo "CPU: $(cpu 'model name') (family $(cpu 'cpu family') model $(cpu 'model\s')), $(nproc) vCPUs shared with other jobs"
echo "$EPOCHS epochs, seeds $SEEDS, swap head weight $W, 2 ranks x 1 thread, the first $ROWS of the 60,000 train images, the 10,000 test images"
echo
echo "method,seed,val_label_accuracy,val_swap_accuracy,val_group_accuracy,val_group_f1,cos_label_swap_mean,cos_label_swap_last,cos_label_group_mean,seconds"
for s in $SEEDS; do
    for m in $METHODS; do
        cfg=swap.yaml set=()
        case $m in
        ref) cfg=ref.yaml ;;
        uncertainty) set=(--set train.loss_weighting=uncertainty) ;;
        pcgrad | mgda_ub | gradnorm) set=(--set train.task_balancing=$m) ;;
        esac
        nice mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" train $cfg --out $m-$s --quiet \
            --epochs "$EPOCHS" --set train.seed=$s --set train.grad_diagnostics=true "${set[@]}"
        /usr/bin/python3 - $m $s <<'PYEOF'
import csv, sys
m, s = sys.argv[1:]
rows = list(csv.DictReader(open(f'{m}-{s}/history.csv')))
last = rows[-1]
f = lambda k, r=last: float(r[k]) if r.get(k) else float('nan')
mean = lambda k: sum(f(k, r) for r in rows) / len(rows)
secs = sum(f('seconds', r) for r in rows)
print(f"{m},{s},{f('val_label_accuracy'):.4f},{f('val_swap_accuracy'):.4f},"
      f"{f('val_group_accuracy'):.4f},{f('val_group_f1'):.4f},{mean('cos_label_swap'):.4f},"
      f"{f('cos_label_swap'):.4f},{mean('cos_label_group'):.4f},{secs:.0f}")
if 'label_weight' in last:  # gradnorm's weights, mgda_ub's epoch means of alpha_h weight_h
    print(f'  {m} seed {s}, <head>_weight per epoch: ' + '; '.join(
        ' '.join(f"{h} {f(h + '_weight', r):.3f}" for h in ('label', 'group', 'swap'))
        for r in rows), file=sys.stderr)
PYEOF
    done
done | tee runs.csv
echo
/usr/bin/python3 - "$METHODS" <<'PYEOF'
import csv, math, sys
runs = list(csv.reader(open('runs.csv')))
name = {'ref': 'without the swap head (reference)', 'uncertainty': 'loss_weighting: uncertainty'}
def ms(xs):
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return '—'
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return f'{m:.4f} ± {sd:.4f}'.replace('-', '−')
print('| method | label accuracy | swap accuracy | group accuracy | group F1 | cos(label, swap), mean over epochs | cos(label, swap), last epoch | cos(label, group), mean |')
print('| --- | --- | --- | --- | --- | --- | --- | --- |')
for m in sys.argv[1].split():
    rs = [r for r in runs if r[0] == m]
    col = lambda i: [float(r[i]) for r in rs]
    print(f'| {name.get(m, m)} | ' + ' | '.join(ms(col(i)) for i in range(2, 9)) + ' |')
PYEOF
echo
s=$(echo $SEEDS | cut -d' ' -f1)
[ -f none-$s/history.csv ] || exit 0
echo "cos(label, swap) per epoch, none, seed $s:"
/usr/bin/python3 -c "
import csv
print(' '.join(f\"{float(r['cos_label_swap']):.3f}\" for r in csv.DictReader(open('none-$s/history.csv'))))"
