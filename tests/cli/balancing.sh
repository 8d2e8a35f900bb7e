#!/usr/bin/env bash
# balancing.sh — train.task_balancing from the command line: pcgrad trains
# on 1 and 2 ranks alike (1e-5; the PyTorch cross-check and 3 ranks are in
# tests/torch/pcgrad.py), with the bucketed allreduce too; none is the
# default and changes nothing; a mid-epoch resume is bitwise; bad values
# are one clear error (one head, learned task weights, an unknown method,
# nothing shared by two heads, mgda_ub with accumulate). mgda_ub: 1 and 2
# ranks alike.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
two_branch_data
two_branch_net 50 3 data.h5 "task_balancing: pcgrad
  checkpoint: {every_epochs: 1, keep: 10, save_best: false}"

expect 0 "" train net.yaml --out pc1 --quiet
mpi_expect 2 0 "" train net.yaml --out pc2 --quiet --check-every 1
check "pcgrad: 2 ranks as 1 (1e-5)" params_close pc1/checkpoints/last.h5 pc2/checkpoints/last.h5 1e-5
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

# ---- mgda_ub (its PyTorch cross-check: tests/torch/mgda.py)
expect 0 "" train net.yaml --out mg1 --quiet --set train.task_balancing=mgda_ub
mpi_expect 2 0 "" train net.yaml --out mg2 --quiet --set train.task_balancing=mgda_ub --check-every 1
check "mgda_ub: 2 ranks as 1 (1e-5)" params_close mg1/checkpoints/last.h5 mg2/checkpoints/last.h5 1e-5
mpi_expect 2 0 "" train net.yaml --out mgb --quiet --set train.task_balancing=mgda_ub --allreduce bucketed --bucket-mb 0.0005
check "mgda_ub, bucketed allreduce: as 1 rank (1e-5)" params_close mg1/checkpoints/last.h5 mgb/checkpoints/last.h5 1e-5

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
expect 1 "net.yaml: --set train.task_balancing: unknown task_balancing 'gradnorm' in train (expected one of: none, pcgrad, mgda_ub)" summary net.yaml --set train.task_balancing=gradnorm
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
finish
