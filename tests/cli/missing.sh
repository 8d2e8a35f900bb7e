#!/usr/bin/env bash
# missing.sh — multi-task data from the command line: heads with missing
# labels (NaN and -1), sample and class weights, learned task weights and
# the metrics of such heads. The labels of one head sit in 40 of 500 rows,
# so that many ranks' slices, and some global batches, have none: 1, 2, 3
# and 4 ranks still train the same (1e-5), a mid-epoch resume is bitwise
# (parameters and the history's AUC), eval and predict report per head,
# and every bad input is one clear error.
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
def write(name, drop=(), **over):
    d = dict(num=num, aux=aux, click=click, purchase=purchase,
             purchase_w=purchase_w, category=category, dwell=dwell)
    d.update(over)
    with h5py.File(name, 'w') as f:
        for k, v in d.items():
            if k not in drop: f[k] = v
write('data.h5')
write('noweights.h5', drop=('purchase_w',))
w = purchase_w.copy(); w[77] = -0.5; write('w_negative.h5', purchase_w=w)
w = purchase_w.copy(); w[12] = np.nan; write('w_nan.h5', purchase_w=w)
write('w_short.h5', purchase_w=purchase_w[:499])
write('w_2d.h5', purchase_w=purchase_w[:, None])
d = dwell.copy(); d[5] = [np.nan, 0.3]; write('dwell_part.h5', dwell=d)
c = category.copy(); c[9] = -2; write('cat_bad.h5', category=c)
x = num.copy(); x[3, 3] = np.nan; write('num_nan.h5', num=x)
p = click.copy(); p[8, 0] = np.nan; write('click_nan.h5', click=p)
PYEOF

config net 'inputs:
  num: {shape: 8}
  aux: {shape: 4}
layers:
  both:     {type: concat, from: [num, aux]}
  h:        {type: dense, units: 16, activation: relu, from: both}
  click:    {type: dense, units: 1, activation: sigmoid, from: h}
  purchase: {type: dense, units: 1, activation: sigmoid, from: h}
  category: {type: dense, units: 5, activation: softmax, from: h}
  dwell:    {type: dense, units: 2, from: h}
outputs:
  click:    {loss: binary_crossentropy, metrics: [accuracy, auc]}
  purchase: {loss: binary_crossentropy, missing: nan, sample_weight: purchase_w, metrics: [auc, precision, recall, f1]}
  category: {loss: sparse_categorical_crossentropy, missing: -1, class_weight: {0: 1.0, 3: 4.0}, metrics: [accuracy, top_k_accuracy], top_k: 2}
  dwell:    {loss: mse, missing: nan, metrics: [mae, r2]}
train:
  optimizer: {type: adam, lr: 0.01}
  batch_size: 30
  epochs: 6
  seed: 11
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}
data: {train: data.h5}'

# ---- rank invariance with the labels of purchase in 40 rows of 500
expect 0 "" train net.yaml --out np1 --quiet
for np in 2 3 4; do
    mpi_expect "$np" 0 "" train net.yaml --out np$np --quiet --check-every 1
    check "$np ranks: parameters as 1 rank (1e-5)" params_close np1/checkpoints/last.h5 np$np/checkpoints/last.h5 1e-5
done
py "history: labelled counts, metrics in range, no NaN; the same on 4 ranks" "
import csv, math
def rows(p): return list(csv.DictReader(open(p)))
h1, h4 = rows('np1/history.csv'), rows('np4/history.csv')
assert len(h1) == 6
for r in h1:
    assert float(r['purchase_labelled']) == 40, r['purchase_labelled']
    assert float(r['category_labelled']) == 334, r['category_labelled']
    for k, v in r.items():
        assert math.isfinite(float(v)), (k, v)
    for k in ('click_auc', 'purchase_auc', 'purchase_f1', 'category_top_k_accuracy', 'category_accuracy'):
        assert 0 <= float(r[k]) <= 1, (k, r[k])
assert float(h1[-1]['click_auc']) > 0.9 and float(h1[-1]['category_top_k_accuracy']) > float(h1[-1]['category_accuracy'])
for a, b in zip(h1, h4):
    for k in ('purchase_auc', 'click_auc', 'purchase_labelled', 'category_labelled'):
        assert abs(float(a[k]) - float(b[k])) < 1e-4, (k, a[k], b[k])
