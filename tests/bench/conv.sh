#!/usr/bin/env bash
# conv.sh — how near this machine's sgemm rate mimo's convolutions run
# (issue 29), printed in one run on the machine it runs on: the CPU, the
# fp32 OpenBLAS sgemm rate (1024^3), and for each conv layer of the
# Fashion CNN (configs/fashion-cnn.yaml) and of the issue's new user's
# CNN (conv 3x3x16 same -> pool -> conv 3x3x32 -> pool -> dense, 28x28x1
# input) the forward, backward-data and backward-weights GFLOP/s of both
# engines (im2col + sgemm, oneDNN) and each one's fraction of sgemm, at
# batch 128 on 1 thread (tests/bench/conv_bench.c). With --base OLD_MIMO
# also `mimo train` end to end, one epoch of Fashion-MNIST's 60,000
# images on both CNNs, alternating the old binary and this one (--rounds
# N, default 2; s/epoch from history.csv, best per binary).
# A measurement to read, not a test: never run by ctest, nothing asserted.
#
#   cmake --build build --target mimo_app conv_bench
#   bash tests/bench/conv.sh build [--base /tmp/base-conv/build/mimo] [--rounds N]
set -euo pipefail
BUILD=${1:?usage: conv.sh BUILD_DIR [--base OLD_MIMO] [--rounds N]}
shift
BASE= ROUNDS=2
while [ $# -gt 0 ]; do
    case $1 in
    --base) BASE=$(readlink -f "$2"); shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "conv.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(readlink -f "$BUILD")
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
     "($(getconf _NPROCESSORS_ONLN) CPUs; family $(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')" \
     "model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ');" \
     "$(grep -o -w -E 'avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')" \
     "$(grep -q -w avx2 /proc/cpuinfo && echo avx2))"
echo "threads: 1 (OMP_NUM_THREADS=1)"
"$BUILD/tests/conv_bench" 128

[ -n "$BASE" ] || exit 0

# ---- end to end: old and new binaries, alternating ----------------------
F=/usr/share/datasets/fashion-mnist
[ -f $F/train-images-idx3-ubyte.gz ] || { echo "no $F (apt-get install dataset-fashion-mnist)"; exit 0; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
"$BUILD/mimo" import idx --images $F/train-images-idx3-ubyte.gz --labels $F/train-labels-idx1-ubyte.gz \
    --out train.h5 --image-shape full --pool 4 --label-map group=0,1,0,1,0,2,0,2,3,2 >/dev/null
# the Fashion CNN as configs/ has it, on the training file alone, 1 epoch
sed -e 's|^data:.*|data: {train: train.h5}|' -e 's|^  epochs: .*|  epochs: 1|' -e '/^  checkpoint:/d' \
    "$SRC/configs/fashion-cnn.yaml" >fashion.yaml
cat >newuser.yaml <<'EOF'
# issue 29's new user's CNN: conv 3x3x16 same -> pool -> conv 3x3x32 ->
# pool -> dense, beside side features (the 49 pooled pixels)
inputs:
  image:  {shape: [28, 28, 1]}
  pooled: {shape: 49}
layers:
  c1:   {type: conv2d, filters: 16, kernel_size: 3, padding: same, activation: relu, from: image}
  p1:   {type: max_pool2d, pool_size: 2, from: c1}
  c2:   {type: conv2d, filters: 32, kernel_size: 3, activation: relu, from: p1}
  p2:   {type: max_pool2d, pool_size: 2, from: c2}
  f:    {type: flatten, from: p2}
  cat:  {type: concat, from: [f, pooled]}
  h:    {type: dense, units: 64, activation: relu, from: cat}
  label: {type: dense, units: 10, activation: softmax, from: h}
outputs:
  label: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
train: {optimizer: adam, batch_size: 128, epochs: 1, seed: 1}
data: {train: train.h5}
EOF
seconds() { # the last epoch's seconds in RUN/history.csv
    /usr/bin/python3 -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + '/history.csv')))
print(rows[-1]['seconds'])" "$1"
}
declare -A best
echo
echo "mimo train, 1 epoch of 60000 images, batch 128, 1 thread; rounds alternate old, new"
for r in $(seq "$ROUNDS"); do
    for net in newuser fashion; do
        for which in old new; do
            bin=$BUILD/mimo
            [ $which = old ] && bin=$BASE
            rm -rf "run-$net-$which"
            "$bin" train $net.yaml --out "run-$net-$which" --quiet
            s=$(seconds "run-$net-$which")
            echo "  round $r $net $which: $s s/epoch"
            k=$net-$which
            if [ -z "${best[$k]:-}" ] || /usr/bin/python3 -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$s" "${best[$k]}"; then
                best[$k]=$s
            fi
        done
    done
done
echo "best of $ROUNDS:"
for net in newuser fashion; do
    /usr/bin/python3 -c "
import sys
o, n = float(sys.argv[2]), float(sys.argv[3])
print(f'  {sys.argv[1]:8s} old {o:6.1f} s/epoch  new {n:6.1f} s/epoch  speedup {o / n:4.2f}x')" \
        $net "${best[$net-old]}" "${best[$net-new]}"
done
