#!/usr/bin/env bash
# onnx.sh — `mimo export onnx` checked in a runtime nobody here wrote:
# the demo, the tabular wide-and-deep (int32 ids, embeddings, batch_norm,
# dropout), the Fashion CNN, the masked-softmax config, a graph with
# every layer kind `mimo list layers` names (so a new kind without an
# export fails here) and a graph of masks (mask_zero through every kind
# that passes, reverses or reads one: tests/data/masked_kinds.yaml;
# padding at the end, start and middle of rows) are trained briefly, exported, validated by ONNX's
# checker (python3-onnx) and run in onnxruntime (npm's onnxruntime-node,
# installed with --ignore-scripts beside the build); each head's outputs
# must be within 1e-5 relative of `mimo predict` on the same rows. And the
# bad inputs: a missing checkpoint, a wrong format, an opset mimo does not
# write, layer_norm below opset 17: one clear error each, no file left.
# Skips (SKIP:) without node, npm's package or python3-onnx.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
ORT=${MIMO_ORT_DIR:-$(dirname "$(realpath "$MIMO")")/onnxruntime-node}
RUN_JS=$SRC/tests/onnx/ort_run.js
COMPARE=$SRC/tests/onnx/compare.py

if ! $PY -c 'import onnx' 2>/dev/null; then
    echo "SKIP: python3-onnx is missing (scripts/install-deps.sh installs it)"; exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIP: node and npm are missing (Debian: nodejs npm)"; exit 0
fi
if [ ! -d "$ORT/node_modules/onnxruntime-node" ]; then
    mkdir -p "$ORT"
    if ! (cd "$ORT" && npm install --ignore-scripts --no-audit --no-fund --silent \
            onnxruntime-node@1.30.0 >/dev/null 2>&1); then
        echo "SKIP: npm could not install onnxruntime-node@1.30.0 into $ORT"
        rm -rf "$ORT"; exit 0
    fi
fi
export NODE_PATH=$ORT/node_modules
cd "$TMP"

# export_and_run NAME CONFIG DATA ROWS [--set ...]: trains NAME briefly,
# predicts, exports, and compares onnxruntime's outputs with predict's.
export_and_run() {
    local name=$1 cfg=$2 data=$3 rows=$4
    shift 4
    expect 0 "" train "$cfg" --out "run-$name" --set "data.train=$PWD/$data" "$@"
    expect 0 "wrote" predict "run-$name" --data "$data" --out "pred-$name.h5"
    expect 0 "wrote $name.onnx" export onnx "run-$name" --out "$name.onnx"
    echo "$name:"
    if [ -f "$name.onnx" ] && $PY "$COMPARE" "$name.onnx" "$data" "pred-$name.h5" "$rows" "$RUN_JS"; then
        passed=$((passed + 1))
    else
        echo "FAIL: $name: onnxruntime's outputs differ from mimo predict's"
        failed=$((failed + 1))
    fi
}

$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(5)
n = 300
with h5py.File('seed.h5', 'w') as f:          # the demo's shapes
    f['x1'] = rs.randn(n, 5).astype('f4'); f['x2'] = rs.randn(n, 3).astype('f4')
    f['y1'] = (rs.rand(n, 5) > 0.5).astype('f4')
    f['y2'] = np.eye(4, dtype='f4')[rs.randint(0, 4, n)]
with h5py.File('cnn.h5', 'w') as f:           # the Fashion CNN's shapes
    f['image'] = rs.rand(n, 28, 28, 1).astype('f4')
    f['pooled'] = rs.rand(n, 49).astype('f4')
    f['label'] = rs.randint(0, 10, n).astype('i4'); f['group'] = rs.randint(0, 4, n).astype('i4')
PYEOF
expect 0 "" gen tabular --out tabular.h5 --n 2000
expect 0 "" gen masked --out masked.h5 --n 1000

export_and_run demo "$SRC/configs/seed-mimo.yaml" seed.h5 300 --set train.epochs=2 \
    --set train.batch_size=16