print('  purchase_auc by epoch:', [round(float(r['purchase_auc']), 3) for r in h1])
"
# in order (no shuffling) the purchase labels fill only the first two of
# 17 global batches: 15 steps a epoch have none on any rank; finite and
# the same on 1 and 2 ranks (that such a batch adds exactly nothing is
# test_train's test_head_without_labels)
expect 0 "" train net.yaml --out inorder1 --quiet --epochs 2 --set train.shuffle=false
mpi_expect 2 0 "" train net.yaml --out inorder2 --quiet --epochs 2 --set train.shuffle=false --check-every 1
check "batches without a purchase label: 2 ranks as 1 (1e-5)" params_close inorder1/checkpoints/last.h5 inorder2/checkpoints/last.h5 1e-5
py "batches without a purchase label: finite history" "
import csv, math
for r in csv.DictReader(open('inorder2/history.csv')):
    assert all(math.isfinite(float(v)) for v in r.values()), r
"

# learned task weights: the same on 3 ranks; s_h in the checkpoint
expect 0 "" train net.yaml --out lw1 --quiet --set train.loss_weighting=uncertainty
mpi_expect 3 0 "" train net.yaml --out lw3 --quiet --set train.loss_weighting=uncertainty
check "uncertainty weighting: 3 ranks as 1 (1e-5)" params_close lw1/checkpoints/last.h5 lw3/checkpoints/last.h5 1e-5
py "log_var: one per head, moved; history has each head's weight" "
import h5py, csv, numpy as np
s = h5py.File('lw1/checkpoints/last.h5')['params/loss_weighting/log_var'][()]
assert s.shape == (4,) and np.all(s != 0), s
r = list(csv.DictReader(open('lw1/history.csv')))[-1]
for i, h in enumerate(('click', 'purchase', 'category', 'dwell')):
    assert abs(float(r[h + '_weight']) - np.exp(-s[i])) < 1e-5, (h, r[h + '_weight'], s[i])
print('  exp(-s):', np.round(np.exp(-s), 3))
"
expect 0 "loss_weighting (uncertainty)" summary lw1
expect 0 "purchase: binary_crossentropy, weight learned, (None, 1), missing: nan, sample_weight: purchase_w" summary lw1

# ---- resume from the middle of an epoch: bitwise, history included
expect 0 "" train net.yaml --out part --quiet --epochs 3 --set train.checkpoint.every_steps=8
rm part/checkpoints/last.h5 part/checkpoints/ckpt-000000000051.h5
cp part/checkpoints/ckpt-000000000048.h5 mid.h5
expect 0 "resuming from part/checkpoints/ckpt-000000000048.h5 (epoch 3, step 14)" train net.yaml --out part --resume part
check "resumed mid-epoch: bitwise the uninterrupted run" same_params np1/checkpoints/last.h5 part/checkpoints/last.h5
check "resumed mid-epoch: the same history (AUC, counts; not the times)" cmp <(cut -d, -f1-20 np1/history.csv) <(cut -d, -f1-20 part/history.csv)
# the same number of sums, other meanings (purchase: 3 class counts before,
# 3 r2 sums now): the saved layout tells, and the epoch restarts its sums
expect 0 "mid.h5: its sums of epoch 3 so far do not fit this config's metrics" \
    train net.yaml --out other --resume mid.h5 --epochs 3 --set 'outputs.purchase.metrics=[auc, r2]'

# ---- eval and predict: per head, labelled rows only; every row predicted
expect 0 "purchase_auc" eval np1 --data data.h5
expect 0 "purchase_labelled 40" eval np1 --data data.h5
expect 0 "category_labelled 334" eval np1 --data data.h5
expect 0 "dwell_r2" eval np1 --data noweights.h5
mpi_expect 3 0 "purchase_labelled 40" eval np1 --data data.h5
expect 0 "" predict np1 --data data.h5 --out pred.h5
py "predictions for every row of every head" "
import h5py, numpy as np
p = h5py.File('pred.h5')
assert p['purchase'].shape == (500, 1) and p['dwell'].shape == (500, 2)
assert np.all(np.isfinite(p['purchase'][()])) and np.all(np.isfinite(p['dwell'][()]))
"
expect 0 "" train net.yaml --out w2d --quiet --epochs 1 --data w_2d.h5
expect 0 "" train net.yaml --out wval --quiet --epochs 1 --val noweights.h5

