#!/usr/bin/env bash
# core_includes.sh — the core (src/base, src/core) knows nothing of MPI,
# HDF5 or libyaml: no source there reaches <mpi.h>, <hdf5.h> or <yaml.h>
# through its includes (the preprocessor's dependency list, so an include
# through another header counts too). Also built that way: CMake compiles
# the core without their include directories.
# Usage: core_includes.sh CC SOURCE_DIR [INCLUDE_DIR...]
set -u
CC=${1:?usage: core_includes.sh CC SOURCE_DIR [INCLUDE_DIR...]}
SRC=${2:?}
shift 2
flags=(-I "$SRC/include" -I "$SRC/src")
for d in "$@"; do [ -n "$d" ] && flags+=(-I "$d"); done
checked=0 bad=0
while IFS= read -r f; do
    deps=$("$CC" -std=c11 -M "${flags[@]}" "$f" 2>&1) || {
        echo "FAIL: $f does not preprocess: $deps"; bad=$((bad + 1)); continue; }
    hit=$(tr ' \\' '\n\n' <<<"$deps" | grep -E '/(mpi|hdf5|H5[A-Za-z]*|yaml)\.h$' || true)
    if [ -n "$hit" ]; then
        echo "FAIL: ${f#$SRC/} includes: $hit"
        bad=$((bad + 1))
    fi
    checked=$((checked + 1))
done < <(find "$SRC/src/base" "$SRC/src/core" -name '*.c' | sort)
# and the public headers the core's users see
for h in api error exchange fit graph model optim real rng source spec summary version config schedule; do
    deps=$(echo "#include \"mimo/$h.h\"" | "$CC" -std=c11 -M "${flags[@]}" -x c - 2>&1)
    if tr ' \\' '\n\n' <<<"$deps" | grep -qE '/(mpi|hdf5|yaml)\.h$'; then
        echo "FAIL: include/mimo/$h.h reaches MPI, HDF5 or libyaml"; bad=$((bad + 1))
    fi
    checked=$((checked + 1))
done
echo "$checked files checked, $bad reach MPI, HDF5 or libyaml"
[ "$checked" -gt 20 ] && [ "$bad" -eq 0 ]
