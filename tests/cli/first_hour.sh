#!/usr/bin/env bash
# first_hour.sh — what a Keras user meets in the first hour: Ctrl-C
# checkpoints (exit 130) and a second Ctrl-C stops at once with the files
# intact; a run directory that holds a run is not silently replaced; the
# progress bar where a person looks (a terminal, also under mpirun) and
# short epoch lines; summary/dot of a checkpoint or run directory; Keras'
# spellings; data paths relative to the config; predict and eval say what
# they did; a warning when summing gradients costs more than computing.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
"$MIMO" gen multitask --out mt.h5 --n 6000 >/dev/null
sed "s|\.\./data/multitask.h5|mt.h5|" "$SRC/configs/multitask.yaml" >mt.yaml

# ---- Ctrl-C: finish the step, checkpoint, exit 130; resume continues
expect 0 "" train mt.yaml --out ref --epochs 30 --quiet
OMP_NUM_THREADS=1 "$MIMO" train mt.yaml --out int1 --epochs 30 --set train.checkpoint.every_steps=20 >int1.log 2>&1 &
pid=$!
wait_ckpt int1
kill -INT $pid
wait $pid
code=$?
check "Ctrl-C: exit 130 (got $code)" test "$code" = 130
check "Ctrl-C: says it checkpoints" grep -q "Ctrl-C: finishing this step and writing a checkpoint" int1.log
check "Ctrl-C: says how to resume" grep -q "checkpointed in int1; resume with --resume auto (exit 130: interrupted)" int1.log
expect 0 "resuming from int1/checkpoints/ckpt-" train mt.yaml --out int1 --epochs 30 --resume auto
check "Ctrl-C, then --resume auto: bitwise the uninterrupted run" same_params ref/checkpoints/last.h5 int1/checkpoints/last.h5

# a second Ctrl-C stops at once; what is on disk stays loadable
OMP_NUM_THREADS=1 "$MIMO" train mt.yaml --out int2 --epochs 30 --set train.checkpoint.every_steps=5 >int2.log 2>&1 &
pid=$!
wait_ckpt int2
kill -INT $pid; kill -INT $pid
wait $pid
code=$?
check "second Ctrl-C: exit 130 at once (got $code)" test "$code" = 130
expect 0 "resuming from int2/checkpoints/ckpt-" train mt.yaml --out int2 --epochs 1 --resume auto

# ---- a run directory that holds a run is never silently replaced
n=$(ls ref/checkpoints/*.h5 | wc -l)
expect 1 "ref holds an earlier run (history.csv and $n checkpoints): resume it with --resume auto, or start again with --overwrite, which deletes them" train mt.yaml --out ref --epochs 1
check "the refused run left the checkpoints alone" test -f ref/checkpoints/last.h5 -a -f ref/checkpoints/best.h5
expect 0 "" train mt.yaml --out ref --epochs 1 --resume auto --quiet
mkdir empty
expect 0 "" train mt.yaml --out empty --epochs 1 --quiet
expect 0 "" train mt.yaml --out ref --epochs 1 --overwrite --quiet
check "--overwrite: the earlier checkpoints are gone" $PY -c "
import h5py, glob, sys
names = sorted(glob.glob('ref/checkpoints/*.h5'))
sys.exit(int(h5py.File('ref/checkpoints/last.h5').attrs['epoch'] != 1 or 'ref/checkpoints/ckpt-000000004680.h5' in names))"

# ---- progress: a bar on a terminal (script gives one), also under mpirun;
# none in a log; epoch lines that fit 100 columns unless --verbose
script -qec "OMP_NUM_THREADS=1 $MIMO train mt.yaml --out bar1 --epochs 2" /dev/null >bar1.log 2>&1
check "a terminal gets the progress bar" grep -q "epoch 1/2 \[" bar1.log
script -qec "OMP_NUM_THREADS=1 mpirun -np 2 $MIMO train mt.yaml --out bar2 --epochs 2" /dev/null >bar2.log 2>&1
check "under mpirun a terminal gets the progress bar too" grep -q "epoch 1/2 \[" bar2.log
script -qec "OMP_NUM_THREADS=1 $MIMO train mt.yaml --out bar3 --epochs 1 --progress never" /dev/null >bar3.log 2>&1
check "--progress never: no bar" bash -c '! grep -q "epoch 1/1 \[" bar3.log'
OMP_NUM_THREADS=1 "$MIMO" train mt.yaml --out log1 --epochs 2 >log1.out 2>&1
check "a log gets no bar" bash -c '! grep -q "\[=" log1.out'
check "epoch lines fit 100 columns" awk '/^epoch / && length($0) > 100 { exit 1 }' log1.out
check "epoch lines show the validation metrics" grep -q "^epoch 2 - loss .* - val_loss .* - val_cls_accuracy" log1.out
OMP_NUM_THREADS=1 "$MIMO" train mt.yaml --out log2 --epochs 1 --verbose >log2.out 2>&1
check "--verbose: every history column" grep -q "val_reg_mae .* - lr .* - samples_per_s" log2.out

# ---- summary and dot of a checkpoint or a run directory
expect 0 "Total params: 14158" summary ref
expect 0 "Total params: 14158" summary ref/checkpoints/last.h5
expect 0 "digraph mimo" dot ref

# ---- Keras' spellings, data paths relative to the config file
mkdir -p conf data
cp mt.h5 data/
$PY - <<'PYEOF'
import re
t = open('mt.yaml').read()
t = t.replace('mt.h5', '../data/mt.h5').replace('type: adam', 'type: Adam')
t = re.sub(r'\blr:', 'learning_rate:', t)
t = t.replace('type: dense', 'type: Dense').replace('concat', 'Concatenate')
open('conf/keras.yaml', 'w').write(t)
PYEOF
(cd / && "$MIMO" train "$TMP/conf/keras.yaml" --out "$TMP/keras" --epochs 1 --quiet)
check "a config's data path resolves next to it, from any directory" test -f keras/checkpoints/last.h5
check "the saved config holds the resolved path and mimo's key names" bash -c "grep -q '$TMP/conf/../data/mt.h5' keras/config.yaml && grep -q ' lr:' keras/config.yaml"
expect 1 "$TMP/conf/../data/nope.h5: cannot open" train conf/keras.yaml --out keras2 --set data.train=x --data "$TMP/conf/../data/nope.h5"

# ---- predict and eval say what they did (or nothing with --quiet)
expect 0 "mimo: evaluating ref/checkpoints/last.h5 (after epoch 1) on mt.h5" eval ref --data mt.h5
expect 0 "mimo: wrote p.h5: every head's outputs for mt.h5, by ref/checkpoints/last.h5 (after epoch 1)" predict ref --data mt.h5 --out p.h5
out=$("$MIMO" predict ref --data mt.h5 --out p2.h5 --quiet 2>&1)
check "predict --quiet prints nothing" test -z "$out"

# ---- summing gradients costs more than computing them: said once
config wide 'inputs: {x: {shape: 256}}
layers:
  h: {type: dense, units: 2048, from: x}
  y: {type: dense, units: 256, from: h}
outputs: {y: {loss: mse}}
train: {optimizer: adam, batch_size: 2, epochs: 1, checkpoint: {every_epochs: 0, save_best: false}}
data: {train: wide.h5}'
$PY -c "
import h5py, numpy as np
with h5py.File('wide.h5', 'w') as f:
    f['x'] = np.random.rand(200, 256).astype('f4'); f['y'] = np.random.rand(200, 256).astype('f4')"
mpi_expect 2 0 "warning: summing the gradients over the 2 ranks took" train wide.yaml --out wide --allreduce blocking
finish
