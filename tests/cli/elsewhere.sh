#!/usr/bin/env bash
# elsewhere.sh — README's "Use the model elsewhere" block, run as written
# (from a copy of the source folder's layout: build/mimo, build/libmimo.so,
# configs/, python/): a trained run exported to ONNX and run by
# onnxruntime in Node, exported as a PyTorch module and run, fine-tuned
# with --init by name into a wider head, and loaded by the Python module.
# Each step's line must appear. Skips (SKIP:) without node and npm's
# onnxruntime-node, PyTorch or python3-onnx, as the export tests do.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
ORT=${MIMO_ORT_DIR:-$(dirname "$(realpath "$MIMO")")/onnxruntime-node}
if ! $PY -c 'import torch' 2>/dev/null || ! command -v node >/dev/null ||
   ! command -v npm >/dev/null; then
    echo "SKIP: the README block needs python3-torch, node and npm"; exit 0
fi
block=$(awk '$0 == "<!-- ci: elsewhere -->" {f = 1; next}
    f && /^```sh/ {in_b = 1; next} in_b && /^```/ {exit} in_b {print}' "$SRC/README.md")
check "README has the ci: elsewhere block" test -n "$block"
cd "$TMP"
mkdir -p build data
ln -s "$MIMO" build/mimo
ln -s "$(dirname "$(realpath "$MIMO")")/libmimo.so" build/libmimo.so
cp -r "$SRC/configs" configs
ln -s "$SRC/python" python
[ -d "$ORT/node_modules/onnxruntime-node" ] && ln -s "$ORT" ort
if ! out=$(bash -e -c "$block" 2>&1); then
    if [ ! -d ort/node_modules/onnxruntime-node ]; then
        echo "SKIP: npm could not install onnxruntime-node"; exit 0
    fi
    echo "FAIL: README's block failed:"; echo "$out"; failed=$((failed + 1))
fi
echo "$out" | grep -E '^(onnxruntime|torch|python|mimo: --init):' || true
for line in "onnxruntime: reg 2,4, cls 2,10" "torch: {'reg': (2, 4), 'cls': (2, 10)}" \
            "--init: 12 tensors loaded, 0 new, 2 shape mismatches, 0 unused in the file" \
            "python: {'reg': (5, 4), 'cls': (5, 10)}"; do
    check "the block printed: $line" grep -qF -- "$line" <<<"$out"
done
finish
