#!/usr/bin/env bash
# accumulate.sh — train.accumulate: k micro-steps per update give the
# gradient of the whole global batch. On multi-task data with missing
# labels (purchase labelled in 40 of 500 rows), sample and class weights
# and dropout: batch 30 in 3 micro-steps of 10 trains as batch 30 in one
# (1e-5; the heads' weight sums cover all micro-batches and ranks, dropout
# draws by global row), on 1, 2, 3 and 4 ranks alike, also with learned task
# weights; batch_norm (statistics per micro-batch, the same rows on any
# number of ranks) is rank invariant; streamed data with prefetch reads
# the same rows as data loaded whole (bitwise); a mid-epoch resume is
# bitwise; bad values are one clear config error.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(3)
n = 500
num = rs.randn(n, 8).astype('f4'); aux = rs.randn(n, 4).astype('f4')
click = ((num[:, 0] + aux[:, 1]) > 0.3).astype('f4')[:, None]
purchase = np.full((n, 1), np.nan, 'f4')            # labelled: rows 0..39
purchase[:40, 0] = (num[:40, 1] - num[:40, 2] > 0).astype('f4')
purchase_w = rs.uniform(0.5, 2, n).astype('f4')
category = np.argmax(num[:, 3:8] + 0.5 * rs.randn(n, 5), 1).astype('i4')
category[rs.rand(n) < 0.3] = -1                      # 30% without a label
dwell = np.stack([np.tanh(num[:, 4]), aux[:, 0] * 0.5], 1).astype('f4')
dwell[rs.rand(n) < 0.5] = np.nan                     # half without a label
with h5py.File('data.h5', 'w') as f:
    for k, v in dict(num=num, aux=aux, click=click, purchase=purchase,
                     purchase_w=purchase_w, category=category, dwell=dwell).items():
        f[k] = v
PYEOF

net() { # net NAME [EXTRA LAYER LINE] [TRAIN LINE]
    config "$1" "inputs:
  num: {shape: 8}
  aux: {shape: 4}
layers:
  both:     {type: concat, from: [num, aux]}
  h0:       {type: dense, units: 16, activation: relu, from: both}${2:+
  $2}
  h:        {type: dropout, rate: 0.2, from: h0}
  click:    {type: dense, units: 1, activation: sigmoid, from: h}
  purchase: {type: dense, units: 1, activation: sigmoid, from: h}
  category: {type: dense, units: 5, activation: softmax, from: h}
  dwell:    {type: dense, units: 2, from: h}
outputs:
  click:    {loss: binary_crossentropy, metrics: [accuracy, auc]}
  purchase: {loss: binary_crossentropy, missing: nan, sample_weight: purchase_w, metrics: [auc]}
  category: {loss: sparse_categorical_crossentropy, missing: -1, class_weight: {0: 1.0, 3: 4.0}}
  dwell:    {loss: mse, missing: nan}
train:
  optimizer: {type: adam, lr: 0.01}
  batch_size: 30
  epochs: 4
  seed: 11${3:+
  $3}
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}
data: {train: data.h5}"
}
net one
net acc "" "accumulate: 3"

# ---- 3 micro-steps of 10 rows: the update of one batch of 30
expect 0 "" train one.yaml --out one --quiet
expect 0 "" train acc.yaml --out acc1 --quiet
check "accumulate 3 x 10 rows: as one batch of 30 (1e-5)" params_close one/checkpoints/last.h5 acc1/checkpoints/last.h5 1e-5
py "history: the same losses and counts per epoch" "
import csv
a, b = (list(csv.DictReader(open(p + '/history.csv'))) for p in ('one', 'acc1'))
assert len(a) == len(b) == 4
for x, y in zip(a, b):
    for k in ('loss', 'click_loss', 'purchase_loss', 'category_loss', 'dwell_loss', 'purchase_labelled', 'purchase_auc'):
        assert abs(float(x[k]) - float(y[k])) < 1e-5 * max(1, abs(float(x[k]))), (k, x[k], y[k])
