#!/usr/bin/env bash
# exports.sh — the shared library exports its public API and nothing else:
# every dynamic symbol it defines starts with mimo_ and is declared with
# MIMO_API in a header of include/mimo/, and every such declaration is
# exported (no public function lost to the hidden visibility).
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
n=$(wc -l <<<"$exported")
echo "$n symbols exported, $(wc -l <<<"$declared") declared public, $bad mismatches"
[ "$n" -gt 50 ] && [ "$bad" -eq 0 ]
