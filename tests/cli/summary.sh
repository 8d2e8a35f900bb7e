#!/usr/bin/env bash
# summary.sh — `mimo summary` and `mimo dot` on a multi-branch config:
# the layer table, shapes, parameter counts, connections and heads.
source "$(dirname "$0")/lib.bash"
cfg=$SRC/configs/seed-mimo.yaml

expect 0 "cat (concat)        (None, 10)                0  x2, h1, h2" summary "$cfg"
expect 0 "h3 (dense(relu))    (None, 4)                44  cat" summary "$cfg"
expect 0 "Total params: 131" summary "$cfg"
# "from logits" only for a head whose loss takes logits (from_logits:
# true); y1's sigmoid is fused with its loss but gives probabilities
expect 0 "y1: binary_crossentropy, weight 1, (None, 5)" summary "$cfg"
check "a sigmoid head is not 'from logits'" \
    bash -c '! "$1" summary "$2" | grep -q "from logits"' _ "$MIMO" "$cfg"
expect 0 "y1: binary_crossentropy, weight 1, (None, 5), from logits" summary "$cfg" \
    --set layers.y1.activation=linear --set outputs.y1.from_logits=true
expect 0 "y2: mae, weight 1, (None, 4)" summary "$cfg"
expect 0 "Total params: 211" summary "$cfg" --set layers.h3.units=8
expect 0 '"x2" -> "cat" [label="3"];' dot "$cfg"
expect 0 '"cat" [shape=hexagon, label="cat\nconcat\n(None, 10)"];' dot "$cfg"
expect 0 '"y2" -> "head:1";' dot "$cfg"
expect 0 "digraph mimo {" dot "$cfg"
if command -v dot >/dev/null; then
    if "$MIMO" dot "$cfg" | dot -Tsvg >/dev/null; then passed=$((passed + 1));
    else echo "FAIL: Graphviz rejects mimo dot output"; failed=$((failed + 1)); fi
fi

# the checkpoint size summary gives is the size of the file train writes
# (within 20%), for optimizers with 0 and 2 moments, best parameters
# (early stopping's restore_best) and a frozen layer
"$MIMO" gen seed-mimo --out "$TMP/seed.h5" >/dev/null
"$MIMO" gen multitask --n 1000 --out "$TMP/mt.h5" >/dev/null
ckpt_size_close() { # CONFIG DATA ARGS...: summary's estimate vs the file
    local c=$1 d=$2 est run=$TMP/ck-$RANDOM
    shift 2
    OMP_NUM_THREADS=1 "$MIMO" train "$c" --data "$d" --epochs 1 --quiet --out "$run" "$@" ||
        return 1
    est=$("$MIMO" summary "$c" "$@" | sed -n 's/^Checkpoint: about \([0-9.]*\) \([kM]\)B.*/\1 \2/p')
    /usr/bin/python3 - "$est" "$(stat -c %s "$run/checkpoints/last.h5")" <<'PYEOF'
import sys
v, unit = sys.argv[1].split()
est, real = float(v) * (1e3 if unit == 'k' else 1e6), int(sys.argv[2])
print(f"  checkpoint: summary says {est:.0f} bytes, the file has {real}")
assert abs(est - real) <= 0.2 * real, (est, real)
PYEOF
}
mt=$SRC/configs/multitask.yaml
check "checkpoint size: seed-mimo, plain sgd" ckpt_size_close "$cfg" "$TMP/seed.h5"
check "checkpoint size: multitask, adam" ckpt_size_close "$mt" "$TMP/mt.h5"
check "checkpoint size: restore_best keeps best parameters" ckpt_size_close "$mt" \
    "$TMP/mt.h5" --set train.early_stopping.patience=3
check "checkpoint size: a frozen layer has no moments" ckpt_size_close "$mt" \
    "$TMP/mt.h5" --set layers.trunk1.trainable=false

expect 0 "usage: mimo summary" summary --help
expect 0 "commands:" --help
expect 2 "unknown command 'sumary'" sumary "$cfg"
expect 2 "unknown option '--bogus'" summary "$cfg" --bogus
expect 2 "missing CONFIG" summary
expect 1 "nope.yaml" summary "$TMP/nope.yaml"
finish
