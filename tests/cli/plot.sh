#!/usr/bin/env bash
# plot.sh — `mimo plot HISTORY.csv|RUN_DIR -o FILE.png`: valid PNGs of
# sane size (signature and IHDR dimensions read with Python), the panel
# layout following the history's columns, no shell or gnuplot injection
# through file names or titles, and the errors: usage, missing file, not a
# mimo history, gnuplot missing, unwritable output. Under mpirun only
# rank 0 plots. Needs gnuplot (gnuplot-nox). ~3 s.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
FIX=$SRC/tests/data
cd "$TMP" || exit 1

# png FILE W H: FILE is a PNG of exactly W x H pixels (IHDR)
png() {
    local dims
    dims=$($PY -c "
import struct, sys
b = open(sys.argv[1], 'rb').read(32)
assert b[:8] == b'\x89PNG\r\n\x1a\n' and b[12:16] == b'IHDR', 'not a PNG'
print('%dx%d' % struct.unpack('>II', b[16:24]))" "$1" 2>&1)
    if [ "$dims" = "$2x$3" ]; then passed=$((passed + 1));
    else echo "FAIL: $1: expected a $2x$3 PNG, got: $dims"; failed=$((failed + 1)); fi
}

# ---- a real history: 6 panels (loss, 2 heads x loss/accuracy, lr) in 3
# columns of 480 x 2 rows of 320 (+40 for the title)
expect 0 "wrote fashion.png" plot "$FIX/history-fashion.csv" -o fashion.png
png fashion.png 1440 680
check "no .tmp left" no_tmp fashion.png
expect 0 "wrote sub/dir/f.png" plot "$FIX/history-fashion.csv" --out sub/dir/f.png --title "Fashion-MNIST"
png sub/dir/f.png 1440 680

# ---- what the panels say (the script gnuplot gets, through a spy on PATH):
# an axis label each, a dashed line at the best val_loss's epoch (14 in
# this history), and accuracy axes that zoom to the later epochs (0.89 to
# 0.95 here) instead of spanning from the first epoch's 0.83
mkdir spy
printf '#!/bin/sh\ntee "%s/plot.gp" | exec /usr/bin/gnuplot "$@"\n' "$TMP" >spy/gnuplot
chmod +x spy/gnuplot
MIMO_SAVED=$MIMO
MIMO="env PATH=$TMP/spy:$PATH $MIMO_SAVED"
expect 0 "wrote spied.png" plot "$FIX/history-fashion.csv" -o spied.png --title T
MIMO=$MIMO_SAVED
check "each panel has a y-axis label" bash -c "grep -c \"^set ylabel 'loss'\" plot.gp | grep -qx 3 && grep -q \"^set ylabel 'accuracy'\" plot.gp && grep -q \"^set ylabel 'learning rate'\" plot.gp"
check "a dashed line at the best epoch, named in the title" bash -c "grep -q '^set arrow 1 from 14, graph 0 to 14, graph 1 nohead dt 2' plot.gp && grep -q 'dashed: the best val_loss, epoch 14' plot.gp"
check "the accuracy axis zooms to the later epochs" $PY -c "
import re, sys
t = open('plot.gp').read()
block = t[t.index(\"set title 'label_accuracy'\"):]
lo, hi = map(float, re.search(r'set yrange \[([-0-9.e]+):([-0-9.e]+)\]', block).groups())
sys.exit(0 if 0.85 < lo < 0.89 and 0.95 < hi < 0.97 else 1)"

# ---- a run directory, a history without validation: 4 panels in 2x2
expect 0 "" gen xor --out xor.h5
config xor 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 8, activation: tanh, from: x}
  y: {type: dense, units: 1, activation: sigmoid, from: h}
outputs:
  y: {loss: binary_crossentropy, metrics: [accuracy]}
train: {optimizer: {type: adam, lr: 0.05}, batch_size: 4, epochs: 60, seed: 1}
data: {train: xor.h5}'
expect 0 "" train xor.yaml --out run --quiet
expect 0 "wrote run.png" plot run -o run.png
png run.png 960 680
head -n 2 run/history.csv >one.csv
expect 0 "wrote one.png" plot one.csv -o one.png
png one.png 960 680

# ---- names and titles are data, never code (shell or gnuplot)
weird="$TMP/it's \"q\" \$(touch pwned1) \`touch pwned2\`; x.csv"
cp "$FIX/history-fashion.csv" "$weird"
expect 0 "wrote" plot "$weird" -o "$TMP/o'ut \$(touch pwned3).png" \
    --title "a'b\" \`touch pwned4\` \$(touch pwned5) system('touch pwned6') @x {"
png "$TMP/o'ut \$(touch pwned3).png" 1440 680
check "no command ran from a name or title" test -z "$(ls -d pwned[0-9] 2>/dev/null)"

# ---- usage errors (2)
expect 0 "usage: mimo plot HISTORY.csv|RUN_DIR -o FILE.png" plot --help
expect 0 "plot HISTORY.csv|RUN_DIR -o F.png" --help
expect 2 "plot: missing HISTORY.csv" plot
expect 2 "plot: missing -o FILE.png" plot run
expect 2 "plot: -o needs a value" plot run -o
expect 2 "plot: unknown option '--size'" plot run -o x.png --size 3
expect 2 "plot: unexpected argument 'b.csv'" plot a.csv b.csv -o x.png

# ---- bad histories (1), and no output left
expect 1 "none.csv: cannot open: No such file or directory" plot none.csv -o bad.png
mkdir emptyrun
expect 1 "emptyrun/history.csv: cannot open: No such file or directory" plot emptyrun -o bad.png
printf 'a,b\n1,2\n' >notmimo.csv
expect 1 "notmimo.csv: not a mimo history (its header must start with an 'epoch' column)" plot notmimo.csv -o bad.png
: >empty.csv
expect 1 "empty.csv: not a mimo history" plot empty.csv -o bad.png
expect 1 "xor.h5: not a mimo history" plot xor.h5 -o bad.png
head -n 1 run/history.csv >header.csv
expect 1 "header.csv: no epochs yet (only the header)" plot header.csv -o bad.png
{ head -n 2 run/history.csv; echo "2,0.5,0.5,oops,0.05,0.01,100"; } >text.csv
expect 1 "text.csv:3: column 'y_accuracy': 'oops' is not a number" plot text.csv -o bad.png
{ head -n 2 run/history.csv; echo "2,0.5"; } >short.csv
expect 1 "short.csv:3: 2 fields, the header has 7" plot short.csv -o bad.png
check "no output after failures" test ! -e bad.png
check "no .tmp after failures" no_tmp bad.png

# ---- gnuplot missing, unwritable output
MIMO_SAVED=$MIMO
MIMO="env PATH=$TMP/nowhere $MIMO_SAVED"
expect 1 "gnuplot not found: mimo plot needs gnuplot (Debian: apt-get install gnuplot-nox)" plot run -o nognuplot.png
MIMO=$MIMO_SAVED
check "no output without gnuplot" test ! -e nognuplot.png
check "no .tmp without gnuplot" no_tmp nognuplot.png
touch plainfile
expect 1 "plainfile/x.png" plot run -o plainfile/x.png
mkdir ro.png
expect 1 "ro.png: cannot write" plot run -o ro.png
check "no .tmp after an unwritable output" no_tmp ro.png

# ---- under mpirun: rank 0 alone writes (one "wrote" line)
out=$(env ASAN_OPTIONS="$MPI_ASAN" timeout -k 5 60 mpirun -np 2 -x OMP_NUM_THREADS=1 "$MIMO" plot run -o mpi.png 2>&1)
check "mpirun -np 2 plot: one 'wrote' line (got: $out)" test "$(grep -c '^wrote mpi.png' <<<"$out")" -eq 1
png mpi.png 960 680
finish
