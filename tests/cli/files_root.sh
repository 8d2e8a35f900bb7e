#!/usr/bin/env bash
# files_root.sh — files, as root (issue 23): mimo never writes or deletes
# outside what it created, never through a symbolic link it did not create,
# never over its own inputs; a non-regular file (FIFO, device) given as a
# config or data file is refused with a message instead of blocking or
# reading forever. Each case plants what an attacker (or an accident)
# would, and checks the victim file outside is untouched:
#   1. DIR/lock a symbolic link or a hard link to a file elsewhere
#   2. the atomic writer's temporary name planted as a link (predict, gen)
#   3. --overwrite (and --resume) with DIR/checkpoints a link to another
#      directory; --overwrite deleting only mimo's checkpoints
#   4. predict --out naming its own data or checkpoint (also through links)
#   5. a FIFO as config or data, /dev/zero as config, a huge config
# Run as root in CI, where permissions would not stop any of it.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
two_branch_data
two_branch_net 50 2 data.h5
# the victim: a file outside every run directory, and its checksum
victim() { printf 'precious %s\n' "$1" >"$TMP/$1"; }
intact() { test -f "$TMP/$1" -a ! -L "$TMP/$1" && test "$(cat "$TMP/$1")" = "precious $1"; }
expect 0 "" train net.yaml --out run --quiet
ckpt=run/checkpoints/last.h5
check "the reference run wrote last.h5" test -f "$ckpt"

# ---- 1. the run directory's lock ------------------------------------------------
victim v1
mkdir -p r1
ln -s "$TMP/v1" r1/lock
expect 1 "r1/lock: the run directory's lock is a symbolic link" train net.yaml --out r1
check "1a. a lock that is a symbolic link: the file it points to is untouched" intact v1
victim v1b
mkdir -p r1b
ln "$TMP/v1b" r1b/lock # a hard link: the same file under the lock's name
expect 1 "r1b/lock: refusing the run directory's lock: it has other names (hard links)" \
    train net.yaml --out r1b
check "1b. a lock that is a hard link: the file is untouched" intact v1b
mpi_expect 2 1 "r1/lock: the run directory's lock is a symbolic link" train net.yaml --out r1
check "1c. on 2 ranks too" intact v1

# ---- 2. the atomic writer's temporaries ------------------------------------------
# The old name was PATH.tmp.<pid>: bash's $$ survives exec, so the link is
# planted under the very name the process would have used.
victim v2
out=$(bash -c 'ln -s "$1" p.h5.tmp.$$; exec "$2" predict "$3" --data data.h5 --out p.h5' \
    _ "$TMP/v2" "$MIMO" "$ckpt" 2>&1)
check "2a. predict with its temporary's name planted as a link succeeds ($out)" test -f p.h5
check "2a. the file the link points to is untouched" intact v2
py "2a. p.h5 holds the predictions" "
import h5py
f = h5py.File('p.h5'); assert f['reg'].shape == (500, 2) and f['cls'].shape == (500, 1)"
victim v2b
out=$(bash -c 'ln -s "$1" g.h5.tmp.$$; exec "$2" gen xor --out g.h5' _ "$TMP/v2b" "$MIMO" 2>&1)
check "2b. gen with its temporary's name planted as a link succeeds ($out)" test -f g.h5
check "2b. the file the link points to is untouched" intact v2b
# a link at the output's own name is replaced by the new file, never written through
victim v2c
ln -s "$TMP/v2c" p2.h5
expect 0 "" predict "$ckpt" --data data.h5 --out p2.h5
check "2c. predict --out onto a link: the link is replaced, its target untouched" \
    test -f p2.h5 -a ! -L p2.h5
check "2c. the target is untouched" intact v2c
check "2. no temporary of ours left" test -z "$(find . -name '*.tmp.*' ! -type l)"

# ---- 3. --overwrite and DIR/checkpoints ------------------------------------------
mkdir -p elsewhere r3
cp data.h5 elsewhere/mydata.h5
cp data.h5 elsewhere/ckpt-000000000001.h5
cp -r run/history.csv r3/
ln -s "$TMP/elsewhere" r3/checkpoints
expect 1 "r3/checkpoints is a symbolic link" train net.yaml --out r3 --overwrite
expect 1 "r3/checkpoints is a symbolic link" train net.yaml --out r3 --resume auto
check "3a. a linked checkpoints/: nothing deleted through it" \
    test -f elsewhere/mydata.h5 -a -f elsewhere/ckpt-000000000001.h5
