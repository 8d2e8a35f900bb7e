#!/usr/bin/env bash
# mmoe_correlation.sh — MMoE's synthetic experiment (Ma et al., KDD 2018,
# Section 4; not run by CTest): `mimo gen correlated` at task
# correlations p = 1, 0.5 and 0, configs/mmoe-correlated.yaml against
# configs/shared-bottom-correlated.yaml (14.8k parameters each), seeds
# 1..S of the data and the weights; prints the mean final validation MSE
# of the two tasks per network and p (a markdown table, README's).
# Usage: tests/bench/mmoe_correlation.sh build/mimo [SEEDS, default 3]
set -euo pipefail
MIMO=$(realpath "${1:?usage: mmoe_correlation.sh MIMO [SEEDS]}")
SEEDS=${2:-3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $SEEDS seeds"
echo
echo "| correlation p | MMoE val MSE (y1, y2 mean) | shared-bottom val MSE | MMoE / shared-bottom |"
echo "| --- | --- | --- | --- |"
for p in 1 0.5 0; do
    declare -A sum=([mmoe]=0 [shared-bottom]=0)
    for s in $(seq "$SEEDS"); do
        "$MIMO" gen correlated --out "c$p-$s.h5" --correlation "$p" --seed "$s" >/dev/null
        for net in mmoe shared-bottom; do
            "$MIMO" train "$SRC/configs/$net-correlated.yaml" --data "c$p-$s.h5" \
                --out "r-$net-$p-$s" --seed "$s" --quiet
            v=$(/usr/bin/python3 -c "
import csv
r = list(csv.DictReader(open('r-$net-$p-$s/history.csv')))[-1]
print((float(r['val_y1_loss']) + float(r['val_y2_loss'])) / 2)")
            sum[$net]=$(/usr/bin/python3 -c "print(${sum[$net]} + $v)")
        done
    done
    /usr/bin/python3 -c "
m, b = ${sum[mmoe]} / $SEEDS, ${sum[shared-bottom]} / $SEEDS
print(f'| $p | {m:.4f} | {b:.4f} | {m / b:.2f} |')"
done