"
for np in 2 3 4; do
    mpi_expect "$np" 0 "" train acc.yaml --out acc$np --quiet --check-every 1
    check "accumulate 3 on $np ranks: as 1 rank (1e-5)" params_close acc1/checkpoints/last.h5 acc$np/checkpoints/last.h5 1e-5
done
# the bucketed allreduce starts a bucket when backward has made it final:
# only in the last micro-step (tiny buckets: many per step)
mpi_expect 2 0 "" train acc.yaml --out accb --quiet --allreduce bucketed --bucket-mb 0.0005
mpi_expect 2 0 "" train acc.yaml --out accs --quiet --allreduce blocking
check "accumulate 3, bucketed allreduce: bitwise the blocking one" same_params accs/checkpoints/last.h5 accb/checkpoints/last.h5
check "accumulate 3, 2 ranks blocking: as 1 rank (1e-5)" params_close acc1/checkpoints/last.h5 accs/checkpoints/last.h5 1e-5
# learned task weights: each micro-step adds its part of d/ds_h
expect 0 "" train one.yaml --out lw --quiet --epochs 2 --set train.loss_weighting=uncertainty
mpi_expect 2 0 "" train acc.yaml --out lwacc --quiet --epochs 2 --set train.loss_weighting=uncertainty
check "accumulate 3 with learned task weights, 2 ranks: as one batch on 1 (1e-5)" params_close lw/checkpoints/last.h5 lwacc/checkpoints/last.h5 1e-5

# ---- batch_norm: statistics per micro-batch, the same rows on any ranks
net bn "bn:       {type: batch_norm, from: h0}" "accumulate: 3"
sed -i 's/h:        {type: dropout, rate: 0.2, from: h0}/h:        {type: dropout, rate: 0.2, from: bn}/' bn.yaml
expect 0 "" train bn.yaml --out bn1 --quiet --epochs 2
mpi_expect 3 0 "" train bn.yaml --out bn3 --quiet --epochs 2
check "batch_norm with accumulate 3: 3 ranks as 1 (1e-5)" params_close bn1/checkpoints/last.h5 bn3/checkpoints/last.h5 1e-5

# ---- streamed (with the next step's rows prefetched): the same rows read
expect 0 "" train acc.yaml --out stream --quiet --set data.memory_limit_mb=0.001
check "streamed and prefetched: bitwise the data loaded whole" same_params acc1/checkpoints/last.h5 stream/checkpoints/last.h5

# ---- a checkpoint is an update boundary: a mid-epoch resume is bitwise
expect 0 "" train acc.yaml --out part --quiet --epochs 3 --set train.checkpoint.every_steps=8
rm part/checkpoints/last.h5 part/checkpoints/ckpt-000000000051.h5
expect 0 "resuming from part/checkpoints/ckpt-000000000048.h5 (epoch 3, step 14)" train acc.yaml --out part --resume part
check "resumed mid-epoch with accumulate 3: bitwise the uninterrupted run" same_params acc1/checkpoints/last.h5 part/checkpoints/last.h5
check "resumed: the same history (not the times)" cmp <(cut -d, -f1-12 acc1/history.csv) <(cut -d, -f1-12 part/history.csv)

expect 0 "Gradient accumulation: 3 micro-steps of 10 rows per update of 30" summary acc.yaml
expect 0 "at batch 10;" summary acc.yaml

# ---- bad values: FILE:LINE:COL and what is wrong
expect 1 "acc.yaml: --set train.accumulate: expected an integer >= 1 (micro-steps per update) for 'accumulate' in train, got '0'" summary acc.yaml --set train.accumulate=0
sed 's/accumulate: 3/accumulate: 7/' acc.yaml >bad7.yaml
expect 1 "bad7.yaml:22:15: train.accumulate: 7 micro-steps do not divide train.batch_size 30 (the update's global batch) into equal micro-batches" train bad7.yaml --out b7
expect 1 "do not divide train.batch_size 32" train acc.yaml --out b32 --batch-size 32
sed 's/accumulate: 3/accumulate: many/' acc.yaml >badx.yaml
expect 1 "badx.yaml:22:15: expected an integer >= 1 (micro-steps per update) for 'accumulate' in train, got 'many'" summary badx.yaml
finish