check "3a. nor written into it" test "$(ls elsewhere | wc -l)" -eq 2
# a real checkpoints/ with an earlier run's checkpoints and files of others
expect 0 "" train net.yaml --out r3b --quiet --set train.checkpoint.every_epochs=1
cp data.h5 r3b/checkpoints/ckpt-000000000007.h5 # a dataset named like a checkpoint
cp data.h5 r3b/checkpoints/other.h5
victim v3
ln -s "$TMP/v3" r3b/checkpoints/best.h5.link
expect 1 "r3b holds an earlier run (history.csv and 4 checkpoints)" train net.yaml --out r3b
expect 0 "" train net.yaml --out r3b --overwrite --quiet --epochs 1 \
    --set train.checkpoint.every_epochs=0
check "3b. --overwrite deleted mimo's checkpoints of the earlier run" \
    test ! -e r3b/checkpoints/ckpt-000000000010.h5 -a ! -e r3b/checkpoints/ckpt-000000000020.h5
check "3b. --overwrite kept the files that are not mimo checkpoints" \
    test -f r3b/checkpoints/ckpt-000000000007.h5 -a -f r3b/checkpoints/other.h5
py "3b. the dataset named ckpt-000000000007.h5 is whole" "
import h5py, numpy as np
a, b = h5py.File('data.h5'), h5py.File('r3b/checkpoints/ckpt-000000000007.h5')
assert all(np.array_equal(a[k][()], b[k][()]) for k in a)"
check "3b. and the link's target" intact v3
# pruning: keep=1 leaves the dataset named like an older checkpoint alone
expect 0 "" train net.yaml --out r3b --resume auto --epochs 4 --quiet \
    --set train.checkpoint.every_epochs=1 --set train.checkpoint.keep=1
check "3c. pruning kept the file that is not a checkpoint" \
    test -f r3b/checkpoints/ckpt-000000000007.h5

# ---- 4. predict --out over its own inputs ----------------------------------------
cp data.h5 d4.h5
cp "$ckpt" c4.h5
sum4=$(md5sum d4.h5 c4.h5)
expect 1 "d4.h5: the output is the input file d4.h5" predict c4.h5 --data d4.h5 --out d4.h5
expect 1 "c4.h5: the output is the input file c4.h5" predict c4.h5 --data d4.h5 --out c4.h5
ln -s d4.h5 d4link.h5
expect 1 "d4link.h5: the output is the input file d4.h5 (the same file, through a link)" \
    predict c4.h5 --data d4.h5 --out d4link.h5
ln c4.h5 c4hard.h5
expect 1 "c4hard.h5: the output is the input file c4.h5 (the same file, through a link)" \
    predict c4.h5 --data d4.h5 --out c4hard.h5
mpi_expect 2 1 "d4.h5: the output is the input file d4.h5" predict c4.h5 --data d4.h5 --out d4.h5
check "4. the data and the checkpoint are unchanged" test "$(md5sum d4.h5 c4.h5)" = "$sum4"
expect 1 "d4.h5: the output is the input file" import csv d4.h5 --out d4.h5 --columns x=0

# ---- 5. non-regular files ---------------------------------------------------------
# a regression hangs: timeout turns it into a failure (exit 124)
SAVED=$MIMO
MIMO="timeout -k 5 30 $SAVED"
mkfifo fifo.yaml fifo.h5
expect 1 "fifo.yaml: config file is a FIFO (named pipe): mimo reads only regular files" \
    train fifo.yaml --out r5
expect 1 "fifo.yaml: config file is a FIFO" summary fifo.yaml
expect 1 "fifo.h5: the file is a FIFO (named pipe)" train net.yaml --data fifo.h5 --out r5b
expect 1 "fifo.h5: the file is a FIFO" predict "$ckpt" --data fifo.h5 --out p5.h5
expect 1 "fifo.h5: the file is a FIFO" eval "$ckpt" --data fifo.h5
expect 1 "fifo.h5: the file is a FIFO" import csv fifo.h5 --out i5.h5 --columns x=0
expect 1 "/dev/zero: config file is a character device" summary /dev/zero
expect 1 "/dev/zero: the file is a character device" predict "$ckpt" --data /dev/zero --out p5.h5
MIMO=$SAVED
mpi_expect 2 1 "fifo.h5: the file is a FIFO" train net.yaml --data fifo.h5 --out r5c
truncate -s 100M big.yaml # a sparse file: no disk space taken
expect 1 "big.yaml: config file larger than 64 MB" summary big.yaml
check "5. no output written" test ! -e p5.h5 -a ! -e i5.h5

finish
