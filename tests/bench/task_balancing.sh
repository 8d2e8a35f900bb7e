#!/usr/bin/env bash
# task_balancing.sh — README's task-balancing experiment (not run by
# CTest): configs/fashion-partial.yaml's network (the 10-class `label`
# head, the `group` head labelled on 10% of the images) plus a third head
# `noise` whose labels are drawn uniformly at random per image
# (numpy.random.RandomState(0).randint(0, 10, n), written into the
# imported files), 5 epochs, seed 1, 2 ranks x 1 thread,
# grad_diagnostics on; one run per method (none, loss_weighting:
# uncertainty, pcgrad, mgda_ub, gradnorm) and one without the noise head;
# prints README's table from the 10,000 test images (the validation
# columns of the last epoch) and the train cosines of that epoch.
# Usage: tests/bench/task_balancing.sh build/mimo [EPOCHS, default 5]
set -euo pipefail
source "$(dirname "$0")/lib.bash"
MIMO=$(realpath "${1:?usage: task_balancing.sh MIMO [EPOCHS]}")
EPOCHS=${2:-5}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
fashion_partial_data
/usr/bin/python3 -c "
import h5py, numpy as np
for f in ('train.h5', 'test.h5'):
    with h5py.File(f, 'a') as h:
        n = h['label'].shape[0]
        h['noise'] = np.random.RandomState(0).randint(0, 10, n).astype('i4')"
fashion_partial_config train.h5 >two.yaml
sed -e 's|^  group:    {type: dense.*|&\n  noise:    {type: dense, units: 10, activation: softmax, from: trunk_a}|' \
    -e 's|^  group: {loss.*|&\n  noise: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}|' two.yaml >three.yaml
run() { # NAME CONFIG SET...
    local name=$1 cfg=$2
    shift 2
    mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" train "$cfg" --out "$name" --quiet \
        --epochs "$EPOCHS" --set train.grad_diagnostics=true "$@"
}
run ref two.yaml
run none three.yaml
run uncertainty three.yaml --set train.loss_weighting=uncertainty
for m in pcgrad mgda_ub gradnorm; do
    run $m three.yaml --set train.task_balancing=$m
done
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $EPOCHS epochs, seed 1, 2 ranks x 1 thread"
echo
echo "| train.task_balancing / loss_weighting | label accuracy | group accuracy (F1) | noise accuracy | cos(label, group), cos(label, noise), last epoch |"
echo "| --- | --- | --- | --- | --- |"
for r in ref none uncertainty pcgrad mgda_ub gradnorm; do
    /usr/bin/python3 - "$r" <<'PYEOF'
import csv, sys
r = sys.argv[1]
row = list(csv.DictReader(open(f'{r}/history.csv')))[-1]
g = lambda k: row.get(k)
name = {'ref': 'without the noise head (reference)', 'uncertainty': 'loss_weighting: uncertainty'}.get(r, r)
noise = f"{float(g('val_noise_accuracy')):.4f}" if g('val_noise_accuracy') else '—'
cn = f"{float(g('cos_label_noise')):.4f}" if g('cos_label_noise') else '—'
print(f"| {name} | {float(g('val_label_accuracy')):.4f} | {float(g('val_group_accuracy')):.4f} "
      f"({float(g('val_group_f1')):.4f}) | {noise} | {float(g('cos_label_group')):.3f}, {cn} |")
PYEOF
done
