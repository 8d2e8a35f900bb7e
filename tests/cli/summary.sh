#!/usr/bin/env bash
# summary.sh — `mimo summary` and `mimo dot` on a multi-branch config:
# the layer table, shapes, parameter counts, connections and heads.
source "$(dirname "$0")/lib.bash"
cfg=$SRC/configs/seed-mimo.yaml

expect 0 "cat (concat)        (None, 10)                0  x2, h1, h2" summary "$cfg"
expect 0 "h3 (dense(relu))    (None, 4)                44  cat" summary "$cfg"
expect 0 "Total params: 131" summary "$cfg"
expect 0 "y1: binary_crossentropy, weight 1, (None, 5), from logits" summary "$cfg"
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
expect 0 "usage: mimo summary" summary --help
expect 0 "commands:" --help
expect 2 "unknown command 'sumary'" sumary "$cfg"
expect 2 "unknown option '--bogus'" summary "$cfg" --bogus
expect 2 "missing CONFIG" summary
expect 1 "nope.yaml" summary "$TMP/nope.yaml"
finish
