#!/usr/bin/env bash
# plugin.sh — custom layer kinds from plug-ins (mimo/plugin.h), without
# installing mimo: the example plug-in (examples/plugin/swish.c) built here
# against the source tree's headers, its gradient check run; a config that
# names it trains (the loss falls), on 2 ranks to the weights of 1 (1e-5);
# eval, predict and --resume from the run's checkpoint find the plug-in
# again from another directory (the kept config holds its absolute path);
# mimo list --plugin lists its kind; loading a file twice is harmless, the
# plugins key works after the layers; and the bad cases each end with one
# message naming the file and the config's file:line:col, exit 1: a file
# that is missing, not a shared object, not a mimo plug-in, built for
# another ABI, or bringing a kind name that exists (built in, or another
# plug-in's).
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP"
EX=$SRC/examples/plugin
CC=${CC:-cc}

# ---- build: the example and the bad plug-ins, headers of the source tree --
so() { # so OUT SOURCE [CFLAGS...]: a plug-in as examples/plugin/CMakeLists.txt builds it
    local out=$1 src=$2
    shift 2
    $CC -std=c11 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror \
        -I"$SRC/include" "$@" "$src" -o "$out" -lm
}
mkdir -p ex/build ex/data bad
check "the example plug-in builds against include/ alone" so ex/build/libswish.so "$EX/swish.c"
check "its gradient check builds" $CC -std=c11 -Wall -Wextra -Werror -I"$SRC/include" \
    "$EX/swish_gradcheck.c" -o gradcheck -lm
check "its gradient check passes (central differences, double)" ./gradcheck
check "the plug-in exports mimo_plugin and nothing else" \
    test "$(nm -D --defined-only ex/build/libswish.so | awk '{print $3}')" = mimo_plugin

cat >bad/nosym.c <<'EOF'
int not_a_plugin(void) { return 1; }
EOF
cat >bad/abi2.c <<'EOF'
#include <mimo/plugin.h>
MIMO_PLUGIN_EXPORT const mimo_plugin_info mimo_plugin = {.abi = 2, .name = "future"};
EOF
cat >bad/dense.c <<'EOF'
#include <mimo/plugin.h>
static int infer(const double *a, int n, const mimo_plugin_shape *in, mimo_plugin_shape *out,
                 mimo_plugin_param *p, int *np, char *e, size_t l)
{ (void)a, (void)n, (void)p, (void)np, (void)e, (void)l; *out = in[0]; return 0; }
static void fwd(const double *a, int b, int n, const mimo_real *const *x, const int *w,
                const mimo_real *const *p, mimo_real *y, int ow)
{ (void)a, (void)n, (void)w, (void)p; for (int i = 0; i < b * ow; i++) y[i] = x[0][i]; }
static void bwd(const double *a, int b, int n, const mimo_real *const *x, const int *w,
                const mimo_real *const *p, const mimo_real *y, const mimo_real *dy, int ow,
                mimo_real *const *dx, mimo_real *const *dp)
{ (void)a, (void)n, (void)x, (void)w, (void)p, (void)y, (void)dp;
  for (int i = 0; dx[0] && i < b * ow; i++) dx[0][i] += dy[i]; }
static const mimo_plugin_kind kinds[] = {{.name = KIND, .min_inputs = 1, .max_inputs = 1,
                                          .infer = infer, .forward = fwd, .backward = bwd}};
MIMO_PLUGIN_EXPORT const mimo_plugin_info mimo_plugin = {MIMO_PLUGIN_INFO_INIT,
    .name = "copy", .kinds = kinds, .n_kinds = 1};
EOF
so bad/libnosym.so bad/nosym.c
so bad/libabi2.so bad/abi2.c
so bad/libdense.so bad/dense.c -DKIND='"dense"'
so bad/libbatchnorm.so bad/dense.c -DKIND='"batch_normalization"'
so bad/libswish2.so bad/dense.c -DKIND='"swish"'
so bad/libcopy.so bad/dense.c -DKIND='"copy"'
printf 'not an ELF file\n' >bad/libjunk.so

# ---- the example: train, ranks, checkpoints ---------------------------------
cp "$EX/swish.yaml" ex/
expect 0 "wrote" gen sinexp --out ex/data/sinexp.h5 --n 400
expect 0 "a1 (swish(beta=1, learned))" summary ex/swish.yaml
expect 0 "" train ex/swish.yaml --out np1 --epochs 8 --quiet
py "the loss falls (last epoch below half the first)" "
import numpy as np
h = np.genfromtxt('np1/history.csv', delimiter=',', names=True)
print(f'  loss {h[\"loss\"][0]:.4f} -> {h[\"loss\"][-1]:.4f} in {len(h)} epochs')
assert len(h) == 8 and h['loss'][-1] < 0.5 * h['loss'][0]"
py "the learned beta moved from 1 and is saved as /params/a1/beta" "
import h5py, numpy as np
b = h5py.File('np1/checkpoints/last.h5')['params/a1/beta'][()]
assert b.shape == (16,) and np.abs(b - 1).max() > 1e-3, b"
py "the kept config names the plug-in by its absolute path" "
import h5py
assert '$TMP/ex/build/libswish.so' in open('np1/config.yaml').read()"
mpi_expect 2 0 "" train ex/swish.yaml --out np2 --epochs 8 --quiet --check-every 1
check "2 ranks train the weights of 1 (1e-5)" \
    params_close np1/checkpoints/last.h5 np2/checkpoints/last.h5 1e-5

