#!/usr/bin/env bash
# weather.sh — a real multi-task time series end to end, as README's
# "Time series" runs it: Seattle's daily weather (Debian's
# python3-vega-datasets; SKIP without it) imported as 14-day windows
# split by time, configs/weather.yaml (conv1d, lstm, gru; the next day's
# temp_max and weather type) trained and evaluated on the last 168 days;
# its temp_max MSE must beat persistence (tomorrow = today) and its
# weather accuracy the majority class by 0.1, both baselines computed
# here from the test file; the README's table must hold this run's
# numbers. One core, ~6 s.
source "$(dirname "$0")/lib.bash"
WX=/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv
if [ ! -f "$WX" ]; then
    echo "SKIP: $WX missing: apt-get install python3-vega-datasets (scripts/install-deps.sh)"
    exit 0
fi
cd "$TMP" || exit 1
tutorial_block weather
export OMP_NUM_THREADS=1
# TUTORIAL-BEGIN
# build/mimo import csv /usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv --out data/weather.h5 --schema configs/schemas/weather.yaml
# build/mimo train configs/weather.yaml
# build/mimo eval runs/weather --data data/weather.test.h5
# TUTORIAL-END
if timeout -k 5 120 bash -euo pipefail -c "$tutorial" >tutorial.log 2>&1; then
    passed=$((passed + 1))
else
    echo "FAIL: the tutorial's commands:"; tail -n 30 tutorial.log
    failed=$((failed + 1))
fi
check "the import cuts the test period into 168 windows" \
    grep -q "wrote data/weather.test.h5 (test, rows 1280..1461 of the series: 168 windows of 14, targets 1 ahead)" tutorial.log
awk '$1 == "next_temp_max_loss" || $1 == "next_weather_accuracy" { print $1, $2 }' tutorial.log >got
cat got
py "beats persistence on temp_max and the majority on the weather type; README's numbers" "
import h5py, numpy as np, re
f = h5py.File('data/weather.test.h5')
x, w, t, c = f['x'][:], f['weather'][:], f['next_temp_max'][:], f['next_weather'][:]
iv = [v.decode() for v in f['preprocessing/weather/vocabulary'][:]]
tv = [v.decode() for v in f['preprocessing/next_weather/vocabulary'][:]]
p_mse = float(np.mean((x[:, -1, 1] - t) ** 2))  # temp_max today
p_acc = float(np.mean(np.array([tv.index(iv[i]) for i in w[:, -1]]) == c))
tr = h5py.File('data/weather.h5')['next_weather'][:]
maj = float(np.mean(c == np.bincount(tr).argmax()))
v = dict(l.split() for l in open('got'))
mse, acc = float(v['next_temp_max_loss']), float(v['next_weather_accuracy'])
print('test: temp_max MSE persistence %.2f, model %.2f; weather accuracy majority %.3f, persistence %.3f, model %.3f' % (p_mse, mse, maj, p_acc, acc))
assert mse < p_mse, (mse, p_mse)
assert acc > maj + 0.1, (acc, maj)
readme = open('$SRC/README.md').read()
row = lambda name: re.search(r'^\| %s \| ([0-9.]+) \| ([0-9.]+) \|' % re.escape(name), readme, re.M)
pr, mr = row('persistence (tomorrow = today)'), row('\`configs/weather.yaml\`')
assert pr and mr, 'README lacks the weather table'
assert abs(float(pr.group(1)) - p_mse) < 0.005 and abs(float(pr.group(2)) - p_acc) < 0.0005, pr.groups()
assert abs(float(mr.group(1)) - mse) < 0.3 and abs(float(mr.group(2)) - acc) < 0.05, mr.groups()
"
finish
