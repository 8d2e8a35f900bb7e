#!/usr/bin/env bash
# fashion_slurm.sh — the README's Fashion-MNIST tutorial as a SLURM job:
# its `<!-- ci: fashion-slurm -->` block, verbatim (start-slurm.sh, sbatch
# --wait train.sbatch, eval, stop-slurm.sh), in a scratch directory laid
# out like the repository, after the tutorial's two imports (the `F=` and
# `import idx` lines of its `<!-- ci: fashion -->` block, which cli_fashion
# runs whole). Then: test label accuracy >= 0.89, and the block's stop
# released this test's lease. Optimized builds only, as root, with SLURM
# and the dataset-fashion-mnist package (otherwise a note, and it passes);
# tests/cli/slurm.sh tests the scripts themselves. Apart from cli_fashion
# so that only this part holds the SLURM lock. ~1 minute on 2 quiet cores.
# resource-lock: slurm (the README block starts, uses and stops the daemons)
source "$(dirname "$0")/lib.bash"
cd "$TMP" || exit 1

block() { # block NAME: the first ```sh block after <!-- ci: NAME --> in README.md
    awk -v m="<!-- ci: $1 -->" '$0 == m {f = 1; next}
        f && /^```sh/ {in_b = 1; next} in_b && /^```/ {exit} in_b {print}' "$SRC/README.md"
}
slurm_block=$(block fashion-slurm)
imports=$(block fashion | grep -E '^(F=|\./build/mimo import idx )')
check "README has a ci: fashion-slurm block" test -n "$slurm_block"
check "README's ci: fashion block has F= and two imports" test "$(wc -l <<<"$imports")" -eq 3
F=/usr/share/datasets/fashion-mnist
if [ "$(id -u)" != 0 ] || ! command -v slurmctld >/dev/null ||
   ldd "$MIMO" 2>/dev/null | grep -q 'libasan\|libubsan' || [ ! -f "$F/train-images-idx3-ubyte.gz" ]; then
    echo "note: the tutorial's SLURM block is not run here (needs root, SLURM, $F, an optimized build)"
    finish
    exit
fi

mkdir -p build data
ln -s "$MIMO" build/mimo
cp -r "$SRC/configs" configs # a copy: data paths resolve next to it, ../data
ln -s "$SRC/slurm" slurm
ln -s "$SRC/scripts" scripts
if ! bash -euo pipefail -c "$imports" >import.log 2>&1; then
    echo "FAIL: the tutorial's imports:"; cat import.log
    failed=$((failed + 1))
    finish
    exit
fi

# The block's start and stop run for this test's own owner of the daemons
# (scripts/slurm-owner.bash): its stop leaves running what it did not
# start, and what another owner still uses. If the block fails before its
# stop, the stop runs at exit.
export MIMO_SLURM_OWNER=cli-fashion-slurm-$$ MIMO_SLURM_OWNER_PID=$$
trap 'bash "$SRC/scripts/stop-slurm.sh" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
start=$(date +%s)
if timeout -k 5 900 bash -euo pipefail -c "$slurm_block" >slurm-tutorial.log 2>&1; then
    passed=$((passed + 1))
else
    echo "FAIL: the tutorial's SLURM commands (exit $?):"; tail -n 30 slurm-tutorial.log
    cat slurm-*.out 2>/dev/null | tail -n 20
    failed=$((failed + 1))
fi
check "the block's stop-slurm.sh released this test's lease" \
    grep -q "stop-slurm.sh: owner $MIMO_SLURM_OWNER released its lease" slurm-tutorial.log
grep "left running" slurm-tutorial.log
sacc=$(awk '$1 == "label_accuracy" { print $2 }' slurm-tutorial.log)
echo "tutorial under SLURM: $(($(date +%s) - start)) s; test label accuracy ${sacc:-?}"
check "SLURM run: test label accuracy ($sacc) >= 0.89" \
    awk -v a="$sacc" 'BEGIN { exit !(a != "" && a + 0 >= 0.89) }'
finish