# a run trained with the training-only settings (micro-batches that would
# not divide predict's batch, per-head gradients) exports as any other
export_and_run acc "$SRC/configs/seed-mimo.yaml" seed.h5 300 --set train.epochs=1 \
    --set train.batch_size=30 --set train.accumulate=3 --set train.task_balancing=pcgrad
export_and_run tabular "$SRC/configs/tabular.yaml" tabular.h5 500 --set train.epochs=2
export_and_run cnn "$SRC/configs/fashion-cnn.yaml" cnn.h5 64 --set train.epochs=1 \
    --set "data.val=$PWD/cnn.h5" --set train.batch_size=64
export_and_run masked "$SRC/configs/masked-softmax.yaml" masked.h5 500 --set train.epochs=2

cp "$SRC/tests/data/every_kind.yaml" all.yaml
$PY "$SRC/tests/data/every_kind.py" all.h5
# the graph holds every kind mimo has
kinds=$($MIMO list layers) || kinds=""
missing=""
for k in $kinds; do
    grep -qE "type: $k[,}]" all.yaml || missing="$missing $k"
done
check "every layer kind is in the every-kind graph (missing:${missing:- none})" \
    test -n "$kinds" -a -z "$missing"
export_and_run all all.yaml all.h5 300

# masks: recurrent kinds unrolled with Where where a step is masked, the
# pools over the steps left; the unmasked gru/lstm stay ONNX's GRU/LSTM
cp "$SRC/tests/data/masked_kinds.yaml" masked_kinds.yaml
$PY "$SRC/tests/data/masked_kinds.py" masked_kinds.h5
export_and_run masked_kinds masked_kinds.yaml masked_kinds.h5 300
check "a masked gru/lstm is unrolled, an unmasked one is ONNX's operator" $PY -c "
import onnx, sys
ops = [n.op_type for n in onnx.load('all.onnx').graph.node]
mops = [n.op_type for n in onnx.load('masked_kinds.onnx').graph.node]
sys.exit(not ('GRU' in ops and 'LSTM' in ops and 'GRU' not in mops and 'LSTM' not in mops
              and 'Where' in mops))"

# bad input: one clear error each, no file left behind
expect 1 "no-such-run" export onnx no-such-run --out x.onnx
check "no x.onnx after a missing checkpoint" test ! -e x.onnx
mkdir -p no-ckpt/checkpoints
expect 1 "no-ckpt: no valid checkpoint (checkpoints/*.h5 that load) in this run directory" \
    export onnx no-ckpt --out x.onnx
expect 1 "no-ckpt: no valid checkpoint" export torch no-ckpt --out x.py
check "no x.py after a refused export" test ! -e x.py
expect 2 "the format must be 'onnx' or 'torch'" export tflite run-demo --out x.onnx
expect 2 "missing --out" export onnx run-demo
expect 1 "opset 12: mimo writes opsets 13 to 17" export onnx run-demo --out x.onnx --opset 12
expect 1 "layer 'ln': layer_norm needs opset 17" export onnx run-all --out x.onnx --opset 16
config mzero 'inputs: {tok: {shape: 5, dtype: int32}}
layers:
  emb: {type: embedding, input_dim: 30, output_dim: 4, mask_zero: true, from: tok}
  g:   {type: gru, units: 3, from: emb}
  y:   {type: dense, units: 1, from: g}
outputs: {y: {loss: mse}}
train: {batch_size: 16, epochs: 1}'
$PY -c "
import h5py, numpy as np
with h5py.File('tok.h5', 'w') as f:
    f['tok'] = np.random.RandomState(1).randint(0, 30, (64, 5)).astype('i4')
    f['y'] = np.zeros((64, 1), 'f4')"
expect 0 "" train mzero.yaml --data tok.h5 --out run-mzero --quiet
expect 0 "wrote mzero.onnx" export onnx run-mzero --out mzero.onnx
expect 0 "wrote mzero.py" export torch run-mzero --out mzero.py
check "the masked model's ONNX passes the checker" $PY -c "
import onnx; onnx.checker.check_model(onnx.load('mzero.onnx'), full_check=True)"
check "no temporaries left" no_tmp x.onnx
finish
