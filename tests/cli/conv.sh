#!/usr/bin/env bash
# conv.sh — conv2d and the pooling kinds from the command line: bad
# configs (a kernel larger than its input, zero or negative sizes, a
# non-image tensor into conv2d, bad padding) and bad datasets (a shape
# that is not the input's) each give one "mimo: error:" line naming
# file:line:col or the dataset, and exit code 1; images stored flat
# (N, h*w*c) or with their full shape (N, h, w, c) train bitwise the same,
# loaded whole or streamed by hyperslab; `import idx --image-shape full`
# writes (N, rows, cols, 1); summary shows Keras' shapes and counts.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
cd "$TMP" || exit 1

# ---- bad configs -------------------------------------------------------------
net() { # net NAME LAYERS...: a config with an image input x and a flat input v
    local name=$1
    shift
    printf 'inputs: {x: {shape: [5, 4, 2]}, v: {shape: 16}}\nlayers:\n' >"$name.yaml"
    printf '  %s\n' "$@" >>"$name.yaml"
    printf 'outputs: {o: {loss: mse}}\n' >>"$name.yaml"
}
net big 'c: {type: conv2d, filters: 2, kernel_size: [3, 5], from: x}' 'o: {type: flatten, from: [c, v]}'
expect 1 "big.yaml:3:3: conv2d layer 'c': kernel_size 3x5 is larger than its input 'x' of 5x4 (height x width, shape (None, 5, 4, 2)) with padding: valid; use a smaller kernel_size or padding: same" summary big.yaml
net bigpool 'p: {type: max_pool2d, pool_size: 6, from: x}' 'f: {type: flatten, from: p}' 'o: {type: concat, from: [f, v]}'
expect 1 "bigpool.yaml:3:3: max_pool2d layer 'p': pool_size 6x6 is larger than its input 'x' of 5x4" summary bigpool.yaml
net same 'c: {type: conv2d, filters: 2, kernel_size: 7, padding: same, from: x}' 'f: {type: flatten, from: c}' 'o: {type: concat, from: [f, v]}'
expect 0 "c (conv2d(linear)) (None, 5, 4, 2)         198  x" summary same.yaml
net flat 'c: {type: conv2d, filters: 2, kernel_size: 3, from: v}' 'o: {type: flatten, from: [c, x]}'
expect 1 "flat.yaml:3:3: conv2d layer 'c' needs an image input (height, width, channels), but 'v' has shape (None, 16); give the input a shape like [28, 28, 1] or reshape it first" summary flat.yaml
net gflat 'g: {type: global_max_pool2d, from: v}' 'o: {type: concat, from: [g, x]}'
expect 1 "gflat.yaml:3:3: global_max_pool2d layer 'g' needs an image input" summary gflat.yaml
net zero 'c: {type: conv2d, filters: 0, kernel_size: 3, from: x}' 'o: {type: flatten, from: c}'
expect 1 "zero.yaml:3:30: expected an integer > 0 for 'filters' in layer 'c', got '0'" summary zero.yaml
net neg 'c: {type: conv2d, filters: 2, kernel_size: [3, -1], from: x}' 'o: {type: flatten, from: c}'
expect 1 "neg.yaml:3:50: expected an integer > 0 for 'kernel_size' in layer 'c', got '-1'" summary neg.yaml
net stride0 'c: {type: conv2d, filters: 2, kernel_size: 1, strides: 0, from: x}' 'o: {type: flatten, from: c}'
expect 1 "stride0.yaml:3:58: expected an integer > 0 for 'strides' in layer 'c', got '0'" summary stride0.yaml
net pool0 'p: {type: avg_pool2d, pool_size: [0, 2], from: x}' 'o: {type: flatten, from: p}'
expect 1 "pool0.yaml:3:37: expected an integer > 0 for 'pool_size' in layer 'p', got '0'" summary pool0.yaml
net three 'c: {type: conv2d, filters: 2, kernel_size: [1, 1, 1], from: x}' 'o: {type: flatten, from: c}'
expect 1 "three.yaml:3:3: layer 'c': kernel_size takes one integer or a pair [height, width], got 3 values" summary three.yaml
net pad 'c: {type: conv2d, filters: 2, kernel_size: 1, padding: full, from: x}' 'o: {type: flatten, from: c}'
expect 1 "pad.yaml:3:58: unknown value 'full' for 'padding' in layer 'c' (expected one of: valid, same)" summary pad.yaml
net nokernel 'c: {type: conv2d, filters: 2, from: x}' 'o: {type: flatten, from: c}'
expect 1 "nokernel.yaml:3:3: layer 'c' has no 'kernel_size'" summary nokernel.yaml
printf 'inputs: {x: {shape: [4, 4, 100000]}}\nlayers:\n  c: {type: conv2d, filters: 100000, kernel_size: 3, padding: same, from: x}\noutputs: {c: {loss: mse}}\n' >huge.yaml
expect 1 "huge.yaml:3:3: conv2d layer 'c': a kernel of 3x3x100000x100000 values is too large" summary huge.yaml
net units 'c: {type: conv2d, filters: 2, kernel_size: 1, units: 3, from: x}' 'o: {type: flatten, from: c}'
expect 1 "key 'units' is not valid for a conv2d layer (only dense, gru and lstm layers take it)" summary units.yaml
expect 1 "--set layers.c.kernel_size: expected an integer > 0 for 'kernel_size' in layer 'c', got '-3'" summary same.yaml --set layers.c.kernel_size=-3

