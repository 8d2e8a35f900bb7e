#!/usr/bin/env bash
# gen_import.sh — `mimo gen` and `mimo import csv|idx` as a user runs them:
# exit codes and messages for bad input (2 usage, 1 bad file), and the
# datasets' names, shapes, types and a few values read back with h5dump.
source "$(dirname "$0")/lib.bash"

# dump_has FILE DATASET PHRASE [h5dump options]: h5dump of one dataset
# contains PHRASE.
dump_has() {
    local file=$1 dset=$2 phrase=$3
    shift 3
    if h5dump "$@" -d "/$dset" "$file" 2>&1 | grep -qF -- "$phrase"; then
        passed=$((passed + 1))
    else
        echo "FAIL: h5dump -d /$dset $file lacks '$phrase':"
        h5dump "$@" -d "/$dset" "$file" 2>&1 | head -20
        failed=$((failed + 1))
    fi
}

# check NAME CODE COMMAND...: a shell command exits with CODE.
check() {
    local name=$1 code=$2 rc
    shift 2
    "$@" >/dev/null 2>&1
    rc=$?
    if [ "$rc" -eq "$code" ]; then passed=$((passed + 1));
    else echo "FAIL: $name: exit $rc, expected $code"; failed=$((failed + 1)); fi
}

# ---- gen: usage errors and failures
expect 0 "usage: mimo gen NAME --out FILE.h5" gen --help
expect 0 "multitask" gen --help
expect 2 "missing NAME" gen
expect 2 "unknown dataset 'xorr' (expected one of: seed-mimo, xor, sine-window, sinexp, sin12, multitask, masked, tokens, tabular, ctr, correlated)" gen xorr --out "$TMP/a.h5"
expect 2 "missing --out FILE" gen xor
expect 2 "--out needs a value" gen xor --out
expect 2 "--n expects an integer >= 1, got '0'" gen xor --out "$TMP/a.h5" --n 0
expect 2 "--n expects an integer >= 1, got '-5'" gen xor --out "$TMP/a.h5" --n -5
expect 2 "--seed expects an integer >= 0, got 'x'" gen xor --out "$TMP/a.h5" --seed x
expect 2 "--random applies only to sinexp and sin12" gen xor --out "$TMP/a.h5" --random
expect 2 "unknown option '--bogus'" gen xor --out "$TMP/a.h5" --bogus
expect 2 "unexpected argument 'extra'" gen xor extra --out "$TMP/a.h5"
touch "$TMP/plain"
expect 1 "cannot create: Not a directory" gen xor --out "$TMP/plain/a.h5"
check "no file after a failed gen" 1 test -e "$TMP/plain/a.h5"
expect 0 "" gen xor --out "$TMP/new-dir/sub/a.h5"
check "gen makes missing directories" 0 test -e "$TMP/new-dir/sub/a.h5"

# ---- gen: the files
expect 0 "wrote $TMP/xor.h5 (xor, N=4)" gen xor --out "$TMP/xor.h5"
dump_has "$TMP/xor.h5" x "SIMPLE { ( 4, 2 ) / ( 4, 2 ) }" -H
dump_has "$TMP/xor.h5" y "(1,0): 1,"
dump_has "$TMP/xor.h5" y "(3,0): 0"
check "no .tmp left behind" 0 no_tmp "$TMP/xor.h5"
expect 0 "N=1)" gen seed-mimo --out "$TMP/sm.h5"
dump_has "$TMP/sm.h5" x1 "(0,0): 0.52, 0.93, 0.15, 0.72, 0.61" -m %.2f -w 200
dump_has "$TMP/sm.h5" x2 "SIMPLE { ( 1, 3 ) / ( 1, 3 ) }" -H
dump_has "$TMP/sm.h5" y2 "(0,0): 0, 1, 0, 0"
expect 0 "" gen sinexp --out "$TMP/se.h5" --n 5
dump_has "$TMP/se.h5" sin "(1,0): 1.000," -m %.3f
dump_has "$TMP/se.h5" exp "SIMPLE { ( 5, 1 ) / ( 5, 1 ) }" -H
expect 0 "" gen sin12 --out "$TMP/s12.h5" --random --n=100 --seed=3
dump_has "$TMP/s12.h5" y "SIMPLE { ( 100, 1 ) / ( 100, 1 ) }" -H
expect 0 "" gen sine-window --out "$TMP/sw.h5"
dump_has "$TMP/sw.h5" x "SIMPLE { ( 1000, 5 ) / ( 1000, 5 ) }" -H
expect 0 "" gen multitask --out "$TMP/mt1.h5" --n 200 --seed 9
expect 0 "" gen multitask --out "$TMP/mt2.h5" --n 200 --seed 9
expect 0 "" gen multitask --out "$TMP/mt3.h5" --n 200 --seed 10
dump_has "$TMP/mt1.h5" cls "H5T_STD_I32LE" -H
dump_has "$TMP/mt1.h5" cls "SIMPLE { ( 200 ) / ( 200 ) }" -H
dump_has "$TMP/mt1.h5" a "SIMPLE { ( 200, 32 ) / ( 200, 32 ) }" -H
check "same seed, same data" 0 h5diff "$TMP/mt1.h5" "$TMP/mt2.h5"
check "another seed, other data" 1 h5diff "$TMP/mt1.h5" "$TMP/mt3.h5" /reg /reg

