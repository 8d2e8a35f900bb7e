#!/usr/bin/env bash
# fashion_partial.sh — the README's multi-task demo on real data, short:
# Fashion-MNIST imported with the group head's labels kept for 10% of the
# training images (`--keep-labels group=0.1`), configs/fashion-partial.yaml
# trained 3 epochs on 2 ranks: the group head sees exactly 6,000 labels
# per epoch and still reaches >= 0.94 test group accuracy through the
# trunk the fully labelled head trains; and configs/fashion-shirt.yaml's
# class weights on the imbalanced shirt head (10% positives) give a
# higher recall than the same run without them. The full runs and their
# numbers are in the README ("Multi-task data"). Needs the
# dataset-fashion-mnist package. ~2-4 minutes.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
F=/usr/share/datasets/fashion-mnist
cd "$TMP" || exit 1
[ -r "$F/train-images-idx3-ubyte.gz" ] || { echo "FAIL: $F: no Fashion-MNIST (apt-get install dataset-fashion-mnist)"; exit 1; }
mkdir -p configs data
cp "$SRC/configs/fashion-partial.yaml" "$SRC/configs/fashion-shirt.yaml" configs/
G=group=0,1,0,1,0,2,0,2,3,2 S=shirt=0,0,0,0,0,0,1,0,0,0
train=(--images $F/train-images-idx3-ubyte.gz --labels $F/train-labels-idx1-ubyte.gz --pool 4)
test=(--images $F/t10k-images-idx3-ubyte.gz --labels $F/t10k-labels-idx1-ubyte.gz --pool 4)
expect 0 "" import idx "${train[@]}" --out data/fashion-train-g10.h5 --label-map $G --keep-labels group=0.1
expect 0 "" import idx "${test[@]}" --out data/fashion-test.h5 --label-map $G
expect 0 "" import idx "${train[@]}" --out data/fashion-train-shirt.h5 --label-map $S
expect 0 "" import idx "${test[@]}" --out data/fashion-test-shirt.h5 --label-map $S

mpi_long() { # mpi_expect with the time a real run needs
    local saved=$MIMO
    MIMO="env ASAN_OPTIONS=$MPI_ASAN timeout -k 5 600 mpirun -np 2 -x OMP_NUM_THREADS=1 $saved"
    expect "$@"
    MIMO=$saved
}
mpi_long 0 "" train configs/fashion-partial.yaml --epochs 3 --out partial --quiet
py "10% of the group labels: 6000 per epoch, test group accuracy >= 0.94" "
import csv
h = list(csv.DictReader(open('partial/history.csv')))
assert all(float(r['group_labelled']) == 6000 for r in h), [r['group_labelled'] for r in h]
assert all(float(r['val_group_labelled']) == 10000 for r in h)
acc = float(h[-1]['val_group_accuracy'])
print(f'  test group accuracy {acc:.4f}, label accuracy {float(h[-1][\"val_label_accuracy\"]):.4f}')
assert acc >= 0.94, acc
"
mpi_long 0 "" train configs/fashion-shirt.yaml --epochs 3 --out weighted --quiet
mpi_long 0 "" train configs/fashion-shirt.yaml --epochs 3 --out unweighted --quiet --set outputs.shirt.class_weight.1=1
py "class_weight {1: 4} on the shirt head: recall up" "
import csv
w = list(csv.DictReader(open('weighted/history.csv')))[-1]
u = list(csv.DictReader(open('unweighted/history.csv')))[-1]
for k in ('recall', 'precision', 'f1', 'auc'):
    print(f'  test shirt {k}: weighted {float(w[\"val_shirt_\" + k]):.4f}, unweighted {float(u[\"val_shirt_\" + k]):.4f}')
assert float(w['val_shirt_recall']) > float(u['val_shirt_recall']) + 0.05
assert float(w['val_shirt_precision']) < float(u['val_shirt_precision'])
"
finish