# ---- summary: Keras' output shapes and parameter counts -----------------------
config cnn 'inputs:
  image:  {shape: [28, 28, 1]}
  pooled: {shape: 49}
layers:
  c1: {type: conv2d, filters: 32, kernel_size: 3, padding: same, activation: relu, from: image}
  p1: {type: max_pool2d, pool_size: 2, from: c1}
  c2: {type: conv2d, filters: 64, kernel_size: [3, 3], strides: 1, padding: valid, activation: relu, from: p1}
  p2: {type: avg_pool2d, pool_size: 2, from: c2}
  g:  {type: global_avg_pool2d, from: c2}
  f:  {type: flatten, from: p2}
  feat:  {type: dense, units: 64, activation: relu, from: pooled}
  cat:   {type: concat, from: [f, g, feat]}
  label: {type: dense, units: 10, activation: softmax, from: cat}
outputs:
  label: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
train: {batch_size: 128}'
expect 0 "c1 (conv2d(relu))      (None, 28, 28, 32)         320  image" summary cnn.yaml
expect 0 "c2 (conv2d(relu))      (None, 12, 12, 64)       18496  p1" summary cnn.yaml
expect 0 "p2 (avg_pool2d)        (None, 6, 6, 64)             0  c2" summary cnn.yaml
expect 0 "g (global_avg_pool2d)  (None, 64)                   0  c2" summary cnn.yaml
expect 0 "Total params: 46346" summary cnn.yaml
# the convolutions' work buffers: im2col's patches (a build without
# oneDNN), or oneDNN's dx buffer and reordered kernels (conv_dnnl.c)
work=$("$MIMO" summary cnn.yaml | grep '^Work buffers')
check "work buffers: $work" test "$work" = "Work buffers (convolutions, pooling argmax, recurrent steps): 27.2 MiB at batch_size 128" -o \
    "$work" = "Work buffers (convolutions, pooling argmax, recurrent steps): 6.3 MiB at batch_size 128"
expect 0 '"c1" [shape=box, label="c1\nconv2d(relu)\n(None, 28, 28, 32)"];' dot cnn.yaml
expect 0 '"c1" -> "p1" [label="28x28x32"];' dot cnn.yaml

# ---- datasets: flat or full shape; mismatches ---------------------------------
config img 'inputs: {im: {shape: [6, 5, 2]}, v: {shape: 3}}
layers:
  c: {type: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same, activation: relu, from: im}
  p: {type: max_pool2d, pool_size: 2, padding: same, from: c}
  g: {type: global_avg_pool2d, from: c}
  f: {type: flatten, from: p}
  h: {type: dense, units: 4, activation: tanh, from: v}
  cat: {type: concat, from: [f, g, h]}
  y: {type: dense, units: 3, activation: softmax, from: cat}
