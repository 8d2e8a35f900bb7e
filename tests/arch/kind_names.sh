#!/usr/bin/env bash
# kind_names.sh — nothing outside the kind table asks a layer's kind by its
# name: no string comparison (strcmp, strncmp, strcasecmp, memcmp,
# mimo_same_name) against a kind's name in src/ or apps/, except in
# src/core/kind.c (the table's lookup) and the kind's own file. A property
# that code needs to test is a flag of the kind (MIMO_KIND_* in
# core/kind.h), so that a new kind with it needs no edit elsewhere.
# The names come from the built binary (`mimo list layers`), so a new kind
# is covered without editing this script.
# Usage: kind_names.sh MIMO_BINARY SOURCE_DIR
set -u
MIMO=${1:?usage: kind_names.sh MIMO_BINARY SOURCE_DIR}
SRC=${2:?}
names=$("$MIMO" list layers) || { echo "FAIL: '$MIMO list layers' failed"; exit 1; }
n=$(wc -w <<<"$names")
cmp='(str(n?case)?cmp|memcmp|mimo_same_name)[[:space:]]*\('
bad=0
for name in $names; do
    # the kind's own file: the one under src/core/layers/ that names it
    own=$(grep -lE "(\.name = |POOL_KIND\()\"$name\"" "$SRC"/src/core/layers/*.c | head -1)
    # a comparison with the literal on the same line or the line before
    # (a call split over two lines)
    hits=$(find "$SRC/src" "$SRC/apps" -name '*.[ch]' | sort | while IFS= read -r f; do
        [ "$f" = "$SRC/src/core/kind.c" ] || [ "$f" = "$own" ] && continue
        awk -v lit="\"$name\"" -v re="$cmp" -v f="${f#$SRC/}" '
            index($0, lit) && ($0 ~ re || prev ~ re) { print f ":" FNR ": " $0 }
            { prev = $0 }' "$f"
    done)
    if [ -n "$hits" ]; then
        echo "FAIL: the kind '$name' is tested by its name (give the kind a flag in core/kind.h instead):"
        echo "$hits"
        bad=$((bad + 1))
    fi
done
echo "$n kind names checked in src/ and apps/, $bad tested by name"
[ "$n" -gt 10 ] && [ "$bad" -eq 0 ]