# ---- import csv
printf 'a,b,c\n1,2,"x,y"\n3,4,z\n' >"$TMP/ok.csv"
printf 'a,b\n1,2\n3\n' >"$TMP/short.csv"
printf 'a,b\n1,2\n3,four\n' >"$TMP/text.csv"
: >"$TMP/empty.csv"
expect 0 "usage: mimo import csv FILE.csv" import csv --help
expect 2 "import: expected 'csv' or 'idx'" import
expect 2 "unknown format 'xls'" import xls
expect 2 "no --columns NAME=SPEC given" import csv "$TMP/ok.csv" --out "$TMP/c.h5"
expect 2 "missing --out" import csv "$TMP/ok.csv" --columns x=a
expect 2 "missing FILE.csv" import csv --out "$TMP/c.h5" --columns x=a
expect 2 "--columns expects NAME=SPEC (e.g. x=0-3), got 'a'" import csv "$TMP/ok.csv" --out "$TMP/c.h5" --columns a
expect 2 "--delimiter expects one character" import csv "$TMP/ok.csv" --out "$TMP/c.h5" --columns x=a --delimiter ';;'
expect 2 "unknown option '--colums'" import csv "$TMP/ok.csv" --out "$TMP/c.h5" --colums x=a
expect 1 "nope.csv: cannot open" import csv "$TMP/nope.csv" --out "$TMP/c.h5" --columns x=a
expect 1 "empty.csv: empty file" import csv "$TMP/empty.csv" --out "$TMP/c.h5" --columns x=0
expect 1 "short.csv:3: expected 2 fields, found 1" import csv "$TMP/short.csv" --out "$TMP/c.h5" --columns x=a,b
expect 1 "text.csv:3: column 'b': non-numeric value 'four'" import csv "$TMP/text.csv" --out "$TMP/c.h5" --columns x=0-1
expect 1 "unknown column 'd' in 'x=d' (columns: a, b, c)" import csv "$TMP/ok.csv" --out "$TMP/c.h5" --columns x=d
expect 1 "ok.csv:2: column 'c': non-numeric value 'x,y'" import csv "$TMP/ok.csv" --out "$TMP/c.h5" --columns x=c
check "no file after a failed import" 1 test -e "$TMP/c.h5"
expect 0 "wrote $TMP/c.h5" import csv "$TMP/ok.csv" --out "$TMP/c.h5" --columns x=a,b --columns y=1 --labels y
dump_has "$TMP/c.h5" x "SIMPLE { ( 2, 2 ) / ( 2, 2 ) }" -H
dump_has "$TMP/c.h5" y "H5T_STD_I32LE" -H
dump_has "$TMP/c.h5" y "(0): 2, 4"
expect 0 "" import csv "$SRC/tests/data/iris-tiny.csv" --out "$TMP/iris.h5" --columns x=0-3 --columns=label=label --labels label
dump_has "$TMP/iris.h5" x "SIMPLE { ( 4, 4 ) / ( 4, 4 ) }" -H
dump_has "$TMP/iris.h5" label "(0): 0, 0, 1, 2"
printf '1\t2\n3\t4\n' >"$TMP/tab.tsv"
expect 0 "" import csv "$TMP/tab.tsv" --out "$TMP/t.h5" --columns x=0-1 --delimiter tab --no-header
dump_has "$TMP/t.h5" x "SIMPLE { ( 2, 2 ) / ( 2, 2 ) }" -H

