#!/usr/bin/env bash
# scale.sh — graphs of many layers compile in bounded time: names are
# found through a sorted index, the topological sort is Kahn's with a
# heap, `shares` chains are walked once. Before, a chain of 3,000
# `shares` layers took > 150 s (a scan per hop per layer: cubic) and a
# chain of 100,000 dense layers 73-98 s (quadratic); now about 0.1 s and
# 2 s. The bounds are generous (30 s, 60 s): only the old complexity
# fails them, not a slow machine. Also: the messages of `shares` cycles
# and chains kept.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
/usr/bin/python3 - <<'PYEOF'
def chain(n, shares, path):
    with open(path, 'w') as f:
        f.write("inputs: {x: {shape: 4}}\nlayers:\n  l0: {type: dense, units: 4, from: x}\n")
        for i in range(1, n):
            how = f"shares: l{i-1}" if shares else "units: 4"
            f.write(f"  l{i}: {{type: dense, {how}, from: l{i-1}}}\n")
        f.write(f"outputs: {{l{n-1}: {{loss: mse}}}}\n")
chain(100000, False, 'chain100k.yaml')
chain(3000, True, 'shares3k.yaml')
chain(100000, True, 'shares100k.yaml')
PYEOF
# timed NAME LIMIT ARGS...: mimo ARGS exits 0 within LIMIT seconds
timed() {
    local name=$1 limit=$2 start secs rc
    shift 2
    start=$(date +%s.%N)
    timeout -k 5 "$limit" "$MIMO" "$@" >"$name.out" 2>&1
    rc=$?
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    echo "$name: exit $rc in $secs s"
    check "$name compiles in < $limit s (exit $rc after $secs s; 124: timed out)" test "$rc" = 0
}
timed "100k-layer chain" 60 summary chain100k.yaml
check "100k-layer chain: 100,000 layers of 20 parameters" grep -q "l99999" "100k-layer chain.out"
timed "3k shares chain" 30 summary shares3k.yaml
timed "100k shares chain" 60 summary shares100k.yaml
check "100k shares chain: one owner's parameters (20)" grep -q "Total params: 20\b" "100k shares chain.out"

# cycles and chains of `shares`, through the fast path
net() { # net SHARES...: layers a, b, c (each "name:owner" shares owner)
    {
        echo "inputs: {x: {shape: 2}}"
        echo "layers:"
        echo "  d: {type: dense, units: 2, from: x}"
        for n in a b c; do
            local o=""
            for p in "$@"; do [ "${p%%:*}" = "$n" ] && o=${p#*:}; done
            if [ -n "$o" ]; then echo "  $n: {type: dense, shares: $o, from: d}"
            else echo "  $n: {type: dense, units: 2, from: d}"; fi
        done
        echo "  s: {type: add, from: [a, b, c]}"
        echo "outputs: {s: {loss: mse}}"
    } >cyc.yaml
}
net a:b b:a
expect 1 "cyc.yaml:4:28: layer 'a' shares its own parameters (through 'shares')" summary cyc.yaml
net b:b
expect 1 "cyc.yaml:5:28: layer 'b' shares its own parameters (through 'shares')" summary cyc.yaml
net c:a a:b b:a
expect 1 "layer 'a' shares its own parameters" summary cyc.yaml
net a:b b:z
expect 1 "cyc.yaml:4:28: layer 'a' shares 'z', which is not a layer" summary cyc.yaml
net a:b b:c
expect 0 "Total params: 12" summary cyc.yaml
finish
