# lib.bash — the set-ups the measurements of tests/bench share, so that two
# scripts that measure the same network or data measure the very same one.
# Sourced by sparse_exchange.sh and sparse_hosts.sh (the embedding_bag
# network), task_balancing.sh and task_balancing_conflict.sh (the
# Fashion-MNIST files and configs/fashion-partial.yaml). Each function
# works in the current directory; MIMO and SRC are the caller's.

# bag_net ROWS DIM: net.yaml, an embedding_bag of ROWS x DIM (the mean of
# 20 int32 ids, input `hist`) beside a small dense tower (16 numbers `num`
# -> 64), concatenated -> 64 -> a sigmoid `click`; global batch 1024,
# plain sgd (lr 0.05), which updates only the rows a step touched.
bag_net() {
    cat >net.yaml <<YAML
inputs:
  hist: {shape: 20, dtype: int32}
  num:  {shape: 16}
layers:
  bag:   {type: embedding_bag, input_dim: $1, output_dim: $2, combiner: mean, from: hist}
  h:     {type: dense, units: 64, activation: relu, from: num}
  cat:   {type: concat, from: [bag, h]}
  t:     {type: dense, units: 64, activation: relu, from: cat}
  click: {type: dense, units: 1, activation: sigmoid, from: t}
outputs:
  click: {loss: binary_crossentropy}
train:
  optimizer: {type: sgd, lr: 0.05}
  batch_size: 1024
YAML
}

# median: the median of the numbers on stdin, one a line (the upper one
# of an even count)
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# fashion_partial_data: train.h5 and test.h5, Fashion-MNIST imported as
# configs/fashion-partial.yaml reads it (4x4 pooled images; the `group`
# head's labels by the class map below, kept on 10% of the training
# images, as data/fashion-train-g10.h5)
fashion_partial_data() {
    local f=/usr/share/datasets/fashion-mnist g=group=0,1,0,1,0,2,0,2,3,2
    "$MIMO" import idx --images $f/train-images-idx3-ubyte.gz --labels $f/train-labels-idx1-ubyte.gz \
        --out train.h5 --pool 4 --label-map $g --keep-labels group=0.1 >/dev/null
    "$MIMO" import idx --images $f/t10k-images-idx3-ubyte.gz --labels $f/t10k-labels-idx1-ubyte.gz \
        --out test.h5 --pool 4 --label-map $g >/dev/null
}

# fashion_partial_config TRAIN: configs/fashion-partial.yaml on stdout,
# training on TRAIN and validating on test.h5 (fashion_partial_data's)
fashion_partial_config() {
    sed -e "s|\.\./data/fashion-train-g10.h5|$1|; s|\.\./data/fashion-test.h5|test.h5|" \
        "$SRC/configs/fashion-partial.yaml"
}
