#!/usr/bin/env bash
# exports.sh — the shared library exports its public API and nothing else:
# every dynamic symbol it defines starts with mimo_ and is declared with
# MIMO_API in a header of include/mimo/, and every such declaration is
# exported (no public function lost to the hidden visibility).
# And that public API is the list in tests/arch/api.txt, header by header:
# a name added, removed or moved is a deliberate edit of that list.
# Usage: exports.sh LIBMIMO_SO SOURCE_DIR
set -u
LIB=${1:?usage: exports.sh LIBMIMO_SO SOURCE_DIR}
SRC=${2:?}
# (symbols the sanitizers add, __asan_*, __odr_asan.*, are not the API's)
exported=$(nm -D --defined-only "$LIB" | awk '{print $3}' | grep -v '^__' | sort -u)
# functions "MIMO_API T mimo_f(" and variables "MIMO_API T (*mimo_v)("
declared=$( { grep -hoE 'MIMO_API[^(;]*\b(mimo_[a-z0-9_]+)[[:space:]]*[(;]' "$SRC"/include/mimo/*.h |
                grep -oE 'mimo_[a-z0-9_]+[[:space:]]*[(;]$'
              grep -hoE 'MIMO_API[^(;]*\(\*mimo_[a-z0-9_]+\)' "$SRC"/include/mimo/*.h |
                grep -oE 'mimo_[a-z0-9_]+'; } | tr -d '(; ' | sort -u)
bad=0
while read -r s; do
    [ -z "$s" ] && continue
    if ! grep -qx "$s" <<<"$declared"; then
        echo "FAIL: $LIB exports '$s', which no public header declares with MIMO_API"
        bad=$((bad + 1))
    fi
done <<<"$exported"
while read -r s; do
    [ -z "$s" ] && continue
    if ! grep -qx "$s" <<<"$exported"; then
        echo "FAIL: '$s' is declared public but not exported"
        bad=$((bad + 1))
    fi
done <<<"$declared"
# the declarations, header by header, against the list
names_of() { { grep -hoE 'MIMO_API[^(;]*\b(mimo_[a-z0-9_]+)[[:space:]]*[(;]' "$1" |
                 grep -oE 'mimo_[a-z0-9_]+[[:space:]]*[(;]$'
               grep -hoE 'MIMO_API[^(;]*\(\*mimo_[a-z0-9_]+\)' "$1" |
                 grep -oE 'mimo_[a-z0-9_]+'; } | tr -d '(; ' | sort -u; }
by_header=$(for h in "$SRC"/include/mimo/*.h; do
                names=$(names_of "$h")
                [ -n "$names" ] && printf '[%s]\n%s\n' "$(basename "$h")" "$names"
            done)
listed=$(grep -vE '^[[:space:]]*(#|$)' "$SRC/tests/arch/api.txt")
if ! diff_out=$(diff <(echo "$listed") <(echo "$by_header")); then
    echo "FAIL: the public headers' MIMO_API declarations differ from tests/arch/api.txt"
    echo "      (< only in the list, > only in the headers):"
    sed 's/^/      /' <<<"$diff_out"
    bad=$((bad + 1))
fi
n=$(wc -l <<<"$exported")
echo "$n symbols exported, $(wc -l <<<"$declared") declared public, $bad mismatches"
[ "$n" -gt 50 ] && [ "$bad" -eq 0 ]