outputs: {y: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
train: {optimizer: adam, batch_size: 16, epochs: 2, seed: 3}'
$PY - <<'PYEOF'
import h5py, numpy as np
rs = np.random.RandomState(2)
n = 200
im = rs.rand(n, 6, 5, 2).astype('f4'); v = rs.randn(n, 3).astype('f4')
y = rs.randint(0, 3, n).astype('i4')
def write(name, **over):
    d = dict(im=im, v=v, y=y); d.update(over)
    with h5py.File(name, 'w') as f:
        for k, x in d.items(): f[k] = x
write('full.h5')
write('flat.h5', im=im.reshape(n, 60))
write('f64.h5', im=im.astype('f8'))
write('hw.h5', im=im.reshape(n, 6, 10))
write('swap.h5', im=im.reshape(n, 5, 6, 2))
write('wide.h5', im=rs.rand(n, 61).astype('f4'))
write('rank5.h5', im=im.reshape(n, 6, 5, 2, 1))
write('vfull.h5', v=v.reshape(n, 3, 1, 1))
PYEOF
expect 1 "hw.h5: dataset 'im' has shape (200, 6, 10), input 'im' needs (N, 60) or (N, 6, 5, 2)" train img.yaml --out r --data hw.h5
expect 1 "swap.h5: dataset 'im' has shape (200, 5, 6, 2), input 'im' needs (N, 60) or (N, 6, 5, 2)" train img.yaml --out r --data swap.h5
expect 1 "wide.h5: dataset 'im' has 61 feature(s) per row, input 'im' needs 60 (or shape (N, 6, 5, 2))" train img.yaml --out r --data wide.h5
expect 1 "rank5.h5: dataset 'im' has rank 5, expected (N,), (N, features) or (N, height, width, channels)" train img.yaml --out r --data rank5.h5
expect 1 "vfull.h5: dataset 'v' has shape (200, 3, 1, 1), input 'v' needs (N, 3)" train img.yaml --out r --data vfull.h5
expect 0 "" train img.yaml --out full --data full.h5 --quiet
expect 0 "" train img.yaml --out flat --data flat.h5 --quiet
expect 0 "" train img.yaml --out f64 --data f64.h5 --quiet
expect 0 "" train img.yaml --out stream --data full.h5 --quiet --set data.memory_limit_mb=0.01
expect 0 "" train img.yaml --out stream0 --data full.h5 --quiet --set data.memory_limit_mb=0.01 --set data.prefetch=0
for d in flat f64 stream stream0; do
    check "$d: the same weights as the full-shape file loaded whole" same_params full/checkpoints/last.h5 $d/checkpoints/last.h5
done
# checkpoints hold the (kh, kw, c_in, filters) kernels: resume is exact
expect 0 "" train img.yaml --out half --data full.h5 --quiet --epochs 1
expect 0 "resuming from half/checkpoints/last.h5 (epoch 2, step 0)" train img.yaml --out half --data full.h5 --resume half
check "resume of a conv net is bitwise exact" same_params full/checkpoints/last.h5 half/checkpoints/last.h5
expect 1 "hw.h5: dataset 'im' has shape (200, 6, 10)" eval full --data hw.h5
expect 0 "samples 200" eval full --data full.h5
expect 0 "" predict full --data flat.h5 --out p.h5
# 1, 2 and 3 ranks (global batch 16 of 200 rows: slices 8/8, 5/5/6, a
# last batch of 8) train the same weights; 2 ranks read (N, h, w, c) by
# MPI-IO; plain SGD with momentum through the allreduce, and Adam through
# the shared form
for np in 2 3; do
    mpi_expect $np 0 "" train img.yaml --out full$np --data full.h5 --quiet --check-every 1
    check "$np ranks: the weights of 1 rank (1e-5)" params_close full/checkpoints/last.h5 full$np/checkpoints/last.h5 1e-5
done
sgd=(--set 'train.optimizer={type: sgd, lr: 0.05, momentum: 0.9}' --epochs 3)
expect 0 "" train img.yaml --out sgd1 --data full.h5 --quiet "${sgd[@]}"
for np in 2 3; do
    mpi_expect $np 0 "" train img.yaml --out sgd$np --data flat.h5 --quiet --allreduce bucketed "${sgd[@]}"
    check "SGD, $np ranks, bucketed allreduce: the weights of 1 rank (1e-5)" params_close sgd1/checkpoints/last.h5 sgd$np/checkpoints/last.h5 1e-5
done
# plain SGD on one process updates the kernels inside backward (the input
# gradient first): the same weights as 2 ranks' separate update
plain=(--set 'train.optimizer={type: sgd, lr: 0.1}' --epochs 3)
expect 0 "" train img.yaml --out plain1 --data full.h5 --quiet "${plain[@]}"
mpi_expect 2 0 "" train img.yaml --out plain2 --data full.h5 --quiet "${plain[@]}"
check "plain SGD in backward (1 rank) = 2 ranks (1e-5)" params_close plain1/checkpoints/last.h5 plain2/checkpoints/last.h5 1e-5
check "the kernel is stored (kh, kw, c_in, filters)" $PY -c "
import h5py, sys
f = h5py.File('full/checkpoints/last.h5')
sys.exit(0 if f['params/c/kernel'].shape == (3, 3, 2, 4) and f['params/c/bias'].shape == (4,) else 1)"

# ---- with the layers of real models: batch_norm after a conv (the global
# batch's statistics over batch, height and width), dropout, a shared and
# a frozen conv2d; 1 and 2 ranks train the same weights, the frozen kernel
# never moves; bench --layers profiles every kind, on 1 and 2 ranks. (No
# bias before batch_norm, as in Keras: its gradient is zero up to rounding,
# which Adam would turn into steps that differ between rank counts.)
config bn 'inputs: {im: {shape: [6, 5, 2]}, v: {shape: 3}}
layers:
  c: {type: conv2d, filters: 4, kernel_size: 3, padding: same, use_bias: false, from: im}
  b: {type: batch_norm, from: c}
  a: {type: activation, activation: relu, from: b}
  k: {type: conv2d, filters: 4, kernel_size: 1, activation: tanh, from: a}
  t: {type: conv2d, shares: k, from: k}
  z: {type: conv2d, filters: 2, kernel_size: 2, trainable: false, from: t}
  p: {type: max_pool2d, pool_size: 2, padding: same, from: z}
  f: {type: flatten, from: p}
  d: {type: dropout, rate: 0.3, from: f}
  h: {type: dense, units: 4, activation: tanh, from: v}
  cat: {type: concat, from: [d, h]}
  y: {type: dense, units: 3, activation: softmax, from: cat}
outputs: {y: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
train: {optimizer: adam, batch_size: 16, epochs: 2, seed: 3}'
expect 0 "z (conv2d(linear) frozen)" summary bn.yaml
expect 0 "" train bn.yaml --out bn1 --data full.h5 --quiet
expect 0 "" train bn.yaml --out bn0 --data full.h5 --quiet --epochs 1
mpi_expect 2 0 "" train bn.yaml --out bn2 --data flat.h5 --quiet
check "batch_norm, dropout, shared and frozen conv2d: 2 ranks = 1 rank (1e-5)" params_close bn1/checkpoints/last.h5 bn2/checkpoints/last.h5 1e-5
check "the frozen conv2d kernel is the same after 1 and 2 epochs" $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File('bn0/checkpoints/last.h5'), h5py.File('bn1/checkpoints/last.h5')
same = lambda n: np.array_equal(a['params/' + n][()], b['params/' + n][()])
sys.exit(0 if same('z/kernel') and same('z/bias') and not same('k/kernel') and 't' not in b['params'] else 1)"
expect 0 "conv2d (4)" bench bn.yaml --steps 4 --warmup 1 --segments 1 --layers
check "bench prints the per-kind profile only with --layers" bash -c "! $MIMO bench bn.yaml --steps 2 --warmup 1 --segments 1 | grep -q 'per layer kind'"
mpi_expect 2 0 "batch_norm (1)" bench bn.yaml --steps 4 --warmup 1 --segments 1 --layers
expect 0 "max_pool2d (1)" bench cnn.yaml --steps 2 --warmup 1 --segments 1 --layers
# Keras' long names of the pooling layers
net keras 'p: {type: MaxPooling2D, from: x}' 'g: {type: GlobalAveragePooling2D, from: p}' 'q: {type: AveragePooling2D, from: x}' 'm: {type: GlobalMaxPool2D, from: q}' 'o: {type: Concatenate, from: [g, m, v]}'
expect 0 "g (global_avg_pool2d)" summary keras.yaml

# ---- import idx --image-shape full -----------------------------------------------
img=$SRC/tests/data/tiny-images-idx3-ubyte lab=$SRC/tests/data/tiny-labels-idx1-ubyte
expect 0 "wrote" import idx --images "$img" --labels "$lab" --out t.h5 --image-shape full --pool 2 --pool-shape full
expect 0 "wrote" import idx --images "$img" --labels "$lab" --out u.h5 --image-shape flat --pool 2
py "import idx --image-shape full / --pool-shape full" "
import h5py, numpy as np
with h5py.File('t.h5') as t, h5py.File('u.h5') as u:
    assert t['image'].shape == (3, 4, 4, 1) and t['pooled'].shape == (3, 2, 2, 1), (t['image'].shape, t['pooled'].shape)
    assert u['image'].shape == (3, 16) and u['pooled'].shape == (3, 4)
    assert np.array_equal(t['image'][()].reshape(3, 16), u['image'][()])
    assert np.array_equal(t['pooled'][()].reshape(3, 4), u['pooled'][()])
"
expect 2 "import idx: --image-shape expects flat or full, got 'square'" import idx --images "$img" --labels "$lab" --out v.h5 --image-shape square
expect 2 "import idx: --pool-shape needs --pool K" import idx --images "$img" --labels "$lab" --out v.h5 --pool-shape full
expect 0 "--image-shape full" import idx --help
finish
