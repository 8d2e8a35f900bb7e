#!/usr/bin/env bash
# balancing.sh — train.task_balancing from the command line: pcgrad trains
# on 1 and 2 ranks alike (1e-5; the PyTorch cross-check and 3 ranks are in
# tests/torch/pcgrad.py), with the bucketed allreduce too; none is the
# default and changes nothing; a mid-epoch resume is bitwise; bad values
# are one clear error (one head, learned task weights, an unknown method,
# nothing shared by two heads, mgda_ub with accumulate). mgda_ub: 1 and 2
# ranks alike; pcgrad and mgda_ub on 4 ranks too; pcgrad trains a head
# that is a view of the trunk. gradnorm: 1, 2 and 4
# ranks alike, bucketed too, and with
# accumulate: 3; its weights sum to the number of heads, are logged per
# epoch, and its first losses are checkpointed (a mid-epoch resume is
# bitwise).
source "$(dirname "$0")/lib.bash"
cd "$TMP"
two_branch_data
two_branch_net 50 3 data.h5 "task_balancing: pcgrad
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}"

expect 0 "" train net.yaml --out pc1 --quiet
mpi_expect 2 0 "" train net.yaml --out pc2 --quiet --check-every 1
check "pcgrad: 2 ranks as 1 (1e-5)" params_close pc1/checkpoints/last.h5 pc2/checkpoints/last.h5 1e-5
mpi_expect 4 0 "" train net.yaml --out pc4 --quiet --check-every 1
check "pcgrad: 4 ranks as 1 (1e-5)" params_close pc1/checkpoints/last.h5 pc4/checkpoints/last.h5 1e-5
mpi_expect 2 0 "" train net.yaml --out pcb --quiet --allreduce bucketed --bucket-mb 0.0005
check "pcgrad, bucketed allreduce: as 1 rank (1e-5)" params_close pc1/checkpoints/last.h5 pcb/checkpoints/last.h5 1e-5
expect 0 "" train net.yaml --out none --quiet --set train.task_balancing=none
py "pcgrad is not the plain sum (the shared layers move otherwise)" "
import h5py, numpy as np
a, b = h5py.File('none/checkpoints/last.h5'), h5py.File('pc1/checkpoints/last.h5')
d = max(float(np.max(np.abs(a['params/ha/kernel'][()] - b['params/ha/kernel'][()]))), 0)
assert d > 1e-3, d
print(f'  shared layer ha: {d:.2e} from plain summing')
"

# a head that is a view of the trunk (the loss seeds the trunk's own
# gradient): pcgrad takes one backward per head there, and the head trains
cat >view.yaml <<'EOF'
inputs: {a: {shape: 6}}
layers:
  t: {type: dense, units: 2, activation: tanh, from: a}
  reg: {type: reshape, target_shape: [2], from: t}
  cls: {type: dense, units: 1, activation: sigmoid, from: t}
outputs: {reg: {loss: mse}, cls: {loss: binary_crossentropy}}
train: {optimizer: {type: sgd, lr: 0.1}, batch_size: 50, epochs: 5, seed: 11,
        task_balancing: pcgrad}
data: {train: data.h5}
EOF
expect 0 "" train view.yaml --out view --quiet
py "pcgrad, a head that is a view of the trunk: that head trains (its loss falls by a third)" "
import numpy as np
h = np.genfromtxt('view/history.csv', delimiter=',', names=True)
assert h['reg_loss'][-1] < 0.67 * h['reg_loss'][0], h['reg_loss']
print('  reg_loss', h['reg_loss'][0], '->', h['reg_loss'][-1])
"

