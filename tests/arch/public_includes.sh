#!/usr/bin/env bash
# public_includes.sh — the command line and the tools are built on the
# public API: a source in apps/ or src/tools/ includes only public headers
# (mimo/*.h), its own part's headers (apps: cli.h and tools/*.h; tools:
# tools/*.h) and base's portable utilities (base/*.h: files, strings, the
# clock; they know nothing of models), never a header of core/, io/,
# comm/ or train/, nor a base/*_impl.h. And an installed header includes
# only installed headers (mimo/*.h) and system ones.
# Usage: public_includes.sh SOURCE_DIR
set -u
SRC=${1:?usage: public_includes.sh SOURCE_DIR}
checked=0 bad=0
# the quoted includes of a file: "path"
quoted() { grep -hoE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[^"]+"' "$1" | sed -E 's/.*"([^"]+)"/\1/'; }
while IFS= read -r f; do
    rel=${f#$SRC/}
    while IFS= read -r h; do
        [ -z "$h" ] && continue
        case "$h" in
            mimo/*.h|tools/*.h) ok=1 ;;
            base/*_impl.h) ok=0 ;;
            base/*.h) ok=1 ;;
            cli.h) [[ $rel == apps/* ]] && ok=1 || ok=0 ;;
            *) ok=0 ;;
        esac
        if [ "$ok" = 0 ]; then
            echo "FAIL: $rel includes the internal header \"$h\" (apps and tools use the public API, include/mimo/)"
            bad=$((bad + 1))
        fi
    done < <(quoted "$f")
    checked=$((checked + 1))
done < <(find "$SRC/apps" "$SRC/src/tools" -name '*.[ch]' | sort)
for f in "$SRC"/include/mimo/*.h; do
    while IFS= read -r h; do
        [ -z "$h" ] && continue
        if [[ $h != mimo/*.h ]]; then
            echo "FAIL: include/mimo/$(basename "$f") includes \"$h\", which is not installed"
            bad=$((bad + 1))
        fi
    done < <(quoted "$f")
    checked=$((checked + 1))
done
echo "$checked files checked, $bad include an internal header"
[ "$checked" -gt 20 ] && [ "$bad" -eq 0 ]
