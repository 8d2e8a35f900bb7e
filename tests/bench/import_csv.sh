#!/usr/bin/env bash
# import_csv.sh — speed and memory of `mimo import csv --schema` on a
# generated CSV (not run by CTest): rows/s, MB/s and peak RSS from
# /usr/bin/time -v, for the plain write (shuffle: false) and the shuffled
# one. Usage: tests/bench/import_csv.sh build/mimo [MB, default 200]
set -euo pipefail
MIMO=$(realpath "${1:?usage: import_csv.sh MIMO [MB]}")
MB=${2:-200}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
# ~105 bytes a row: an id, four numbers, a 12-value and a 2000-value
# category, a zip code (hashed), a list of 0-4 tags (multi_hot)
/usr/bin/python3 - "$MB" <<'PYEOF'
import random, sys
r = random.Random(1)
target = int(sys.argv[1]) * 1000 * 1000
cats = ['cat%02d' % i for i in range(12)]
items = ['item-%04d' % i for i in range(2000)]
tags = 'alpha beta gamma delta eps zeta eta theta'.split()
with open('big.csv', 'w') as f:
    f.write('id,a,b,c,d,kind,item,zip,tags\n')
    i = n = 0
    while n < target:
        line = '%d,%.5f,%.4f,%.3f,%d,%s,%s,%05d,%s\n' % (
            i, r.random(), r.gauss(0, 1) * 100, r.expovariate(1), r.randrange(1000),
            r.choice(cats), r.choice(items), r.randrange(100000),
            '|'.join(r.sample(tags, r.randrange(5))))
        f.write(line)
        n += len(line)
        i += 1
print('rows', i)
PYEOF
cat >s.yaml <<'EOF'
columns:
  id:   {kind: skip}
  a:    {kind: numeric, into: num}
  b:    {kind: numeric, into: num}
  c:    {kind: numeric, into: num}
  d:    {kind: numeric, into: num}
  kind: {kind: category}
  item: {kind: category, min_count: 5}
  zip:  {kind: hashed, num_bins: 4096}
  tags: {kind: multi_hot, max_length: 4}
split: {val: 0.1, test: 0.1, seed: 1}
shuffle: false
EOF
sed 's/^shuffle: false/shuffle: true/' s.yaml >sh.yaml
bytes=$(stat -c %s big.csv)
rows=$(($(wc -l <big.csv) - 1))
grep -m1 "model name" /proc/cpuinfo
for s in s sh; do
    /usr/bin/time -v "$MIMO" import csv big.csv --out "o/$s.h5" --schema "$s.yaml" \
        >"$s.out" 2>"$s.time"
    secs=$(awk -F': ' '/Elapsed/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$s.time")
    rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$s.time")
    cpu=$(awk -F': ' '/User time|System time/ {c += $2} END {print c}' "$s.time")
    awk -v s="$s" -v b="$bytes" -v r="$rows" -v t="$secs" -v m="$rss" -v c="$cpu" 'BEGIN {
        printf "%-8s %d rows, %.0f MB in %.2f s (%.2f s CPU): %.0f rows/s, %.1f MB/s, peak RSS %.1f MB\n",
            (s == "s" ? "plain" : "shuffled"), r, b / 1e6, t, c, r / t, b / 1e6 / t, m / 1024 }'
done
# bounded memory: the same plain import with 32 MB of windows
/usr/bin/time -v "$MIMO" import csv big.csv --out o/m.h5 --schema s.yaml --memory-mb 32 \
    >/dev/null 2>m.time
awk -F': ' '/Elapsed/ {print "--memory-mb 32: " $2 " wall"} /Maximum resident/ {printf "  peak RSS %.1f MB\n", $2 / 1024}' m.time