# ---- mgda_ub (its PyTorch cross-check: tests/torch/mgda.py)
expect 0 "" train net.yaml --out mg1 --quiet --set train.task_balancing=mgda_ub
mpi_expect 2 0 "" train net.yaml --out mg2 --quiet --set train.task_balancing=mgda_ub --check-every 1
check "mgda_ub: 2 ranks as 1 (1e-5)" params_close mg1/checkpoints/last.h5 mg2/checkpoints/last.h5 1e-5
mpi_expect 4 0 "" train net.yaml --out mg4 --quiet --set train.task_balancing=mgda_ub --check-every 1
check "mgda_ub: 4 ranks as 1 (1e-5)" params_close mg1/checkpoints/last.h5 mg4/checkpoints/last.h5 1e-5
mpi_expect 2 0 "" train net.yaml --out mgb --quiet --set train.task_balancing=mgda_ub --allreduce bucketed --bucket-mb 0.0005
check "mgda_ub, bucketed allreduce: as 1 rank (1e-5)" params_close mg1/checkpoints/last.h5 mgb/checkpoints/last.h5 1e-5

# ---- gradnorm (its PyTorch cross-check: tests/torch/gradnorm.py)
config gnet "$(sed 's/task_balancing: pcgrad/task_balancing: {type: gradnorm, alpha: 1.5}/' net.yaml)"
expect 0 "task_balancing (gradnorm)" summary gnet.yaml
expect 0 "" train gnet.yaml --out gn1 --quiet
mpi_expect 2 0 "" train gnet.yaml --out gn2 --quiet --check-every 1
check "gradnorm: 2 ranks as 1 (1e-5)" params_close gn1/checkpoints/last.h5 gn2/checkpoints/last.h5 1e-5
mpi_expect 4 0 "" train gnet.yaml --out gn4 --quiet --check-every 1
check "gradnorm: 4 ranks as 1 (1e-5)" params_close gn1/checkpoints/last.h5 gn4/checkpoints/last.h5 1e-5
mpi_expect 2 0 "" train gnet.yaml --out gnb --quiet --allreduce bucketed --bucket-mb 0.0005
check "gradnorm, bucketed allreduce: as 1 rank (1e-5)" params_close gn1/checkpoints/last.h5 gnb/checkpoints/last.h5 1e-5
expect 0 "" train gnet.yaml --out gna1 --quiet --set train.batch_size=60 --set train.accumulate=3
mpi_expect 3 0 "" train gnet.yaml --out gna3 --quiet --set train.batch_size=60 --set train.accumulate=3
check "gradnorm, accumulate 3: 3 ranks as 1 (1e-5)" params_close gna1/checkpoints/last.h5 gna3/checkpoints/last.h5 1e-5
py "gradnorm: the weights moved, sum to 2, and are logged per epoch" "
import csv, h5py, numpy as np
w = h5py.File('gn1/checkpoints/last.h5')['params/task_balancing/weight'][()]
l0 = h5py.File('gn1/checkpoints/last.h5')['params/task_balancing/initial_loss'][()]
assert abs(float(w.sum()) - 2) < 1e-5 and np.max(np.abs(w - 1)) > 1e-3, w
assert (l0 > 0).all(), l0
rows = list(csv.DictReader(open('gn1/history.csv')))
assert abs(float(rows[-1]['reg_weight']) - w[0]) < 1e-6, (rows[-1]['reg_weight'], w)
print(f'  weights {w}, first losses {l0}')
"
expect 0 "" train gnet.yaml --out gnp --quiet --epochs 2 --set train.checkpoint.every_steps=3
rm gnp/checkpoints/last.h5 gnp/checkpoints/ckpt-000000000020.h5
expect 0 "resuming from gnp/checkpoints/ckpt-000000000018.h5 (epoch 2, step 8)" train gnet.yaml --out gnp --resume gnp
check "gradnorm, resumed mid-epoch: bitwise" same_params gn1/checkpoints/last.h5 gnp/checkpoints/last.h5
expect 0 "reg_loss" eval gn1 --data data.h5

expect 0 "reg_loss" eval mg1 --data data.h5
expect 0 "reg_loss" eval pc1 --data data.h5