# ---- import idx: 3 images of 2x2 and their labels, gzipped and plain
printf '\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\xff\x33\x66\x01\x02\x03\x04\x0a\x14\x1e\x28' >"$TMP/img.idx"
printf '\x00\x00\x08\x01\x00\x00\x00\x03\x07\x00\x09' >"$TMP/lab.idx"
printf '\x00\x00\x08\x01\x00\x00\x00\x02\x07\x00' >"$TMP/lab2.idx"
head -c 20 "$TMP/img.idx" >"$TMP/short.idx"
gzip -c "$TMP/img.idx" >"$TMP/img.idx.gz"
gzip -c "$TMP/lab.idx" >"$TMP/lab.idx.gz"
expect 0 "usage: mimo import idx --images" import idx --help
expect 2 "--images, --labels and --out are required" import idx --images "$TMP/img.idx.gz" --labels "$TMP/lab.idx.gz"
expect 2 "unknown option '--image'" import idx --image "$TMP/img.idx.gz"
expect 1 "none.gz: cannot open: No such file or directory" import idx --images "$TMP/none.gz" --labels "$TMP/lab.idx.gz" --out "$TMP/m.h5"
expect 1 "lab.idx.gz: bad magic 0x00000801, expected 0x00000803 for IDX images (this is an IDX labels file)" import idx --images "$TMP/lab.idx.gz" --labels "$TMP/img.idx.gz" --out "$TMP/m.h5"
expect 1 "short.idx: truncated: the header promises 12 bytes of data, the file has 4" import idx --images "$TMP/short.idx" --labels "$TMP/lab.idx" --out "$TMP/m.h5"
expect 1 "img.idx.gz has 3 images but $TMP/lab2.idx has 2 labels" import idx --images "$TMP/img.idx.gz" --labels "$TMP/lab2.idx" --out "$TMP/m.h5"
check "no file after a failed idx import" 1 test -e "$TMP/m.h5"
expect 0 "wrote $TMP/m.h5" import idx --images "$TMP/img.idx.gz" --labels "$TMP/lab.idx.gz" --out "$TMP/m.h5"
dump_has "$TMP/m.h5" image "SIMPLE { ( 3, 4 ) / ( 3, 4 ) }" -H
dump_has "$TMP/m.h5" image "(0,0): 0.000, 1.000, 0.200, 0.400," -m %.3f -w 200
dump_has "$TMP/m.h5" label "(0): 7, 0, 9"
expect 0 "" import idx --images "$TMP/img.idx" --labels "$TMP/lab.idx" --out "$TMP/m2.h5" --no-scale --image-name pix --label-name digit
dump_has "$TMP/m2.h5" pix "(0,0): 0, 255, 51, 102," -w 200
dump_has "$TMP/m2.h5" digit "H5T_STD_I32LE" -H
# partly labelled data: 2 of 3 rows keep their label (-1 elsewhere), and
# --only-kept writes just those rows; the same rows for a derived label
expect 0 "" import idx --images "$TMP/img.idx" --labels "$TMP/lab.idx" --out "$TMP/k.h5" --keep-labels label=0.67 --keep-seed 3
expect 0 "" import idx --images "$TMP/img.idx" --labels "$TMP/lab.idx" --out "$TMP/k2.h5" --keep-labels label=0.67 --keep-seed 3 --only-kept
expect 0 "" import idx --images "$TMP/img.idx" --labels "$TMP/lab.idx" --out "$TMP/k3.h5" --label-map odd=0,1,0,1,0,1,0,1,0,1 --keep-labels odd=0.67 --keep-seed 3
check "--keep-labels: 2 of 3 labels kept, the rest -1" 0 /usr/bin/python3 -c "
import h5py, numpy as np
k, k2, k3 = (h5py.File('$TMP/%s.h5' % n) for n in ('k', 'k2', 'k3'))
lab = k['label'][()]
kept = lab >= 0
assert kept.sum() == 2 and set(lab[~kept]) == {-1}, lab
assert np.array_equal(k2['label'][()], lab[kept]) and k2['image'].shape == (2, 4)
assert np.array_equal(k2['image'][()], k['image'][()][kept])
assert np.array_equal(k3['label'][()], [7, 0, 9]) and np.array_equal(k3['odd'][()] >= 0, kept)
"
expect 2 "--keep-labels expects NAME=FRACTION with a fraction in (0, 1] (e.g. group=0.1), got 'label=0'" import idx --images "$TMP/img.idx" --labels "$TMP/lab.idx" --out "$TMP/k4.h5" --keep-labels label=0
expect 1 "--keep-labels names 'group', which is not a label dataset (label)" import idx --images "$TMP/img.idx" --labels "$TMP/lab.idx" --out "$TMP/k4.h5" --keep-labels group=0.5
expect 2 "--only-kept needs --keep-labels NAME=FRACTION" import idx --images "$TMP/img.idx" --labels "$TMP/lab.idx" --out "$TMP/k4.h5" --only-kept
finish