# from elsewhere: the checkpoint's config finds the plug-in by itself
mkdir elsewhere
cd elsewhere
expect 0 "sin_loss" eval ../np1 --data ../ex/data/sinexp.h5
expect 0 "" predict ../np1 --data ../ex/data/sinexp.h5 --out ../pred.h5 --quiet
expect 0 "" train --resume ../np1 --out ../np1r --epochs 10 --quiet
cd ..
py "predict wrote the head's 400 outputs" "
import h5py, numpy as np
y = h5py.File('pred.h5')['sin'][()]
assert y.shape[0] == 400 and np.isfinite(y).all()"
py "the resumed run went on from epoch 8 to 10" "
import numpy as np
h = np.genfromtxt('np1r/history.csv', delimiter=',', names=True)
assert list(h['epoch'])[-1] == 10, h['epoch']"

# ---- loading: twice, anywhere in the file, listed ---------------------------
{
    echo "inputs: {x1: {shape: 1}}"
    echo "layers: {a: {type: SiLU_Beta, beta: 3, from: x1}, o: {type: dense, units: 1, from: a}}"
    echo "outputs: {o: {loss: mse}}"
    echo "plugins: [build/libswish.so, ./build/libswish.so, $TMP/ex/build/libswish.so]"
} >ex/twice.yaml
expect 0 "a (swish(beta=3))" summary ex/twice.yaml
expect 0 "swish" list layers --plugin ex/build/libswish.so
check "list prints the plug-in's kind after the built-in ones" \
    test "$($MIMO list layers --plugin ex/build/libswish.so | tail -n 1)" = swish
expect 0 "" list layers
check "without --plugin, no swish" test "$($MIMO list layers | grep -c swish)" = 0

# the kind's keys are checked as a built-in kind's
sed 's/beta: 2.0/beta: 200/' ex/swish.yaml >ex/range.yaml
expect 1 "range.yaml:16:27: expected a number in [0, 100] for 'beta' in layer 'a2', got '200'" \
    train ex/range.yaml --out bad-run
sed 's/beta: 2.0/betta: 2.0/' ex/swish.yaml >ex/typo.yaml
expect 1 "typo.yaml:16:21" train ex/typo.yaml --out bad-run
expect 1 "a2" train ex/typo.yaml --out bad-run

# ---- bad plug-ins: one message, the file and file:line:col, exit 1 ----------
bad_plugin() { # bad_plugin FILE PHRASE: a config naming FILE fails with PHRASE
    sed "s#build/libswish.so#$1#" ex/swish.yaml >ex/bad.yaml
    expect 1 "bad.yaml:9:11: $TMP/ex/$1: $2" train ex/bad.yaml --out bad-run
    check "no run directory for a bad plug-in ($1)" test ! -e bad-run
}
bad_plugin build/missing.so "cannot open plug-in: No such file or directory"
bad_plugin ../bad/libjunk.so "cannot load the plug-in"
bad_plugin ../bad/libnosym.so "not a mimo plug-in: it defines no 'mimo_plugin' symbol"
bad_plugin ../bad/libabi2.so "the plug-in was built for plug-in ABI 2, this mimo has ABI 1"
bad_plugin ../bad/libdense.so "the plug-in's kind 'dense' already exists: defined by mimo (a built-in kind)"
bad_plugin ../bad/libbatchnorm.so "the plug-in's kind 'batch_normalization' already exists: defined by mimo"
# a kind another plug-in brought: the first one loaded is named
sed "s#plugins: \[build/libswish.so\]#plugins: [build/libswish.so, ../bad/libswish2.so]#" \
    ex/swish.yaml >ex/two.yaml
expect 1 "two.yaml:9:30: $TMP/ex/../bad/libswish2.so: the plug-in's kind 'swish' already exists: defined by $TMP/ex/build/libswish.so" \
    train ex/two.yaml --out bad-run
expect 1 "bad/libabi2.so: the plug-in was built for plug-in ABI 2" \
    list --plugin bad/libabi2.so
expect 0 "copy" list layers --plugin bad/libcopy.so

finish