# a block two layers share (shares:) on the paths of two heads is shared
config tied "inputs: {a: {shape: 6}, b: {shape: 3}}
layers:
  ta: {type: dense, units: 3, activation: tanh, from: a}
  tb: {type: dense, units: 3, activation: tanh, from: b}
  ua: {type: dense, units: 4, activation: tanh, from: ta}
  ub: {type: dense, shares: ua, from: tb}
  reg: {type: dense, units: 2, from: ua}
  cls: {type: dense, units: 1, activation: sigmoid, from: ub}
outputs: {reg: {loss: mse}, cls: {loss: binary_crossentropy}}
train: {task_balancing: pcgrad, epochs: 1, batch_size: 50}
data: {train: data.h5}"
expect 0 "" train tied.yaml --out tied --quiet
sed 's/  ub: {type: dense, shares: ua, from: tb}/  ub: {type: dense, units: 4, activation: tanh, from: tb}/' tied.yaml >untied.yaml
expect 1 "no trained parameter is shared by two heads" train untied.yaml --out untied

# ---- resume mid-epoch: bitwise
expect 0 "" train net.yaml --out part --quiet --epochs 2 --set train.checkpoint.every_steps=3
rm part/checkpoints/last.h5 part/checkpoints/ckpt-000000000020.h5
expect 0 "resuming from part/checkpoints/ckpt-000000000018.h5 (epoch 2, step 8)" train net.yaml --out part --resume part
check "pcgrad, resumed mid-epoch: bitwise" same_params pc1/checkpoints/last.h5 part/checkpoints/last.h5

# ---- bad input
expect 1 "net.yaml: --set train.task_balancing: unknown task_balancing 'gradnom' in train (expected one of: none, pcgrad, mgda_ub, gradnorm; did you mean 'gradnorm'?)" summary net.yaml --set train.task_balancing=gradnom
config alpha "$(sed 's/task_balancing: pcgrad/task_balancing: {type: pcgrad, alpha: 1}/' net.yaml)"
expect 1 "alpha.yaml:17:41: train.task_balancing: alpha is gradnorm's setting, not pcgrad's" summary alpha.yaml
config notype "$(sed 's/task_balancing: pcgrad/task_balancing: {alpha: 1}/' net.yaml)"
expect 1 "notype.yaml:17:19: train.task_balancing: missing 'type' (none, pcgrad, mgda_ub or gradnorm)" summary notype.yaml
expect 1 "train.task_balancing.alpha" summary gnet.yaml --set train.task_balancing.alpha=-1
expect 1 "train.task_balancing: pcgrad goes with the heads' fixed weights, not loss_weighting: uncertainty" summary net.yaml --set train.loss_weighting=uncertainty
expect 1 "train.task_balancing: mgda_ub needs the whole batch's gradients before its backward; with accumulate 2 it would run each micro-batch's forward twice (not supported: use accumulate: 1 or pcgrad)" summary net.yaml --set train.task_balancing=mgda_ub --set train.accumulate=2
config one "inputs: {a: {shape: 6}}
layers:
  h: {type: dense, units: 4, from: a}
  reg: {type: dense, units: 2, from: h}
outputs: {reg: {loss: mse}}
train: {task_balancing: pcgrad}"
expect 1 "one.yaml:6:25: train.task_balancing: pcgrad balances the gradients of several heads, but the network has 1 (use none)" summary one.yaml
config apart "inputs: {a: {shape: 6}, b: {shape: 3}}
layers:
  reg: {type: dense, units: 2, from: a}
  cls: {type: dense, units: 1, activation: sigmoid, from: b}
outputs: {reg: {loss: mse}, cls: {loss: binary_crossentropy}}
train: {task_balancing: pcgrad}
data: {train: data.h5}"
expect 1 "apart.yaml: task_balancing: no trained parameter is shared by two heads (nothing to balance; use none)" train apart.yaml --out apart
expect 1 "apart.yaml: task_balancing: mgda_ub needs a tensor where two heads' paths part below trained layers" train apart.yaml --out apart --set train.task_balancing=mgda_ub
expect 1 "apart.yaml: task_balancing: gradnorm needs a tensor where two heads' paths part below trained layers" train apart.yaml --out apart --set train.task_balancing=gradnorm
finish
