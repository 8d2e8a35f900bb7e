#!/usr/bin/env bash
# mixture.sh — the blocks of a mixture of experts from the command line:
# configs/mmoe.yaml (stack, softmax, weighted_sum) trains the same on 1,
# 2 and 3 ranks (within 1e-5), and each bad input (a stack of unequal
# shapes, a gate of another size than the experts, a softmax over the
# batch or past the last axis, weighted_sum with three inputs) is one clear
# error.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
mkdir data
expect 0 "wrote data/tabular.h5" gen tabular --out data/tabular.h5 --n 3000
sed -e 's|../data/tabular.h5|data/tabular.h5|' -e 's/epochs: 10/epochs: 2/' \
    -e 's/every_epochs: 0, save_best: false/every_epochs: 1, keep: 2, save_best: false/' \
    "$SRC/configs/mmoe.yaml" >mmoe.yaml

expect 0 "" train mmoe.yaml --out np1 --quiet
for np in 2 3; do
    mpi_expect "$np" 0 "" train mmoe.yaml --out np$np --quiet --check-every 1
    check "$np ranks: parameters as 1 rank (1e-5)" params_close np1/checkpoints/last.h5 np$np/checkpoints/last.h5 1e-5
done

sed 's/expert3:     {type: dense, units: 16/expert3:     {type: dense, units: 12/' mmoe.yaml >bad_stack.yaml
expect 1 "stack layer 'experts': input 'expert3' has 12 features but 'expert1' has 16 features; all inputs must have the same width" summary bad_stack.yaml
sed 's/logit_dwell: {type: dense, units: 3/logit_dwell: {type: dense, units: 4/' mmoe.yaml >bad_gate.yaml
expect 1 "weighted_sum layer 'mix_dwell': gate 'gate_dwell' has 4 values but experts 'experts' stack 3: one gate value per expert" summary bad_gate.yaml
sed 's/gate_click:  {type: softmax, from/gate_click:  {type: softmax, axis: 0, from/' mmoe.yaml >bad_axis0.yaml
expect 1 "softmax layer 'gate_click': axis 0 is not an axis of a sample of 1 axes (1..1, or -1..-1; 0 is the batch)" summary bad_axis0.yaml
sed 's/gate_click:  {type: softmax, from/gate_click:  {type: softmax, axis: 2, from/' mmoe.yaml >bad_axis2.yaml
expect 1 "softmax layer 'gate_click': axis 2 is not an axis of a sample" summary bad_axis2.yaml
sed 's/mix_click:   {type: weighted_sum, from: \[experts, gate_click\]}/mix_click:   {type: weighted_sum, from: [experts, gate_click, gate_dwell]}/' mmoe.yaml >bad_ws.yaml
expect 1 "weighted_sum layer 'mix_click' takes [experts, gate], got 3 inputs" summary bad_ws.yaml
sed 's/mix_click:   {type: weighted_sum, from: \[experts, gate_click\]}/mix_click:   {type: weighted_sum, from: [expert1, gate_click]}/' mmoe.yaml >bad_ws2.yaml
expect 1 "weighted_sum layer 'mix_click': experts 'expert1' must have shape (k, ...)" summary bad_ws2.yaml
finish
