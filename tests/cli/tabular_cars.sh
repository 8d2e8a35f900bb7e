#!/usr/bin/env bash
# tabular_cars.sh — a real table with string columns end to end, as
# README's "Tabular data" runs it: the Vega cars data (Debian's
# python3-vega-datasets; SKIP without it) to CSV, imported by its schema,
# the wide-and-deep two-task config and its linear baseline trained, both
# evaluated on the test split; mimo's numbers must beat the majority class
# and the training-mean predictor by a margin; the raw CSV predicted
# through the checkpoint's vocabularies. One core, ~2 s.
source "$(dirname "$0")/lib.bash"
CARS=/usr/lib/python3/dist-packages/vega_datasets/_data/cars.json
if [ ! -f "$CARS" ]; then
    echo "SKIP: $CARS missing: apt-get install python3-vega-datasets (scripts/install-deps.sh)"
    exit 0
fi
cd "$TMP" || exit 1
tutorial_block cars
export OMP_NUM_THREADS=1
# TUTORIAL-BEGIN
# python3 -c 'import csv, json, sys; d = json.load(open(sys.argv[1])); w = csv.writer(open("cars.csv", "w", newline="")); w.writerow(d[0]); w.writerows([["" if v is None else v for v in r.values()] for r in d])' /usr/lib/python3/dist-packages/vega_datasets/_data/cars.json
# build/mimo import csv cars.csv --out data/cars.h5 --schema configs/schemas/cars.yaml
# build/mimo train configs/cars.yaml
# build/mimo eval runs/cars --data data/cars.test.h5
# build/mimo train configs/cars-linear.yaml
# build/mimo eval runs/cars-linear --data data/cars.test.h5
# build/mimo predict runs/cars --data cars.csv --out cars-predictions.h5
# TUTORIAL-END
run=${tutorial//python3 /\/usr\/bin\/python3 }
if timeout -k 5 120 bash -euo pipefail -c "$run" >tutorial.log 2>&1; then
    passed=$((passed + 1))
else
    echo "FAIL: the tutorial's commands:"; tail -n 30 tutorial.log
    failed=$((failed + 1))
fi
check "the import reports the vocabularies" grep -q "Name         multi_hot int32 (N, 4): 112 ids" tutorial.log
# eval prints "Origin_accuracy A" then "mpg_loss L", wide-and-deep first
awk '$1 == "Origin_accuracy" || $1 == "mpg_loss" { print $1, $2 }' tutorial.log >got
cat got
py "wide and deep beats the baselines on the test split" "
import h5py, numpy as np
tr, te = h5py.File('data/cars.h5'), h5py.File('data/cars.test.h5')
maj = (te['Origin'][:] == np.bincount(tr['Origin'][:]).argmax()).mean()
t = te['mpg'][:]
mean_mse = np.nanmean((t - np.nanmean(tr['mpg'][:])) ** 2)
v = [float(l.split()[1]) for l in open('got')]
acc, mse, lin_acc, lin_mse = v
print('test: majority %.3f, linear %.3f, wide-and-deep %.3f; log-mpg mse: mean %.4f, linear %.4f, wide-and-deep %.4f' % (maj, lin_acc, acc, mean_mse, lin_mse, mse))
assert acc >= maj + 0.2 and lin_acc >= maj + 0.2, (acc, lin_acc, maj)
assert mse < 0.6 * mean_mse and mse < lin_mse, (mse, lin_mse, mean_mse)
"
py "predict on the raw CSV: every car, the origins right" "
import csv, h5py, numpy as np
rows = list(csv.DictReader(open('cars.csv', newline='')))
p = h5py.File('cars-predictions.h5')
classes = [v.decode() for v in h5py.File('data/cars.h5')['preprocessing/Origin/vocabulary'][:]]
assert p['Origin'].shape == (406, 3) and p['mpg'].shape == (406, 1), p['Origin'].shape
acc = np.mean([classes[k] == r['Origin'] for k, r in zip(p['Origin'][:].argmax(1), rows)])
print('origin accuracy over all 406 raw rows: %.3f' % acc)
assert acc > 0.95, acc
"
finish