# ---- bad data: one clear error naming the file, dataset and row
expect 1 "noweights.h5: no dataset 'purchase_w' for the sample weights of head 'purchase'" train net.yaml --out b1 --data noweights.h5
expect 1 "w_negative.h5: dataset 'purchase_w' row 77: sample weight -0.5 of head 'purchase' is negative" train net.yaml --out b2 --data w_negative.h5
expect 1 "w_nan.h5: dataset 'purchase_w' has 1 NaN/Inf value(s), the first in row 12" train net.yaml --out b3 --data w_nan.h5
expect 1 "w_short.h5: dataset 'purchase_w' has 499 rows but 'num' has 500" train net.yaml --out b4 --data w_short.h5
expect 1 "dwell_part.h5: dataset 'dwell' row 5: some but not all of its 2 values are missing (NaN)" train net.yaml --out b5 --data dwell_part.h5
expect 1 "cat_bad.h5: dataset 'category' row 9: class label -2 is not an integer in [0, 5)" train net.yaml --out b6 --data cat_bad.h5
expect 1 "num_nan.h5: dataset 'num' has 1 NaN/Inf value(s), the first in row 3" train net.yaml --out b7 --data num_nan.h5
expect 1 "dataset 'click' has 1 NaN/Inf value(s), the first in row 8 (rows without a label? mark them NaN in every unit and give the head missing: nan)" train net.yaml --out b8 --data click_nan.h5
mpi_expect 2 1 "dataset 'purchase_w' row 77: sample weight -0.5" train net.yaml --out b9 --data w_negative.h5
mpi_expect 3 1 "some but not all of its 2 values are missing" train net.yaml --out b10 --data dwell_part.h5

# ---- bad configs: FILE:LINE:COL and what to do
sed 's/dwell:    {loss: mse, missing: nan/dwell:    {loss: mse, class_weight: {0: 2}, missing: nan/' net.yaml >c1.yaml
expect 1 "c1.yaml:15:25: class_weight needs class labels, but output 'dwell' has the mse loss" summary c1.yaml
sed 's/class_weight: {0: 1.0, 3: 4.0}/class_weight: {0: 1.0, 7: 4.0}/' net.yaml >c2.yaml
expect 1 "c2.yaml:14:89: head 'category': class_weight names class 7, but the head has classes 0 to 4" summary c2.yaml
sed 's/dwell:    {loss: mse, missing: nan/dwell:    {loss: mse, missing: -1/' net.yaml >c3.yaml
expect 1 "c3.yaml:15:34: missing: -1 marks class labels (binary_crossentropy or sparse_categorical_crossentropy), but output 'dwell' has the mse loss: mark its missing targets with NaN and use missing: nan" summary c3.yaml
sed 's/missing: -1,/missing: maybe,/' net.yaml >c4.yaml
expect 1 "expected nan or an integer (e.g. -1) for 'missing' in output 'category', got 'maybe'" summary c4.yaml
sed 's/metrics: \[mae, r2\]/metrics: [mae, auc]/' net.yaml >c5.yaml
expect 1 "c5.yaml:15:54: metric 'auc' needs class labels, but output 'dwell' has the mse loss" summary c5.yaml
sed 's/metrics: \[accuracy, auc\]}/metrics: [accuracy, top_k_accuracy]}/' net.yaml >c6.yaml
expect 1 "metric 'top_k_accuracy' needs a categorical head, but output 'click' is binary" summary c6.yaml
sed 's/, top_k: 2//; s/metrics: \[accuracy, top_k_accuracy\]/metrics: [accuracy], top_k: 2/' net.yaml >c7.yaml
expect 1 "key 'top_k' goes with the metric top_k_accuracy in output 'category'" summary c7.yaml
sed 's/class_weight: {0: 1.0, 3: 4.0}/class_weight: {0: 1.0, 3: -4.0}/' net.yaml >c8.yaml
expect 1 "expected a number >= 0 for 'class_weight' in output 'category', got '-4.0'" summary c8.yaml
sed 's/class_weight: {0: 1.0, 3: 4.0}/class_weight: {0: 1.0, 0: 4.0}/' net.yaml >c9.yaml
expect 1 "class 0 appears twice in 'class_weight' in output 'category'" summary c9.yaml
sed 's/  h:        {type: dense/  loss_weighting: {type: dense/; s/from: h}/from: loss_weighting}/' net.yaml >c10.yaml
expect 1 "layer name 'loss_weighting' is taken by the learned task weights" summary c10.yaml --set train.loss_weighting=uncertainty
expect 1 "unknown loss_weighting 'learned' in train (expected one of: fixed, uncertainty)" summary net.yaml --set train.loss_weighting=learned
sed 's/purchase: {type: dense, units: 1,/purchase: {type: dense, units: 2,/; s/purchase: {loss: binary_crossentropy, missing: nan, sample_weight: purchase_w,/purchase: {loss: binary_crossentropy, class_weight: {1: 2}, missing: nan,/' net.yaml >c11.yaml
expect 1 "head 'purchase': class_weight on a binary head needs one unit (its classes are 0 and 1), layer 'purchase' has 2" summary c11.yaml
finish
